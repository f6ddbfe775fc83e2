//! Envelope to typed call.

use zeroize::Zeroizing;

use super::attributes::{AttributeId, AttributeSet};
use super::commands::Command;
use super::xml::{self, Element, Limits};
use super::{RequestError, WireError, PROV_NS, SOAP_ENV_NS};
use crate::protocol::{
    dsapp, dsapp_commands, mdl, mdl_commands, srp, standard, ActivationProof, Call,
};
use crate::types::{Domain, EmailAddress, HexValue, RegistrationId, SerialNumber, UserId};

use AttributeId as A;

/// The operations the endpoint serves: the body element of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ProvisioningExecute,
    DsappSrpRegister,
    DsappSrpGenerateEphemeralKey,
    DsappSrpGenerateActivationData,
    DsappSrpActivate,
}

impl Operation {
    pub const ALL: &'static [Operation] = &[
        Operation::ProvisioningExecute,
        Operation::DsappSrpRegister,
        Operation::DsappSrpGenerateEphemeralKey,
        Operation::DsappSrpGenerateActivationData,
        Operation::DsappSrpActivate,
    ];

    pub fn element(self) -> &'static str {
        match self {
            Operation::ProvisioningExecute => "provisioningExecute",
            Operation::DsappSrpRegister => "dsappSRPRegister",
            Operation::DsappSrpGenerateEphemeralKey => "dsappSRPGenerateEphemeralKey",
            Operation::DsappSrpGenerateActivationData => "dsappSRPGenerateActivationData",
            Operation::DsappSrpActivate => "dsappSRPActivate",
        }
    }

    fn from_element(local: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|o| o.element() == local)
    }
}

/// A request that is SOAP and names a served operation. Its content may still be wrong, which
/// is answered with a failure status in that operation's response shape.
#[derive(Debug)]
pub struct Parsed {
    pub operation: Operation,
    /// The command for logs and the audit trail: the `PROVISIONCMD_*` name when one was
    /// recognised, else the operation's element name.
    pub command: String,
    pub call: Result<Call, RequestError>,
}

/// Parses a SOAP 1.1 envelope. `Err` is for what deserves a SOAP Fault.
/// Parses an HTTP request body: decodes it to UTF-8 (`encoding::to_utf8`, from its byte-order
/// mark, the Content-Type charset or the XML declaration), then [`parse_request`].
pub fn parse_http_request(
    body: &[u8],
    content_type: Option<&str>,
    limits: &Limits,
) -> Result<Parsed, WireError> {
    let utf8 = super::encoding::to_utf8(body, content_type)?;
    parse_request(&utf8, limits)
}

pub fn parse_request(body: &[u8], limits: &Limits) -> Result<Parsed, WireError> {
    let root = xml::parse(body, limits)?;
    if root.name.local != "Envelope" {
        return Err(WireError::NotSoap(format!(
            "the document element is {:?}, not Envelope",
            root.name.local
        )));
    }
    if root.name.ns.as_deref() != Some(SOAP_ENV_NS) {
        return Err(WireError::NotSoap(format!(
            "Envelope is in namespace {:?}; SOAP 1.1 expects {SOAP_ENV_NS}",
            root.name.ns.as_deref().unwrap_or("")
        )));
    }
    let bodies: Vec<&Element> = root
        .children
        .iter()
        .filter(|c| c.name.is(Some(SOAP_ENV_NS), "Body"))
        .collect();
    let [body] = bodies.as_slice() else {
        return Err(WireError::NotSoap(format!(
            "expected exactly one Body, found {}",
            bodies.len()
        )));
    };
    let [op_el] = body.children.as_slice() else {
        return Err(WireError::NotSoap(format!(
            "the Body must hold exactly one element, found {}",
            body.children.len()
        )));
    };
    let operation = Operation::from_element(&op_el.name.local)
        .filter(|_| op_el.name.ns.as_deref() == Some(PROV_NS))
        .ok_or_else(|| {
            WireError::UnknownOperation(format!(
                "{{{}}}{}",
                op_el.name.ns.as_deref().unwrap_or(""),
                op_el.name.local
            ))
        })?;
    let mut command = operation.element().to_owned();
    let call = match operation {
        Operation::ProvisioningExecute => decode_execute(op_el, &mut command),
        Operation::DsappSrpRegister => decode_srp_register(op_el),
        Operation::DsappSrpGenerateEphemeralKey => decode_srp_ephemeral_key(op_el),
        Operation::DsappSrpGenerateActivationData => decode_srp_activation_data(op_el),
        Operation::DsappSrpActivate => decode_srp_activate(op_el),
    };
    Ok(Parsed {
        operation,
        command,
        call,
    })
}

fn decode_execute(op: &Element, command_name: &mut String) -> Result<Call, RequestError> {
    let mut cmds = op.children_named("cmd");
    let cmd_el = cmds.next().ok_or(RequestError::MissingCommand)?;
    if cmds.next().is_some() {
        return Err(RequestError::BadElement {
            path: "cmd",
            reason: "given more than once".into(),
        });
    }
    let raw = cmd_el.text.trim();
    let command = Command::from_name(raw)
        .ok_or_else(|| RequestError::UnknownCommand(raw.chars().take(64).collect()))?;
    *command_name = command.name().to_owned();
    let mut sets = op.children_named("attributeSet");
    let attrs = match sets.next() {
        Some(set) => AttributeSet::decode(set)?,
        None => AttributeSet::new(),
    };
    if sets.next().is_some() {
        return Err(RequestError::BadElement {
            path: "attributeSet",
            reason: "given more than once".into(),
        });
    }
    decode_command(command, &attrs)
}

/// Attributes every command accepts.
const GENERIC: &[AttributeId] = &[AttributeId::ComponentType];

fn accept_only(
    command: Command,
    attrs: &AttributeSet,
    allowed: &[AttributeId],
) -> Result<(), RequestError> {
    match attrs
        .ids()
        .find(|id| !allowed.contains(id) && !GENERIC.contains(id))
    {
        Some(id) => Err(RequestError::NotAccepted(id, command.name())),
        None => Ok(()),
    }
}

fn decode_command(command: Command, attrs: &AttributeSet) -> Result<Call, RequestError> {
    match command {
        Command::ServerTime => {
            accept_only(command, attrs, &[])?;
            Ok(Call::ServerTime)
        }
        Command::Register => {
            accept_only(
                command,
                attrs,
                &[
                    A::UserId,
                    A::Domain,
                    A::StaticPassword,
                    A::NewStaticPassword,
                    A::ConfirmNewStaticPassword,
                    A::SerialNo,
                    A::ActivationType,
                    A::CustomEncryptPwd,
                    A::Alea,
                    A::DeliveryMethod,
                    A::Destination,
                ],
            )?;
            Ok(Call::Register(standard::RegisterInput {
                credentials: credentials(attrs)?,
                new_password: new_password(attrs)?,
                serial_no: optional(attrs, A::SerialNo, SerialNumber::parse)?,
                activation_type: standard::ActivationType::from_number(
                    attrs.unsigned(A::ActivationType).unwrap_or(0),
                ),
                protection: protection(attrs),
                delivery: delivery(attrs)?,
            }))
        }
        Command::Activate => {
            accept_only(
                command,
                attrs,
                &[
                    A::UserId,
                    A::Domain,
                    A::SerialNo,
                    A::RequestType,
                    A::DpResponse,
                    A::DerivationCode,
                ],
            )?;
            Ok(Call::Activate(standard::ActivateInput {
                user_id: required(attrs, A::UserId, UserId::parse)?,
                domain: optional(attrs, A::Domain, Domain::parse)?,
                serial_no: optional(attrs, A::SerialNo, SerialNumber::parse)?,
                proof: activation_proof(attrs)?,
            }))
        }
        Command::DsappRegister => {
            accept_only(
                command,
                attrs,
                &[
                    A::UserId,
                    A::Domain,
                    A::StaticPassword,
                    A::DsappVersion,
                    A::SerialNo,
                    A::ActivationType,
                    A::DeliveryMethod,
                    A::Destination,
                ],
            )?;
            Ok(Call::DsappRegister(dsapp_commands::RegisterInput {
                credentials: credentials(attrs)?,
                version: dsapp_version(attrs)?.unwrap_or(dsapp::Version::V1),
                serial_no: optional(attrs, A::SerialNo, SerialNumber::parse)?,
                delivery: delivery(attrs)?,
            }))
        }
        Command::DsappGenerateActivationData => {
            accept_only(
                command,
                attrs,
                &[
                    A::RegistrationId,
                    A::DsappVersion,
                    A::EncryptedClientPublicKeyNonce,
                    A::ClientIv,
                ],
            )?;
            Ok(Call::DsappKeyExchange(dsapp_commands::KeyExchangeInput {
                registration_id: required(attrs, A::RegistrationId, RegistrationId::parse)?,
                version: dsapp_version(attrs)?,
                encrypted_client_key_nonce: required(
                    attrs,
                    A::EncryptedClientPublicKeyNonce,
                    HexValue::parse,
                )?,
                client_iv: iv(attrs, A::ClientIv)?,
            }))
        }
        Command::DsappActivate => {
            accept_only(
                command,
                attrs,
                &[
                    A::RegistrationId,
                    A::EncryptedServerNonce,
                    A::ClientIv,
                    A::RequestType,
                    A::DpResponse,
                    A::DerivationCode,
                ],
            )?;
            Ok(Call::DsappActivate(dsapp_commands::ActivateInput {
                registration_id: required(attrs, A::RegistrationId, RegistrationId::parse)?,
                encrypted_server_nonce: required(attrs, A::EncryptedServerNonce, HexValue::parse)?,
                client_iv: iv(attrs, A::ClientIv)?,
                proof: activation_proof(attrs)?,
            }))
        }
        Command::MdlRegister => {
            accept_only(
                command,
                attrs,
                &[
                    A::UserId,
                    A::Domain,
                    A::StaticPassword,
                    A::SerialNo,
                    A::ActivationType,
                    A::CustomEncryptPwd,
                    A::Alea,
                    A::DeliveryMethod,
                    A::Destination,
                ],
            )?;
            Ok(Call::MdlRegister(mdl_commands::RegisterInput {
                credentials: credentials(attrs)?,
                serial_no: optional(attrs, A::SerialNo, SerialNumber::parse)?,
                protection: protection(attrs),
                delivery: delivery(attrs)?,
            }))
        }
        Command::MdlAddDevice => {
            accept_only(
                command,
                attrs,
                &[
                    A::RegistrationId,
                    A::DeviceCode,
                    A::DeviceType,
                    A::Description,
                ],
            )?;
            Ok(Call::MdlAddDevice(mdl_commands::AddDeviceInput {
                registration_id: required(attrs, A::RegistrationId, RegistrationId::parse)?,
                device_code: required(attrs, A::DeviceCode, mdl::DeviceCode::parse)?,
                device_type: optional(attrs, A::DeviceType, mdl::DeviceType::parse)?,
                description: present(attrs, A::Description).map(mdl::sanitize_description),
            }))
        }
        Command::MdlActivate => {
            accept_only(
                command,
                attrs,
                &[
                    A::RegistrationId,
                    A::Signature,
                    A::DpResponse,
                    A::RequestType,
                ],
            )?;
            let confirmation = match (secret(attrs, A::Signature), secret(attrs, A::DpResponse)) {
                (Some(_), Some(_)) => {
                    return Err(RequestError::BadValue {
                        id: A::DpResponse,
                        reason: "give PROVFLD_SIGNATURE or PROVFLD_DP_RESPONSE, not both".into(),
                    })
                }
                (Some(sig), None) => {
                    mdl::check_signature_format(&sig).map_err(|e| bad_value(A::Signature, e))?;
                    mdl_commands::Confirmation::Signature(sig)
                }
                (None, Some(otp)) => mdl_commands::Confirmation::Otp(otp),
                (None, None) => return Err(RequestError::Missing(A::Signature)),
            };
            Ok(Call::MdlActivate(mdl_commands::ActivateInput {
                registration_id: required(attrs, A::RegistrationId, RegistrationId::parse)?,
                confirmation,
            }))
        }
        other => Ok(Call::NotImplemented(other.name())),
    }
}

/// `PROVFLD_DSAPP_VERSION`: 1 or 2; another is refused as unsupported.
fn dsapp_version(attrs: &AttributeSet) -> Result<Option<dsapp::Version>, RequestError> {
    attrs
        .unsigned(A::DsappVersion)
        .map(|n| {
            dsapp::Version::from_number(n).map_err(|_| RequestError::Unsupported {
                id: A::DsappVersion,
                reason: format!("version {n} is not supported; provd speaks DSAPP 1 and 2"),
            })
        })
        .transpose()
}

/// A required 16-byte IV (32 hex; the catalogue bounds the length).
fn iv(attrs: &AttributeSet, id: AttributeId) -> Result<[u8; 16], RequestError> {
    let value = required(attrs, id, HexValue::parse)?;
    value
        .as_bytes()
        .try_into()
        .map_err(|_| RequestError::BadValue {
            id,
            reason: "must be 32 hex characters".into(),
        })
}

/// A string attribute that is present and not empty.
fn present(attrs: &AttributeSet, id: AttributeId) -> Option<&str> {
    attrs.str(id).filter(|s| !s.is_empty())
}

/// A required attribute parsed into its type; the error names the attribute.
fn required<T, E: std::fmt::Display>(
    attrs: &AttributeSet,
    id: AttributeId,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, RequestError> {
    let raw = present(attrs, id).ok_or(RequestError::Missing(id))?;
    parse(raw).map_err(|e| bad_value(id, e))
}

/// A parse error as the error stack shows it: the attribute named once.
fn bad_value(id: AttributeId, e: impl std::fmt::Display) -> RequestError {
    let text = e.to_string();
    let reason = text
        .strip_prefix(id.name())
        .map(|r| r.trim_start_matches([':', ' ']).to_owned())
        .unwrap_or(text);
    RequestError::BadValue { id, reason }
}

fn optional<T, E: std::fmt::Display>(
    attrs: &AttributeSet,
    id: AttributeId,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, RequestError> {
    present(attrs, id)
        .map(|raw| parse(raw).map_err(|e| bad_value(id, e)))
        .transpose()
}

fn secret(attrs: &AttributeSet, id: AttributeId) -> Option<Zeroizing<String>> {
    present(attrs, id).map(|s| Zeroizing::new(s.to_owned()))
}

/// `PROVFLD_USERID`, `PROVFLD_DOMAIN` and `PROVFLD_STATIC_PASSWORD` (taken as sent).
fn credentials(attrs: &AttributeSet) -> Result<standard::Credentials, RequestError> {
    Ok(standard::Credentials {
        user_id: required(attrs, A::UserId, UserId::parse)?,
        domain: optional(attrs, A::Domain, Domain::parse)?,
        static_password: secret(attrs, A::StaticPassword)
            .ok_or(RequestError::Missing(A::StaticPassword))?,
    })
}

/// A password change: the new password and its confirmation go together and must match.
fn new_password(attrs: &AttributeSet) -> Result<Option<Zeroizing<String>>, RequestError> {
    match (
        secret(attrs, A::NewStaticPassword),
        secret(attrs, A::ConfirmNewStaticPassword),
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

fn protection(attrs: &AttributeSet) -> standard::Protection {
    standard::Protection {
        custom_password: secret(attrs, A::CustomEncryptPwd),
        alea: secret(attrs, A::Alea),
    }
}

/// The one delivery method OneSpan documents.
const E_MAIL: &str = "E-Mail";

fn delivery(attrs: &AttributeSet) -> Result<Option<standard::Delivery>, RequestError> {
    let destination = optional(attrs, A::Destination, EmailAddress::parse)?;
    match present(attrs, A::DeliveryMethod) {
        None if destination.is_some() => Err(RequestError::BadValue {
            id: A::Destination,
            reason: "given without PROVFLD_DELIVERY_METHOD".into(),
        }),
        None => Ok(None),
        Some(m) if m.eq_ignore_ascii_case(E_MAIL) => Ok(Some(standard::Delivery { destination })),
        Some(_) => Err(RequestError::BadValue {
            id: A::DeliveryMethod,
            reason: format!("the only delivery method is {E_MAIL:?}"),
        }),
    }
}

/// `PROVFLD_REQUEST_TYPE` 1 (or absent) activates with `PROVFLD_DP_RESPONSE`, an OTP; 0 with
/// `PROVFLD_DERIVATION_CODE`.
fn activation_proof(attrs: &AttributeSet) -> Result<ActivationProof, RequestError> {
    let otp = secret(attrs, A::DpResponse);
    let code = secret(attrs, A::DerivationCode);
    match attrs.unsigned(A::RequestType) {
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

/// The trimmed text of a child element, `None` when absent or empty.
fn text<'a>(el: &'a Element, local: &str) -> Option<&'a str> {
    el.child(local)
        .map(|c| c.text.trim())
        .filter(|t| !t.is_empty())
}

fn parse_with<T, E: std::fmt::Display>(
    path: &'static str,
    raw: &str,
    f: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, RequestError> {
    f(raw).map_err(|e| RequestError::BadElement {
        path,
        reason: e.to_string(),
    })
}

fn decode_srp_register(op: &Element) -> Result<Call, RequestError> {
    let user = op
        .child("user")
        .ok_or(RequestError::MissingElement("user"))?;
    let user_id = text(user, "userID").ok_or(RequestError::MissingElement("user/userID"))?;
    let user_id = parse_with("user/userID", user_id, UserId::parse)?;
    let domain = text(user, "domain")
        .map(|d| parse_with("user/domain", d, Domain::parse))
        .transpose()?;
    let credential = op
        .child("credential")
        .ok_or(RequestError::MissingElement("credential"))?;
    // The password is taken as sent, without trimming.
    let password = credential
        .child("staticPassword")
        .map(|c| c.text.as_str())
        .filter(|p| !p.is_empty())
        .ok_or(RequestError::MissingElement("credential/staticPassword"))?;
    if password.chars().count() > 255 {
        return Err(RequestError::BadElement {
            path: "credential/staticPassword",
            reason: "must be at most 255 characters".into(),
        });
    }
    let serial_no = text(op, "serialNumber")
        .map(|s| parse_with("serialNumber", s, SerialNumber::parse))
        .transpose()?;
    if let Some(t) = text(op, "activationType") {
        parse_with("activationType", t, str::parse::<i32>)?;
    }
    let component_type = text(op, "componentType").map(str::to_owned);
    if component_type
        .as_ref()
        .is_some_and(|c| c.chars().count() > 255)
    {
        return Err(RequestError::BadElement {
            path: "componentType",
            reason: "must be at most 255 characters".into(),
        });
    }
    Ok(Call::SrpRegister(srp::RegisterInput {
        component_type,
        user_id,
        domain,
        static_password: Zeroizing::new(password.to_owned()),
        serial_no,
    }))
}

fn registration_id(op: &Element) -> Result<RegistrationId, RequestError> {
    let raw = text(op, "registrationID").ok_or(RequestError::MissingElement("registrationID"))?;
    parse_with("registrationID", raw, RegistrationId::parse)
}

/// A required hex element of at most `max_bytes` bytes (exactly, when `exact`).
fn hex_element(
    op: &Element,
    path: &'static str,
    max_bytes: usize,
    exact: bool,
) -> Result<HexValue, RequestError> {
    let raw = text(op, path).ok_or(RequestError::MissingElement(path))?;
    if raw.len() > 2 * max_bytes + 2 {
        return Err(RequestError::BadElement {
            path,
            reason: format!("must be at most {} hex characters", 2 * max_bytes),
        });
    }
    let value = parse_with(path, raw, HexValue::parse)?;
    let n = value.as_bytes().len();
    if n == 0 || (exact && n != max_bytes) {
        return Err(RequestError::BadElement {
            path,
            reason: format!(
                "must be {} hex characters, got {}",
                2 * max_bytes,
                raw.len()
            ),
        });
    }
    Ok(value)
}

fn decode_srp_ephemeral_key(op: &Element) -> Result<Call, RequestError> {
    Ok(Call::SrpEphemeralKey(srp::EphemeralKeyInput {
        registration_id: registration_id(op)?,
        client_public: hex_element(op, "clientEphemeralPublicKey", 256, false)?,
    }))
}

fn decode_srp_activation_data(op: &Element) -> Result<Call, RequestError> {
    Ok(Call::SrpActivationData(srp::ActivationDataInput {
        registration_id: registration_id(op)?,
        client_evidence: hex_element(op, "clientEvidenceMessage", 32, true)?,
    }))
}

fn decode_srp_activate(op: &Element) -> Result<Call, RequestError> {
    let registration_id = registration_id(op)?;
    let credential = op
        .child("credential")
        .ok_or(RequestError::MissingElement("credential"))?;
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
            if otp.len() > 16 {
                return Err(RequestError::BadElement {
                    path: "credential/response",
                    reason: "must be at most 16 characters".into(),
                });
            }
            srp::ActivationProof::Otp(Zeroizing::new(otp.to_owned()))
        }
        (None, Some(code)) => {
            if code.len() > 27 {
                return Err(RequestError::BadElement {
                    path: "credential/derivationCode",
                    reason: "must be at most 27 characters".into(),
                });
            }
            srp::ActivationProof::DerivationCode(Zeroizing::new(code.to_owned()))
        }
        (None, None) => return Err(RequestError::MissingElement("credential/response")),
    };
    Ok(Call::SrpActivate(srp::ActivateInput {
        registration_id,
        proof,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &str) -> String {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
                xmlns:p="{PROV_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
        )
    }

    fn parse(s: &str) -> Result<Parsed, WireError> {
        parse_request(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn server_time_with_any_prefix() {
        let p = parse(&envelope(
            "<p:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet/></p:provisioningExecute>",
        ))
        .unwrap();
        assert_eq!(p.operation, Operation::ProvisioningExecute);
        assert_eq!(p.command, "PROVISIONCMD_SERVER_TIME");
        assert!(matches!(p.call, Ok(Call::ServerTime)));
    }

    #[test]
    fn unknown_command_is_a_request_error_not_a_fault() {
        let p = parse(&envelope(
            "<p:provisioningExecute><cmd>PROVISIONCMD_BOGUS</cmd></p:provisioningExecute>",
        ))
        .unwrap();
        assert!(
            matches!(p.call, Err(RequestError::UnknownCommand(c)) if c == "PROVISIONCMD_BOGUS")
        );
    }

    #[test]
    fn attribute_not_accepted_by_server_time_is_named() {
        let p = parse(&envelope(
            r#"<p:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet><attributes>
               <value xsi:type="xsd:string">x</value><attributeID>PROVFLD_USERID</attributeID>
               </attributes></attributeSet></p:provisioningExecute>"#,
        ))
        .unwrap();
        let e = p.call.unwrap_err();
        assert!(e.to_string().contains("PROVFLD_USERID"), "{e}");
    }

    #[test]
    fn faults_for_what_is_not_a_provisioning_request() {
        assert!(matches!(parse("<a/>"), Err(WireError::NotSoap(_))));
        let soap12 = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>"#;
        assert!(matches!(parse(soap12), Err(WireError::NotSoap(m)) if m.contains("SOAP 1.1")));
        assert!(matches!(
            parse(&envelope("<p:somethingElse/>")),
            Err(WireError::UnknownOperation(_))
        ));
        let wrong_ns = envelope(r#"<x:provisioningExecute xmlns:x="urn:other"/>"#);
        assert!(matches!(
            parse(&wrong_ns),
            Err(WireError::UnknownOperation(_))
        ));
        assert!(matches!(parse("<not xml"), Err(WireError::Malformed(_))));
    }

    #[test]
    fn srp_register_decodes_typed_fields() {
        let p = parse(&envelope(
            "<p:dsappSRPRegister><componentType>app</componentType><user><userID>alice</userID>\
             <domain>Master</domain></user><credential><staticPassword> pw </staticPassword>\
             </credential></p:dsappSRPRegister>",
        ))
        .unwrap();
        let Ok(Call::SrpRegister(r)) = p.call else {
            panic!("not decoded: {:?}", p.call)
        };
        assert_eq!(r.user_id.as_str(), "alice");
        assert_eq!(r.domain.unwrap().as_str(), "master");
        assert_eq!(r.static_password.as_str(), " pw ");
    }

    #[test]
    fn srp_register_names_the_missing_element() {
        let p = parse(&envelope(
            "<p:dsappSRPRegister><user><userID>alice</userID></user></p:dsappSRPRegister>",
        ))
        .unwrap();
        assert_eq!(
            p.call.unwrap_err(),
            RequestError::MissingElement("credential")
        );
    }
}
