//! DSAPP v1/v2 revision 3 (CPace) activation over HTTP, driven by the reference client, on
//! every backend: both versions, the bound on unconfirmed exchanges, confirmation tags and
//! tampered fields.

use crate::common;

use common::{authenticator_status, backends, seeded, status_of, TestServer};
use provd::client::{Client, DsappProof};
use provd::soap::{AttributeId as A, Command};

#[test]
fn both_versions_activate_with_an_otp_or_a_derivation_code() {
    for backend in backends() {
        let cases = [
            (1, DsappProof::Otp),
            (1, DsappProof::DerivationCode),
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
fn a_wrong_activation_password_fails_at_the_client_and_counts_as_an_exchange() {
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
        // The server cannot tell (CPace gives nothing to test a guess against); the client
        // sees the server's tag fail.
        let e = client.dsapp_key_exchange(&id, &wrong, 2).unwrap_err();
        assert!(
            e.to_string().contains("PROVFLD_ENCRYPTED_NONCES"),
            "{backend:?}: {e}"
        );
        // Two more exchanges are allowed; the rightful client uses the last.
        client.dsapp_key_exchange(&id, &wrong, 2).unwrap_err();
        let ex = client.dsapp_key_exchange(&id, &password, 2).unwrap();
        client.dsapp_activate_with(&ex, DsappProof::Otp).unwrap();
        // Three wrong guesses use up another registration: the fourth exchange is refused
        // even with the right password.
        let (id, password) = client.dsapp_register("testuser", "1.Password", 1).unwrap();
        for _ in 0..3 {
            client.dsapp_key_exchange(&id, &wrong, 1).unwrap_err();
        }
        let e = client.dsapp_key_exchange(&id, &password, 1).unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT", "{backend:?}");
    }
}

#[test]
fn the_fourth_exchange_on_one_registration_is_refused_and_revokes_it() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        for version in [1, 2] {
            let (id, password) = client
                .dsapp_register("testuser", "1.Password", version)
                .unwrap();
            let mut last = None;
            for _ in 0..3 {
                last = Some(client.dsapp_key_exchange(&id, &password, version).unwrap());
            }
            let e = client
                .dsapp_key_exchange(&id, &password, version)
                .unwrap_err();
            let (status, description) = status_of(&e);
            assert_eq!(status, "STAT_REGISTRATION_SPENT", "{backend:?} v{version}");
            assert!(description.contains("3 key exchanges"), "{description}");
            // Revoked: even the third exchange's session no longer activates.
            let e = client
                .dsapp_activate_with(&last.unwrap(), DsappProof::Otp)
                .unwrap_err();
            assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT", "{backend:?}");
        }
    }
}

#[test]
fn an_invalid_point_is_refused_and_does_not_count() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let (id, password) = client.dsapp_register("testuser", "1.Password", 2).unwrap();
        for bad in ["00".repeat(68), format!("{}00000000", "AB".repeat(64))] {
            for _ in 0..4 {
                let e = client
                    .execute(
                        Command::DsappGenerateActivationData,
                        &[
                            (A::RegistrationId, id.as_str()),
                            (A::EncryptedClientPublicKeyNonce, &bad),
                            (A::ClientIv, &"00".repeat(16)),
                        ],
                    )
                    .unwrap_err();
                let (status, description) = status_of(&e);
                assert_eq!(status, "STAT_INVDATA", "{backend:?}");
                assert!(
                    description.contains("PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE"),
                    "{description}"
                );
            }
        }
        // Eight refusals later the registration still has its three exchanges.
        let ex = client.dsapp_key_exchange(&id, &password, 2).unwrap();
        client
            .dsapp_activate_with(&ex, DsappProof::DerivationCode)
            .unwrap();
    }
}

#[test]
fn a_wrong_confirmation_tag_counts_and_the_third_failure_revokes() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let (id, password) = client.dsapp_register("testuser", "1.Password", 1).unwrap();
        let ex = client.dsapp_key_exchange(&id, &password, 1).unwrap();
        let mut tag = ex.session.client_tag();
        tag[0] ^= 1;
        let e = client
            .dsapp_activate_tagged(&ex, DsappProof::Otp, &tag)
            .unwrap_err();
        let (status, description) = status_of(&e);
        assert_eq!(status, "STAT_INVCREDENTIALS", "{backend:?}");
        assert!(
            description.contains("PROVFLD_ENCRYPTED_SERVER_NONCE")
                && description.contains("1 of 3"),
            "{description}"
        );
        // The server's own tag sent back is wrong too (each direction has its key).
        let e = client
            .dsapp_activate_tagged(&ex, DsappProof::Otp, &ex.session.server_tag())
            .unwrap_err();
        assert!(status_of(&e).1.contains("2 of 3"), "{backend:?}");
        let e = client
            .dsapp_activate_tagged(&ex, DsappProof::Otp, &tag)
            .unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT", "{backend:?}");
        let e = client
            .dsapp_activate_with(&ex, DsappProof::Otp)
            .unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT", "{backend:?}");
    }
}

#[test]
fn activation_checks_the_sid_the_tag_and_the_otp() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let (id, password) = client.dsapp_register("testuser", "1.Password", 2).unwrap();
        let ex = client.dsapp_key_exchange(&id, &password, 2).unwrap();
        // The right tag under another sid.
        let e = client
            .execute(
                Command::DsappActivate,
                &[
                    (A::RegistrationId, id.as_str()),
                    (
                        A::EncryptedServerNonce,
                        &hex::encode_upper(ex.session.client_tag()),
                    ),
                    (A::ClientIv, &"00".repeat(16)),
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
        // The right tag and sid with a wrong OTP.
        let e = client
            .execute(
                Command::DsappActivate,
                &[
                    (A::RegistrationId, id.as_str()),
                    (
                        A::EncryptedServerNonce,
                        &hex::encode_upper(ex.session.client_tag()),
                    ),
                    (A::ClientIv, &hex::encode_upper(ex.session.sid())),
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
fn a_tampered_field_is_refused_by_the_reference_client() {
    use provd::client::Attributes;
    fn flip(out: &mut Attributes, id: A, at: usize) {
        let mut v = out.hex(id).unwrap();
        let i = at.min(v.len() - 1);
        v[i] ^= 0x01;
        out.set(id, &hex::encode_upper(v));
    }
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        type Tamper = (&'static str, u32, fn(&mut Attributes));
        let cases: [Tamper; 9] = [
            ("PROVFLD_ACTIVATION_CODE", 1, |o| {
                flip(o, A::ActivationCode, 20)
            }),
            ("PROVFLD_ACTIVATION_CODE", 2, |o| {
                flip(o, A::ActivationCode, 999)
            }),
            ("PROVFLD_EVENT_REACTIVATION_COUNTER", 2, |o| {
                flip(o, A::EventReactivationCounter, 0)
            }),
            ("PROVFLD_ACTIVATION_CODE", 2, |o| {
                flip(o, A::ActivationCodeIv, 3)
            }),
            ("PROVFLD_EVENT_REACTIVATION_COUNTER_IV", 2, |o| {
                o.set(A::EventReactivationCounterIv, "");
            }),
            ("PROVFLD_ACTIVATION_CODE_IV", 1, |o| {
                o.set(A::ActivationCodeIv, &"00".repeat(16))
            }),
            ("PROVFLD_ENCRYPTED_NONCES", 1, |o| {
                flip(o, A::EncryptedNonces, 7)
            }),
            ("PROVFLD_ENCRYPTED_NONCES", 2, |o| flip(o, A::ServerIv, 0)),
            ("PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY", 2, |o| {
                flip(o, A::EncryptedServerPublicKey, 63)
            }),
        ];
        for (what, version, tamper) in cases {
            let (id, password) = client
                .dsapp_register("testuser", "1.Password", version)
                .unwrap();
            let e = client
                .dsapp_key_exchange_with(&id, &password, version, tamper)
                .unwrap_err();
            assert!(
                e.to_string().contains(what),
                "{backend:?} v{version} {what}: {e}"
            );
        }
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
