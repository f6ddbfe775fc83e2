//! What a command reads its input through: the typed attribute reader of a
//! `provisioningExecute` call (every read marks the attribute; [`AttributeReader::finish`]
//! refuses whatever the command did not read) and the element helpers of the distinct
//! DSAPP-SRP operations. Every error names the attribute or element at fault.

use zeroize::Zeroizing;

use super::attributes::{AttributeId, AttributeSet};
use super::xml::Element;
use super::RequestError;

/// Attributes every command accepts (and ignores).
const GENERIC: &[AttributeId] = &[AttributeId::ComponentType];

/// Reads the attributes of one call. A command reads what it accepts; `finish` then refuses
/// any attribute it left unread, naming the attribute and the command.
pub struct AttributeReader<'a> {
    set: &'a AttributeSet,
    read: Vec<AttributeId>,
    command: &'static str,
}

impl<'a> AttributeReader<'a> {
    pub fn new(set: &'a AttributeSet, command: &'static str) -> Self {
        AttributeReader {
            set,
            read: Vec::with_capacity(set.ids().count()),
            command,
        }
    }

    fn mark(&mut self, id: AttributeId) {
        if !self.read.contains(&id) {
            self.read.push(id);
        }
    }

    /// Accepts an attribute without using it.
    pub fn ignore(&mut self, id: AttributeId) {
        self.mark(id);
    }

    /// Accepts every attribute given, without using any (a command that refuses the call
    /// whatever it carries).
    pub fn ignore_all(&mut self) {
        let ids: Vec<AttributeId> = self.set.ids().collect();
        for id in ids {
            self.mark(id);
        }
    }

    /// A string attribute that is present and not empty.
    pub fn present(&mut self, id: AttributeId) -> Option<&'a str> {
        self.mark(id);
        self.set.str(id).filter(|s| !s.is_empty())
    }

    /// An unsigned attribute, if present.
    pub fn unsigned(&mut self, id: AttributeId) -> Option<u32> {
        self.mark(id);
        self.set.unsigned(id)
    }

    /// A required attribute parsed into its type.
    pub fn required<T, E: std::fmt::Display>(
        &mut self,
        id: AttributeId,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, RequestError> {
        let raw = self.present(id).ok_or(RequestError::Missing(id))?;
        parse(raw).map_err(|e| bad_value(id, e))
    }

    /// An optional attribute parsed into its type.
    pub fn optional<T, E: std::fmt::Display>(
        &mut self,
        id: AttributeId,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, RequestError> {
        self.present(id)
            .map(|raw| parse(raw).map_err(|e| bad_value(id, e)))
            .transpose()
    }

    /// A secret attribute, taken as sent, in memory that is wiped when dropped.
    pub fn secret(&mut self, id: AttributeId) -> Option<Zeroizing<String>> {
        self.present(id).map(|s| Zeroizing::new(s.to_owned()))
    }

    /// Refuses the first attribute the command did not read.
    pub fn finish(self) -> Result<(), RequestError> {
        match self
            .set
            .ids()
            .find(|id| !self.read.contains(id) && !GENERIC.contains(id))
        {
            Some(id) => Err(RequestError::NotAccepted(id, self.command)),
            None => Ok(()),
        }
    }
}

/// A parse error as the error stack shows it: the attribute named once.
pub fn bad_value(id: AttributeId, e: impl std::fmt::Display) -> RequestError {
    let text = e.to_string();
    let reason = text
        .strip_prefix(id.name())
        .map(|r| r.trim_start_matches([':', ' ']).to_owned())
        .unwrap_or(text);
    RequestError::BadValue { id, reason }
}

/// The trimmed text of a child element, `None` when absent or empty.
pub fn text<'a>(el: &'a Element, local: &str) -> Option<&'a str> {
    el.child(local)
        .map(|c| c.text.trim())
        .filter(|t| !t.is_empty())
}

/// Parses an element's text; the error names the element's path.
pub fn parse_with<T, E: std::fmt::Display>(
    path: &'static str,
    raw: &str,
    f: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, RequestError> {
    f(raw).map_err(|e| RequestError::BadElement {
        path,
        reason: e.to_string(),
    })
}

/// A required child element of `el`.
pub fn child<'a>(el: &'a Element, path: &'static str) -> Result<&'a Element, RequestError> {
    el.child(path).ok_or(RequestError::MissingElement(path))
}

/// A required hex element of at most `max_bytes` bytes (exactly, when `exact`).
pub fn hex_element(
    op: &Element,
    path: &'static str,
    max_bytes: usize,
    exact: bool,
) -> Result<crate::types::HexValue, RequestError> {
    let raw = text(op, path).ok_or(RequestError::MissingElement(path))?;
    if raw.len() > 2 * max_bytes + 2 {
        return Err(RequestError::BadElement {
            path,
            reason: format!("must be at most {} hex characters", 2 * max_bytes),
        });
    }
    let value = parse_with(path, raw, crate::types::HexValue::parse)?;
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

/// Refuses an element's text longer than `max` characters.
pub fn at_most(path: &'static str, value: &str, max: usize) -> Result<(), RequestError> {
    if value.chars().count() > max {
        return Err(RequestError::BadElement {
            path,
            reason: format!("must be at most {max} characters"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::attributes::Value;

    fn set() -> AttributeSet {
        let mut s = AttributeSet::new();
        s.push(AttributeId::UserId, Value::Str("alice".into()));
        s.push(AttributeId::Domain, Value::Str("master".into()));
        s.push(AttributeId::ComponentType, Value::Str("app".into()));
        s
    }

    #[test]
    fn finish_refuses_what_was_not_read_and_names_it() {
        let s = set();
        let mut r = AttributeReader::new(&s, "PROVISIONCMD_X");
        assert_eq!(r.present(AttributeId::UserId), Some("alice"));
        assert_eq!(
            r.finish(),
            Err(RequestError::NotAccepted(
                AttributeId::Domain,
                "PROVISIONCMD_X"
            ))
        );
    }

    #[test]
    fn what_was_read_or_ignored_and_the_generic_attributes_pass() {
        let s = set();
        let mut r = AttributeReader::new(&s, "PROVISIONCMD_X");
        r.present(AttributeId::UserId);
        r.ignore(AttributeId::Domain);
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn required_names_the_missing_attribute() {
        let s = AttributeSet::new();
        let mut r = AttributeReader::new(&s, "PROVISIONCMD_X");
        assert_eq!(
            r.required(AttributeId::UserId, |v| Ok::<_, String>(v.to_owned())),
            Err(RequestError::Missing(AttributeId::UserId))
        );
    }
}
