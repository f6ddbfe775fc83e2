//! Envelope to the operation, `cmd` and attributes a command decodes (see `crate::commands`).

use super::attributes::AttributeSet;
use super::commands::Command;
use super::xml::{self, Element, Limits};
use super::{RequestError, WireError, PROV_NS, SOAP_ENV_NS};

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
    pub body: Result<Body, RequestError>,
}

/// The content of a served operation, for the command that decodes it.
#[derive(Debug)]
pub struct Body {
    /// The operation's element (`provisioningExecute`, `dsappSRPRegister`, ...).
    pub element: Element,
    /// `provisioningExecute`'s `cmd`; `None` for the distinct operations.
    pub command: Option<Command>,
    /// `provisioningExecute`'s `attributeSet`; empty for the distinct operations.
    pub attributes: AttributeSet,
}

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

/// Parses a SOAP 1.1 envelope. `Err` is for what deserves a SOAP Fault.
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
    let mut bodies: Vec<Element> = root
        .children
        .into_iter()
        .filter(|c| c.name.is(Some(SOAP_ENV_NS), "Body"))
        .collect();
    if bodies.len() != 1 {
        return Err(WireError::NotSoap(format!(
            "expected exactly one Body, found {}",
            bodies.len()
        )));
    }
    let mut body = bodies.remove(0);
    if body.children.len() != 1 {
        return Err(WireError::NotSoap(format!(
            "the Body must hold exactly one element, found {}",
            body.children.len()
        )));
    }
    let op_el = body.children.remove(0);
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
    let body = match operation {
        Operation::ProvisioningExecute => execute_body(op_el, &mut command),
        _ => Ok(Body {
            element: op_el,
            command: None,
            attributes: AttributeSet::new(),
        }),
    };
    Ok(Parsed {
        operation,
        command,
        body,
    })
}

/// `provisioningExecute`: exactly one `cmd` naming a documented command, at most one
/// `attributeSet`, decoded (types, lengths, no duplicates).
fn execute_body(op: Element, command_name: &mut String) -> Result<Body, RequestError> {
    let (command, attributes) = execute_parts(&op, command_name)?;
    Ok(Body {
        element: op,
        command: Some(command),
        attributes,
    })
}

fn execute_parts(
    op: &Element,
    command_name: &mut String,
) -> Result<(Command, AttributeSet), RequestError> {
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
    let attributes = match sets.next() {
        Some(set) => AttributeSet::decode(set)?,
        None => AttributeSet::new(),
    };
    if sets.next().is_some() {
        return Err(RequestError::BadElement {
            path: "attributeSet",
            reason: "given more than once".into(),
        });
    }
    Ok((command, attributes))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn envelope(body: &str) -> String {
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
        let body = p.body.unwrap();
        assert_eq!(body.command, Some(Command::ServerTime));
        assert_eq!(body.attributes, AttributeSet::new());
    }

    #[test]
    fn unknown_command_is_a_request_error_not_a_fault() {
        let p = parse(&envelope(
            "<p:provisioningExecute><cmd>PROVISIONCMD_BOGUS</cmd></p:provisioningExecute>",
        ))
        .unwrap();
        assert!(
            matches!(p.body, Err(RequestError::UnknownCommand(c)) if c == "PROVISIONCMD_BOGUS")
        );
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
    fn a_distinct_operation_keeps_its_element() {
        let p = parse(&envelope(
            "<p:dsappSRPRegister><user><userID>alice</userID></user></p:dsappSRPRegister>",
        ))
        .unwrap();
        assert_eq!(p.operation, Operation::DsappSrpRegister);
        let body = p.body.unwrap();
        assert_eq!(body.command, None);
        assert_eq!(body.element.name.local, "dsappSRPRegister");
    }
}
