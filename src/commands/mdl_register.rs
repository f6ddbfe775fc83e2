//! `PROVISIONCMD_MDL_REGISTER`: multi-device licensing, first step (the cryptography is
//! [`crate::protocol::mdl`]). Issues Activation Message 1, protected by the user's static or
//! custom password like REGISTER's code. A license counts its pending and active instances
//! against its limit (1 to 99).

use zeroize::Zeroizing;

use super::{credentials, delivery, write_who, AuditFields, Input, Protection, Route};
use super::{SoapCommand, SoapReply};
use crate::lifecycle::{Credentials, Delivery, ProvisionError, Provisioning};
use crate::protocol::mdl::{self, ActivationMessage1, MDL_REGISTER};
use crate::soap::response::ResultWriter;
use crate::soap::{AttributeId as A, Command, RequestError};
use crate::store::{NewRegistration, OutgoingMail, RegistrationKind};
use crate::types::{Domain, HexValue, OrgUnit, RegistrationId, SerialNumber, UserId};

#[derive(Debug)]
pub struct MdlRegister {
    pub credentials: Credentials,
    pub serial_no: Option<SerialNumber>,
    pub protection: Protection,
    pub delivery: Option<Delivery>,
}

#[derive(Debug)]
pub struct MdlRegistered {
    pub registration_id: RegistrationId,
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub serial_no: SerialNumber,
    /// Activation Message 1, protected: `salt | IV | C | MAC`.
    pub activation_message: HexValue,
}

impl SoapCommand for MdlRegister {
    const ROUTE: Route = Route::Execute(Command::MdlRegister);
    const CHECKS_PASSWORD: bool = true;
    const INLINE: bool = false;
    type Reply = MdlRegistered;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        let r = &mut input.attributes;
        let credentials = credentials(r)?;
        let serial_no = r.optional(A::SerialNo, SerialNumber::parse)?;
        // Accepted as OneSpan's catalogue lists it; MDL activation is always online.
        r.ignore(A::ActivationType);
        Ok(MdlRegister {
            credentials,
            serial_no,
            protection: Protection::decode(r),
            delivery: delivery(r)?,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.user(&self.credentials.user_id, self.credentials.domain.as_ref());
    }

    fn handle(self, p: &Provisioning) -> Result<MdlRegistered, ProvisionError> {
        let creds = &self.credentials;
        let (user, recipient) =
            p.begin_register(creds, self.serial_no.as_ref(), self.delivery.as_ref())?;
        let key = self.protection.key(&creds.static_password)?;
        let (registration_id, outcome) = p.with_new_registration_id(|registration_id| {
            let challenge = mdl::new_challenge();
            let new = NewRegistration {
                registration_id: registration_id.clone(),
                kind: RegistrationKind::Mdl,
                serial_no: self.serial_no.clone(),
                srp_salt: Vec::new(),
                srp_verifier: Vec::new(),
                secret: Some(Zeroizing::new(challenge.to_vec())),
                created_at: p.now(),
                lifetime_secs: p.policy().registration_lifetime_secs,
                mail: None,
            };
            let outcome =
                p.store()
                    .begin_mdl_registration(user.pk, &new, &p.policy().reactivation, |license| {
                        let am1 = ActivationMessage1 {
                            serial: license.serial_no.clone(),
                            license_key: license.license_key.clone(),
                            challenge,
                        };
                        let message =
                            key.protect(MDL_REGISTER, &license.serial_no, &am1.encode());
                        let mail = recipient.as_ref().map(|to| OutgoingMail {
                            command: MDL_REGISTER.into(),
                            recipient: to.as_str().to_owned(),
                            subject: format!(
                                "Add a device to authenticator {}",
                                license.serial_no
                            ),
                            body: Zeroizing::new(format!(
                                "Registration identifier: {registration_id}\nActivation message (protected by your password):\n{message}\n"
                            )),
                        });
                        Ok(((license.serial_no.clone(), message), mail))
                    })?;
            Ok((registration_id, outcome))
        })?;
        let (serial_no, activation_message) = match outcome {
            Ok(Ok(created)) => created,
            Ok(Err(limit)) => {
                return Err(ProvisionError::LicenseExhausted {
                    serial: self.serial_no.clone(),
                    limit,
                })
            }
            Err(blocked) => return Err(blocked.into()),
        };
        if recipient.is_some() {
            p.mail_queued();
        }
        Ok(MdlRegistered {
            registration_id,
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no,
            activation_message,
        })
    }
}

impl SoapReply for MdlRegistered {
    fn write(&self, w: &mut ResultWriter) {
        write_who(
            w,
            &self.user_id,
            &self.domain,
            self.organizational_unit.as_ref(),
        );
        w.text(A::SerialNo, self.serial_no.as_str())
            .text(A::RegistrationId, self.registration_id.as_str())
            .text(A::ActivationMessage, &self.activation_message.to_string());
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit
            .serial(&self.serial_no)
            .registration(&self.registration_id)
            .domain(&self.domain);
    }
}
