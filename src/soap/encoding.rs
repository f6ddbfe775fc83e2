//! Decoding a request body to UTF-8 before the XML parser sees it.
//!
//! Accepted: UTF-8 with or without a byte-order mark; UTF-16 (LE or BE) with a byte-order mark;
//! ISO-8859-1 / Latin-1 / US-ASCII / Windows-1252 when declared, by the `charset` of the HTTP
//! `Content-Type` or by the `encoding` of the XML declaration. The order is that of XML 1.0
//! appendix F and RFC 7303: a byte-order mark first, then the Content-Type charset, then the
//! declaration. Bytes that are not UTF-8 and declare nothing, an encoding provd does not take,
//! UTF-16 without a byte-order mark, and bytes that are not valid in the declared encoding are
//! refused with a message saying which (a SOAP Client Fault). Responses stay UTF-8.
//!
//! The parser (`xml::parse`) only ever sees UTF-8: it ignores the declaration's `encoding`.
//! As the WHATWG encoding standard does (and `encoding_rs` with it), the labels ISO-8859-1,
//! Latin-1 and US-ASCII decode as Windows-1252: bytes 0x80..=0x9F become the Windows-1252
//! characters (the euro sign for 0x80) rather than C1 control characters.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

use super::WireError;

fn refuse(msg: String) -> WireError {
    WireError::Malformed(msg)
}

/// The `charset` parameter of a Content-Type value, if any.
fn content_type_charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').trim())
    })
}

/// The `encoding` pseudo-attribute of the XML declaration, read as ASCII.
fn declared_encoding(body: &[u8]) -> Option<&str> {
    let rest = body.strip_prefix(b"<?xml")?;
    if !rest.first().is_some_and(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let end = rest.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&rest[..end]).ok()?;
    let at = decl.find("encoding")?;
    let after = decl[at + "encoding".len()..].trim_start();
    let after = after.strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    let close = value.find(quote)?;
    Some(&value[..close])
}

/// The encodings provd decodes by label (UTF-16 only with a byte-order mark).
fn by_label(label: &str, source: &str) -> Result<&'static Encoding, WireError> {
    // What nearly every client sends, without the search through every label.
    if label.eq_ignore_ascii_case("utf-8") {
        return Ok(UTF_8);
    }
    match Encoding::for_label(label.as_bytes()) {
        Some(e) if e == UTF_8 || e == WINDOWS_1252 => Ok(e),
        Some(e) if e == UTF_16LE || e == UTF_16BE => Err(refuse(format!(
            "{source} declares {label}, but the body has no byte-order mark; \
             send UTF-16 with a byte-order mark, or UTF-8"
        ))),
        _ => Err(refuse(format!(
            "{source} declares encoding {label:?}, which provd does not take \
             (UTF-8, UTF-16 with a byte-order mark, ISO-8859-1, Windows-1252)"
        ))),
    }
}

fn decode<'a>(
    enc: &'static Encoding,
    bytes: &'a [u8],
    source: &str,
) -> Result<Cow<'a, str>, WireError> {
    match enc.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok(text),
        None => Err(refuse(format!(
            "the body is not valid {} ({source})",
            enc.name()
        ))),
    }
}

/// The body as UTF-8 without a byte-order mark, or a Fault saying why it cannot be decoded.
/// The XML declaration is read only when no byte-order mark or charset decided.
pub fn to_utf8<'a>(body: &'a [u8], content_type: Option<&str>) -> Result<Cow<'a, str>, WireError> {
    if let Some((enc, bom_len)) = Encoding::for_bom(body) {
        return decode(enc, &body[bom_len..], "byte-order mark");
    }
    let charset = content_type.and_then(content_type_charset);
    let (enc, source) = match charset {
        Some(label) => (
            by_label(label, "the Content-Type charset")?,
            "Content-Type charset",
        ),
        None => match declared_encoding(body) {
            Some(label) => (by_label(label, "the XML declaration")?, "XML declaration"),
            None => {
                return match std::str::from_utf8(body) {
                    Ok(text) => Ok(Cow::Borrowed(text)),
                    Err(e) => Err(refuse(format!(
                        "the body is not UTF-8 (invalid byte at {}) and declares no encoding; \
                         declare it in the XML declaration or the Content-Type charset",
                        e.valid_up_to()
                    ))),
                };
            }
        },
    };
    decode(enc, body, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(c: Cow<'_, str>) -> String {
        c.into_owned()
    }

    #[test]
    fn utf8_with_and_without_bom() {
        let plain = "<?xml version=\"1.0\"?><a>é</a>";
        assert_eq!(s(to_utf8(plain.as_bytes(), None).unwrap()), plain);
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(plain.as_bytes());
        assert_eq!(s(to_utf8(&bom, None).unwrap()), plain);
    }

    #[test]
    fn utf16_with_bom_both_orders() {
        let text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>é€</a>";
        let units: Vec<u16> = text.encode_utf16().collect();
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for u in &units {
            le.extend_from_slice(&u.to_le_bytes());
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(s(to_utf8(&le, None).unwrap()), text);
        assert_eq!(s(to_utf8(&be, None).unwrap()), text);
    }

    #[test]
    fn latin1_declared_in_the_declaration_or_the_content_type() {
        let mut body = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>".to_vec();
        body.extend_from_slice(&[0x4A, 0xFC, 0x72, 0x67, 0x65, 0x6E]); // Jürgen
        body.extend_from_slice(b"</a>");
        assert!(s(to_utf8(&body, None).unwrap()).contains("<a>Jürgen</a>"));
        let bare = [b'<', b'a', b'>', 0xE9, 0x80, b'<', b'/', b'a', b'>'];
        assert_eq!(
            s(to_utf8(&bare, Some("text/xml; charset=windows-1252")).unwrap()),
            "<a>é€</a>"
        );
        assert_eq!(
            s(to_utf8(&bare, Some("text/xml;charset=\"iso-8859-1\"")).unwrap()),
            "<a>é€</a>"
        );
    }

    #[test]
    fn content_type_wins_over_the_declaration() {
        let body = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>é</a>";
        assert_eq!(
            s(to_utf8(body.as_bytes(), Some("text/xml; charset=utf-8")).unwrap()),
            body
        );
    }

    #[test]
    fn undeclared_non_utf8_is_refused_clearly() {
        let body = [b'<', b'a', b'>', 0xE9, b'<', b'/', b'a', b'>'];
        let e = to_utf8(&body, Some("text/xml")).unwrap_err().to_string();
        assert!(
            e.contains("not UTF-8") && e.contains("declares no encoding"),
            "{e}"
        );
    }

    #[test]
    fn unsupported_and_invalid_are_refused() {
        let e = to_utf8(b"<?xml version='1.0' encoding='Shift_JIS'?><a/>", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Shift_JIS"), "{e}");
        let e = to_utf8(b"<a/>", Some("text/xml; charset=utf-16"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("byte-order mark"), "{e}");
        let e = to_utf8(
            &[b'<', b'a', b'>', 0xFF, b'<'],
            Some("text/xml; charset=utf-8"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not valid UTF-8"), "{e}");
    }
}
