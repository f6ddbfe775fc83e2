//! The SOAP envelope parser and the commands' decoders must never panic, whatever the bytes:
//! every failure is a `WireError` (a SOAP Fault) or a `RequestError` (from `Parsed::body` or
//! `commands::decode`). The input's length
//! picks the declared Content-Type charset (the seed envelopes stay whole), so the decoding
//! step before the parser (byte-order marks, declared charsets, Latin-1, UTF-16) is fuzzed too.
//! The envelope reader, which decodes straight from the XML events, must also answer exactly
//! as the tree-based reference (`soap::request::reference`) does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provd::soap::xml::Limits;

const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("text/xml"),
    Some("text/xml; charset=utf-8"),
    Some("text/xml; charset=ISO-8859-1"),
    Some("text/xml; charset=windows-1252"),
    Some("text/xml; charset=utf-16"),
];

fuzz_target!(|data: &[u8]| {
    let content_type = CONTENT_TYPES[data.len() % CONTENT_TYPES.len()];
    if let Ok(parsed) = provd::soap::parse_http_request(data, content_type, &Limits::default()) {
        if let Ok(body) = parsed.body {
            let _ = provd::commands::decode(parsed.operation, &body);
        }
    }
    if let Ok(utf8) = provd::soap::encoding::to_utf8(data, content_type) {
        let limits = Limits::default();
        let direct = provd::soap::parse_request(utf8.as_bytes(), &limits);
        let tree = provd::soap::request::reference::parse_request(utf8.as_bytes(), &limits);
        assert_eq!(format!("{direct:?}"), format!("{tree:?}"));
    }
});
