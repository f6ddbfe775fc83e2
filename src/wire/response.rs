//! Writing responses in OneSpan's exact shape and order.

use std::fmt::Write;

use super::attributes::{AttributeId, Value};
use super::codes::{Failure, StatusCode};
use super::request::Operation;
use super::xml::escape;
use super::{BASIC_TYPES_NS, PROVISIONING_TYPES_NS, PROV_NS, SOAP_ENV_NS};
use crate::protocol::Reply;
use crate::types::{Domain, OrgUnit, UserId};

fn envelope(body: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="{soap}" "#,
            r#"xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" "#,
            r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
            r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" "#,
            r#"xmlns:BASIC-TYPES="{basic}" xmlns:PROVISIONING-TYPES="{ptypes}" "#,
            r#"xmlns:PROV-TYPES="{prov}">"#,
            "<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
        ),
        soap = SOAP_ENV_NS,
        basic = BASIC_TYPES_NS,
        ptypes = PROVISIONING_TYPES_NS,
        prov = PROV_NS,
        body = body
    )
}

fn result_codes(out: &mut String, status: StatusCode) {
    let ret = status.return_code();
    let _ = write!(
        out,
        "<resultCodes><returnCodeEnum>{}</returnCodeEnum><statusCodeEnum>{}</statusCodeEnum>\
         <returnCode>{}</returnCode><statusCode>{}</statusCode></resultCodes>",
        ret.name(),
        status.name(),
        ret.code(),
        status.code()
    );
}

/// An empty `errorStack`, typed as OneSpan's listings write it (clients that turn an
/// attribute-less empty element into nil, such as Savon, then still see an object).
const EMPTY_ERROR_STACK: &str = r#"<errorStack xsi:type="BASIC-TYPES:ErrorStack"/>"#;
/// An empty `resultAttribute`, typed the same way.
const EMPTY_RESULT_ATTRIBUTE: &str =
    r#"<resultAttribute xsi:type="PROVISIONING-TYPES:ProvisioningAttributeSet"/>"#;
/// What precedes the value of a masked output attribute.
const MASKED: &str = "<attributeOptions><masked>true</masked></attributeOptions>";

fn error_stack(out: &mut String, failure: Option<&Failure>) {
    match failure {
        None => out.push_str(EMPTY_ERROR_STACK),
        Some(f) => {
            let _ = write!(
                out,
                "<errorStack><errors><errorCode>{}</errorCode><errorDesc>{}: {}</errorDesc></errors></errorStack>",
                f.status.code(),
                f.status.name(),
                escape(&f.description)
            );
        }
    }
}

/// The attributes a successful `provisioningExecute` returns, in order.
pub type ResultAttributes = Vec<(AttributeId, Value)>;

/// `provisioningExecuteResponse`.
pub fn execute(result: Result<&ResultAttributes, &Failure>) -> String {
    let mut out = String::from("<PROV-TYPES:provisioningExecuteResponse><results>");
    match result {
        Ok(attrs) => {
            result_codes(&mut out, StatusCode::Success);
            if attrs.is_empty() {
                out.push_str(EMPTY_RESULT_ATTRIBUTE);
            } else {
                out.push_str("<resultAttribute>");
                for (id, value) in attrs {
                    let lexical = value.lexical();
                    let options = if id.is_masked_output() { MASKED } else { "" };
                    if lexical.is_empty() {
                        let _ = write!(
                            out,
                            r#"<attributes>{}<value xsi:type="{}"/><attributeID>{}</attributeID></attributes>"#,
                            options,
                            value.xsd_type().name(),
                            id.name()
                        );
                    } else {
                        let _ = write!(
                            out,
                            r#"<attributes>{}<value xsi:type="{}">{}</value><attributeID>{}</attributeID></attributes>"#,
                            options,
                            value.xsd_type().name(),
                            escape(&lexical),
                            id.name()
                        );
                    }
                }
                out.push_str("</resultAttribute>");
            }
            error_stack(&mut out, None);
        }
        Err(f) => {
            result_codes(&mut out, f.status);
            out.push_str(EMPTY_RESULT_ATTRIBUTE);
            error_stack(&mut out, Some(f));
        }
    }
    out.push_str("</results></PROV-TYPES:provisioningExecuteResponse>");
    envelope(&out)
}

/// The response of a distinct command: `status`, then `result` on success.
pub fn distinct(op: Operation, result: Result<&str, &Failure>) -> String {
    let name = op.element();
    let mut out = format!("<PROV-TYPES:{name}Response><status>");
    match result {
        Ok(inner) => {
            result_codes(&mut out, StatusCode::Success);
            error_stack(&mut out, None);
            let _ = write!(out, "</status><result>{inner}</result>");
        }
        Err(f) => {
            result_codes(&mut out, f.status);
            error_stack(&mut out, Some(f));
            out.push_str("</status>");
        }
    }
    let _ = write!(out, "</PROV-TYPES:{name}Response>");
    envelope(&out)
}

fn text(s: &str) -> Value {
    Value::Str(s.to_owned())
}

/// A field encrypted under a DSAPP session, and its IV when the version sends one.
fn sealed_field(
    attrs: &mut ResultAttributes,
    id: AttributeId,
    iv_id: AttributeId,
    field: &crate::protocol::dsapp::SealedField,
) {
    attrs.push((id, text(&hex::encode_upper(&field.value))));
    if let Some(iv) = field.iv {
        attrs.push((iv_id, text(&hex::encode_upper(iv))));
    }
}

/// The resolved user id, domain and organizational unit (empty when the user has none), the
/// way OneSpan's register and activate commands return them.
fn who(user_id: &UserId, domain: &Domain, org_unit: Option<&OrgUnit>) -> ResultAttributes {
    vec![
        (AttributeId::UserId, text(user_id.as_str())),
        (AttributeId::Domain, text(domain.as_str())),
        (
            AttributeId::OrganizationalUnit,
            text(org_unit.map_or("", OrgUnit::as_str)),
        ),
    ]
}

/// A success response for a reply, in the shape of the operation that asked for it.
pub fn success(op: Operation, reply: &Reply) -> String {
    match reply {
        Reply::ServerTime(t) => execute(Ok(&vec![(AttributeId::ServerTime, Value::Int(*t))])),
        Reply::Registered(r) => {
            let mut attrs = who(&r.user_id, &r.domain, r.organizational_unit.as_ref());
            attrs.push((AttributeId::SerialNo, text(r.serial_no.as_str())));
            attrs.push((AttributeId::ActivationCode, text(&r.activation_code.to_string())));
            attrs.push((
                AttributeId::EventReactivationCounter,
                text(&r.event_reactivation_counter.to_string()),
            ));
            execute(Ok(&attrs))
        }
        Reply::DsappRegistered(r) => {
            let mut attrs = who(&r.user_id, &r.domain, r.organizational_unit.as_ref());
            attrs.push((AttributeId::SerialNo, text(r.serial_no.as_str())));
            attrs.push((AttributeId::RegistrationId, text(r.registration_id.as_str())));
            attrs.push((AttributeId::ActivationPassword, text(&r.activation_password)));
            execute(Ok(&attrs))
        }
        Reply::DsappKeyExchanged(k) => {
            let mut attrs = vec![
                (
                    AttributeId::EncryptedServerPublicKey,
                    text(&k.encrypted_server_public_key.to_string()),
                ),
                (
                    AttributeId::EncryptedNonces,
                    text(&k.encrypted_nonces.to_string()),
                ),
                (AttributeId::ServerIv, text(&k.server_iv.to_string())),
            ];
            sealed_field(
                &mut attrs,
                AttributeId::ActivationCode,
                AttributeId::ActivationCodeIv,
                &k.activation_code,
            );
            sealed_field(
                &mut attrs,
                AttributeId::EventReactivationCounter,
                AttributeId::EventReactivationCounterIv,
                &k.event_reactivation_counter,
            );
            execute(Ok(&attrs))
        }
        Reply::MdlRegistered(r) => {
            let mut attrs = who(&r.user_id, &r.domain, r.organizational_unit.as_ref());
            attrs.push((AttributeId::SerialNo, text(r.serial_no.as_str())));
            attrs.push((AttributeId::RegistrationId, text(r.registration_id.as_str())));
            attrs.push((
                AttributeId::ActivationMessage,
                text(&r.activation_message.to_string()),
            ));
            execute(Ok(&attrs))
        }
        Reply::MdlDeviceAdded(d) => execute(Ok(&vec![
            (AttributeId::SerialNo, text(d.serial_no.as_str())),
            (AttributeId::DeviceId, text(&d.device_id.to_string())),
            (
                AttributeId::ActivationMessage,
                text(&d.activation_message.to_string()),
            ),
        ])),
        Reply::MdlActivated(a) => {
            let mut attrs = who(&a.user_id, &a.domain, a.organizational_unit.as_ref());
            attrs.push((AttributeId::SerialNo, text(a.serial_no.as_str())));
            attrs.push((AttributeId::DeviceId, text(&a.device_id)));
            execute(Ok(&attrs))
        }
        Reply::Activated(a) | Reply::DsappActivated(a) => {
            let mut attrs = who(&a.user_id, &a.domain, a.organizational_unit.as_ref());
            attrs.push((AttributeId::SerialNo, text(a.serial_no.as_str())));
            execute(Ok(&attrs))
        }
        Reply::SrpRegistered(r) => {
            let inner = format!(
                "<registrationID>{}</registrationID><activationPassword>{}</activationPassword>\
                 <user><userID>{}</userID><domain>{}</domain></user><serialNumber>{}</serialNumber>",
                escape(r.registration_id.as_str()),
                escape(&r.activation_password),
                escape(r.user_id.as_str()),
                escape(r.domain.as_str()),
                escape(r.serial_no.as_str())
            );
            distinct(op, Ok(&inner))
        }
        Reply::SrpEphemeralKey(k) => distinct(
            op,
            Ok(&format!(
                "<serverEphemeralPublicKey>{}</serverEphemeralPublicKey><salt>{}</salt>",
                k.server_public, k.salt
            )),
        ),
        Reply::SrpActivationData(d) => distinct(
            op,
            Ok(&format!(
                "<standard><activationCode><encryptedData>{}</encryptedData>\
                 <encryptedCounter>{}</encryptedCounter><mac>{}</mac></activationCode></standard>\
                 <serverEvidenceMessage>{}</serverEvidenceMessage>",
                hex::encode_upper(&d.activation.ciphertext),
                hex::encode_upper(d.activation.iv),
                hex::encode_upper(d.activation.mac),
                d.server_evidence
            )),
        ),
        Reply::SrpActivated(a) => distinct(
            op,
            Ok(&format!(
                "<user><userID>{}</userID><domain>{}</domain></user><serialNumber>{}</serialNumber>",
                escape(a.user_id.as_str()),
                escape(a.domain.as_str()),
                escape(a.serial_no.as_str())
            )),
        ),
    }
}

/// A failure response in the shape of the operation.
pub fn failure(op: Operation, failure: &Failure) -> String {
    match op {
        Operation::ProvisioningExecute => execute(Err(failure)),
        other => distinct(other, Err(failure)),
    }
}

/// A SOAP 1.1 Fault. `client` selects `SOAP-ENV:Client` (the request is at fault) over
/// `SOAP-ENV:Server`.
pub fn fault(client: bool, message: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="{soap}"><SOAP-ENV:Body><SOAP-ENV:Fault>"#,
            "<faultcode>SOAP-ENV:{code}</faultcode><faultstring>{msg}</faultstring>",
            "</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
        ),
        soap = SOAP_ENV_NS,
        code = if client { "Client" } else { "Server" },
        msg = escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::xml::{parse, Limits};

    #[test]
    fn server_time_response_parses_back() {
        let xml = success(
            Operation::ProvisioningExecute,
            &Reply::ServerTime(1_700_000_000),
        );
        let root = parse(xml.as_bytes(), &Limits::default()).unwrap();
        let results = root.children[0].children[0].child("results").unwrap();
        let names: Vec<&str> = results
            .children
            .iter()
            .map(|c| c.name.local.as_str())
            .collect();
        assert_eq!(names, ["resultCodes", "resultAttribute", "errorStack"]);
        let attr = results
            .child("resultAttribute")
            .unwrap()
            .child("attributes")
            .unwrap();
        assert_eq!(attr.child("value").unwrap().text, "1700000000");
        assert_eq!(
            attr.child("attributeID").unwrap().text,
            "PROVFLD_SERVER_TIME"
        );
    }

    #[test]
    fn failure_escapes_and_carries_the_status() {
        let f = Failure {
            status: StatusCode::InvalidData,
            description: "PROVFLD_USERID: <bad> & worse".into(),
        };
        let xml = failure(Operation::ProvisioningExecute, &f);
        assert!(xml.contains("<statusCodeEnum>STAT_INVDATA</statusCodeEnum>"));
        assert!(xml.contains("<returnCode>-1</returnCode>"));
        assert!(xml.contains("&lt;bad&gt; &amp; worse"));
        assert!(parse(xml.as_bytes(), &Limits::default()).is_ok());
    }

    #[test]
    fn empty_structural_elements_carry_xsi_type() {
        let ok = success(Operation::ProvisioningExecute, &Reply::ServerTime(1));
        assert!(ok.contains(r#"<errorStack xsi:type="BASIC-TYPES:ErrorStack"/>"#));
        let f = Failure {
            status: StatusCode::InvalidData,
            description: "x".into(),
        };
        let bad = failure(Operation::ProvisioningExecute, &f);
        assert!(bad.contains(
            r#"<resultAttribute xsi:type="PROVISIONING-TYPES:ProvisioningAttributeSet"/>"#
        ));
        for xml in [&ok, &bad] {
            assert!(!xml.contains("<errorStack/>") && !xml.contains("<resultAttribute/>"));
            assert!(parse(xml.as_bytes(), &Limits::default()).is_ok());
        }
    }

    #[test]
    fn secret_outputs_are_masked_before_their_value() {
        let xml = execute(Ok(&vec![
            (AttributeId::SerialNo, text("VDS0000001")),
            (AttributeId::ActivationCode, text("123")),
        ]));
        assert!(xml.contains(
            "<attributes><attributeOptions><masked>true</masked></attributeOptions>\
             <value xsi:type=\"xsd:string\">123</value><attributeID>PROVFLD_ACTIVATION_CODE"
        ));
        // Not on the serial number.
        assert!(xml.contains("<attributes><value xsi:type=\"xsd:string\">VDS0000001</value>"));
        assert_eq!(xml.matches("<masked>").count(), 1);
    }

    #[test]
    fn fault_is_soap_1_1() {
        let xml = fault(true, "malformed XML: <x>");
        assert!(xml.contains("<faultcode>SOAP-ENV:Client</faultcode>"));
        assert!(xml.contains("&lt;x&gt;"));
    }
}
