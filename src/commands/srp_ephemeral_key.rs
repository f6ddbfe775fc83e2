//! `dsappSRPGenerateEphemeralKey`: draws b, computes B, and derives the session (K, M1, M2)
//! now, so that only those, sealed, are kept for the next step, on whichever instance it
//! lands.

use super::{registration_id_element, AuditFields, Input, Route, SoapCommand, SoapReply};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::protocol::srp;
use crate::soap::reader::hex_element;
use crate::soap::response::ResultWriter;
use crate::soap::{Operation, RequestError};
use crate::store::{RegistrationStatus, StoreError};
use crate::types::{HexValue, RegistrationId};

/// The client's public value A.
#[derive(Debug)]
pub struct SrpEphemeralKey {
    pub registration_id: RegistrationId,
    pub client_public: HexValue,
}

/// B and the salt.
#[derive(Debug)]
pub struct EphemeralKey {
    pub registration_id: RegistrationId,
    pub server_public: HexValue,
    pub salt: HexValue,
}

impl SoapCommand for SrpEphemeralKey {
    const ROUTE: Route = Route::Operation(Operation::DsappSrpGenerateEphemeralKey);
    const CHECKS_PASSWORD: bool = false;
    const INLINE: bool = false;
    type Reply = EphemeralKey;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        Ok(SrpEphemeralKey {
            registration_id: registration_id_element(input.element)?,
            client_public: hex_element(input.element, "clientEphemeralPublicKey", 256, false)?,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.registration(&self.registration_id);
    }

    fn handle(self, p: &Provisioning) -> Result<EphemeralKey, ProvisionError> {
        let id = self.registration_id;
        let reg = p.live_registration(&id)?;
        Provisioning::require_status(&reg, RegistrationStatus::Pending)?;
        let srp = srp::srp();
        let invalid = |e: srp::math::SrpError| ProvisionError::Invalid {
            field: "clientEphemeralPublicKey",
            reason: e.to_string(),
        };
        let a_pub = srp
            .group
            .parse(self.client_public.as_bytes())
            .map_err(invalid)?;
        srp.check_public(&a_pub).map_err(invalid)?;
        let v = srp
            .group
            .parse(&p.store().open_verifier(&reg)?)
            .map_err(|e| ProvisionError::Store(StoreError::Corrupt(format!("verifier: {e}"))))?;
        let b_bytes = crate::crypto::random_bytes(32);
        let b = zeroize::Zeroizing::new(srp.group.parse(&b_bytes).map_err(invalid)?);
        let b_pub = srp.server_public(&v, &b);
        let u = srp.u(&a_pub, &b_pub).map_err(invalid)?;
        let premaster = srp.server_premaster(&a_pub, &v, &u, &b).map_err(invalid)?;
        let session = srp.session(
            &premaster,
            id.as_str().as_bytes(),
            &reg.srp_salt,
            &a_pub,
            &b_pub,
        );
        let mut state = zeroize::Zeroizing::new(Vec::with_capacity(srp::SESSION_BYTES));
        state.extend_from_slice(&session.key);
        state.extend_from_slice(&session.m1);
        state.extend_from_slice(&session.m2);
        let now = p.now();
        if !p
            .store()
            .set_session(&id, &state, now, now + p.policy().ephemeral_lifetime_secs)?
        {
            // Spent or expired between the read and the write.
            return Err(ProvisionError::RegistrationSpent {
                id,
                state: "no longer pending",
            });
        }
        Ok(EphemeralKey {
            registration_id: id,
            server_public: HexValue::from_bytes(srp.group.pad(&b_pub)),
            salt: HexValue::from_bytes(reg.srp_salt),
        })
    }
}

impl SoapReply for EphemeralKey {
    fn write(&self, w: &mut ResultWriter) {
        w.element("serverEphemeralPublicKey", &self.server_public.to_string())
            .element("salt", &self.salt.to_string());
    }

    fn audit(&self, _: &mut AuditFields<'_>) {}
}
