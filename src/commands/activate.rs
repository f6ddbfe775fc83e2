//! `PROVISIONCMD_ACTIVATE`: the first OTP of the key `PROVISIONCMD_REGISTER` prepared completes
//! that registration (the authenticator takes the new key; its old key is retired). The call
//! carries no password, so its answer never tells whether the user exists, has an
//! authenticator or has a registration pending: each of those, and a wrong OTP, answers the
//! same `OtpRejected` (the reason goes to the audit trail). A wrong OTP counts against the
//! pending registrations (revoked after `max_activation_failures`), never against the user.
//! Only a right OTP learns that the user is locked or disabled, and a locked user cannot
//! complete the activation. With nothing pending, the OTP of the active authenticator's
//! current key answers `AlreadyActive`, once per time step.

use super::{activation_proof, write_who, ActivationProof, AuditFields, Input, Route};
use super::{SoapCommand, SoapReply};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::protocol::otp;
use crate::soap::response::ResultWriter;
use crate::soap::{AttributeId as A, Command, RequestError};
use crate::store::Registration;
use crate::types::{Domain, OrgUnit, SerialNumber, UserId};

#[derive(Debug)]
pub struct Activate {
    pub user_id: UserId,
    pub domain: Option<Domain>,
    pub serial_no: Option<SerialNumber>,
    pub proof: ActivationProof,
}

/// What `PROVISIONCMD_ACTIVATE` and `PROVISIONCMD_DSAPPACTIVATE` return.
#[derive(Debug)]
pub struct Activated {
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub serial_no: SerialNumber,
}

impl SoapCommand for Activate {
    const ROUTE: Route = Route::Execute(Command::Activate);
    const CHECKS_PASSWORD: bool = false;
    const INLINE: bool = false;
    type Reply = Activated;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        let r = &mut input.attributes;
        Ok(Activate {
            user_id: r.required(A::UserId, UserId::parse)?,
            domain: r.optional(A::Domain, Domain::parse)?,
            serial_no: r.optional(A::SerialNo, SerialNumber::parse)?,
            proof: activation_proof(r)?,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.user(&self.user_id, self.domain.as_ref());
    }

    fn handle(self, p: &Provisioning) -> Result<Activated, ProvisionError> {
        let domain = self.domain.clone().unwrap_or_else(Domain::master);
        let otp_value = match &self.proof {
            ActivationProof::Otp(otp) => otp,
            ActivationProof::DerivationCode(_) => {
                return Err(ProvisionError::NotImplemented(
                    "PROVISIONCMD_ACTIVATE with a derivation code (send PROVFLD_DP_RESPONSE)",
                ))
            }
        };
        let now = p.now();
        let rejected =
            |reason: String| ProvisionError::concealed(ProvisionError::OtpRejected, reason);
        let Some(user) = p.store().find_user(&self.user_id, &domain)? else {
            // The work of a check, for the time it takes.
            let _ = otp::verify_totp(&[0u8; 32], otp_value, now);
            return Err(rejected(format!(
                "unknown user {} in domain {domain}",
                self.user_id
            )));
        };
        // A named serial number that is not the user's is treated as naming nothing pending.
        let named = match &self.serial_no {
            Some(s) if p.check_owned(s, &user, "PROVFLD_SERIAL_NO").is_err() => {
                let _ = otp::verify_totp(&[0u8; 32], otp_value, now);
                return Err(rejected(format!(
                    "authenticator {s} is not assigned to {}",
                    user.user_id
                )));
            }
            other => other.as_ref(),
        };
        let pending = p.store().pending_activations(user.pk, named, now)?;
        let mut matched: Option<(&Registration, i64)> = None;
        for reg in &pending {
            let key = p.store().registration_key(reg)?;
            if let Some(step) = otp::verify_totp(&key, otp_value, now) {
                matched = Some((reg, step));
                break;
            }
        }
        if let Some((reg, step)) = matched {
            if user.disabled {
                return Err(ProvisionError::UserDisabled);
            }
            if user.locked_at(now) {
                return Err(ProvisionError::UserLocked);
            }
            if p.store().get_authenticator(&reg.serial_no)?.disabled {
                return Err(ProvisionError::AuthenticatorDisabled(reg.serial_no.clone()));
            }
            p.complete_activation(reg, &user, Some(step))?;
            return Ok(Activated {
                user_id: user.user_id,
                domain: user.domain,
                organizational_unit: user.organizational_unit,
                serial_no: reg.serial_no.clone(),
            });
        }
        // Not a pending key: the current key of an active authenticator (its device still
        // works until a pending activation completes), each time step once.
        let serials = match named {
            Some(s) => vec![s.clone()],
            None => p.store().serials_of_user(user.pk)?,
        };
        let mut active = Vec::new();
        for serial in &serials {
            let a = p.store().get_authenticator(serial)?;
            if a.status != crate::store::AuthenticatorStatus::Active || a.disabled {
                continue;
            }
            let key = p.store().authenticator_key(serial)?;
            if let Some(step) = otp::verify_totp(&key, otp_value, now) {
                if p.store().accept_otp_step(serial, step)? {
                    return Err(ProvisionError::AlreadyActive(serial.clone()));
                }
                return Err(rejected(format!(
                    "the OTP of {serial} was used already (time step {step})"
                )));
            }
            active.push(serial);
        }
        // A wrong OTP: it counts against the pending registrations (and in the active
        // authenticators' failure count), never against the user.
        for reg in &pending {
            let _ = p.proof_failed(&reg.registration_id, "PROVFLD_DP_RESPONSE");
        }
        for serial in active {
            p.store().record_otp_failure(serial)?;
        }
        Err(rejected(if serials.is_empty() {
            format!("no authenticator is assigned to {}", user.user_id)
        } else {
            format!(
                "the OTP verifies for none of the authenticators and {} pending registration(s) of {}",
                pending.len(),
                user.user_id
            )
        }))
    }
}

impl SoapReply for Activated {
    fn write(&self, w: &mut ResultWriter) {
        write_who(
            w,
            &self.user_id,
            &self.domain,
            self.organizational_unit.as_ref(),
        );
        w.text(A::SerialNo, self.serial_no.as_str());
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit
            .serial(&self.serial_no)
            .user(&self.user_id, Some(&self.domain));
    }
}
