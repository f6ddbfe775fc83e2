//! `PROVISIONCMD_DSAPPACTIVATE`: the client's confirmation tag proves the session key; then its
//! OTP or derivation code spends the registration and activates the authenticator. A wrong
//! tag, OTP or derivation code counts as a failure (3 revoke).

use super::SoapCommand;
use super::{activation_proof, iv, Activated, ActivationProof, AuditFields, Input, Route};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::protocol::{dsapp, otp};
use crate::soap::{AttributeId as A, Command, RequestError};
use crate::store::{RegistrationStatus, StoreError};
use crate::types::{HexValue, RegistrationId};

#[derive(Debug)]
pub struct DsappActivate {
    pub registration_id: RegistrationId,
    /// The client's confirmation tag.
    pub encrypted_server_nonce: HexValue,
    /// `sid` again.
    pub client_iv: [u8; 16],
    pub proof: ActivationProof,
}

impl SoapCommand for DsappActivate {
    const ROUTE: Route = Route::Execute(Command::DsappActivate);
    const CHECKS_PASSWORD: bool = false;
    const INLINE: bool = false;
    /// What `PROVISIONCMD_ACTIVATE` returns.
    type Reply = Activated;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        let r = &mut input.attributes;
        Ok(DsappActivate {
            registration_id: r.required(A::RegistrationId, RegistrationId::parse)?,
            encrypted_server_nonce: r.required(A::EncryptedServerNonce, HexValue::parse)?,
            client_iv: iv(r, A::ClientIv)?,
            proof: activation_proof(r)?,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.registration(&self.registration_id);
    }

    fn handle(self, p: &Provisioning) -> Result<Activated, ProvisionError> {
        let id = self.registration_id;
        let (reg, _) = p.dsapp_registration(&id, &[RegistrationStatus::Delivered])?;
        let user = p.store().user_by_pk(reg.user_pk)?;
        let fresh = reg.ephemeral_expires_at.is_some_and(|t| t > p.now());
        let session = match p.store().open_dsapp_session(&reg)? {
            Some(s) if fresh => dsapp::Session::from_bytes(&s)
                .map_err(|e| StoreError::Corrupt(format!("registration {id}: {e}")))?,
            _ => return Err(ProvisionError::NoKeyExchange(id)),
        };
        // The sid must be the latest exchange's and the tag must verify; both in constant
        // time, and either failing counts.
        let same_sid = crate::crypto::ct_eq(session.sid(), &self.client_iv);
        let tag_ok = session.verify_client_tag(self.encrypted_server_nonce.as_bytes());
        if !(same_sid & tag_ok) {
            return Err(p.dsapp_failed(&id, "PROVFLD_ENCRYPTED_SERVER_NONCE"));
        }
        let key = p.store().registration_key(&reg)?;
        let (ok, step) = match &self.proof {
            ActivationProof::Otp(code) => {
                let step = otp::verify_totp(&key, code, p.now());
                (step.is_some(), step)
            }
            ActivationProof::DerivationCode(code) => {
                (session.verify_derivation_code(&reg.serial_no, code), None)
            }
        };
        if !ok {
            let what = match self.proof {
                ActivationProof::Otp(_) => "PROVFLD_DP_RESPONSE",
                ActivationProof::DerivationCode(_) => "PROVFLD_DERIVATION_CODE",
            };
            return Err(p.dsapp_failed(&id, what));
        }
        p.complete_activation(&reg, &user, step)?;
        p.store().drop_registration_secrets(&id)?;
        Ok(Activated {
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no: reg.serial_no,
        })
    }
}
