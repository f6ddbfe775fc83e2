//! `PROVISIONCMD_DSAPPREGISTER`: DSAPP v1/v2 online activation, revision 3 (CPace, see
//! [`crate::protocol::dsapp`]), first step. Authenticates the user, assigns an authenticator
//! and creates a registration that keeps the activation password (CPace's PRS) sealed under
//! the master key until the registration is spent or revoked. The activation password exists
//! only in the reply (and in the e-mail, when one is asked for).

use zeroize::Zeroizing;

use super::{credentials, delivery, dsapp_version, write_who, AuditFields, Input, Route};
use super::{SoapCommand, SoapReply};
use crate::lifecycle::{kind_of, Credentials, Delivery, ProvisionError, Provisioning};
use crate::protocol::dsapp::Version;
use crate::protocol::srp;
use crate::soap::response::ResultWriter;
use crate::soap::{AttributeId as A, Command, RequestError};
use crate::store::{NewRegistration, OutgoingMail};
use crate::types::{Domain, OrgUnit, RegistrationId, SerialNumber, UserId};

/// The command name of the e-mail this command queues.
const COMMAND: &str = "DSAPPREGISTER";

#[derive(Debug)]
pub struct DsappRegister {
    pub credentials: Credentials,
    pub version: Version,
    pub serial_no: Option<SerialNumber>,
    pub delivery: Option<Delivery>,
}

#[derive(Debug)]
pub struct DsappRegistered {
    pub registration_id: RegistrationId,
    pub activation_password: Zeroizing<String>,
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub serial_no: SerialNumber,
}

impl SoapCommand for DsappRegister {
    const ROUTE: Route = Route::Execute(Command::DsappRegister);
    const CHECKS_PASSWORD: bool = true;
    const INLINE: bool = false;
    type Reply = DsappRegistered;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        let r = &mut input.attributes;
        let credentials = credentials(r)?;
        let version = dsapp_version(r)?.unwrap_or(Version::V1);
        let serial_no = r.optional(A::SerialNo, SerialNumber::parse)?;
        // Accepted as OneSpan's catalogue lists it; DSAPP activation is always online.
        r.ignore(A::ActivationType);
        Ok(DsappRegister {
            credentials,
            version,
            serial_no,
            delivery: delivery(r)?,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.user(&self.credentials.user_id, self.credentials.domain.as_ref());
    }

    fn handle(self, p: &Provisioning) -> Result<DsappRegistered, ProvisionError> {
        let creds = &self.credentials;
        let (user, recipient) =
            p.begin_register(creds, self.serial_no.as_ref(), self.delivery.as_ref())?;
        let (registration_id, activation_password, begun) = p.with_new_registration_id(|registration_id| {
            let activation_password = srp::new_activation_password();
            let mail = recipient.as_ref().map(|to| OutgoingMail {
                command: COMMAND.into(),
                recipient: to.as_str().to_owned(),
                subject: "Your authenticator activation".into(),
                body: Zeroizing::new(format!(
                    "Activate your authenticator in the app with:\nRegistration identifier: {registration_id}\nActivation password: {}\nThe registration can be used once and expires in {} hours.\n",
                    activation_password.as_str(),
                    p.policy().registration_lifetime_secs / 3600
                )),
            });
            let new = NewRegistration {
                registration_id: registration_id.clone(),
                kind: kind_of(self.version),
                serial_no: self.serial_no.clone(),
                srp_salt: Vec::new(),
                srp_verifier: Vec::new(),
                secret: Some(Zeroizing::new(activation_password.as_bytes().to_vec())),
                created_at: p.now(),
                lifetime_secs: p.policy().registration_lifetime_secs,
                mail,
            };
            let begun = p.store().begin_registration(user.pk, &new, &p.policy().reactivation)?;
            Ok((registration_id, activation_password, begun))
        })?;
        let serial_no = Provisioning::begun(begun)?;
        if recipient.is_some() {
            p.mail_queued();
        }
        Ok(DsappRegistered {
            registration_id,
            activation_password,
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no,
        })
    }
}

impl SoapReply for DsappRegistered {
    fn write(&self, w: &mut ResultWriter) {
        write_who(
            w,
            &self.user_id,
            &self.domain,
            self.organizational_unit.as_ref(),
        );
        w.text(A::SerialNo, self.serial_no.as_str())
            .text(A::RegistrationId, self.registration_id.as_str())
            .text(A::ActivationPassword, &self.activation_password);
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit
            .serial(&self.serial_no)
            .registration(&self.registration_id)
            .domain(&self.domain);
    }
}
