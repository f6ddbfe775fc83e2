//! A small, bounded XML reader over quick-xml with namespace resolution: [`walk`] reads a
//! document and hands each element, with its name, attributes and `xsi:type` resolved, to a
//! [`Sink`]; [`parse`] is the sink that builds an element tree. DTDs are refused outright (no
//! entity expansion, no external fetch), and depth, element count, attributes and namespace
//! declarations are bounded. Every reader of SOAP messages goes through [`walk`], so every one
//! applies the same limits and refuses the same documents with the same messages.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use quick_xml::events::attributes::Attributes;
use quick_xml::events::Event;
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
/// by every name of one tree that is in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QName {
    pub ns: Option<Rc<str>>,
    pub local: String,
}

impl QName {
    pub fn is(&self, ns: Option<&str>, local: &str) -> bool {
        self.ns.as_deref() == ns && self.local == local
    }
}

#[derive(Debug, Clone, Default)]
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

/// Where a resolved name's namespace comes from.
#[derive(Debug, Clone, Copy)]
enum Ns {
    None,
    /// The `xml` prefix, bound by definition.
    Xml,
    /// An index into [`Scope::bindings`].
    Bound(usize),
}

/// One namespace declaration in scope.
struct Binding<'a> {
    /// `""` for the default namespace.
    prefix: &'a str,
    uri: Cow<'a, str>,
    /// The binding of the same prefix this one hides, restored to the index when this one
    /// leaves scope (kept once the index exists).
    shadows: Option<usize>,
}

/// The namespace bindings in scope: a stack of declarations, searched from the innermost while
/// it is short; past [`SHORT_SCOPE`] declarations, an index from each prefix to its innermost
/// binding takes over, so that a lookup costs the same however many are in scope. Prefixes
/// and URIs borrow from the document (a URI is copied only when it holds an entity).
#[derive(Default)]
struct Scope<'a> {
    bindings: Vec<Binding<'a>>,
    /// Prefix to the index of its innermost binding, once more than [`SHORT_SCOPE`]
    /// declarations were in scope at once. Hashed with foldhash: the keys are the sender's, but
    /// at most `max_namespaces_in_scope` of them exist at once, so no collision flood can grow
    /// past that.
    innermost: Option<HashMap<&'a str, usize, foldhash::fast::RandomState>>,
    /// The depth and number of declarations of each open element that declared any,
    /// innermost last.
    declared: Vec<(usize, usize)>,
}

/// Up to this many declarations in scope, a lookup searches them; beyond, it hashes.
const SHORT_SCOPE: usize = 8;

impl<'a> Scope<'a> {
    fn lookup(&self, prefix: &str) -> Option<Ns> {
        if prefix == "xml" {
            return Some(Ns::Xml);
        }
        let i = match &self.innermost {
            Some(index) => *index.get(prefix)?,
            None => self.bindings.iter().rposition(|b| b.prefix == prefix)?,
        };
        (!self.bindings[i].uri.is_empty()).then_some(Ns::Bound(i))
    }

    fn uri(&self, ns: Ns) -> Option<&str> {
        match ns {
            Ns::None => None,
            Ns::Xml => Some(XML_NS),
            Ns::Bound(i) => Some(&self.bindings[i].uri),
        }
    }

    fn declare(
        &mut self,
        depth: usize,
        prefix: &'a str,
        uri: Cow<'a, str>,
        limits: &Limits,
    ) -> Result<(), WireError> {
        if self.bindings.len() >= limits.max_namespaces_in_scope {
            return Err(WireError::Malformed(format!(
                "more than {} namespace declarations in scope (limit max_namespaces_in_scope)",
                limits.max_namespaces_in_scope
            )));
        }
        if self.innermost.is_none() && self.bindings.len() >= SHORT_SCOPE {
            let mut index = HashMap::default();
            for (i, b) in self.bindings.iter_mut().enumerate() {
                b.shadows = index.insert(b.prefix, i);
            }
            self.innermost = Some(index);
        }
        let shadows = match &mut self.innermost {
            Some(index) => index.insert(prefix, self.bindings.len()),
            None => None,
        };
        self.bindings.push(Binding {
            prefix,
            uri,
            shadows,
        });
        match self.declared.last_mut() {
            Some((d, n)) if *d == depth => *n += 1,
            _ => self.declared.push((depth, 1)),
        }
        Ok(())
    }

    /// Drops the declarations of the element at `depth`, which is being closed.
    fn close(&mut self, depth: usize) {
        let n = match self.declared.last() {
            Some(&(d, n)) if d == depth => n,
            _ => return,
        };
        self.declared.pop();
        for _ in 0..n {
            let Some(b) = self.bindings.pop() else {
                break;
            };
            if let Some(index) = &mut self.innermost {
                match b.shadows {
                    Some(i) => index.insert(b.prefix, i),
                    None => index.remove(b.prefix),
                };
            }
        }
    }

    /// Splits a qualified name and resolves its prefix; an unprefixed name takes the default
    /// namespace when `use_default`.
    fn resolve<'n>(&self, qname: &'n str, use_default: bool) -> Result<(Ns, &'n str), WireError> {
        // Names are short: a plain search for the colon beats the general string searcher.
        let colon = qname.bytes().position(|b| b == b':');
        match colon.map(|at| (&qname[..at], &qname[at + 1..])) {
            Some((p, local)) => match self.lookup(p) {
                Some(ns) => Ok((ns, local)),
                None => Err(WireError::Malformed(format!("undeclared prefix {p:?}"))),
            },
            None if use_default => Ok((self.lookup("").unwrap_or(Ns::None), qname)),
            None => Ok((Ns::None, qname)),
        }
    }
}

/// One attribute other than a namespace declaration.
struct Attr<'a> {
    /// As written; `ns` and `local` are its resolution, once the element's declarations are
    /// all known.
    key: &'a str,
    ns: Ns,
    local: &'a str,
    value: Cow<'a, str>,
}

/// An element's start as a [`Sink`] sees it: its name, attributes and `xsi:type`, resolved.
pub struct Tag<'a, 's> {
    scope: &'s Scope<'a>,
    ns: Ns,
    local: &'a str,
    attributes: &'s [Attr<'a>],
    xsi_type: Option<(Ns, &'s str)>,
}

impl<'a, 's> Tag<'a, 's> {
    /// The element's namespace URI.
    pub fn ns(&self) -> Option<&'s str> {
        self.scope.uri(self.ns)
    }

    pub fn local(&self) -> &'a str {
        self.local
    }

    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns() == Some(ns)
    }

    /// Attributes other than namespace declarations: namespace URI, local name, value.
    pub fn attributes(&self) -> impl Iterator<Item = (Option<&'s str>, &'a str, &'s str)> + '_ {
        self.attributes
            .iter()
            .map(|a| (self.scope.uri(a.ns), a.local, &*a.value))
    }

    /// `xsi:type`: namespace URI and local name.
    pub fn xsi_type(&self) -> Option<(Option<&'s str>, &'s str)> {
        self.xsi_type.map(|(ns, local)| (self.scope.uri(ns), local))
    }
}

/// What [`walk`] reports a document to, in document order. Text is reported only inside the
/// document element, and only when the sink wants it for the innermost open element (text
/// that is not wanted is still checked).
pub trait Sink<'a> {
    fn start(&mut self, tag: &Tag<'a, '_>);
    fn end(&mut self);
    /// Whether the innermost open element's text is wanted.
    fn wants_text(&self) -> bool;
    /// Text or CDATA directly inside the innermost open element, entities expanded.
    fn text(&mut self, text: Cow<'a, str>);
}

/// `part`, which quick-xml cut from `input`, as a slice of `input` (so that it lives as long).
fn within<'a>(input: &'a str, part: &[u8]) -> Result<&'a str, WireError> {
    (part.as_ptr() as usize)
        .checked_sub(input.as_ptr() as usize)
        .and_then(|start| input.get(start..start.checked_add(part.len())?))
        .ok_or_else(|| WireError::Malformed("the XML reader returned copied data".into()))
}

fn unescape(raw: &str) -> Result<Cow<'_, str>, WireError> {
    quick_xml::escape::unescape(raw).map_err(|e| WireError::Malformed(e.to_string()))
}

fn too_many_attributes(limits: &Limits) -> WireError {
    WireError::Malformed(format!(
        "an element has more than {} attributes",
        limits.max_attributes_per_element
    ))
}

/// At most this many attributes are read by [`simple_attributes`].
const SIMPLE_ATTRIBUTES: usize = 16;

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\r' | b'\n' | b'\t')
}

/// The attributes of a tag (`raw`, from byte `from` on) when they take the plain form only:
/// `key="value"` or `key='value'`, whitespace around `=` and between them, no key twice, at
/// most [`SIMPLE_ATTRIBUTES`]; `None` for anything else, which quick-xml's attribute reader then
/// reads, with its errors. Wherever this answers, it answers as that reader (with its
/// duplicate check) does: the same keys and raw values, in order.
fn simple_attributes<'a>(
    raw: &'a str,
    from: usize,
    out: &mut [(&'a str, &'a str); SIMPLE_ATTRIBUTES],
) -> Option<usize> {
    let b = raw.as_bytes();
    let skip_space = |mut i: usize| {
        while i < b.len() && is_xml_space(b[i]) {
            i += 1;
        }
        i
    };
    let mut n = 0;
    let mut i = from;
    loop {
        i = skip_space(i);
        if i >= b.len() {
            return Some(n);
        }
        // As quick-xml does, the key's first byte is taken whatever it is (even `=`).
        let key_start = i;
        i += 1;
        while i < b.len() && b[i] != b'=' && !is_xml_space(b[i]) {
            i += 1;
        }
        let key = raw.get(key_start..i)?;
        i = skip_space(i);
        if b.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_space(i + 1);
        let quote = *b.get(i).filter(|q| **q == b'"' || **q == b'\'')?;
        let value_start = i + 1;
        let value_end = value_start + raw.get(value_start..)?.find(char::from(quote))?;
        let value = raw.get(value_start..value_end)?;
        i = value_end + 1;
        if n == SIMPLE_ATTRIBUTES || out[..n].iter().any(|(k, _)| *k == key) {
            return None;
        }
        out[n] = (key, value);
        n += 1;
    }
}

/// Whether [`simple_attributes`] reads the attributes of the tag `raw` (its name ends at the
/// first XML whitespace) as quick-xml's reader does, where it reads them at all. For the
/// tests and the `attributes` fuzz target (cargo fuzz builds with `--cfg fuzzing`); not in a
/// release build.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub fn simple_attributes_agree(raw: &str) -> bool {
    let from = raw.bytes().position(is_xml_space).unwrap_or(raw.len());
    let mut out = [("", ""); SIMPLE_ATTRIBUTES];
    let Some(n) = simple_attributes(raw, from, &mut out) else {
        return true;
    };
    let quick: Option<Vec<(&[u8], &[u8])>> = Attributes::new(raw, from)
        .map(|a| {
            let a = a.ok()?;
            match a.value {
                Cow::Borrowed(v) => Some((a.key.into_inner(), v)),
                Cow::Owned(_) => None,
            }
        })
        .collect();
    let simple: Vec<(&[u8], &[u8])> = out[..n]
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    quick == Some(simple)
}

/// The local part of an `xsi:type` value (its prefix was resolved when it was read).
fn type_local(value: &str) -> &str {
    let value = value.trim();
    value.split_once(':').map_or(value, |(_, local)| local)
}

/// Reads an element's attributes: declares its namespaces (at `depth`) and keeps the others
/// in `attrs`; then resolves its name, the attributes' names and `xsi:type`, in that order.
fn open<'a, 's>(
    input: &'a str,
    raw: &[u8],
    name_len: usize,
    depth: usize,
    scope: &'s mut Scope<'a>,
    attrs: &'s mut Vec<Attr<'a>>,
    limits: &Limits,
) -> Result<Tag<'a, 's>, WireError> {
    let raw = within(input, raw)?;
    let qname = raw.get(..name_len).unwrap_or(raw);
    attrs.clear();
    let mut pushed = 0;
    let mut add = |count: usize, key: &'a str, value: &'a str| -> Result<(), WireError> {
        if count >= limits.max_attributes_per_element {
            return Err(too_many_attributes(limits));
        }
        let value = unescape(value)?;
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
                scope.declare(depth, prefix, value, limits)?;
                pushed += 1;
            }
            None => attrs.push(Attr {
                key,
                ns: Ns::None,
                local: key,
                value,
            }),
        }
        Ok(())
    };
    // A tag that is only its name has no attributes to read.
    if raw.len() > name_len {
        let mut simple = [("", ""); SIMPLE_ATTRIBUTES];
        match simple_attributes(raw, name_len, &mut simple) {
            Some(n) => {
                for (count, &(key, value)) in simple[..n].iter().enumerate() {
                    add(count, key, value)?;
                }
            }
            None => {
                for (count, attr) in Attributes::new(raw, name_len).enumerate() {
                    if count >= limits.max_attributes_per_element {
                        return Err(too_many_attributes(limits));
                    }
                    let attr = attr.map_err(|err| WireError::Malformed(err.to_string()))?;
                    let key = within(input, attr.key.into_inner())?;
                    let value = within(input, &attr.value)?;
                    add(count, key, value)?;
                }
            }
        }
    }
    let scope = &*scope;
    let (ns, local) = scope.resolve(qname, true)?;
    let mut xsi_type = None;
    for (i, attr) in attrs.iter_mut().enumerate() {
        (attr.ns, attr.local) = scope.resolve(attr.key, false)?;
        if attr.local == "type" && scope.uri(attr.ns) == Some(XSI_NS) {
            // The last one given is the element's type; each is resolved, in order.
            xsi_type = Some((scope.resolve(attr.value.trim(), true)?.0, i));
        }
    }
    let attrs = &*attrs;
    Ok(Tag {
        scope,
        ns,
        local,
        attributes: attrs,
        xsi_type: xsi_type.map(|(ns, i)| (ns, type_local(&attrs[i].value))),
    })
}

/// Reads a whole document, reporting it to `sink`. Every error is a [`WireError::Malformed`],
/// the first one in document order.
pub fn walk<'a>(
    input: &'a str,
    limits: &Limits,
    sink: &mut impl Sink<'a>,
) -> Result<(), WireError> {
    let mut reader = Reader::from_str(input);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    let mut scope = Scope::default();
    let mut attrs: Vec<Attr<'a>> = Vec::new();
    let mut depth = 0usize;
    let mut closed_root = false;
    let mut count = 0usize;

    loop {
        // Events borrow from the input: nothing is copied into a buffer first.
        let event = reader.read_event().map_err(|e| {
            WireError::Malformed(format!("at byte {}: {e}", reader.error_position()))
        })?;
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                sink.end();
                scope.close(depth);
                depth -= 1;
                closed_root = depth == 0;
                continue;
            }
            Event::Text(t) => {
                let raw = within(input, &t.into_inner())?;
                if depth == 0 {
                    if !unescape(raw)?.trim().is_empty() {
                        return Err(WireError::Malformed(
                            "text outside the document element".into(),
                        ));
                    }
                } else if sink.wants_text() {
                    sink.text(unescape(raw)?);
                } else if raw.contains('&') {
                    // Not wanted, but an entity in it must still be one.
                    unescape(raw)?;
                }
                continue;
            }
            Event::CData(c) => {
                let text = within(input, &c.into_inner())?;
                if depth > 0 && sink.wants_text() {
                    sink.text(Cow::Borrowed(text));
                }
                continue;
            }
            Event::DocType(_) => {
                return Err(WireError::Malformed(
                    "a DOCTYPE is not allowed in a SOAP message".into(),
                ))
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
            Event::Eof => break,
        };
        if closed_root {
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
        if depth >= limits.max_depth {
            return Err(WireError::Malformed(format!(
                "nesting deeper than {} levels",
                limits.max_depth
            )));
        }
        depth += 1;
        let name_len = e.name().as_ref().len();
        let tag = open(input, &e, name_len, depth, &mut scope, &mut attrs, limits)?;
        sink.start(&tag);
        if empty {
            sink.end();
            scope.close(depth);
            depth -= 1;
            closed_root = depth == 0;
        }
    }
    if depth != 0 {
        return Err(WireError::Malformed("unexpected end of document".into()));
    }
    if !closed_root {
        return Err(WireError::Malformed("empty document".into()));
    }
    Ok(())
}

/// The [`Sink`] that builds an element tree.
#[derive(Default)]
pub struct TreeBuilder {
    stack: Vec<Element>,
    root: Option<Element>,
    /// Each namespace URI once, shared by the names in it.
    uris: HashSet<Rc<str>, foldhash::fast::RandomState>,
}

impl TreeBuilder {
    fn uri(&mut self, uri: Option<&str>) -> Option<Rc<str>> {
        let uri = uri?;
        if let Some(shared) = self.uris.get(uri) {
            return Some(shared.clone());
        }
        let shared: Rc<str> = Rc::from(uri);
        self.uris.insert(shared.clone());
        Some(shared)
    }

    /// The element that was opened first and has been closed.
    pub fn finish(self) -> Option<Element> {
        self.root
    }
}

impl<'a> Sink<'a> for TreeBuilder {
    fn start(&mut self, tag: &Tag<'a, '_>) {
        let name = QName {
            ns: self.uri(tag.ns()),
            local: tag.local().to_owned(),
        };
        let attributes = tag
            .attributes()
            .map(|(ns, local, value)| {
                let name = QName {
                    ns: self.uri(ns),
                    local: local.to_owned(),
                };
                (name, value.to_owned())
            })
            .collect();
        let xsi_type = tag.xsi_type().map(|(ns, local)| QName {
            ns: self.uri(ns),
            local: local.to_owned(),
        });
        self.stack.push(Element {
            name,
            attributes,
            xsi_type,
            children: Vec::new(),
            text: String::new(),
        });
    }

    fn end(&mut self) {
        let Some(done) = self.stack.pop() else {
            return;
        };
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(done),
            None => self.root = Some(done),
        }
    }

    fn wants_text(&self) -> bool {
        true
    }

    fn text(&mut self, text: Cow<'a, str>) {
        if let Some(el) = self.stack.last_mut() {
            el.text.push_str(&text);
        }
    }
}

/// Parses a whole document into its root element. The document must be UTF-8.
pub fn parse(input: &[u8], limits: &Limits) -> Result<Element, WireError> {
    let input =
        std::str::from_utf8(input).map_err(|_| WireError::Malformed("invalid UTF-8".into()))?;
    let mut tree = TreeBuilder::default();
    walk(input, limits, &mut tree)?;
    tree.finish()
        .ok_or_else(|| WireError::Malformed("empty document".into()))
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

    fn simple_agrees(raw: &str) {
        assert!(simple_attributes_agree(raw), "{raw:?}");
    }

    #[test]
    fn simple_attributes_read_as_quick_xml_does() {
        let tags = [
            "a",
            "a ",
            r#"a b="1""#,
            r#"a b = '1' c="2"  "#,
            "a\tb\r\n=\n\"x'y\"\tc='\"'",
            r#"a b="1"c="2""#,
            r#"a ="1""#,
            r#"a =="1""#,
            r#"a b=="1""#,
            r#"a b="1" b="2""#,
            r#"a b"#,
            r#"a b="#,
            r#"a b=1"#,
            r#"a b="1"#,
            r#"a b c="1""#,
            r#"a b="1"/"#,
            r#"a é="ü" x:y="&amp;""#,
            r#"a b='1' = "2""#,
        ];
        for tag in tags {
            simple_agrees(tag);
            for i in 0..tag.len() {
                if tag.is_char_boundary(i) {
                    simple_agrees(&tag[..i]);
                    let mut without = tag.to_string();
                    without.remove(i);
                    simple_agrees(&without);
                }
            }
        }
        let many: String = (0..20).map(|i| format!(" k{i}='v'")).collect();
        simple_agrees(&format!("a{many}"));
        let mut out = [("", ""); SIMPLE_ATTRIBUTES];
        assert_eq!(simple_attributes(r#"a b="1" c='2'"#, 1, &mut out), Some(2));
        assert_eq!(out[1], ("c", "2"));
        assert_eq!(simple_attributes(&format!("a{many}"), 1, &mut out), None);
    }

    #[test]
    fn simple_attributes_read_the_fixtures_tags_as_quick_xml_does() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().ends_with(".xml") {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap();
            for tag in text.split('<').filter_map(|t| t.split('>').next()) {
                let tag = tag.trim_end_matches('/');
                simple_agrees(tag);
                for (i, _) in tag.char_indices() {
                    simple_agrees(&tag[..i]);
                    for edit in ["", "=", "\"", "'", " ", "\n"] {
                        let mut changed = tag.to_string();
                        changed.replace_range(
                            i..i + tag[i..].chars().next().unwrap().len_utf8(),
                            edit,
                        );
                        simple_agrees(&changed);
                        let mut inserted = tag.to_string();
                        inserted.insert_str(i, edit);
                        simple_agrees(&inserted);
                    }
                }
            }
        }
    }

    #[test]
    fn shadowing_holds_across_the_switch_to_the_index() {
        // b's x shadows a's before the index exists; c's declarations build it; closing b
        // must give x back to a's binding.
        let el = p(
            r#"<a xmlns:x="urn:outer" xmlns:p1="urn:1" xmlns:p2="urn:2" xmlns:p3="urn:3">
              <b xmlns:x="urn:inner"><c xmlns:q1="urn:q1" xmlns:q2="urn:q2" xmlns:q3="urn:q3"
              xmlns:q4="urn:q4" xmlns:x="urn:innermost"><x:d q4:t="1"/></c><x:f/></b><x:e/></a>"#,
        )
        .unwrap();
        let b = &el.children[0];
        let d = &b.children[0].children[0];
        assert!(d.name.is(Some("urn:innermost"), "d"));
        assert!(d.attributes[0].0.is(Some("urn:q4"), "t"));
        assert!(b.children[1].name.is(Some("urn:inner"), "f"));
        assert!(el.children[1].name.is(Some("urn:outer"), "e"));
        let e = p(
            r#"<a xmlns:p1="urn:1" xmlns:p2="urn:2" xmlns:p3="urn:3" xmlns:p4="urn:4"
              xmlns:p5="urn:5" xmlns:p6="urn:6" xmlns:p7="urn:7" xmlns:p8="urn:8">
              <b xmlns:p9="urn:9"/><p9:c/></a>"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("undeclared prefix \"p9\""), "{e}");
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
