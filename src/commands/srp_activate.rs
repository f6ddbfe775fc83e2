//! `dsappSRPActivate`: the OTP of the authenticator just delivered (or a derivation code
//! under the session's MAC key) ends the registration and makes the authenticator active.

use zeroize::Zeroizing;

use super::{
    registration_id_element, ActivationProof, AuditFields, Input, Route, SoapCommand, SoapReply,
};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::protocol::{otp, srp};
use crate::soap::reader::{at_most, child, text};
use crate::soap::response::ResultWriter;
use crate::soap::{Operation, RequestError};
use crate::store::RegistrationStatus;
use crate::types::{Domain, RegistrationId, SerialNumber, UserId};

#[derive(Debug)]
pub struct SrpActivate {
    pub registration_id: RegistrationId,
    pub proof: ActivationProof,
}

#[derive(Debug)]
pub struct SrpActivated {
    pub registration_id: RegistrationId,
    pub user_id: UserId,
    pub domain: Domain,
    pub serial_no: SerialNumber,
}

impl SoapCommand for SrpActivate {
    const ROUTE: Route = Route::Operation(Operation::DsappSrpActivate);
    const CHECKS_PASSWORD: bool = false;
    const INLINE: bool = false;
    type Reply = SrpActivated;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        let op = input.element;
        let registration_id = registration_id_element(op)?;
        let credential = child(op, "credential")?;
        let proof = match (
            text(credential, "response"),
            text(credential, "derivationCode"),
        ) {
            (Some(_), Some(_)) => {
                return Err(RequestError::BadElement {
                    path: "credential",
                    reason: "give either response or derivationCode, not both".into(),
                })
            }
            (Some(otp), None) => {
                at_most("credential/response", otp, 16)?;
                ActivationProof::Otp(Zeroizing::new(otp.to_owned()))
            }
            (None, Some(code)) => {
                at_most("credential/derivationCode", code, 27)?;
                ActivationProof::DerivationCode(Zeroizing::new(code.to_owned()))
            }
            (None, None) => return Err(RequestError::MissingElement("credential/response")),
        };
        Ok(SrpActivate {
            registration_id,
            proof,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.registration(&self.registration_id);
    }

    fn handle(self, p: &Provisioning) -> Result<SrpActivated, ProvisionError> {
        let id = self.registration_id;
        let (reg, user) = p.live_registration_of(&id)?;
        Provisioning::require_status(&reg, RegistrationStatus::Delivered)?;
        let step = match &self.proof {
            ActivationProof::Otp(otp) => {
                let key = p.store().registration_key(&reg)?;
                let Some(step) = otp::verify_totp(&key, otp, p.now()) else {
                    return Err(p.proof_failed(&id, "the one-time password"));
                };
                Some(step)
            }
            ActivationProof::DerivationCode(code) => {
                let mac_key = match p.store().open_session(&reg)? {
                    Some(k) if k.len() == 32 => k,
                    _ => return Err(ProvisionError::NoKeyExchange(id)),
                };
                if !srp::record::verify_derivation_code(
                    &mac_key,
                    id.as_str().as_bytes(),
                    reg.serial_no.as_str().as_bytes(),
                    code,
                ) {
                    return Err(p.proof_failed(&id, "the derivation code"));
                }
                None
            }
        };
        p.complete_activation(&reg, &user, step)?;
        Ok(SrpActivated {
            registration_id: id,
            user_id: user.user_id,
            domain: user.domain,
            serial_no: reg.serial_no,
        })
    }
}

impl SoapReply for SrpActivated {
    fn write(&self, w: &mut ResultWriter) {
        w.open("user")
            .element("userID", self.user_id.as_str())
            .element("domain", self.domain.as_str())
            .close("user")
            .element("serialNumber", self.serial_no.as_str());
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit
            .serial(&self.serial_no)
            .user(&self.user_id, Some(&self.domain));
    }
}
