//! Envelope to the operation, `cmd` and attributes a command decodes (see `crate::commands`).

use std::borrow::Cow;

use super::attributes::{AttributeSet, TypeName, ValueElement};
use super::commands::Command;
use super::xml::{self, Element, Limits, Sink, Tag, TreeBuilder, XSD_NS};
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
    pub command: &'static str,
    pub body: Result<Body, RequestError>,
}

/// The content of a served operation, for the command that decodes it.
#[derive(Debug)]
pub struct Body {
    /// A distinct operation's element (`dsappSRPRegister`, ...); `None` for
    /// `provisioningExecute`, whose content is `command` and `attributes`.
    pub element: Option<Element>,
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
    parse_envelope(&utf8, limits)
}

/// Parses a SOAP 1.1 envelope. `Err` is for what deserves a SOAP Fault.
pub fn parse_request(body: &[u8], limits: &Limits) -> Result<Parsed, WireError> {
    let body =
        std::str::from_utf8(body).map_err(|_| WireError::Malformed("invalid UTF-8".into()))?;
    parse_envelope(body, limits)
}

/// Parses a SOAP 1.1 envelope straight from the reader's events, without a tree: only a
/// distinct operation's element is built as one (its command reads it). The whole document
/// is read (limits, namespaces, well-formedness) before anything about its SOAP shape is
/// answered, and the answers come in this order: the document element, the `Body`, its one
/// element, the operation, then the operation's content ([`execute_parts`]' order).
fn parse_envelope(body: &str, limits: &Limits) -> Result<Parsed, WireError> {
    let mut env = Envelope::default();
    xml::walk(body, limits, &mut env)?;
    let root = env.root.unwrap_or_default();
    if root != "Envelope" {
        return Err(WireError::NotSoap(format!(
            "the document element is {root:?}, not Envelope"
        )));
    }
    if let Some(ns) = env.root_ns {
        return Err(WireError::NotSoap(format!(
            "Envelope is in namespace {ns:?}; SOAP 1.1 expects {SOAP_ENV_NS}"
        )));
    }
    if env.bodies != 1 {
        return Err(WireError::NotSoap(format!(
            "expected exactly one Body, found {}",
            env.bodies
        )));
    }
    if env.body_elements != 1 {
        return Err(WireError::NotSoap(format!(
            "the Body must hold exactly one element, found {}",
            env.body_elements
        )));
    }
    let (operation, command, body) = match env.op {
        Op::Unknown(name) => return Err(WireError::UnknownOperation(name)),
        // Not reached: a walk that succeeded opened the Body's one element.
        Op::None => return Err(WireError::NotSoap("the Body holds no element".into())),
        Op::Execute(execute) => {
            let (command, body) = (*execute).finish();
            (Operation::ProvisioningExecute, command, body)
        }
        Op::Distinct(operation, tree) => {
            let body = Body {
                element: tree.finish(),
                command: None,
                attributes: AttributeSet::new(),
            };
            (operation, None, Ok(body))
        }
    };
    Ok(Parsed {
        operation,
        command: command.map_or(operation.element(), Command::name),
        body,
    })
}

/// What the reader found of the envelope. Depths: the document element is at 1, `Body` at 2,
/// the operation at 3, `cmd` and `attributeSet` at 4, `attributes` at 5, `attributeID` and
/// `value` at 6.
#[derive(Default)]
struct Envelope<'a> {
    depth: usize,
    /// The document element's local name.
    root: Option<&'a str>,
    /// The document element's namespace, when it is not SOAP 1.1's.
    root_ns: Option<String>,
    /// `Body` elements in the SOAP namespace under the document element.
    bodies: usize,
    /// The first `Body` is open.
    in_body: bool,
    /// Elements in the first `Body`.
    body_elements: usize,
    /// The first of them is open.
    in_op: bool,
    op: Op<'a>,
}

/// The first element of the first `Body`.
#[derive(Default)]
enum Op<'a> {
    /// Not a served operation: the fault's text.
    Unknown(String),
    #[default]
    None,
    Execute(Box<Execute<'a>>),
    /// A distinct operation, whose element is built as a tree.
    Distinct(Operation, TreeBuilder),
}

/// `provisioningExecute`'s content as it is read.
struct Execute<'a> {
    /// `cmd` children; the first one's text, and whether it is open.
    cmds: usize,
    cmd: Cow<'a, str>,
    in_cmd: bool,
    /// `attributeSet` children; whether the first one is open.
    sets: usize,
    in_set: bool,
    /// The first set's attributes, decoded as each `attributes` element closes; the first
    /// error stops the decoding.
    set: Result<AttributeSet, RequestError>,
    /// The open `attributes` element of the first set (while the set decodes).
    in_attributes: bool,
    /// Its first `attributeID` and `value` children: seen, open, text.
    id: Option<Cow<'a, str>>,
    in_id: bool,
    value: Option<Cow<'a, str>>,
    value_type: Option<(bool, String)>,
    in_value: bool,
}

impl Default for Execute<'_> {
    fn default() -> Self {
        Execute {
            cmds: 0,
            cmd: Cow::Borrowed(""),
            in_cmd: false,
            sets: 0,
            in_set: false,
            set: Ok(AttributeSet::new()),
            in_attributes: false,
            id: None,
            in_id: false,
            value: None,
            value_type: None,
            in_value: false,
        }
    }
}

impl<'a> Execute<'a> {
    fn start(&mut self, depth: usize, tag: &Tag<'a, '_>) {
        let local = tag.local();
        match depth {
            4 if local == "cmd" => {
                self.cmds += 1;
                self.in_cmd = self.cmds == 1;
            }
            4 if local == "attributeSet" => {
                self.sets += 1;
                self.in_set = self.sets == 1;
            }
            5 if self.in_set && self.set.is_ok() => {
                if local == "attributes" {
                    self.in_attributes = true;
                    self.id = None;
                    self.value = None;
                    self.value_type = None;
                } else {
                    self.set = Err(RequestError::Unexpected(local.to_owned()));
                }
            }
            6 if self.in_attributes => {
                if local == "attributeID" && self.id.is_none() {
                    self.id = Some(Cow::Borrowed(""));
                    self.in_id = true;
                } else if local == "value" && self.value.is_none() {
                    self.value = Some(Cow::Borrowed(""));
                    self.value_type = tag
                        .xsi_type()
                        .map(|(ns, local)| (ns == Some(XSD_NS), local.to_owned()));
                    self.in_value = true;
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, depth: usize) {
        match depth {
            4 => {
                self.in_cmd = false;
                self.in_set = false;
            }
            5 if self.in_attributes => {
                self.in_attributes = false;
                let value = self.value.as_deref().map(|text| ValueElement {
                    text,
                    xsi_type: self
                        .value_type
                        .as_ref()
                        .map(|(xsd, local)| TypeName { xsd: *xsd, local }),
                });
                if let Ok(set) = &mut self.set {
                    if let Err(e) = set.decode_attribute(self.id.as_deref(), value) {
                        self.set = Err(e);
                    }
                }
            }
            6 => {
                self.in_id = false;
                self.in_value = false;
            }
            _ => {}
        }
    }

    fn wants_text(&self, depth: usize) -> bool {
        match depth {
            4 => self.in_cmd,
            6 => self.in_id || self.in_value,
            _ => false,
        }
    }

    fn text(&mut self, depth: usize, text: Cow<'a, str>) {
        let into = match depth {
            4 if self.in_cmd => &mut self.cmd,
            6 if self.in_id => self.id.get_or_insert_default(),
            6 if self.in_value => self.value.get_or_insert_default(),
            _ => return,
        };
        if into.is_empty() {
            *into = text;
        } else {
            into.to_mut().push_str(&text);
        }
    }

    /// What was read, checked as [`reference`] checks the tree: exactly one `cmd` naming a
    /// documented command, at most one `attributeSet`, decoded (types, lengths, no
    /// duplicates). With the command recognised, if it was.
    fn finish(self) -> (Option<Command>, Result<Body, RequestError>) {
        let recognised = match self.cmds {
            1 => Command::from_name(self.cmd.trim()),
            _ => None,
        };
        (recognised, self.decode())
    }

    fn decode(self) -> Result<Body, RequestError> {
        if self.cmds == 0 {
            return Err(RequestError::MissingCommand);
        }
        if self.cmds > 1 {
            return Err(RequestError::BadElement {
                path: "cmd",
                reason: "given more than once".into(),
            });
        }
        let raw = self.cmd.trim();
        let command = Command::from_name(raw)
            .ok_or_else(|| RequestError::UnknownCommand(raw.chars().take(64).collect()))?;
        let attributes = match self.sets {
            0 => AttributeSet::new(),
            _ => self.set?,
        };
        if self.sets > 1 {
            return Err(RequestError::BadElement {
                path: "attributeSet",
                reason: "given more than once".into(),
            });
        }
        Ok(Body {
            element: None,
            command: Some(command),
            attributes,
        })
    }
}

impl<'a> Sink<'a> for Envelope<'a> {
    fn start(&mut self, tag: &Tag<'a, '_>) {
        self.depth += 1;
        match self.depth {
            1 => {
                self.root = Some(tag.local());
                if tag.ns() != Some(SOAP_ENV_NS) {
                    self.root_ns = Some(tag.ns().unwrap_or("").to_owned());
                }
            }
            2 if tag.is(SOAP_ENV_NS, "Body") => {
                self.bodies += 1;
                self.in_body = self.bodies == 1;
            }
            3 if self.in_body => {
                self.body_elements += 1;
                if self.body_elements == 1 {
                    self.in_op = true;
                    self.op = match Operation::from_element(tag.local())
                        .filter(|_| tag.ns() == Some(PROV_NS))
                    {
                        Some(Operation::ProvisioningExecute) => Op::Execute(Box::default()),
                        Some(op) => {
                            let mut tree = TreeBuilder::default();
                            tree.start(tag);
                            Op::Distinct(op, tree)
                        }
                        None => {
                            Op::Unknown(format!("{{{}}}{}", tag.ns().unwrap_or(""), tag.local()))
                        }
                    };
                }
            }
            depth if self.in_op => match &mut self.op {
                Op::Execute(execute) => execute.start(depth, tag),
                Op::Distinct(_, tree) => tree.start(tag),
                _ => {}
            },
            _ => {}
        }
    }

    fn end(&mut self) {
        let depth = self.depth;
        if self.in_op {
            match &mut self.op {
                Op::Execute(execute) => execute.end(depth),
                Op::Distinct(_, tree) => tree.end(),
                _ => {}
            }
        }
        match depth {
            2 => self.in_body = false,
            3 => self.in_op = false,
            _ => {}
        }
        self.depth -= 1;
    }

    fn wants_text(&self) -> bool {
        self.in_op
            && match &self.op {
                Op::Execute(execute) => execute.wants_text(self.depth),
                Op::Distinct(..) => true,
                _ => false,
            }
    }

    fn text(&mut self, text: Cow<'a, str>) {
        if self.in_op {
            match &mut self.op {
                Op::Execute(execute) => execute.text(self.depth, text),
                Op::Distinct(_, tree) => tree.text(text),
                _ => {}
            }
        }
    }
}

/// The envelope decoded from a tree, as provd did before [`parse_request`] read the events
/// directly: kept as the reference the direct reader is checked against (by the tests and
/// the `envelope` fuzz target, which cargo fuzz builds with `--cfg fuzzing`). Not used to
/// answer requests, and not in a release build.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod reference {
    use super::*;

    /// Parses a SOAP 1.1 envelope into a tree, then decodes it.
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
        let mut command = operation.element();
        let body = match operation {
            Operation::ProvisioningExecute => {
                execute_parts(&op_el, &mut command).map(|(command, attributes)| Body {
                    element: None,
                    command: Some(command),
                    attributes,
                })
            }
            _ => Ok(Body {
                element: Some(op_el),
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
    fn execute_parts(
        op: &Element,
        command_name: &mut &'static str,
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
        *command_name = command.name();
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
        assert_eq!(body.element.unwrap().name.local, "dsappSRPRegister");
    }

    /// The direct reader and the tree-based reference give the same answer (the same
    /// operation, command, body or error, to the text) for `input`.
    fn same_as_reference(input: &[u8]) {
        let direct = format!("{:?}", parse_request(input, &Limits::default()));
        let tree = format!("{:?}", reference::parse_request(input, &Limits::default()));
        assert_eq!(direct, tree, "input: {:?}", String::from_utf8_lossy(input));
    }

    /// Envelopes that exercise what the direct reader handles itself.
    fn edge_envelopes() -> Vec<String> {
        let exec = |inner: &str| {
            envelope(&format!(
                "<p:provisioningExecute>{inner}</p:provisioningExecute>"
            ))
        };
        let attr = |id: &str, value: &str| {
            format!("<attributes>{value}<attributeID>{id}</attributeID></attributes>")
        };
        vec![
            exec("<cmd>PROVISIONCMD_SERVER_TIME</cmd>"),
            exec("<cmd> PROVISIONCMD_SERVER_TIME\n</cmd><attributeSet/>"),
            exec("<cmd>PROVISION<!-- c -->CMD_SERVER_TIME</cmd>"),
            exec("<cmd>PROVISION<![CDATA[CMD_SERVER]]>_TIME</cmd>"),
            exec("<cmd>PROVISIONCMD_SERVER&#95;TIME</cmd>"),
            exec("<cmd>PROVISIONCMD_<x>ignored</x>SERVER_TIME</cmd>"),
            exec("<cmd>PROVISIONCMD_SERVER_TIME</cmd><cmd>PROVISIONCMD_SERVER_TIME</cmd>"),
            exec("<x:cmd xmlns:x='urn:x'>PROVISIONCMD_SERVER_TIME</x:cmd>"),
            exec("<cmd>PROVISIONCMD_NOPE</cmd>"),
            exec(&format!("<cmd>{}</cmd>", "X".repeat(100))),
            exec("<attributeSet/>"),
            exec("<cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet/><attributeSet/>"),
            exec("<cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet><bogus/></attributeSet><attributeSet/>"),
            exec("<cmd>PROVISIONCMD_NOPE</cmd><attributeSet><bogus/></attributeSet>"),
            exec(&format!(
                "<cmd>PROVISIONCMD_REGISTER</cmd><attributeSet>{}{}{}</attributeSet>",
                attr("PROVFLD_USERID", r#"<value xsi:type="xsd:string">al&amp;ice</value>"#),
                attr(" PROVFLD_DOMAIN ", r#"<value xsi:type='xsd:string'><![CDATA[ma]]>ster</value>"#),
                attr("PROVFLD_ACTIVATION_TYPE", r#"<value xsi:type=" xsd:unsignedLong ">1</value><value>2</value>"#),
            )),
            exec(&format!(
                "<cmd>PROVISIONCMD_REGISTER</cmd><attributeSet>{}{}</attributeSet>",
                attr("PROVFLD_USERID", r#"<value xsi:type="xsd:string">a</value>"#),
                attr("PROVFLD_USERID", r#"<value xsi:type="xsd:string">b</value>"#),
            )),
            exec(&format!(
                "<cmd>PROVISIONCMD_REGISTER</cmd><attributeSet>{}<bogus/>{}</attributeSet>",
                attr("PROVFLD_USERID", r#"<value xsi:type="xsd:int">a</value>"#),
                attr("PROVFLD_NOPE", "<value>b</value>"),
            )),
            exec(&format!(
                "<cmd>PROVISIONCMD_REGISTER</cmd><attributeSet>{}</attributeSet>",
                attr("PROVFLD_USERID", r#"<value xmlns:q="urn:q" xsi:type="q:string">a</value>"#),
            )),
            exec(&format!(
                "<cmd>PROVISIONCMD_REGISTER</cmd><attributeSet>{}{}</attributeSet>",
                attr("PROVFLD_ACTIVATION_TYPE", r#"<value xsi:type="xsd:string" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:type="xsd:int">7</value>"#),
                attr("PROVFLD_SERVER_TIME", r#"<value xsi:type="xsd:int"><inner>1</inner>2</value>"#),
            )),
            exec("<cmd>PROVISIONCMD_REGISTER</cmd><attributeSet><attributes><value>x</value></attributes></attributeSet>"),
            exec("<cmd>PROVISIONCMD_REGISTER</cmd><attributeSet><attributes><attributeID>PROVFLD_USERID</attributeID></attributes></attributeSet>"),
            exec("<cmd>PROVISIONCMD_REGISTER</cmd><attributeSet><attributes><attributeID>PROVFLD_CESPR</attributeID></attributes></attributeSet>"),
            exec("<cmd>PROVISIONCMD_REGISTER</cmd><attributeSet><attributes><attributes><attributeID>PROVFLD_USERID</attributeID></attributes></attributes></attributeSet>"),
            exec("<cmd>PROVISIONCMD_REGISTER</cmd><attributeSet><attributes><attributeID>PROVFLD_USERID<x>y</x></attributeID><attributeID>PROVFLD_DOMAIN</attributeID><value>v</value></attributes></attributeSet>"),
            exec("<cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet><attributes><value xsi:type='xsd:string'>x</value><attributeID>PROVFLD_USERID</attributeID></attributes></attributeSet>"),
            envelope("<p:dsappSRPRegister><user a='1' xsi:type='xsd:string'><userID>al&lt;ice</userID></user>text</p:dsappSRPRegister>"),
            envelope("<p:dsappSRPRegister/><p:dsappSRPRegister/>"),
            envelope("<p:nope/>"),
            envelope(""),
            envelope("text only"),
            format!(
                r#"<e:Envelope xmlns:e="{SOAP_ENV_NS}"><e:Body><x xmlns="{PROV_NS}"><cmd>PROVISIONCMD_SERVER_TIME</cmd></x></e:Body></e:Envelope>"#
            ),
            format!(
                r#"<Envelope xmlns="{SOAP_ENV_NS}"><Body><provisioningExecute xmlns="{PROV_NS}"><cmd xmlns="">PROVISIONCMD_SERVER_TIME</cmd></provisioningExecute></Body></Envelope>"#
            ),
            format!(
                r#"<e:Envelope xmlns:e="{SOAP_ENV_NS}"><e:Header/><e:Body><p:provisioningExecute xmlns:p="{PROV_NS}"><cmd>PROVISIONCMD_SERVER_TIME</cmd></p:provisioningExecute></e:Body><e:Body/></e:Envelope>"#
            ),
            format!(
                r#"<e:Envelope xmlns:e="{SOAP_ENV_NS}"><Body/><e:Body><p:provisioningExecute xmlns:p="{PROV_NS}"><cmd>PROVISIONCMD_SERVER_TIME</cmd></p:provisioningExecute></e:Body></e:Envelope>"#
            ),
            format!(r#"<e:Envelope xmlns:e="{SOAP_ENV_NS}"/>"#),
            format!(r#"<e:Envelop xmlns:e="{SOAP_ENV_NS}"/>"#),
            "<Envelope/>".into(),
            "  <!-- c --> <?pi x?>\n<a/>\n".into(),
            "<a/>&amp;".into(),
            "<a/>x".into(),
            "&#32;<a/>".into(),
            "<a/><!DOCTYPE a>".into(),
            "<a xmlns:p=''><p:b/></a>".into(),
            "<a xmlns:=\"urn:x\"><b/></a>".into(),
            "<a b='&bogus;'/>".into(),
            "<a b='1' b='2'/>".into(),
            "<a>&bogus;</a>".into(),
            "<a><b>&#xZ;</b></a>".into(),
        ]
    }

    fn seeds() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".request.xml"))
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        assert!(seeds.len() >= 46, "fixtures missing");
        seeds.extend(edge_envelopes().into_iter().map(String::into_bytes));
        seeds
    }

    #[test]
    fn direct_reader_answers_as_the_tree_did() {
        for seed in seeds() {
            same_as_reference(&seed);
        }
    }

    #[test]
    fn direct_reader_answers_as_the_tree_did_on_every_cut_and_deletion() {
        for seed in seeds() {
            for i in 0..seed.len() {
                same_as_reference(&seed[..i]);
                let mut without = seed.clone();
                without.remove(i);
                same_as_reference(&without);
            }
        }
    }

    #[test]
    fn direct_reader_keeps_the_limits() {
        let limits = Limits {
            max_depth: 4,
            max_elements: 5,
            ..Limits::default()
        };
        for input in [
            envelope("<p:provisioningExecute><cmd><a/></cmd></p:provisioningExecute>"),
            envelope("<p:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><x/><y/></p:provisioningExecute>"),
        ] {
            let direct = format!("{:?}", parse_request(input.as_bytes(), &limits));
            let tree = format!("{:?}", reference::parse_request(input.as_bytes(), &limits));
            assert_eq!(direct, tree);
            assert!(direct.contains("Malformed"), "{direct}");
        }
    }
}
