//! `PROVISIONCMD_REGISTER`: the standard registration, without a key exchange (the
//! cryptography is [`crate::protocol::standard`]). Authenticates the user with the static
//! password (changing it first when asked), assigns a software authenticator when the user has
//! none, counts a reactivation, prepares a NEW key and returns its activation data protected
//! by a password the user knows. Online activation data waits in a registration for
//! `PROVISIONCMD_ACTIVATE`; offline activation data takes effect at once.

use zeroize::Zeroizing;

use super::{credentials, delivery, write_who, AuditFields, Input, Protection, Route};
use super::{SoapCommand, SoapReply};
use crate::lifecycle::{Credentials, Delivery, ProvisionError, Provisioning};
use crate::protocol::standard::{activation_plaintext, ActivationType, REGISTER};
use crate::soap::response::ResultWriter;
use crate::soap::{AttributeId as A, Command, RequestError};
use crate::store::{NewRegistration, OutgoingMail, RegistrationKind, StandardRegistration};
use crate::types::{Domain, HexValue, OrgUnit, SerialNumber, UserId};

#[derive(Debug)]
pub struct Register {
    pub credentials: Credentials,
    /// `PROVFLD_NEW_STATIC_PASSWORD`, already checked against its confirmation.
    pub new_password: Option<Zeroizing<String>>,
    pub serial_no: Option<SerialNumber>,
    pub activation_type: ActivationType,
    pub protection: Protection,
    pub delivery: Option<Delivery>,
}

#[derive(Debug)]
pub struct Registered {
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub serial_no: SerialNumber,
    pub activation_code: HexValue,
    pub event_reactivation_counter: i32,
}

/// A password change: the new password and its confirmation go together and must match.
fn new_password(
    r: &mut crate::soap::reader::AttributeReader<'_>,
) -> Result<Option<Zeroizing<String>>, RequestError> {
    match (
        r.secret(A::NewStaticPassword),
        r.secret(A::ConfirmNewStaticPassword),
    ) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(RequestError::Missing(A::ConfirmNewStaticPassword)),
        (None, Some(_)) => Err(RequestError::BadValue {
            id: A::ConfirmNewStaticPassword,
            reason: "given without PROVFLD_NEW_STATIC_PASSWORD".into(),
        }),
        (Some(new), Some(confirm)) if *new == *confirm => Ok(Some(new)),
        (Some(_), Some(_)) => Err(RequestError::BadValue {
            id: A::ConfirmNewStaticPassword,
            reason: "does not match PROVFLD_NEW_STATIC_PASSWORD".into(),
        }),
    }
}

impl SoapCommand for Register {
    const ROUTE: Route = Route::Execute(Command::Register);
    const CHECKS_PASSWORD: bool = true;
    const INLINE: bool = false;
    type Reply = Registered;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        let r = &mut input.attributes;
        Ok(Register {
            credentials: credentials(r)?,
            new_password: new_password(r)?,
            serial_no: r.optional(A::SerialNo, SerialNumber::parse)?,
            activation_type: ActivationType::from_number(
                r.unsigned(A::ActivationType).unwrap_or(0),
            ),
            protection: Protection::decode(r),
            delivery: delivery(r)?,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.user(&self.credentials.user_id, self.credentials.domain.as_ref());
    }

    fn handle(self, p: &Provisioning) -> Result<Registered, ProvisionError> {
        let creds = &self.credentials;
        let (user, recipient) =
            p.begin_register(creds, self.serial_no.as_ref(), self.delivery.as_ref())?;
        let new_hash = self
            .new_password
            .as_deref()
            .map(|p| crate::crypto::hash_password(p))
            .transpose()
            .map_err(|e| ProvisionError::Invalid {
                field: "PROVFLD_NEW_STATIC_PASSWORD",
                reason: e.to_string(),
            })?;
        // The password the user will know once this call returns.
        let key = self.protection.key(
            self.new_password
                .as_deref()
                .unwrap_or(&creds.static_password),
        )?;
        let mode = self.activation_type;
        let produce = |a: &crate::store::Assignment| {
            let plaintext =
                activation_plaintext(mode, &a.serial_no, &a.key, a.reactivation_counter);
            let code = key.protect(REGISTER, &a.serial_no, &plaintext);
            let mail = recipient.as_ref().map(|to| OutgoingMail {
                command: REGISTER.into(),
                recipient: to.as_str().to_owned(),
                subject: format!("Activation data for authenticator {}", a.serial_no),
                body: Zeroizing::new(format!(
                    "Authenticator: {}\nActivation code ({} activation, protected by your password):\n{}\nEvent reactivation counter: {}\n",
                    a.serial_no,
                    match mode {
                        ActivationType::Online => "online",
                        ActivationType::Offline => "offline",
                    },
                    code,
                    a.reactivation_counter
                )),
            });
            ((a.serial_no.clone(), code, a.reactivation_counter), mail)
        };
        let at = p.now();
        let notice = p.reactivation_notice(&user, self.serial_no.as_ref());
        // Online, the new key waits in a registration (same lifetime and failure limit as
        // the others) for ACTIVATE; offline it takes effect at once.
        let assigned = p.with_new_registration_id(|registration_id| {
            let online = NewRegistration {
                registration_id,
                kind: RegistrationKind::Standard,
                serial_no: self.serial_no.clone(),
                srp_salt: Vec::new(),
                srp_verifier: Vec::new(),
                secret: None,
                created_at: at,
                lifetime_secs: p.policy().registration_lifetime_secs,
                mail: None,
            };
            p.store().register_authenticator(
                &StandardRegistration {
                    user_pk: user.pk,
                    serial: self.serial_no.as_ref(),
                    new_password_hash: new_hash.as_deref(),
                    online: (mode == ActivationType::Online).then_some(&online),
                    rule: p.policy().reactivation,
                    notice: notice.as_ref(),
                    at,
                },
                produce,
            )
        })?;
        let (serial_no, activation_code, event_reactivation_counter) = assigned?;
        if recipient.is_some() || (notice.is_some() && mode == ActivationType::Offline) {
            p.mail_queued();
        }
        Ok(Registered {
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no,
            activation_code,
            event_reactivation_counter,
        })
    }
}

impl SoapReply for Registered {
    fn write(&self, w: &mut ResultWriter) {
        write_who(
            w,
            &self.user_id,
            &self.domain,
            self.organizational_unit.as_ref(),
        );
        w.text(A::SerialNo, self.serial_no.as_str())
            .text(A::ActivationCode, &self.activation_code.to_string())
            .text(
                A::EventReactivationCounter,
                &self.event_reactivation_counter.to_string(),
            );
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.serial(&self.serial_no).domain(&self.domain);
    }
}
