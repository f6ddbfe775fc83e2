//! End-to-end behaviour over HTTP against a real `provd serve`, on every backend.

use crate::common;

use common::{backends, cli, cli_result, element, envelope, seeded, srp_register, TestServer};

#[test]
fn wsdl_is_served_with_the_real_address_and_its_schemas() {
    let server = TestServer::start(seeded(common::Backend::Sqlite, 0));
    let (status, wsdl) = server.get("?wsdl");
    assert_eq!(status, 200);
    assert!(
        wsdl.contains(&format!("location=\"{}\"", server.base)),
        "address not rewritten"
    );
    for op in [
        "provisioningExecute",
        "dsappSRPRegister",
        "dsappSRPGenerateEphemeralKey",
        "dsappSRPGenerateActivationData",
        "dsappSRPActivate",
    ] {
        assert!(wsdl.contains(&format!("name=\"{op}\"")), "{op} missing");
    }
    for schema in ["BasicTypes.xsd", "ProvisioningTypes.xsd"] {
        let (status, body) = server.get(&format!("schemas/{schema}"));
        assert_eq!(status, 200, "{schema}");
        assert!(body.contains("<xsd:schema"), "{schema}");
    }
    assert_eq!(server.get("schemas/Nope.xsd").0, 404);
    assert_eq!(server.get("health").0, 200);
}

#[test]
fn registration_returns_a_checked_activation_password_and_binds_the_authenticator() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 2));
        let (status, body) = server.post(&srp_register("testuser", "1.Password"));
        assert_eq!(status, 200, "{body}");
        let password = element(&body, "activationPassword").unwrap();
        assert!(
            provd::protocol::srp::activation_password_is_valid(password),
            "{password}"
        );
        let serial = element(&body, "serialNumber").unwrap().to_owned();
        let first_id = element(&body, "registrationID").unwrap().to_owned();

        // A second registration reuses the user's authenticator and gets a new id.
        let (_, again) = server.post(&srp_register("testuser", "1.Password"));
        assert_eq!(element(&again, "serialNumber"), Some(serial.as_str()));
        assert_ne!(element(&again, "registrationID"), Some(first_id.as_str()));

        let shown = cli(
            &server.db,
            &["--json", "authenticator", "show", &serial],
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(v["authenticator"]["user_id"], "testuser", "{backend:?}");
        assert_eq!(v["authenticator"]["status"], "assigned", "{backend:?}");
    }
}

#[test]
fn wrong_passwords_lock_the_user_and_every_call_is_audited() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        for _ in 0..5 {
            let (_, body) = server.post(&srp_register("testuser", "wrong"));
            assert_eq!(
                element(&body, "statusCodeEnum"),
                Some("STAT_INVCREDENTIALS")
            );
        }
        // Locked now: even the right password is refused, and says why.
        let (_, body) = server.post(&srp_register("testuser", "1.Password"));
        assert_eq!(
            element(&body, "statusCodeEnum"),
            Some("STAT_LOCKED"),
            "{backend:?}"
        );
        let (_, body) = server.post(&srp_register("nobody", "x"));
        assert_eq!(element(&body, "statusCodeEnum"), Some("STAT_USER_UNKNOWN"));

        let audit = cli(
            &server.db,
            &["--json", "audit", "list", "--limit", "100"],
            None,
        );
        let rows: Vec<serde_json::Value> = serde_json::from_str(&audit).unwrap();
        // Admin commands of the setup are audited too (as `cli ...`): not part of this check.
        let rows: Vec<serde_json::Value> = rows
            .into_iter()
            .filter(|r| !r["command"].as_str().unwrap_or("").starts_with("cli "))
            .collect();
        let count = |s: &str| rows.iter().filter(|r| r["status"] == s).count();
        assert_eq!(count("STAT_INVCREDENTIALS"), 5, "{backend:?}");
        assert_eq!(count("STAT_LOCKED"), 1);
        assert_eq!(count("STAT_USER_UNKNOWN"), 1);
        assert!(rows.iter().all(|r| r["command"] == "dsappSRPRegister"));
        assert!(rows.iter().all(|r| r["client_addr"] == "127.0.0.1"));
        // No password, right or wrong, reaches the audit trail.
        assert!(
            !audit.contains("1.Password") && !audit.contains("wrong\""),
            "{audit}"
        );

        // The administrator unlocks; the right password works again.
        cli(&server.db, &["user", "unlock", "--user", "testuser"], None);
        let (_, body) = server.post(&srp_register("testuser", "1.Password"));
        assert_eq!(
            element(&body, "statusCodeEnum"),
            Some("STAT_SUCCESS"),
            "{body}"
        );
    }
}

#[test]
fn the_last_free_authenticator_goes_to_exactly_one_of_two_racing_users() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let barrier = std::sync::Barrier::new(2);
        let results: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = [("testuser", "1.Password"), ("second", "2.Password")]
                .into_iter()
                .map(|(u, p)| {
                    let server = &server;
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let (_, body) = server.post(&srp_register(u, p));
                        element(&body, "statusCodeEnum").unwrap().to_owned()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = results.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["STAT_DIGIPASS_NOT_AVAILABLE", "STAT_SUCCESS"],
            "{backend:?}"
        );
    }
}

#[test]
fn oversized_bodies_are_refused_before_parsing() {
    let server = TestServer::start(seeded(common::Backend::Sqlite, 0));
    let padding = "x".repeat(2 * 1024 * 1024);
    let (status, _) = server.post(&envelope(&format!("<!-- {padding} -->")));
    assert_eq!(status, 413);
}

#[test]
fn import_is_all_or_nothing_and_names_the_bad_record() {
    for backend in backends() {
        let db = seeded(backend, 0);
        let good = db.dir().join("good.csv");
        std::fs::write(
            &good,
            "serial_no,type,applications,key,license_limit\nABC0000001,DIGIPASS APP,RESPONSE_ONLY,,1\nABC0000002,,,00112233445566778899AABBCCDDEEFF,5\n",
        )
        .unwrap();
        cli(
            &db,
            &["authenticator", "import", "--file", good.to_str().unwrap()],
            None,
        );

        // One new serial and one already present: nothing of the file is written.
        let clash = db.dir().join("clash.json");
        std::fs::write(
            &clash,
            r#"[{"serial_no":"ABC0000003"},{"serial_no":"ABC0000002"}]"#,
        )
        .unwrap();
        let (ok, _, err) = cli_result(
            &db,
            &["authenticator", "import", "--file", clash.to_str().unwrap()],
            None,
        );
        assert!(!ok);
        assert!(err.contains("ABC0000002"), "{err}");

        let bad = db.dir().join("bad.csv");
        std::fs::write(&bad, "serial_no\nABC0000004\nSHORT\n").unwrap();
        let (ok, _, err) = cli_result(
            &db,
            &["authenticator", "import", "--file", bad.to_str().unwrap()],
            None,
        );
        assert!(!ok);
        assert!(err.contains("record 2") && err.contains("SHORT"), "{err}");

        let list = cli(&db, &["--json", "authenticator", "list"], None);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
        let serials: Vec<&str> = rows
            .iter()
            .map(|r| r["serial_no"].as_str().unwrap())
            .collect();
        assert_eq!(serials, ["ABC0000001", "ABC0000002"], "{backend:?}");
        assert_eq!(rows[1]["license_limit"], 5);
    }
}

#[test]
fn user_admin_round_trip() {
    for backend in backends() {
        let db = seeded(backend, 0);
        let (ok, _, err) = cli_result(&db, &["user", "add", "--user", "testuser"], None);
        assert!(!ok && err.contains("already exists"), "{err}");
        cli(
            &db,
            &[
                "user",
                "set-password",
                "--user",
                "second",
                "--password-stdin",
            ],
            Some("n3w\n"),
        );
        let shown = cli(&db, &["--json", "user", "show", "--user", "second"], None);
        assert!(
            !shown.contains("argon2"),
            "the hash must not be shown: {shown}"
        );
        cli(&db, &["user", "delete", "--user", "second"], None);
        let list = cli(&db, &["--json", "user", "list"], None);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
        assert_eq!(rows.len(), 1, "{backend:?}");
        assert_eq!(rows[0]["user_id"], "testuser");
    }
}

#[test]
fn https_is_served_when_a_certificate_is_configured() {
    let db = seeded(common::Backend::Sqlite, 0);
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert_path = db.dir().join("cert.pem");
    let key_path = db.dir().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let agent = ureq::AgentBuilder::new()
        .tls_config(std::sync::Arc::new(tls))
        .build();
    let server = TestServer::start_with(
        db,
        &[
            ("PROVD_TLS_CERT_FILE", cert_path.to_str().unwrap()),
            ("PROVD_TLS_KEY_FILE", key_path.to_str().unwrap()),
        ],
        agent,
    );
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let (status, body) = server.post(&common::envelope(
        "<PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet/></PROV-TYPES:provisioningExecute>",
    ));
    assert_eq!(status, 200);
    assert_eq!(element(&body, "statusCodeEnum"), Some("STAT_SUCCESS"));
    // The WSDL advertises the https address.
    assert!(server
        .get("?wsdl")
        .1
        .contains("location=\"https://127.0.0.1:"));
    // Plain HTTP to the TLS port is not answered as SOAP.
    let plain = server.base.replacen("https://", "http://", 1);
    assert!(ureq::post(&plain).send_string("x").is_err());
}

#[test]
fn metrics_count_calls_by_command_and_status() {
    let server = TestServer::start(seeded(common::Backend::Sqlite, 0));
    server.post(&srp_register("testuser", "wrong"));
    server.post(&srp_register("testuser", "wrong"));
    server.post("<not xml");
    let (status, text) = server.get("metrics");
    assert_eq!(status, 200);
    assert!(
        text.contains(
            r#"provd_requests_total{command="dsappSRPRegister",status="STAT_INVCREDENTIALS"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"provd_soap_faults_total{kind="malformed"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"provd_request_duration_seconds_count{command="dsappSRPRegister"} 2"#));
    assert!(!text.contains("wrong"), "no request value in metrics");
}

#[test]
fn calls_over_the_rate_limit_are_refused_per_address_and_audited() {
    let server = TestServer::start_with(
        seeded(common::Backend::Sqlite, 1),
        &[
            ("PROVD_RATE_LIMIT_PER_MINUTE", "1"),
            ("PROVD_RATE_LIMIT_BURST", "2"),
        ],
        ureq::AgentBuilder::new().build(),
    );
    let statuses: Vec<String> = (0..3)
        .map(|_| {
            let (_, body) = server.post(&srp_register("testuser", "wrong"));
            element(&body, "statusCodeEnum").unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        statuses,
        [
            "STAT_INVCREDENTIALS",
            "STAT_INVCREDENTIALS",
            "STAT_RATE_LIMITED"
        ]
    );
    // The refused call did not reach the password check: only two failures were counted.
    let user = cli(
        &server.db,
        &["--json", "user", "show", "--user", "testuser"],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&user).unwrap();
    assert_eq!(v["failure_count"], 2);
    // SERVER_TIME is not limited.
    let (_, body) = server.post(&envelope(
        "<PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet/></PROV-TYPES:provisioningExecute>",
    ));
    assert_eq!(element(&body, "statusCodeEnum"), Some("STAT_SUCCESS"));
    let audit = cli(&server.db, &["--json", "audit", "list"], None);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&audit).unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r["status"] == "STAT_RATE_LIMITED")
            .count(),
        1
    );
}

/// The status of a `dsappSRPRegister` with a wrong password sent with `X-Forwarded-For`.
fn register_forwarded_for(server: &TestServer, forwarded_for: &str) -> String {
    let (_, body) = server.post_with(
        &srp_register("testuser", "wrong"),
        &[("X-Forwarded-For", forwarded_for)],
    );
    element(&body, "statusCodeEnum").unwrap().to_owned()
}

fn audited_client_addrs(server: &TestServer) -> Vec<String> {
    let audit = cli(&server.db, &["--json", "audit", "list"], None);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&audit).unwrap();
    let mut addrs: Vec<String> = rows
        .iter()
        .map(|r| r["client_addr"].as_str().unwrap().to_owned())
        .filter(|a| !a.starts_with("cli:"))
        .collect();
    addrs.sort();
    addrs
}

#[test]
fn behind_a_trusted_proxy_x_forwarded_for_is_the_client_address() {
    let one_call = [
        ("PROVD_RATE_LIMIT_PER_MINUTE", "1"),
        ("PROVD_RATE_LIMIT_BURST", "1"),
    ];
    // The loopback peer (the test, standing in for a reverse proxy) is trusted: each
    // forwarded address has its own bucket.
    let server = TestServer::start_with(
        seeded(common::Backend::Sqlite, 0),
        &[
            one_call[0],
            one_call[1],
            ("PROVD_TRUSTED_PROXIES", "127.0.0.1"),
        ],
        ureq::AgentBuilder::new().build(),
    );
    assert_eq!(
        register_forwarded_for(&server, "192.0.2.1"),
        "STAT_INVCREDENTIALS"
    );
    assert_eq!(
        register_forwarded_for(&server, "192.0.2.2"),
        "STAT_INVCREDENTIALS"
    );
    assert_eq!(
        register_forwarded_for(&server, "192.0.2.1"),
        "STAT_RATE_LIMITED"
    );
    // A client cannot escape its bucket by prepending an address of its own choosing.
    assert_eq!(
        register_forwarded_for(&server, "198.51.100.7, 192.0.2.2"),
        "STAT_RATE_LIMITED"
    );
    assert_eq!(
        audited_client_addrs(&server),
        ["192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2"]
    );

    // Nothing trusted (the default): the header is ignored, every call is the peer's.
    let server = TestServer::start_with(
        seeded(common::Backend::Sqlite, 0),
        &one_call,
        ureq::AgentBuilder::new().build(),
    );
    assert_eq!(
        register_forwarded_for(&server, "192.0.2.1"),
        "STAT_INVCREDENTIALS"
    );
    assert_eq!(
        register_forwarded_for(&server, "192.0.2.2"),
        "STAT_RATE_LIMITED"
    );
    assert_eq!(audited_client_addrs(&server), ["127.0.0.1", "127.0.0.1"]);
}

#[test]
fn sigterm_lets_calls_in_flight_finish_and_exits_cleanly() {
    let mut server = TestServer::start(seeded(common::Backend::Sqlite, 4));
    let calls = 4;
    let in_flight = format!("provd_requests_in_flight {calls}");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..calls)
            .map(|_| {
                let server = &server;
                s.spawn(move || server.post(&srp_register("testuser", "1.Password")))
            })
            .collect();
        // Wait, by observation rather than by time, until the server holds all of them
        // (each spends a while in Argon2), then ask it to stop.
        while !server.get("metrics").1.contains(&in_flight) {
            std::thread::yield_now();
        }
        server.signal("TERM");
        for h in handles {
            let (status, body) = h.join().unwrap();
            assert_eq!(status, 200);
            assert_eq!(
                element(&body, "statusCodeEnum"),
                Some("STAT_SUCCESS"),
                "{body}"
            );
        }
    });
    assert_eq!(server.wait_exit(), Some(0));
}
