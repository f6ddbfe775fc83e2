//! DSAPP-SRP online activation over HTTP, driven by the reference client, on every backend.

use crate::common;

use common::{
    activation_data_request, authenticator_status, backends, cli, element, envelope, seeded,
    srp_register, status_of, TestServer,
};
use provd::client::{Client, ClientError};
use provd::types::RegistrationId;

fn register(server: &TestServer, user: &str, password: &str) -> (RegistrationId, String) {
    let (status, body) = server.post(&srp_register(user, password));
    assert_eq!(status, 200);
    assert_eq!(
        element(&body, "statusCodeEnum"),
        Some("STAT_SUCCESS"),
        "{body}"
    );
    (
        RegistrationId::parse(element(&body, "registrationID").unwrap()).unwrap(),
        element(&body, "activationPassword").unwrap().to_owned(),
    )
}

#[test]
fn full_activation_then_every_replay_fails_cleanly() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let (id, password) = register(&server, "testuser", "1.Password");
        let client = Client::new(&server.base);
        let done = client.activate(&id, &password).unwrap();
        assert_eq!(done.user_id, "testuser");
        assert_eq!(done.domain, "master");
        assert_eq!(done.key.len(), 32);
        assert_eq!(
            authenticator_status(&server, done.serial_no.as_str()),
            "active",
            "{backend:?}"
        );

        // Each step again, after success: a clean failure, nothing changes.
        let e = client.key_exchange(&id, &password).err().unwrap();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT", "{backend:?}");
        let (_, body) = server.post(&activation_data_request(id.as_str(), &"00".repeat(32)));
        assert_eq!(
            element(&body, "statusCodeEnum"),
            Some("STAT_REGISTRATION_SPENT")
        );
        let otp = provd::protocol::otp::totp(&done.key, provd::store::now(), 6);
        let e = client.activate_with_otp(&id, &otp).err().unwrap();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT");
        assert_eq!(
            authenticator_status(&server, done.serial_no.as_str()),
            "active"
        );
    }
}

#[test]
fn a_wrong_activation_password_fails_m1_and_the_third_failure_revokes() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let (id, password) = register(&server, "testuser", "1.Password");
        let client = Client::new(&server.base);
        // A well-formed password that is not this registration's.
        let wrong = loop {
            let p = provd::protocol::srp::new_activation_password();
            if p.as_str() != password {
                break p;
            }
        };
        for n in 1..=3 {
            let ex = client.key_exchange(&id, &wrong).unwrap();
            let e = client.activation_data(&ex).err().unwrap();
            let ClientError::Failed {
                status,
                description,
                ..
            } = &e
            else {
                panic!("{e}")
            };
            if n < 3 {
                assert_eq!(status, "STAT_INVCREDENTIALS", "{backend:?}");
                assert!(description.contains(&format!("{n} of 3")), "{description}");
            } else {
                assert_eq!(status, "STAT_REGISTRATION_SPENT", "{backend:?}");
                assert!(description.contains("revoked"), "{description}");
            }
        }
        // Revoked: even the right password gets nowhere, and the authenticator is not active.
        let e = client.activate(&id, &password).err().unwrap();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT");
        let audit = cli(&server.db, &["--json", "audit", "list"], None);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&audit).unwrap();
        let failed_m1 = rows
            .iter()
            .filter(|r| {
                r["command"] == "dsappSRPGenerateActivationData" && r["status"] != "STAT_SUCCESS"
            })
            .count();
        assert_eq!(failed_m1, 3, "{backend:?}");
    }
}

#[test]
fn degenerate_client_keys_are_refused_without_touching_the_registration() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let (id, password) = register(&server, "testuser", "1.Password");
        let n_hex = hex::encode_upper(
            provd::protocol::srp::math::group_2048()
                .pad(&provd::protocol::srp::math::group_2048().n),
        );
        for a in ["00".to_owned(), "0".repeat(512), n_hex.clone()] {
            let (status, body) = server.post(&envelope(&format!(
                "<PROV-TYPES:dsappSRPGenerateEphemeralKey><registrationID>{id}</registrationID><clientEphemeralPublicKey>{a}</clientEphemeralPublicKey></PROV-TYPES:dsappSRPGenerateEphemeralKey>"
            )));
            assert_eq!(status, 200);
            assert_eq!(
                element(&body, "statusCodeEnum"),
                Some("STAT_INVDATA"),
                "{backend:?}: {body}"
            );
            assert!(body.contains("clientEphemeralPublicKey"), "{body}");
        }
        // Not hex, odd length: named too.
        let (_, body) = server.post(&envelope(&format!(
            "<PROV-TYPES:dsappSRPGenerateEphemeralKey><registrationID>{id}</registrationID><clientEphemeralPublicKey>ABC</clientEphemeralPublicKey></PROV-TYPES:dsappSRPGenerateEphemeralKey>"
        )));
        assert_eq!(element(&body, "statusCodeEnum"), Some("STAT_INVDATA"));
        // Nothing was counted or spent: the real activation still completes.
        Client::new(&server.base).activate(&id, &password).unwrap();
    }
}

#[test]
fn a_wrong_otp_is_counted_and_the_right_one_then_activates() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let (id, password) = register(&server, "testuser", "1.Password");
        let client = Client::new(&server.base);
        let ex = client.key_exchange(&id, &password).unwrap();
        let (serial, key) = client.activation_data(&ex).unwrap();
        let now = provd::store::now();
        let right = provd::protocol::otp::totp(&key, now, 6);
        // A code no step of the verification window (widened by one for safety) accepts.
        let window: Vec<String> = (-2..=2)
            .map(|d| provd::protocol::otp::totp(&key, now + d * 30, 6))
            .collect();
        let wrong = (0..10u32)
            .map(|d| d.to_string().repeat(6))
            .find(|c| !window.contains(c))
            .unwrap();
        let wrong = wrong.as_str();
        let e = client.activate_with_otp(&id, wrong).err().unwrap();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS", "{backend:?}");
        assert_eq!(authenticator_status(&server, serial.as_str()), "assigned");
        let (user, _, s) = client.activate_with_otp(&id, &right).unwrap();
        assert_eq!((user.as_str(), s.as_str()), ("testuser", serial.as_str()));
        assert_eq!(authenticator_status(&server, serial.as_str()), "active");
    }
}

#[test]
fn a_derivation_code_activates_and_a_wrong_one_is_counted() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let (id, password) = register(&server, "testuser", "1.Password");
        let client = Client::new(&server.base);
        let ex = client.key_exchange(&id, &password).unwrap();
        let (serial, _key) = client.activation_data(&ex).unwrap();
        let right = ex.derivation_code(&serial);
        assert_eq!(right.len(), 15);
        // A code for another serial number is not this binding: counted, nothing activated.
        let other = provd::types::SerialNumber::parse("VDS9999999").unwrap();
        let wrong = ex.derivation_code(&other);
        assert_ne!(wrong.as_str(), right.as_str());
        let e = client
            .activate_with_derivation_code(&id, &wrong)
            .err()
            .unwrap();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS", "{backend:?}");
        assert_eq!(authenticator_status(&server, serial.as_str()), "assigned");
        let (user, _, s) = client.activate_with_derivation_code(&id, &right).unwrap();
        assert_eq!((user.as_str(), s.as_str()), ("testuser", serial.as_str()));
        assert_eq!(authenticator_status(&server, serial.as_str()), "active");
        // Single use: the same code again finds a spent registration.
        let e = client
            .activate_with_derivation_code(&id, &right)
            .err()
            .unwrap();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT", "{backend:?}");
    }
}

#[test]
fn activation_data_before_a_key_exchange_is_refused() {
    let server = TestServer::start(seeded(common::Backend::Sqlite, 1));
    let (id, _) = register(&server, "testuser", "1.Password");
    let (_, body) = server.post(&activation_data_request(id.as_str(), &"AB".repeat(32)));
    assert_eq!(
        element(&body, "statusCodeEnum"),
        Some("STAT_EXPIRED"),
        "{body}"
    );
    let (_, body) = server.post(&envelope(
        "<PROV-TYPES:dsappSRPActivate><registrationID>zzzzzzzz</registrationID><credential><response>123456</response></credential></PROV-TYPES:dsappSRPActivate>",
    ));
    assert_eq!(
        element(&body, "statusCodeEnum"),
        Some("STAT_NOT_FOUND"),
        "{body}"
    );
}

#[test]
fn the_cli_client_completes_an_activation() {
    let server = TestServer::start(seeded(common::Backend::Sqlite, 1));
    let (id, password) = register(&server, "testuser", "1.Password");
    let out = cli(
        &server.db,
        &[
            "--json",
            "client",
            "activate",
            "--url",
            &server.base,
            "--registration-id",
            id.as_str(),
            "--password-stdin",
        ],
        Some(&format!("{password}\n")),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "activated");
    assert_eq!(v["user_id"], "testuser");
}

#[test]
fn the_client_refuses_tampered_activation_data() {
    use provd::protocol::srp::record::{RecordError, Sealed};
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let (id, password) = register(&server, "testuser", "1.Password");
        let client = Client::new(&server.base);
        let ex = client.key_exchange(&id, &password).unwrap();
        let (_, body) = server.post(&activation_data_request(
            id.as_str(),
            &hex::encode_upper(&ex.m1),
        ));
        let field = |t| hex::decode(element(&body, t).unwrap()).unwrap();
        let sealed = Sealed {
            iv: field("encryptedCounter").try_into().unwrap(),
            ciphertext: field("encryptedData"),
            mac: field("mac").try_into().unwrap(),
        };
        let mut flipped = sealed.clone();
        flipped.ciphertext[5] ^= 0x40;
        let e = ex.open(&flipped).err().unwrap();
        assert!(
            matches!(e, ClientError::BadRecord(RecordError::BadMac)),
            "{e}"
        );
        let mut bad_iv = sealed.clone();
        bad_iv.iv[0] ^= 1;
        assert!(matches!(
            ex.open(&bad_iv),
            Err(ClientError::BadRecord(RecordError::BadMac))
        ));
        // The untouched record opens, and carries the serial number assigned to the user.
        let (serial, key) = ex.open(&sealed).unwrap();
        assert_eq!(key.len(), 32);
        let shown = cli(
            &server.db,
            &["--json", "authenticator", "show", serial.as_str()],
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(v["authenticator"]["user_id"], "testuser", "{backend:?}");
    }
}

#[test]
fn two_clients_racing_one_registration_yield_exactly_one_activation() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let (id, password) = register(&server, "testuser", "1.Password");
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<Result<String, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (server, barrier, id, password) = (&server, &barrier, &id, &password);
                    s.spawn(move || {
                        barrier.wait();
                        Client::new(&server.base)
                            .activate(id, password)
                            .map(|a| a.serial_no.to_string())
                            .map_err(|e| match e {
                                ClientError::Failed { status, .. } => status,
                                other => format!("not a clean failure: {other}"),
                            })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wins: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(wins.len(), 1, "{backend:?}: {outcomes:?}");
        let loss = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
        assert!(
            [
                "STAT_INVCREDENTIALS",
                "STAT_REGISTRATION_SPENT",
                "STAT_EXPIRED"
            ]
            .contains(&loss.as_str()),
            "{backend:?}: the loser got {loss}"
        );
        assert_eq!(authenticator_status(&server, wins[0]), "active");
    }
}
