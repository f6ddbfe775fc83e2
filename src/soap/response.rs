//! Writing responses in OneSpan's exact shape and order.

use std::fmt::Write;

use super::attributes::{AttributeId, Value};
use super::codes::{Failure, StatusCode};
use super::request::Operation;
use super::xml::escape;
use super::{BASIC_TYPES_NS, PROVISIONING_TYPES_NS, PROV_NS, SOAP_ENV_NS};

/// Everything before a response's body element: the XML declaration, `Envelope` with every
/// namespace OneSpan's responses declare, and `Body`. Built once.
fn envelope_head() -> &'static str {
    static HEAD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HEAD.get_or_init(|| {
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
                "<SOAP-ENV:Body>"
            ),
            soap = SOAP_ENV_NS,
            basic = BASIC_TYPES_NS,
            ptypes = PROVISIONING_TYPES_NS,
            prov = PROV_NS,
        )
    })
}

const ENVELOPE_TAIL: &str = "</SOAP-ENV:Body></SOAP-ENV:Envelope>\n";

/// A response buffer that already holds the envelope's head: the body is written straight
/// after it, and [`ENVELOPE_TAIL`] closes it, with no copy of the body.
fn response_buffer(body_hint: usize) -> String {
    let head = envelope_head();
    let mut out = String::with_capacity(head.len() + body_hint + 512);
    out.push_str(head);
    out
}

/// Appends an integer's decimal digits (without the formatting machinery: every response
/// writes two or three).
fn push_int(out: &mut String, n: impl Into<i64>) {
    let n: i64 = n.into();
    if n < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

fn result_codes(out: &mut String, status: StatusCode) {
    let ret = status.return_code();
    out.push_str("<resultCodes><returnCodeEnum>");
    out.push_str(ret.name());
    out.push_str("</returnCodeEnum><statusCodeEnum>");
    out.push_str(status.name());
    out.push_str("</statusCodeEnum><returnCode>");
    push_int(out, ret.code());
    out.push_str("</returnCode><statusCode>");
    push_int(out, status.code());
    out.push_str("</statusCode></resultCodes>");
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
            out.push_str("<errorStack><errors><errorCode>");
            push_int(out, f.status.code());
            out.push_str("</errorCode><errorDesc>");
            out.push_str(f.status.name());
            out.push_str(": ");
            out.push_str(&escape(&f.description));
            out.push_str("</errorDesc></errors></errorStack>");
        }
    }
}

/// The attributes a successful `provisioningExecute` returns, in order.
pub type ResultAttributes = Vec<(AttributeId, Value)>;

/// `provisioningExecuteResponse`.
pub fn execute(result: Result<&ResultAttributes, &Failure>) -> String {
    let mut out = response_buffer(attrs_hint(&result));
    out.push_str("<PROV-TYPES:provisioningExecuteResponse><results>");
    match result {
        Ok(attrs) => {
            result_codes(&mut out, StatusCode::Success);
            if attrs.is_empty() {
                out.push_str(EMPTY_RESULT_ATTRIBUTE);
            } else {
                out.push_str("<resultAttribute>");
                for (id, value) in attrs {
                    out.push_str("<attributes>");
                    if id.is_masked_output() {
                        out.push_str(MASKED);
                    }
                    out.push_str(r#"<value xsi:type=""#);
                    out.push_str(value.xsd_type().name());
                    let start = out.len() + 2;
                    out.push_str(r#"">"#);
                    match value {
                        Value::Str(s) => out.push_str(&escape(s)),
                        Value::UnsignedInt(n) => push_int(&mut out, *n),
                        Value::Int(n) => push_int(&mut out, *n),
                        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
                    }
                    if out.len() == start {
                        // An empty value is written as an empty element.
                        out.truncate(start - 2);
                        out.push_str(r#""/>"#);
                    } else {
                        out.push_str("</value>");
                    }
                    out.push_str("<attributeID>");
                    out.push_str(id.name());
                    out.push_str("</attributeID></attributes>");
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
    out.push_str(ENVELOPE_TAIL);
    out
}

/// About how long a result's attributes are written.
fn attrs_hint(result: &Result<&ResultAttributes, &Failure>) -> usize {
    match result {
        Ok(attrs) => 640 + attrs.len() * 160,
        Err(f) => 640 + f.description.len(),
    }
}

/// The response of a distinct command: `status`, then `result` on success.
pub fn distinct(op: Operation, result: Result<&str, &Failure>) -> String {
    let name = op.element();
    let mut out = response_buffer(640 + result.map_or(0, str::len));
    out.push_str("<PROV-TYPES:");
    out.push_str(name);
    out.push_str("Response><status>");
    match result {
        Ok(inner) => {
            result_codes(&mut out, StatusCode::Success);
            error_stack(&mut out, None);
            out.push_str("</status><result>");
            out.push_str(inner);
            out.push_str("</result>");
        }
        Err(f) => {
            result_codes(&mut out, f.status);
            error_stack(&mut out, Some(f));
            out.push_str("</status>");
        }
    }
    out.push_str("</PROV-TYPES:");
    out.push_str(name);
    out.push_str("Response>");
    out.push_str(ENVELOPE_TAIL);
    out
}

/// What a command's reply writes: the result attributes of `provisioningExecute`, in order,
/// or the elements of a distinct operation's `result`, escaped.
#[derive(Debug, Default)]
pub struct ResultWriter {
    attributes: ResultAttributes,
    elements: String,
}

impl ResultWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A result attribute.
    pub fn attribute(&mut self, id: AttributeId, value: Value) -> &mut Self {
        self.attributes.push((id, value));
        self
    }

    /// A string result attribute.
    pub fn text(&mut self, id: AttributeId, value: &str) -> &mut Self {
        self.attribute(id, Value::Str(value.to_owned()))
    }

    /// `<name>value</name>` in a distinct operation's result.
    pub fn element(&mut self, name: &str, value: &str) -> &mut Self {
        let _ = write!(self.elements, "<{name}>{}</{name}>", escape(value));
        self
    }

    /// Opens `<name>` in a distinct operation's result; [`Self::close`] ends it.
    pub fn open(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.elements, "<{name}>");
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.elements, "</{name}>");
        self
    }

    /// The success response, in the shape of the operation that asked.
    pub fn finish(self, op: Operation) -> String {
        match op {
            Operation::ProvisioningExecute => execute(Ok(&self.attributes)),
            other => distinct(other, Ok(&self.elements)),
        }
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
    use crate::soap::xml::{parse, Limits};

    #[test]
    fn server_time_response_parses_back() {
        let mut w = ResultWriter::new();
        w.attribute(AttributeId::ServerTime, Value::Int(1_700_000_000));
        let xml = w.finish(Operation::ProvisioningExecute);
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
        let mut w = ResultWriter::new();
        w.attribute(AttributeId::ServerTime, Value::Int(1));
        let ok = w.finish(Operation::ProvisioningExecute);
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
            (AttributeId::SerialNo, Value::Str("VDS0000001".into())),
            (AttributeId::ActivationCode, Value::Str("123".into())),
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
    fn distinct_results_are_escaped_elements_in_order() {
        let mut w = ResultWriter::new();
        w.element("registrationID", "a<b")
            .open("user")
            .element("userID", "alice")
            .close("user");
        let xml = w.finish(Operation::DsappSrpRegister);
        assert!(xml.contains(
            "<result><registrationID>a&lt;b</registrationID><user><userID>alice</userID></user></result>"
        ));
        assert!(parse(xml.as_bytes(), &Limits::default()).is_ok());
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for n in [0, 7, -1, 10, 1_700_000_000, i64::MIN, i64::MAX, -1000] {
            let mut out = String::new();
            push_int(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        let mut out = String::new();
        push_int(&mut out, u32::MAX);
        assert_eq!(out, u32::MAX.to_string());
    }

    #[test]
    fn fault_is_soap_1_1() {
        let xml = fault(true, "malformed XML: <x>");
        assert!(xml.contains("<faultcode>SOAP-ENV:Client</faultcode>"));
        assert!(xml.contains("&lt;x&gt;"));
    }
}
