//! DSAPP v1/v2 (ECDH) activation over HTTP, driven by the reference client, on every backend.

use crate::common;

use common::{authenticator_status, backends, seeded, status_of, TestServer};
use provd::client::{Client, DsappProof};
use provd::wire::{AttributeId as A, Command};

#[test]
fn both_versions_activate_with_an_otp_or_a_derivation_code() {
    for backend in backends() {
        let cases = [
            (1, DsappProof::Otp),
            (2, DsappProof::Otp),
            (2, DsappProof::DerivationCode),
        ];
        let server = TestServer::start(seeded(backend, 1));
        for (version, proof) in cases {
            let client = Client::new(&server.base);
            let (id, password) = client
                .dsapp_register("testuser", "1.Password", version)
                .unwrap();
            let ex = client.dsapp_key_exchange(&id, &password, version).unwrap();
            assert_eq!(ex.key.len(), 32);
            // Each registration is a reactivation of the same authenticator.
            assert!(ex.event_reactivation_counter.parse::<i32>().unwrap() >= 1);
            let out = client.dsapp_activate_with(&ex, proof).unwrap();
            assert_eq!(out.get(A::SerialNo), Some(ex.serial_no.as_str()));
            assert_eq!(out.get(A::UserId), Some("testuser"));
            assert_eq!(
                authenticator_status(&server, ex.serial_no.as_str()),
                "active",
                "{backend:?} v{version} {proof:?}"
            );
            // Spent: neither step can be replayed.
            let e = client.dsapp_activate_with(&ex, proof).unwrap_err();
            assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT");
            let e = client
                .dsapp_key_exchange(&id, &password, version)
                .unwrap_err();
            assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT");
        }
    }
}

#[test]
fn the_audit_trail_names_user_serial_and_registration_of_each_step() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let (id, password) = client.dsapp_register("testuser", "1.Password", 2).unwrap();
        let done = client
            .dsapp_activate(&id, &password, 2, DsappProof::Otp)
            .unwrap();
        // The SOAP calls only (the setup's admin commands are audited too, as `cli:<user>`).
        let audit = common::cli(
            &server.db,
            &["--json", "audit", "list", "--client", "127.0.0.1"],
            None,
        );
        let rows: Vec<serde_json::Value> = serde_json::from_str(&audit).unwrap();
        let commands: Vec<&str> = rows
            .iter()
            .rev()
            .map(|r| r["command"].as_str().unwrap())
            .collect();
        assert_eq!(
            commands,
            [
                "PROVISIONCMD_DSAPPREGISTER",
                "PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA",
                "PROVISIONCMD_DSAPPACTIVATE"
            ],
            "{backend:?}"
        );
        for r in &rows {
            assert_eq!(r["registration_id"], id.as_str(), "{r}");
            assert_eq!(r["status"], "STAT_SUCCESS");
        }
        for r in [&rows[0], &rows[2]] {
            assert_eq!(r["serial_no"], done.serial_no.as_str(), "{r}");
            assert_eq!(r["user_id"], "testuser", "{r}");
        }
        // Never the activation password.
        assert!(!audit.contains(password.as_str()));
    }
}

#[test]
fn a_wrong_activation_password_counts_and_the_third_revokes() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let (id, password) = client.dsapp_register("testuser", "1.Password", 2).unwrap();
        // A password that passes its check character but is not this registration's.
        let wrong = loop {
            let other = provd::protocol::srp::new_activation_password();
            if *other != *password {
                break other;
            }
        };
        for attempt in 1..=3 {
            let e = client.dsapp_key_exchange(&id, &wrong, 2).unwrap_err();
            let (status, description) = status_of(&e);
            let want = if attempt < 3 {
                "STAT_INVCREDENTIALS"
            } else {
                "STAT_REGISTRATION_SPENT"
            };
            assert_eq!(status, want, "{backend:?} attempt {attempt}: {description}");
            assert!(
                description.contains("PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE"),
                "{description}"
            );
        }
        let e = client.dsapp_key_exchange(&id, &password, 2).unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT", "{backend:?}");
    }
}

#[test]
fn activation_checks_the_session_proof_and_the_otp() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let (id, password) = client.dsapp_register("testuser", "1.Password", 1).unwrap();
        let ex = client.dsapp_key_exchange(&id, &password, 1).unwrap();

        // The exchange happens once.
        assert!(client.dsapp_key_exchange(&id, &password, 1).is_err());
        // A proof under another session key.
        let bad_iv = "00".repeat(16);
        let bad_nonce = "11".repeat(16);
        let e = client
            .execute(
                Command::DsappActivate,
                &[
                    (A::RegistrationId, id.as_str()),
                    (A::EncryptedServerNonce, &bad_nonce),
                    (A::ClientIv, &bad_iv),
                    (A::DpResponse, "123456"),
                ],
            )
            .unwrap_err();
        let (status, description) = status_of(&e);
        assert_eq!(status, "STAT_INVCREDENTIALS", "{backend:?}");
        assert!(
            description.contains("PROVFLD_ENCRYPTED_SERVER_NONCE"),
            "{description}"
        );

        // The right proof with a wrong OTP.
        let (iv, encrypted) = provd::protocol::dsapp::server_nonce_proof(&ex.session);
        let e = client
            .execute(
                Command::DsappActivate,
                &[
                    (A::RegistrationId, id.as_str()),
                    (A::EncryptedServerNonce, &hex::encode_upper(encrypted)),
                    (A::ClientIv, &hex::encode_upper(iv)),
                    (A::DpResponse, "000000"),
                ],
            )
            .unwrap_err();
        let (status, description) = status_of(&e);
        assert_eq!(status, "STAT_INVCREDENTIALS");
        assert!(description.contains("PROVFLD_DP_RESPONSE"), "{description}");
        assert!(description.contains("2 of 3"), "{description}");

        // Two failures so far; the rightful client still completes.
        client.dsapp_activate_with(&ex, DsappProof::Otp).unwrap();
    }
}

#[test]
fn versions_are_checked() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let e = client
            .dsapp_register("testuser", "1.Password", 3)
            .unwrap_err();
        let (status, description) = status_of(&e);
        assert_eq!(status, "STAT_NOT_SUPPORTED", "{backend:?}");
        assert!(
            description.contains("PROVFLD_DSAPP_VERSION"),
            "{description}"
        );

        let (id, _) = client.dsapp_register("testuser", "1.Password", 2).unwrap();
        let e = client
            .execute(
                Command::DsappGenerateActivationData,
                &[
                    (A::RegistrationId, id.as_str()),
                    (A::DsappVersion, "1"),
                    (A::EncryptedClientPublicKeyNonce, &"AB".repeat(68)),
                    (A::ClientIv, &"00".repeat(16)),
                ],
            )
            .unwrap_err();
        let (status, description) = status_of(&e);
        assert_eq!(status, "STAT_INVDATA");
        assert!(description.contains("version 2"), "{description}");
    }
}
