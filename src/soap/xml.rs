//! A small, bounded XML element tree over quick-xml with namespace resolution. Envelopes are
//! small; a tree keeps the SOAP decoding simple and independent of namespace prefixes.
//! DTDs are refused outright (no entity expansion, no external fetch), and depth, element
//! count and text size are bounded.

use std::collections::HashMap;
use std::rc::Rc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::WireError;

pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Bounds on what an envelope may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_elements: usize,
    pub max_attributes_per_element: usize,
    /// Namespace declarations (`xmlns`, `xmlns:p`) on one element.
    pub max_namespace_declarations_per_element: usize,
    /// Namespace declarations in scope at once (on an element and its ancestors).
    pub max_namespaces_in_scope: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_elements: 4096,
            max_attributes_per_element: 32,
            max_namespace_declarations_per_element: 32,
            max_namespaces_in_scope: 64,
        }
    }
}

/// An expanded name: namespace URI (None for unqualified) and local name. The URI is shared
/// with its declaration, so that a long URI named by many attributes is not copied each time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QName {
    pub ns: Option<Rc<str>>,
    pub local: String,
}

impl QName {
    pub fn is(&self, ns: Option<&str>, local: &str) -> bool {
        self.ns.as_deref() == ns && self.local == local
    }
}

#[derive(Debug, Clone)]
pub struct Element {
    pub name: QName,
    /// Attributes other than namespace declarations, with expanded names.
    pub attributes: Vec<(QName, String)>,
    /// `xsi:type`, resolved against the namespaces in scope.
    pub xsi_type: Option<QName>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// The first child element with this local name, ignoring its namespace.
    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name.local == local)
    }

    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name.local == local)
    }
}

/// The namespace bindings in scope: one stack of URIs per prefix, so that a lookup costs the
/// same however many declarations are in scope.
#[derive(Default)]
struct Scope {
    /// Prefix (`""` for the default namespace) to the URIs bound to it, innermost last.
    /// Hashed with foldhash: the keys are the sender's, but at most `max_namespaces_in_scope`
    /// of them exist at once, so no collision flood can grow past that.
    bindings: HashMap<Rc<str>, Vec<Rc<str>>, foldhash::fast::RandomState>,
    /// The prefixes declared by the open elements, in order; `pushed` holds how many each
    /// element declared.
    declared: Vec<Rc<str>>,
    pushed: Vec<usize>,
}

impl Scope {
    fn lookup(&self, prefix: &str) -> Option<Rc<str>> {
        if prefix == "xml" {
            return Some(Rc::from(XML_NS));
        }
        self.bindings
            .get(prefix)
            .and_then(|uris| uris.last())
            .filter(|u| !u.is_empty())
            .cloned()
    }

    fn declare(&mut self, prefix: &str, uri: &str, limits: &Limits) -> Result<(), WireError> {
        if self.declared.len() >= limits.max_namespaces_in_scope {
            return Err(WireError::Malformed(format!(
                "more than {} namespace declarations in scope (limit max_namespaces_in_scope)",
                limits.max_namespaces_in_scope
            )));
        }
        let uri = Rc::from(uri);
        let key = match self.bindings.get_key_value(prefix) {
            Some((key, _)) => key.clone(),
            None => Rc::from(prefix),
        };
        self.bindings.entry(key.clone()).or_default().push(uri);
        self.declared.push(key);
        Ok(())
    }

    /// Drops the declarations of the element being closed.
    fn close(&mut self) {
        let n = self.pushed.pop().unwrap_or(0);
        for _ in 0..n {
            let Some(prefix) = self.declared.pop() else {
                break;
            };
            if let Some(uris) = self.bindings.get_mut(&prefix) {
                uris.pop();
                if uris.is_empty() {
                    self.bindings.remove(&prefix);
                }
            }
        }
    }

    fn resolve(&self, qname: &str, use_default: bool) -> Result<QName, WireError> {
        let (prefix, local) = match qname.split_once(':') {
            Some((p, l)) => (Some(p), l),
            None => (None, qname),
        };
        let ns = match prefix {
            Some(p) => Some(
                self.lookup(p)
                    .ok_or_else(|| WireError::Malformed(format!("undeclared prefix {p:?}")))?,
            ),
            None if use_default => self.lookup(""),
            None => None,
        };
        Ok(QName {
            ns,
            local: local.to_owned(),
        })
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, WireError> {
    std::str::from_utf8(bytes).map_err(|_| WireError::Malformed("invalid UTF-8".into()))
}

fn open(e: &BytesStart<'_>, scope: &mut Scope, limits: &Limits) -> Result<Element, WireError> {
    let mut raw_attrs: Vec<(&str, String)> = Vec::new();
    let mut pushed = 0;
    // This element's count of declarations, for `Scope::close`, kept up to date as they come.
    scope.pushed.push(0);
    for (count, attr) in e.attributes().with_checks(true).enumerate() {
        if count >= limits.max_attributes_per_element {
            return Err(WireError::Malformed(format!(
                "an element has more than {} attributes",
                limits.max_attributes_per_element
            )));
        }
        let attr = attr.map_err(|err| WireError::Malformed(err.to_string()))?;
        let key = utf8(attr.key.into_inner())?;
        let value = attr
            .unescape_value()
            .map_err(|err| WireError::Malformed(err.to_string()))?;
        let prefix = if key == "xmlns" {
            Some("")
        } else {
            key.strip_prefix("xmlns:")
        };
        match prefix {
            Some(prefix) => {
                if pushed >= limits.max_namespace_declarations_per_element {
                    return Err(WireError::Malformed(format!(
                        "an element declares more than {} namespaces \
                         (limit max_namespace_declarations_per_element)",
                        limits.max_namespace_declarations_per_element
                    )));
                }
                scope.declare(prefix, &value, limits)?;
                pushed += 1;
                if let Some(last) = scope.pushed.last_mut() {
                    *last = pushed;
                }
            }
            None => raw_attrs.push((key, value.into_owned())),
        }
    }
    let name = scope.resolve(utf8(e.name().as_ref())?, true)?;
    let mut attributes = Vec::with_capacity(raw_attrs.len());
    let mut xsi_type = None;
    for (key, value) in raw_attrs {
        let qn = scope.resolve(key, false)?;
        if qn.is(Some(XSI_NS), "type") {
            xsi_type = Some(scope.resolve(value.trim(), true)?);
        }
        attributes.push((qn, value));
    }
    Ok(Element {
        name,
        attributes,
        xsi_type,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Parses a whole document into its root element.
pub fn parse(input: &[u8], limits: &Limits) -> Result<Element, WireError> {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    let mut scope = Scope::default();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;

    let close = |stack: &mut Vec<Element>, scope: &mut Scope, root: &mut Option<Element>| {
        let done = stack.pop().expect("an open element");
        scope.close();
        match stack.last_mut() {
            Some(parent) => parent.children.push(done),
            None => *root = Some(done),
        }
    };

    loop {
        // Events borrow from the input: nothing is copied into a buffer first.
        let event = reader.read_event().map_err(|e| {
            WireError::Malformed(format!("at byte {}: {e}", reader.error_position()))
        })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(WireError::Malformed(
                        "content after the document element".into(),
                    ));
                }
                count += 1;
                if count > limits.max_elements {
                    return Err(WireError::Malformed(format!(
                        "more than {} elements",
                        limits.max_elements
                    )));
                }
                if stack.len() >= limits.max_depth {
                    return Err(WireError::Malformed(format!(
                        "nesting deeper than {} levels",
                        limits.max_depth
                    )));
                }
                let el = open(e, &mut scope, limits)?;
                stack.push(el);
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut scope, &mut root);
                }
            }
            Event::End(_) => close(&mut stack, &mut scope, &mut root),
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| WireError::Malformed(e.to_string()))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => {
                        return Err(WireError::Malformed(
                            "text outside the document element".into(),
                        ))
                    }
                }
            }
            Event::CData(c) => {
                let text = utf8(&c)?.to_owned();
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&text);
                }
            }
            Event::DocType(_) => {
                return Err(WireError::Malformed(
                    "a DOCTYPE is not allowed in a SOAP message".into(),
                ))
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(WireError::Malformed("unexpected end of document".into()));
    }
    root.ok_or_else(|| WireError::Malformed("empty document".into()))
}

/// Escapes text for element content and attribute values.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Element, WireError> {
        parse(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn resolves_any_prefix_and_xsi_type() {
        let el = p(
            r#"<a:x xmlns:a="urn:a" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"
              xmlns:s="http://www.w3.org/2001/XMLSchema"><v i:type="s:string">t&amp;u</v></a:x>"#,
        )
        .unwrap();
        assert!(el.name.is(Some("urn:a"), "x"));
        let v = el.child("v").unwrap();
        assert_eq!(v.name.ns, None);
        assert_eq!(v.text, "t&u");
        assert!(v.xsi_type.as_ref().unwrap().is(Some(XSD_NS), "string"));
    }

    #[test]
    fn default_namespace_applies_to_elements() {
        let el = p(r#"<x xmlns="urn:d"><y/></x>"#).unwrap();
        assert!(el.children[0].name.is(Some("urn:d"), "y"));
    }

    #[test]
    fn refuses_doctype_and_entities() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#;
        assert!(matches!(p(bomb), Err(WireError::Malformed(m)) if m.contains("DOCTYPE")));
        assert!(p("<x>&undefined;</x>").is_err());
    }

    #[test]
    fn bounds_depth_and_count() {
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert!(matches!(p(&deep), Err(WireError::Malformed(m)) if m.contains("nesting")));
        let wide = format!("<a>{}</a>", "<b/>".repeat(5000));
        assert!(matches!(p(&wide), Err(WireError::Malformed(m)) if m.contains("elements")));
    }

    #[test]
    fn caps_namespace_declarations_per_element_and_in_scope() {
        let decls = |n: usize, tag: &str| {
            (0..n)
                .map(|i| format!(r#" xmlns:{tag}{i}="urn:{tag}:{i}""#))
                .collect::<String>()
        };
        let limits = Limits {
            max_attributes_per_element: 64,
            ..Limits::default()
        };
        let one = format!("<a{}/>", decls(33, "p"));
        let e = parse(one.as_bytes(), &limits).unwrap_err().to_string();
        assert!(
            e.contains("more than 32 namespaces")
                && e.contains("max_namespace_declarations_per_element"),
            "{e}"
        );
        let nested = format!(
            "<a{}><b{}><c{}/></b></a>",
            decls(30, "p"),
            decls(30, "q"),
            decls(5, "r")
        );
        let e = p(&nested).unwrap_err().to_string();
        assert!(
            e.contains("more than 64 namespace declarations in scope")
                && e.contains("max_namespaces_in_scope"),
            "{e}"
        );
        // Declarations leave scope with their element: siblings may each declare up to the cap.
        let siblings = format!(
            "<a{}><b{}/><b{}/></a>",
            decls(30, "p"),
            decls(30, "q"),
            decls(30, "r")
        );
        assert!(p(&siblings).is_ok());
    }

    #[test]
    fn inner_declarations_shadow_and_are_dropped_on_close() {
        let el = p(r#"<a xmlns:x="urn:outer" xmlns="urn:d"><b xmlns:x="urn:inner" xmlns=""><x:c/><d/></b><x:e/><f/></a>"#)
            .unwrap();
        let b = &el.children[0];
        assert!(
            b.name.is(None, "b"),
            "xmlns=\"\" applies to its own element"
        );
        assert!(b.children[0].name.is(Some("urn:inner"), "c"));
        assert!(b.children[1].name.is(None, "d"));
        assert!(el.children[1].name.is(Some("urn:outer"), "e"));
        assert!(el.children[2].name.is(Some("urn:d"), "f"));
        let e = p(r#"<a><b xmlns:x="urn:x"/><x:c/></a>"#).unwrap_err();
        assert!(e.to_string().contains("undeclared prefix \"x\""), "{e}");
    }

    #[test]
    fn rejects_malformed() {
        assert!(p("<a><b></a>").is_err());
        assert!(p("<a>").is_err());
        assert!(p("").is_err());
        assert!(p("<p:a/>").is_err());
        assert!(p("<a/><b/>").is_err());
    }
}
