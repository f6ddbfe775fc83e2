//! `dsappSRPGenerateActivationData`: checks M1 in constant time; only then returns M2 and the
//! authenticator's activation data, encrypted and MACed under the session keys.

use super::{registration_id_element, AuditFields, Input, Route, SoapCommand, SoapReply};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::protocol::srp;
use crate::soap::reader::hex_element;
use crate::soap::response::ResultWriter;
use crate::soap::{Operation, RequestError};
use crate::store::RegistrationStatus;
use crate::types::{HexValue, RegistrationId};

/// The client evidence M1.
#[derive(Debug)]
pub struct SrpActivationData {
    pub registration_id: RegistrationId,
    pub client_evidence: HexValue,
}

/// M2 and the protected activation data.
#[derive(Debug)]
pub struct ActivationData {
    pub registration_id: RegistrationId,
    pub server_evidence: HexValue,
    pub activation: crate::protocol::record::Sealed,
}

impl SoapCommand for SrpActivationData {
    const ROUTE: Route = Route::Operation(Operation::DsappSrpGenerateActivationData);
    const CHECKS_PASSWORD: bool = false;
    const INLINE: bool = false;
    type Reply = ActivationData;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        Ok(SrpActivationData {
            registration_id: registration_id_element(input.element)?,
            client_evidence: hex_element(input.element, "clientEvidenceMessage", 32, true)?,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.registration(&self.registration_id);
    }

    fn handle(self, p: &Provisioning) -> Result<ActivationData, ProvisionError> {
        let id = self.registration_id;
        let reg = p.live_registration(&id)?;
        Provisioning::require_status(&reg, RegistrationStatus::Pending)?;
        let fresh = reg.ephemeral_expires_at.is_some_and(|t| t > p.now());
        let state = match p.store().open_session(&reg)? {
            Some(s) if fresh && s.len() == srp::SESSION_BYTES => s,
            _ => return Err(ProvisionError::NoKeyExchange(id)),
        };
        let (key, rest) = state.split_at(32);
        let (m1, m2) = rest.split_at(32);
        if !crate::crypto::ct_eq(m1, self.client_evidence.as_bytes()) {
            return Err(p.proof_failed(&id, "the client evidence message"));
        }
        // The key this registration prepared: never the key of a device holding it already.
        let auth_key = p.store().registration_key(&reg)?;
        let plaintext = srp::activation_plaintext(&reg.serial_no, &auth_key);
        let keys = srp::record::RecordKeys::derive(&reg.srp_salt, key);
        let iv: [u8; 16] = crate::crypto::random_array();
        let activation = keys.seal(id.as_str().as_bytes(), iv, &plaintext);
        // K_mac stays, sealed, until the registration expires: a derivation code is checked
        // against it in dsappSRPActivate.
        if !p
            .store()
            .deliver_with_session(&id, &keys.mac_key_bytes(), reg.expires_at)?
        {
            return Err(ProvisionError::RegistrationSpent {
                id,
                state: "no longer pending",
            });
        }
        Ok(ActivationData {
            registration_id: id,
            server_evidence: HexValue::from_bytes(m2.to_vec()),
            activation,
        })
    }
}

impl SoapReply for ActivationData {
    fn write(&self, w: &mut ResultWriter) {
        w.open("standard")
            .open("activationCode")
            .element(
                "encryptedData",
                &hex::encode_upper(&self.activation.ciphertext),
            )
            .element("encryptedCounter", &hex::encode_upper(self.activation.iv))
            .element("mac", &hex::encode_upper(self.activation.mac))
            .close("activationCode")
            .close("standard")
            .element("serverEvidenceMessage", &self.server_evidence.to_string());
    }

    fn audit(&self, _: &mut AuditFields<'_>) {}
}
