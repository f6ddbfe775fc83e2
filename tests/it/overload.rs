//! Issue 11: slow requests are cut off by the server, password checks saturate into a fast
//! HTTP 503, namespace floods are refused with the limit named, and refused bodies count
//! towards the per-address rate limit. No test measures time: each waits for an event (the
//! server closing a socket, an answer) with a generous upper bound.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{self, element, envelope, seeded, srp_register, TestServer};

const SERVER_TIME: &str = "<PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet/></PROV-TYPES:provisioningExecute>";

fn host_port(server: &TestServer) -> String {
    let base = server.base.trim_end_matches('/');
    base.split_once("://").map_or(base, |(_, hp)| hp).to_owned()
}

/// Sends `head` and `body_part` on a fresh connection, then reads until the server closes
/// it (bounded by a generous 60 s); returns what the server sent.
fn send_and_wait_for_close(server: &TestServer, head: &str, body_part: &[u8]) -> String {
    let mut s = TcpStream::connect(host_port(server)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body_part).unwrap();
    s.flush().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset after the answer is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the server did not close the connection within 60 s ({e}); got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn an_incomplete_request_is_closed_by_the_server() {
    let server = TestServer::start_with(
        seeded(common::Backend::Sqlite, 0),
        &[("PROVD_REQUEST_TIMEOUT_SECS", "1")],
        ureq::AgentBuilder::new().build(),
    );
    let body = envelope(SERVER_TIME);
    // Complete headers, a tenth of the body, then silence.
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let got = send_and_wait_for_close(&server, &head, &body.as_bytes()[..body.len() / 10]);
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(got.contains("request_timeout_secs"), "{got:?}");
    // Half the headers, then silence: closed too.
    let got = send_and_wait_for_close(&server, "POST / HTTP/1.1\r\nHost: x\r\n", b"");
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got:?}");
    // A complete request is answered as always.
    let (status, text) = server.post(&body);
    assert_eq!(status, 200);
    assert_eq!(element(&text, "statusCodeEnum"), Some("STAT_SUCCESS"));
    // A declared body over max_body_bytes is refused before it is sent.
    let head =
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 2000000\r\n\r\n";
    let got = send_and_wait_for_close(&server, head, b"");
    assert!(got.starts_with("HTTP/1.1 413"), "{got:?}");
    assert!(got.contains("max_body_bytes"), "{got:?}");
}

#[test]
fn a_connection_that_never_starts_its_tls_handshake_is_closed() {
    let db = seeded(common::Backend::Sqlite, 0);
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert_path = db.dir().join("cert.pem");
    let key_path = db.dir().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let server = TestServer::start_with(
        db,
        &[
            ("PROVD_TLS_CERT_FILE", cert_path.to_str().unwrap()),
            ("PROVD_TLS_KEY_FILE", key_path.to_str().unwrap()),
            ("PROVD_TLS_HANDSHAKE_TIMEOUT_SECS", "1"),
        ],
        ureq::AgentBuilder::new().build(),
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    // No ClientHello at all: the server gives up on the handshake and closes, sending nothing.
    assert_eq!(send_and_wait_for_close(&server, "", b""), "");
}

#[test]
fn saturated_password_checks_answer_503_with_retry_after() {
    // One check at a time, nobody waits: a second concurrent check is refused at once.
    let server = TestServer::start_with(
        seeded(common::Backend::Sqlite, 0),
        &[
            ("PROVD_PASSWORD_CHECKS", "1"),
            ("PROVD_PASSWORD_CHECK_QUEUE", "0"),
            ("PROVD_RATE_LIMIT_PER_MINUTE", "0"),
        ],
        ureq::AgentBuilder::new().build(),
    );
    let agent = ureq::AgentBuilder::new().build();
    let post = |body: &str| match agent
        .post(&server.base)
        .set("Content-Type", "text/xml")
        .send_string(body)
    {
        Ok(r) => (r.status(), None, r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (
            code,
            r.header("Retry-After").map(str::to_owned),
            r.into_string().unwrap(),
        ),
        Err(e) => panic!("POST: {e}"),
    };
    let register = srp_register("nobody", "whatever");
    let mut refused = None;
    // Eight calls at once, until one overlaps another (each is an Argon2 computation); at
    // most 25 rounds.
    for _ in 0..25 {
        let barrier = std::sync::Barrier::new(8);
        let answers: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        post(&register)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (status, retry_after, body) in answers {
            match status {
                200 => assert_eq!(
                    element(&body, "statusCodeEnum"),
                    Some("STAT_USER_UNKNOWN"),
                    "{body}"
                ),
                503 => refused = Some((retry_after, body)),
                other => panic!("unexpected HTTP {other}: {body}"),
            }
        }
        if refused.is_some() {
            break;
        }
    }
    let (retry_after, body) = refused.expect("a concurrent password check was refused");
    assert_eq!(retry_after.as_deref(), Some("2"));
    assert!(
        body.contains("<faultcode>SOAP-ENV:Server</faultcode>"),
        "{body}"
    );
    assert!(body.contains("saturated with password checks"), "{body}");
    // SERVER_TIME and a lone password check still go through.
    let (status, _, body) = post(&envelope(SERVER_TIME));
    assert_eq!(
        (status, element(&body, "statusCodeEnum")),
        (200, Some("STAT_SUCCESS"))
    );
    let (status, _, body) = post(&register);
    assert_eq!(
        (status, element(&body, "statusCodeEnum")),
        (200, Some("STAT_USER_UNKNOWN"))
    );
    let metrics = server.get("metrics").1;
    assert!(
        metrics.contains(r#"provd_soap_faults_total{kind="busy"}"#),
        "{metrics}"
    );
}

fn flood() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/envelope/25_namespace_flood.request.xml"
    ))
    .unwrap()
}

#[test]
fn namespace_floods_are_refused_naming_the_limit() {
    let server = TestServer::start(seeded(common::Backend::Sqlite, 0));
    let (status, body) = server.post(&flood());
    assert_eq!(status, 500);
    assert!(body.contains("SOAP-ENV:Client"), "{body}");
    assert!(
        body.contains("more than 64 namespace declarations in scope")
            && body.contains("max_namespaces_in_scope"),
        "{body}"
    );
    let many: String = (0..33)
        .map(|i| format!(r#" xmlns:p{i}="urn:p:{i}""#))
        .collect();
    let (status, body) = server.post(&envelope(&format!(
        "<PROV-TYPES:provisioningExecute{many}><cmd>PROVISIONCMD_SERVER_TIME</cmd></PROV-TYPES:provisioningExecute>"
    )));
    assert_eq!(status, 500);
    // 33 declarations are 33 attributes: the attribute cap (32) speaks first.
    assert!(body.contains("more than 32"), "{body}");
    // 4 declarations on the Envelope, 30 on the operation, 31 on attributeSet: 65 in scope.
    let decls = |n: usize, p: &str| -> String {
        (0..n)
            .map(|i| format!(r#" xmlns:{p}{i}="urn:{p}:{i}""#))
            .collect()
    };
    let nested = format!(
        "<PROV-TYPES:provisioningExecute{}><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet{}/></PROV-TYPES:provisioningExecute>",
        decls(30, "p"),
        decls(31, "q")
    );
    let (status, body) = server.post(&envelope(&nested));
    assert_eq!(status, 500);
    assert!(body.contains("max_namespaces_in_scope"), "{body}");
    // Within the caps the same declarations are fine.
    let fine = format!(
        "<PROV-TYPES:provisioningExecute{}><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet{}/></PROV-TYPES:provisioningExecute>",
        decls(30, "p"),
        decls(30, "q")
    );
    let (status, body) = server.post(&envelope(&fine));
    assert_eq!(
        (status, element(&body, "statusCodeEnum")),
        (200, Some("STAT_SUCCESS"))
    );
}

#[test]
fn refused_bodies_count_towards_the_rate_limit() {
    for backend in common::backends() {
        let server = TestServer::start_with(
            seeded(backend, 0),
            &[
                ("PROVD_RATE_LIMIT_PER_MINUTE", "1"),
                ("PROVD_RATE_LIMIT_BURST", "2"),
            ],
            ureq::AgentBuilder::new().build(),
        );
        // Two malformed bodies use up the burst...
        assert_eq!(server.post("<not xml").0, 500);
        assert_eq!(
            server.post(&envelope("<x:unknown xmlns:x=\"urn:x\"/>")).0,
            500
        );
        // ...so the next provisioning call from this address is refused.
        let (_, body) = server.post(&srp_register("testuser", "1.Password"));
        assert_eq!(
            element(&body, "statusCodeEnum"),
            Some("STAT_RATE_LIMITED"),
            "{backend:?}: {body}"
        );
    }
    // A large body is charged before it is parsed; over the limit it is not parsed at all.
    let server = TestServer::start_with(
        seeded(common::Backend::Sqlite, 0),
        &[
            ("PROVD_RATE_LIMIT_PER_MINUTE", "1"),
            ("PROVD_RATE_LIMIT_BURST", "1"),
        ],
        ureq::AgentBuilder::new().build(),
    );
    let (status, body) = server.post(&flood());
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("max_namespaces_in_scope"), "{body}");
    let (status, body) = server.post(&flood());
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("too many requests from this address"),
        "{body}"
    );
    assert!(
        body.contains("<faultcode>SOAP-ENV:Client</faultcode>"),
        "{body}"
    );
}
