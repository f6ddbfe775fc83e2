//! Replays every `fixtures/*.request.xml` against a running server, in name order, and compares
//! the response with `fixtures/*.response.xml` after masking the volatile fields (times,
//! registration ids, activation passwords, serial numbers). The masks match only well-formed
//! values, so a malformed one still fails the comparison.
//!
//! The masks and the normal form are those of `provd replay` (`src/replay.rs`).
//!
//! `PROVD_BLESS=1 cargo test --test it fixtures::` rewrites the expected responses (on SQLite);
//! review the diff before committing it.

use crate::common;

use std::path::PathBuf;

use common::{backends, seeded, Backend, TestServer};
use provd::replay::Masks;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The masks of `provd replay` (`provd::replay::DEFAULT_MASKS`): one code for both.
fn mask(xml: &str) -> String {
    Masks::provd().apply(xml)
}

fn pretty(xml: &str) -> String {
    provd::replay::pretty(xml)
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
    assert!(requests.len() >= 46, "fixtures missing: {}", requests.len());
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
    let attr = |value: &str, id: &str| {
        format!(
            r#"<value xsi:type="xsd:string">{value}</value><attributeID>PROVFLD_{id}</attributeID>"#
        )
    };
    assert!(mask(&attr("VDS0426475", "SERIAL_NO")).contains("{SERIAL_NUMBER}"));
    assert!(mask(&attr("VDS042647", "SERIAL_NO")).contains("VDS042647"));
    let blocks = |n: usize| "0123456789ABCDEF0123456789ABCDEF".repeat(n);
    assert!(mask(&attr(&blocks(5), "ACTIVATION_CODE")).contains("{ACTIVATION_CODE}"));
    assert!(mask(&attr(&blocks(4), "ACTIVATION_CODE")).contains(&blocks(4)));
    let odd = format!("{}0", blocks(5));
    assert!(mask(&attr(&odd, "ACTIVATION_CODE")).contains(&odd));
    let lower = blocks(5).to_lowercase();
    assert!(mask(&attr(&lower, "ACTIVATION_CODE")).contains(&lower));
    assert!(mask(&attr(&blocks(6), "ACTIVATION_MESSAGE")).contains("{ACTIVATION_MESSAGE}"));
    let short = &blocks(6)[..190];
    assert!(mask(&attr(short, "ACTIVATION_MESSAGE")).contains(short));
    assert!(mask(&attr("aB3dE6gH", "REGISTRATIONID")).contains("{REGISTRATION_ID}"));
    assert!(mask(&attr("aB3dE6g", "REGISTRATIONID")).contains("aB3dE6g"));
    assert!(mask(&attr("aB3dE6g_", "REGISTRATIONID")).contains("aB3dE6g_"));
    assert!(mask(&attr("ABCDEFGH2", "ACTIVATION_PASSWORD")).contains("{ACTIVATION_PASSWORD}"));
    assert!(mask(&attr("ABCDEFGH1", "ACTIVATION_PASSWORD")).contains("ABCDEFGH1"));
    assert!(mask(&attr("ABCDEFGH", "ACTIVATION_PASSWORD")).contains("ABCDEFGH"));
}
