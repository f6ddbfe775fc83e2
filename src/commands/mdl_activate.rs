//! `PROVISIONCMD_MDL_ACTIVATE`: checks the confirmation of Activation Message 2 (a signature
//! or a response-only OTP of the new instance) and makes the instance active.

use zeroize::Zeroizing;

use super::{write_who, AuditFields, Input, Route, SoapCommand, SoapReply};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::protocol::{mdl, otp};
use crate::soap::reader::bad_value;
use crate::soap::response::ResultWriter;
use crate::soap::{AttributeId as A, Command, RequestError};
use crate::store::{RegistrationStatus, StoreError};
use crate::types::{Domain, OrgUnit, RegistrationId, SerialNumber, UserId};

/// How the device confirms Activation Message 2.
#[derive(Debug)]
pub enum Confirmation {
    /// `PROVFLD_SIGNATURE`: 16 digits.
    Signature(Zeroizing<String>),
    /// `PROVFLD_DP_RESPONSE`: a response-only OTP of the new instance.
    Otp(Zeroizing<String>),
}

#[derive(Debug)]
pub struct MdlActivate {
    pub registration_id: RegistrationId,
    pub confirmation: Confirmation,
}

#[derive(Debug)]
pub struct MdlActivated {
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub serial_no: SerialNumber,
    pub device_id: String,
    pub sequence: i32,
}

impl SoapCommand for MdlActivate {
    const ROUTE: Route = Route::Execute(Command::MdlActivate);
    const CHECKS_PASSWORD: bool = false;
    const INLINE: bool = false;
    type Reply = MdlActivated;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        let r = &mut input.attributes;
        // Accepted as OneSpan's catalogue lists it; the confirmation decides.
        r.ignore(A::RequestType);
        let confirmation = match (r.secret(A::Signature), r.secret(A::DpResponse)) {
            (Some(_), Some(_)) => {
                return Err(RequestError::BadValue {
                    id: A::DpResponse,
                    reason: "give PROVFLD_SIGNATURE or PROVFLD_DP_RESPONSE, not both".into(),
                })
            }
            (Some(sig), None) => {
                mdl::check_signature_format(&sig).map_err(|e| bad_value(A::Signature, e))?;
                Confirmation::Signature(sig)
            }
            (None, Some(otp)) => Confirmation::Otp(otp),
            (None, None) => return Err(RequestError::Missing(A::Signature)),
        };
        Ok(MdlActivate {
            registration_id: r.required(A::RegistrationId, RegistrationId::parse)?,
            confirmation,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.registration(&self.registration_id);
    }

    fn handle(self, p: &Provisioning) -> Result<MdlActivated, ProvisionError> {
        let id = self.registration_id;
        let reg = p.mdl_registration(&id, RegistrationStatus::Delivered)?;
        let instance =
            p.store()
                .pending_instance(&id)?
                .ok_or_else(|| ProvisionError::RegistrationSpent {
                    id: id.clone(),
                    state: "without a pending device instance",
                })?;
        let nonce: [u8; mdl::NONCE_BYTES] = instance
            .am2_nonce
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("instance of {id}: nonce length")))?;
        let sequence = u8::try_from(instance.sequence_no)
            .map_err(|_| StoreError::Corrupt(format!("instance of {id}: sequence number")))?;
        let (ok, what, step) = match &self.confirmation {
            Confirmation::Signature(s) => (
                mdl::verify_signature(&instance.instance_key, &nonce, &reg.serial_no, sequence, s),
                "PROVFLD_SIGNATURE",
                None,
            ),
            Confirmation::Otp(otp) => {
                let step = otp::verify_totp(&instance.instance_key, otp, p.now());
                (step.is_some(), "PROVFLD_DP_RESPONSE", step)
            }
        };
        if !ok {
            let e = p.proof_failed(&id, what);
            if matches!(e, ProvisionError::RevokedNow { .. }) {
                p.store().revoke_pending_instance(&id)?;
            }
            return Err(e);
        }
        if !p.store().activate_instance(&id, step)? {
            return Err(ProvisionError::RegistrationSpent {
                id,
                state: "already activated",
            });
        }
        let user = p.store().user_by_pk(reg.user_pk)?;
        Ok(MdlActivated {
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no: reg.serial_no,
            device_id: instance.device_id,
            sequence: instance.sequence_no,
        })
    }
}

impl SoapReply for MdlActivated {
    fn write(&self, w: &mut ResultWriter) {
        write_who(
            w,
            &self.user_id,
            &self.domain,
            self.organizational_unit.as_ref(),
        );
        w.text(A::SerialNo, self.serial_no.as_str())
            .text(A::DeviceId, &self.device_id);
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit
            .serial(&self.serial_no)
            .user(&self.user_id, Some(&self.domain));
    }
}
