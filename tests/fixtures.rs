//! Replays every `fixtures/*.request.xml` against a running server, in name order, and compares
//! the response with `fixtures/*.response.xml` after masking the volatile fields (times,
//! registration ids, activation passwords, serial numbers). The masks match only well-formed
//! values, so a malformed one still fails the comparison.
//!
//! `PROVD_BLESS=1 cargo test --test fixtures` rewrites the expected responses (on SQLite);
//! review the diff before committing it.

mod common;

use std::path::PathBuf;

use common::{backends, seeded, Backend, TestServer};
use regex::Regex;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn mask(xml: &str) -> String {
    let rules = [
        (
            r#"<value xsi:type="xsd:int">\d{10}</value><attributeID>PROVFLD_SERVER_TIME</attributeID>"#,
            r#"<value xsi:type="xsd:int">{UNIX_TIME}</value><attributeID>PROVFLD_SERVER_TIME</attributeID>"#,
        ),
        (
            r"<registrationID>[A-Za-z0-9]{8}</registrationID>",
            "<registrationID>{REGISTRATION_ID}</registrationID>",
        ),
        (
            r"<activationPassword>[A-HJ-NP-Z2-9]{9}</activationPassword>",
            "<activationPassword>{ACTIVATION_PASSWORD}</activationPassword>",
        ),
        (
            r"<serialNumber>VDS\d{7}</serialNumber>",
            "<serialNumber>{SERIAL_NUMBER}</serialNumber>",
        ),
    ];
    let mut out = xml.to_owned();
    for (pattern, replacement) in rules {
        out = Regex::new(pattern)
            .unwrap()
            .replace_all(&out, regex::NoExpand(replacement))
            .into_owned();
    }
    out
}

fn pretty(xml: &str) -> String {
    // One element per line keeps fixture diffs readable; the comparison is on this form.
    xml.replace("><", ">\n<")
}

fn replay(backend: Backend) {
    let server = TestServer::start(seeded(backend, 1));
    let bless = std::env::var("PROVD_BLESS").is_ok_and(|v| v == "1") && backend == Backend::Sqlite;
    let mut requests: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".request.xml"))
        .collect();
    requests.sort();
    assert!(requests.len() >= 18, "fixtures missing: {}", requests.len());
    let mut failures = Vec::new();
    for req in &requests {
        let name = req
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".request.xml", "");
        let expected_path = fixtures_dir().join(format!("{name}.response.xml"));
        let (status, body) = server.post(&std::fs::read_to_string(req).unwrap());
        let is_fault = body.contains("<SOAP-ENV:Fault>");
        assert_eq!(
            status,
            if is_fault { 500 } else { 200 },
            "{name} on {backend:?}: HTTP status {status} does not fit the body"
        );
        if name.contains("fault") {
            assert!(is_fault, "{name} on {backend:?} should be a SOAP Fault");
        }
        let actual = pretty(&mask(&body));
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        if expected != actual {
            failures.push(format!(
                "{name} on {backend:?}:\n--- expected\n{expected}\n--- actual\n{actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn fixtures_replay_on_every_backend() {
    for backend in backends() {
        replay(backend);
    }
}

#[test]
fn masks_only_well_formed_values() {
    assert!(mask("<registrationID>abc</registrationID>").contains("abc"));
    assert!(mask("<activationPassword>ABCDEFGH1</activationPassword>").contains("ABCDEFGH1"));
    assert!(mask("<serialNumber>VDS123</serialNumber>").contains("VDS123"));
}
