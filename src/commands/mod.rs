//! The SOAP commands, one module each. A command module owns everything about its command:
//! how its input is decoded (through [`AttributeReader`], whose `finish()` refuses what the
//! command did not read, or from the distinct operation's elements), what it does
//! ([`SoapCommand::handle`], over [`crate::lifecycle`], [`crate::protocol`] and the store),
//! its typed reply, how that reply is written ([`SoapReply::write`]) and the audit fields of
//! both ([`SoapCommand::audit`], [`SoapReply::audit`]).
//!
//! Registering a command is one line in [`registry!`] below; the `Call` and `Reply` enums and
//! every match over them are generated from it, exhaustively.

pub mod activate;
pub mod assign;
pub mod dsapp_activate;
pub mod dsapp_activation_data;
pub mod dsapp_register;
pub mod mdl_activate;
pub mod mdl_add_device;
pub mod mdl_register;
pub mod register;
pub mod server_time;
pub mod srp_activate;
pub mod srp_activation_data;
pub mod srp_ephemeral_key;
pub mod srp_register;

pub use activate::Activated;
pub use dsapp_activation_data::KeyExchanged;
pub use srp_activation_data::ActivationData;

use zeroize::Zeroizing;

use crate::lifecycle::{Credentials, Delivery, ProvisionError, Provisioning};
use crate::protocol::dsapp;
use crate::protocol::standard::{PasswordKey, ProtectionError};
use crate::soap::reader::AttributeReader;
use crate::soap::response::ResultWriter;
use crate::soap::xml::Element;
use crate::soap::{AttributeId, Body, Operation, RequestError};
use crate::store::NewAudit;
use crate::types::{Domain, EmailAddress, OrgUnit, RegistrationId, SerialNumber, UserId};

use AttributeId as A;

/// Where a command is called: a `PROVISIONCMD_*` of `provisioningExecute`, or a distinct
/// operation of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Execute(crate::soap::Command),
    Operation(Operation),
}

/// What a command decodes from.
pub struct Input<'a> {
    /// The operation's element (for the distinct operations' typed elements).
    pub element: &'a Element,
    /// `provisioningExecute`'s attributes (empty for the distinct operations).
    pub attributes: AttributeReader<'a>,
}

/// One SOAP command.
pub trait SoapCommand: Sized {
    /// Where it is called.
    const ROUTE: Route;
    /// Whether it runs Argon2 (checks a static password, derives a key from one): the server
    /// runs these under a global concurrency limit.
    const CHECKS_PASSWORD: bool;
    /// Whether it touches neither the store nor a password, so the server answers it on the
    /// async worker, never on the blocking pool.
    const INLINE: bool;
    type Reply: SoapReply;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError>;
    /// The audit fields the request gives (user, registration).
    fn audit(&self, audit: &mut AuditFields<'_>);
    fn handle(self, p: &Provisioning) -> Result<Self::Reply, ProvisionError>;
}

/// A command's successful reply.
pub trait SoapReply {
    fn write(&self, w: &mut ResultWriter);
    /// The audit fields the reply gives (serial number, resolved user, registration).
    fn audit(&self, audit: &mut AuditFields<'_>);
}

/// The fields of a call's audit row that commands fill in.
pub struct AuditFields<'a>(pub &'a mut NewAudit);

impl AuditFields<'_> {
    pub fn user(&mut self, user: &UserId, domain: Option<&Domain>) -> &mut Self {
        self.0.user_id = Some(user.to_string());
        if let Some(d) = domain {
            self.0.domain = Some(d.to_string());
        }
        self
    }

    pub fn domain(&mut self, domain: &Domain) -> &mut Self {
        self.0.domain = Some(domain.to_string());
        self
    }

    pub fn serial(&mut self, serial: &SerialNumber) -> &mut Self {
        self.0.serial_no = Some(serial.to_string());
        self
    }

    pub fn registration(&mut self, id: &RegistrationId) -> &mut Self {
        self.0.registration_id = Some(id.to_string());
        self
    }
}

macro_rules! registry {
    ($( $variant:ident => $module:ident :: $ty:ident ),* $(,)?) => {
        /// A decoded command, ready to run.
        #[derive(Debug)]
        pub enum Call { $( $variant($module::$ty), )* }

        /// What a command produced.
        #[derive(Debug)]
        pub enum Reply { $( $variant(<$module::$ty as SoapCommand>::Reply), )* }

        /// Every command's route and decoder, in registry order.
        const COMMANDS: &[(Route, fn(&mut Input<'_>) -> Result<Call, RequestError>)] = &[
            $( (<$module::$ty as SoapCommand>::ROUTE, |i| $module::$ty::decode(i).map(Call::$variant)), )*
        ];

        impl Call {
            /// Runs the call; a failure answers as the policy says (see
            /// [`Provisioning::conceal`]).
            pub fn handle(self, p: &Provisioning) -> Result<Reply, ProvisionError> {
                let done = match self {
                    $( Call::$variant(c) => c.handle(p).map(Reply::$variant), )*
                };
                done.map_err(|e| p.conceal(e))
            }

            pub fn audit(&self, audit: &mut AuditFields<'_>) {
                match self { $( Call::$variant(c) => c.audit(audit), )* }
            }

            pub fn checks_password(&self) -> bool {
                match self { $( Call::$variant(_) => <$module::$ty as SoapCommand>::CHECKS_PASSWORD, )* }
            }

            pub fn inline(&self) -> bool {
                match self { $( Call::$variant(_) => <$module::$ty as SoapCommand>::INLINE, )* }
            }
        }

        impl Reply {
            /// The success response, in the shape of the operation that asked.
            pub fn write(&self, op: Operation) -> String {
                let mut w = ResultWriter::new();
                match self { $( Reply::$variant(r) => r.write(&mut w), )* }
                w.finish(op)
            }

            pub fn audit(&self, audit: &mut AuditFields<'_>) {
                match self { $( Reply::$variant(r) => r.audit(audit), )* }
            }
        }
    };
}

registry! {
    ServerTime => server_time::ServerTime,
    SrpRegister => srp_register::SrpRegister,
    SrpEphemeralKey => srp_ephemeral_key::SrpEphemeralKey,
    SrpActivationData => srp_activation_data::SrpActivationData,
    SrpActivate => srp_activate::SrpActivate,
    Register => register::Register,
    Activate => activate::Activate,
    Assign => assign::Assign,
    DsappRegister => dsapp_register::DsappRegister,
    DsappActivationData => dsapp_activation_data::DsappActivationData,
    DsappActivate => dsapp_activate::DsappActivate,
    MdlRegister => mdl_register::MdlRegister,
    MdlAddDevice => mdl_add_device::MdlAddDevice,
    MdlActivate => mdl_activate::MdlActivate,
}

/// Decodes the body of a served operation into the command it names. The command reads its
/// attributes; any it did not read is refused.
pub fn decode(operation: Operation, body: &Body) -> Result<Call, RequestError> {
    let route = match body.command {
        Some(c) => Route::Execute(c),
        None => Route::Operation(operation),
    };
    let name = match route {
        Route::Execute(c) => c.name(),
        Route::Operation(op) => op.element(),
    };
    let (_, decoder) = COMMANDS
        .iter()
        .find(|(r, _)| *r == route)
        .ok_or_else(|| RequestError::UnknownCommand(name.to_owned()))?;
    // provisioningExecute's commands read attributes only.
    let no_element = Element::default();
    let mut input = Input {
        element: body.element.as_ref().unwrap_or(&no_element),
        attributes: AttributeReader::new(&body.attributes, name),
    };
    let call = decoder(&mut input)?;
    input.attributes.finish()?;
    Ok(call)
}

// What several commands decode the same way.

/// How a new authenticator proves itself: the first OTP, or a derivation code.
#[derive(Debug)]
pub enum ActivationProof {
    Otp(Zeroizing<String>),
    DerivationCode(Zeroizing<String>),
}

/// `PROVFLD_USERID`, `PROVFLD_DOMAIN` and `PROVFLD_STATIC_PASSWORD` (taken as sent).
fn credentials(r: &mut AttributeReader<'_>) -> Result<Credentials, RequestError> {
    Ok(Credentials {
        user_id: r.required(A::UserId, UserId::parse)?,
        domain: r.optional(A::Domain, Domain::parse)?,
        static_password: r
            .secret(A::StaticPassword)
            .ok_or(RequestError::Missing(A::StaticPassword))?,
    })
}

/// The password that protects activation data, with its optional diversifier.
#[derive(Debug, Default)]
pub struct Protection {
    /// `PROVFLD_CUSTOM_ENCRYPT_PWD`; the static password when absent.
    pub custom_password: Option<Zeroizing<String>>,
    /// `PROVFLD_ALEA`.
    pub alea: Option<Zeroizing<String>>,
}

impl Protection {
    fn decode(r: &mut AttributeReader<'_>) -> Self {
        Protection {
            custom_password: r.secret(A::CustomEncryptPwd),
            alea: r.secret(A::Alea),
        }
    }

    /// The key that protects a message: the custom encryption password when given, else
    /// `password` (what the user knows), with the alea. Costs an Argon2id computation.
    pub fn key(&self, password: &str) -> Result<PasswordKey, ProtectionError> {
        PasswordKey::derive(
            self.custom_password
                .as_deref()
                .map_or(password, |c| c.as_str()),
            self.alea.as_deref().map(|a| a.as_str()),
        )
    }
}

/// The one delivery method OneSpan documents.
const E_MAIL: &str = "E-Mail";

/// `PROVFLD_DELIVERY_METHOD` and `PROVFLD_DESTINATION`.
fn delivery(r: &mut AttributeReader<'_>) -> Result<Option<Delivery>, RequestError> {
    let destination = r.optional(A::Destination, EmailAddress::parse)?;
    match r.present(A::DeliveryMethod) {
        None if destination.is_some() => Err(RequestError::BadValue {
            id: A::Destination,
            reason: "given without PROVFLD_DELIVERY_METHOD".into(),
        }),
        None => Ok(None),
        Some(m) if m.eq_ignore_ascii_case(E_MAIL) => Ok(Some(Delivery { destination })),
        Some(_) => Err(RequestError::BadValue {
            id: A::DeliveryMethod,
            reason: format!("the only delivery method is {E_MAIL:?}"),
        }),
    }
}

/// `PROVFLD_REQUEST_TYPE` 1 (or absent) activates with `PROVFLD_DP_RESPONSE`, an OTP; 0 with
/// `PROVFLD_DERIVATION_CODE`.
fn activation_proof(r: &mut AttributeReader<'_>) -> Result<ActivationProof, RequestError> {
    let otp = r.secret(A::DpResponse);
    let code = r.secret(A::DerivationCode);
    match r.unsigned(A::RequestType) {
        None | Some(1) => {
            if code.is_some() {
                return Err(RequestError::BadValue {
                    id: A::DerivationCode,
                    reason: "needs PROVFLD_REQUEST_TYPE 0".into(),
                });
            }
            otp.map(ActivationProof::Otp)
                .ok_or(RequestError::Missing(A::DpResponse))
        }
        Some(0) => {
            if otp.is_some() {
                return Err(RequestError::BadValue {
                    id: A::DpResponse,
                    reason: "needs PROVFLD_REQUEST_TYPE 1 or no PROVFLD_REQUEST_TYPE".into(),
                });
            }
            code.map(ActivationProof::DerivationCode)
                .ok_or(RequestError::Missing(A::DerivationCode))
        }
        Some(n) => Err(RequestError::BadValue {
            id: A::RequestType,
            reason: format!("must be 0 (derivation code) or 1 (OTP), got {n}"),
        }),
    }
}

/// `PROVFLD_DSAPP_VERSION`: 1 or 2; another is refused as unsupported.
fn dsapp_version(r: &mut AttributeReader<'_>) -> Result<Option<dsapp::Version>, RequestError> {
    r.unsigned(A::DsappVersion)
        .map(|n| {
            dsapp::Version::from_number(n).map_err(|_| RequestError::Unsupported {
                id: A::DsappVersion,
                reason: format!("version {n} is not supported; provd speaks DSAPP 1 and 2"),
            })
        })
        .transpose()
}

/// A required 16-byte IV (32 hex; the catalogue bounds the length).
fn iv(r: &mut AttributeReader<'_>, id: AttributeId) -> Result<[u8; 16], RequestError> {
    let value = r.required(id, crate::types::HexValue::parse)?;
    value
        .as_bytes()
        .try_into()
        .map_err(|_| RequestError::BadValue {
            id,
            reason: "must be 32 hex characters".into(),
        })
}

/// `registrationID` of the distinct DSAPP-SRP operations.
fn registration_id_element(op: &Element) -> Result<RegistrationId, RequestError> {
    use crate::soap::reader::{parse_with, text};
    let raw = text(op, "registrationID").ok_or(RequestError::MissingElement("registrationID"))?;
    parse_with("registrationID", raw, RegistrationId::parse)
}

/// The resolved user id, domain and organizational unit (empty when the user has none), the
/// way OneSpan's register and activate commands return them.
fn write_who(w: &mut ResultWriter, user_id: &UserId, domain: &Domain, org: Option<&OrgUnit>) {
    w.text(A::UserId, user_id.as_str())
        .text(A::Domain, domain.as_str())
        .text(A::OrganizationalUnit, org.map_or("", OrgUnit::as_str));
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod decode_tests {
    use super::*;
    use crate::soap::request::tests::envelope;
    use crate::soap::xml::Limits;

    fn decoded(body: &str) -> Result<Call, RequestError> {
        let p = crate::soap::parse_request(envelope(body).as_bytes(), &Limits::default()).unwrap();
        decode(p.operation, &p.body?)
    }

    #[test]
    fn every_route_is_registered_once() {
        for (i, (route, _)) in COMMANDS.iter().enumerate() {
            assert!(
                COMMANDS[i + 1..].iter().all(|(r, _)| r != route),
                "{route:?} registered twice"
            );
        }
        // Every distinct operation of the WSDL has its command.
        for op in Operation::ALL {
            if *op != Operation::ProvisioningExecute {
                assert!(COMMANDS.iter().any(|(r, _)| *r == Route::Operation(*op)));
            }
        }
    }

    #[test]
    fn server_time_decodes_and_is_inline() {
        let call = decoded(
            "<p:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet/></p:provisioningExecute>",
        )
        .unwrap();
        assert!(matches!(call, Call::ServerTime(_)));
        assert!(call.inline() && !call.checks_password());
    }

    #[test]
    fn attribute_not_read_by_server_time_is_named() {
        let e = decoded(
            r#"<p:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet><attributes>
               <value xsi:type="xsd:string">x</value><attributeID>PROVFLD_USERID</attributeID>
               </attributes></attributeSet></p:provisioningExecute>"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            RequestError::NotAccepted(A::UserId, "PROVISIONCMD_SERVER_TIME")
        );
    }

    #[test]
    fn srp_register_decodes_typed_fields() {
        let call = decoded(
            "<p:dsappSRPRegister><componentType>app</componentType><user><userID>alice</userID>\
             <domain>Master</domain></user><credential><staticPassword> pw </staticPassword>\
             </credential></p:dsappSRPRegister>",
        )
        .unwrap();
        let Call::SrpRegister(r) = call else {
            panic!("not decoded: {call:?}")
        };
        assert_eq!(r.user_id.as_str(), "alice");
        assert_eq!(r.domain.as_ref().unwrap().as_str(), "master");
        assert_eq!(r.static_password.as_str(), " pw ");
        assert!(Call::SrpRegister(r).checks_password());
    }

    #[test]
    fn srp_register_names_the_missing_element() {
        assert_eq!(
            decoded("<p:dsappSRPRegister><user><userID>alice</userID></user></p:dsappSRPRegister>")
                .unwrap_err(),
            RequestError::MissingElement("credential")
        );
    }
}
