//! `dsappSRPRegister`: authenticates the user, assigns a free software authenticator if the
//! user has none, and creates a registration (salt and verifier only). The activation
//! password exists only in the reply, on its way to the caller.

use zeroize::Zeroizing;

use super::{AuditFields, Input, Route, SoapCommand, SoapReply};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::protocol::srp;
use crate::soap::reader::{at_most, child, parse_with, text};
use crate::soap::response::ResultWriter;
use crate::soap::{Operation, RequestError};
use crate::store::{NewRegistration, RegistrationKind};
use crate::types::{Domain, RegistrationId, SerialNumber, UserId};

#[derive(Debug)]
pub struct SrpRegister {
    pub component_type: Option<String>,
    pub user_id: UserId,
    pub domain: Option<Domain>,
    pub static_password: Zeroizing<String>,
    pub serial_no: Option<SerialNumber>,
}

#[derive(Debug)]
pub struct SrpRegistered {
    pub registration_id: RegistrationId,
    pub activation_password: Zeroizing<String>,
    pub serial_no: SerialNumber,
    pub user_id: UserId,
    pub domain: Domain,
}

impl SoapCommand for SrpRegister {
    const ROUTE: Route = Route::Operation(Operation::DsappSrpRegister);
    const CHECKS_PASSWORD: bool = true;
    const INLINE: bool = false;
    type Reply = SrpRegistered;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        let op = input.element;
        let user = child(op, "user")?;
        let user_id = text(user, "userID").ok_or(RequestError::MissingElement("user/userID"))?;
        let user_id = parse_with("user/userID", user_id, UserId::parse)?;
        let domain = text(user, "domain")
            .map(|d| parse_with("user/domain", d, Domain::parse))
            .transpose()?;
        let credential = child(op, "credential")?;
        // The password is taken as sent, without trimming.
        let password = credential
            .child("staticPassword")
            .map(|c| c.text.as_str())
            .filter(|p| !p.is_empty())
            .ok_or(RequestError::MissingElement("credential/staticPassword"))?;
        at_most("credential/staticPassword", password, 255)?;
        let serial_no = text(op, "serialNumber")
            .map(|s| parse_with("serialNumber", s, SerialNumber::parse))
            .transpose()?;
        if let Some(t) = text(op, "activationType") {
            parse_with("activationType", t, str::parse::<i32>)?;
        }
        let component_type = text(op, "componentType").map(str::to_owned);
        if let Some(c) = &component_type {
            at_most("componentType", c, 255)?;
        }
        Ok(SrpRegister {
            component_type,
            user_id,
            domain,
            static_password: Zeroizing::new(password.to_owned()),
            serial_no,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.user(&self.user_id, self.domain.as_ref());
    }

    fn handle(self, p: &Provisioning) -> Result<SrpRegistered, ProvisionError> {
        let domain = self.domain.clone().unwrap_or_else(Domain::master);
        let user = p.authenticate(&self.user_id, &domain, &self.static_password)?;
        if let Some(serial) = &self.serial_no {
            p.check_owned(serial, &user, "serialNumber")?;
        }
        // A registration id that collides with a live one is drawn again.
        let (registration_id, activation_password, begun) =
            p.with_new_registration_id(|registration_id| {
                let activation_password = srp::new_activation_password();
                let salt = crate::crypto::random_bytes(srp::SALT_BYTES);
                let verifier = srp::verifier(&salt, registration_id.as_str(), &activation_password);
                let new = NewRegistration {
                    registration_id: registration_id.clone(),
                    kind: RegistrationKind::DsappSrp,
                    serial_no: self.serial_no.clone(),
                    srp_salt: salt.to_vec(),
                    srp_verifier: verifier,
                    secret: None,
                    created_at: p.now(),
                    lifetime_secs: p.policy().registration_lifetime_secs,
                    mail: None,
                };
                let begun =
                    p.store()
                        .begin_registration(user.pk, &new, &p.policy().reactivation)?;
                Ok((registration_id, activation_password, begun))
            })?;
        let serial_no = Provisioning::begun(begun)?;
        Ok(SrpRegistered {
            registration_id,
            activation_password,
            serial_no,
            user_id: user.user_id,
            domain: user.domain,
        })
    }
}

impl SoapReply for SrpRegistered {
    fn write(&self, w: &mut ResultWriter) {
        w.element("registrationID", self.registration_id.as_str())
            .element("activationPassword", &self.activation_password)
            .open("user")
            .element("userID", self.user_id.as_str())
            .element("domain", self.domain.as_str())
            .close("user")
            .element("serialNumber", self.serial_no.as_str());
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit
            .serial(&self.serial_no)
            .registration(&self.registration_id)
            .domain(&self.domain);
    }
}
