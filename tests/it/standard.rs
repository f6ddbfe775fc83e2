//! PROVISIONCMD_REGISTER and PROVISIONCMD_ACTIVATE over HTTP, driven by the reference client,
//! on every backend.

use crate::common;

use common::{authenticator_status, backends, cli, seeded, status_of, TestServer};
use provd::client::Client;
use provd::soap::{AttributeId as A, Command};

/// Attributes sent, the status expected, and a text its description must contain.
type Case<'a> = (&'a [(A, &'a str)], &'a str, &'a str);

#[test]
fn online_register_then_activate_with_the_first_otp() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 2));
        let client = Client::new(&server.base);
        let reg = client
            .register_standard("testuser", None, "1.Password", None, None, false)
            .unwrap();
        assert_eq!(reg.user_id, "testuser");
        assert_eq!(reg.domain, "master");
        assert!(!reg.offline);
        assert_eq!(reg.key.len(), 32);
        assert_eq!(reg.event_reactivation_counter, "1");
        let serial = reg.serial_no.as_str();
        assert_eq!(authenticator_status(&server, serial), "assigned");

        let out = client
            .activate_standard("testuser", None, &reg.key)
            .unwrap();
        assert_eq!(out.get(A::SerialNo), Some(serial), "{backend:?}");
        assert_eq!(out.get(A::UserId), Some("testuser"));
        assert_eq!(authenticator_status(&server, serial), "active");

        // An activation counts once, and its OTP is used once.
        let e = client
            .activate_standard("testuser", None, &reg.key)
            .unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS", "{backend:?}");

        // Registering again reuses the user's authenticator, counts a reactivation, and
        // prepares a new key.
        let again = client
            .register_standard("testuser", None, "1.Password", None, None, false)
            .unwrap();
        assert_eq!(again.serial_no, reg.serial_no);
        assert_eq!(again.event_reactivation_counter, "2");
        assert_ne!(again.key, reg.key);
    }
}

#[test]
fn a_wrong_otp_is_refused_and_counts_against_the_registration_not_the_user() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let reg = client
            .register_standard("testuser", None, "1.Password", None, None, false)
            .unwrap();
        let e = client
            .activate_standard("testuser", None, &[0u8; 32])
            .unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS", "{backend:?}");
        let shown = cli(
            &server.db,
            &["--json", "user", "show", "--user", "testuser"],
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(v["failure_count"], 0, "{shown}");
        let regs: Vec<serde_json::Value> =
            serde_json::from_str(&cli(&server.db, &["--json", "registration", "list"], None))
                .unwrap();
        assert_eq!(regs[0]["failures"], 1, "{regs:?}");
        assert_eq!(
            authenticator_status(&server, reg.serial_no.as_str()),
            "assigned"
        );
        client
            .activate_standard("testuser", None, &reg.key)
            .unwrap();
    }
}

#[test]
fn offline_activation_data_activates_at_once() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let reg = client
            .register_standard("testuser", None, "1.Password", None, None, true)
            .unwrap();
        assert!(reg.offline);
        assert_eq!(
            authenticator_status(&server, reg.serial_no.as_str()),
            "active",
            "{backend:?}"
        );
    }
}

#[test]
fn custom_encryption_password_and_alea_protect_the_code() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let reg = client
            .register_standard(
                "testuser",
                Some("master"),
                "1.Password",
                Some("Custom.Secret"),
                Some("0123456789ABCDEF"),
                false,
            )
            .unwrap();
        assert_eq!(reg.key.len(), 32, "{backend:?}");

        // The same answer does not open with the static password.
        let out = client
            .execute(
                Command::Register,
                &[
                    (A::UserId, "testuser"),
                    (A::StaticPassword, "1.Password"),
                    (A::CustomEncryptPwd, "Custom.Secret"),
                ],
            )
            .unwrap();
        let blob = out.hex(A::ActivationCode).unwrap();
        let serial = provd::types::SerialNumber::parse(out.get(A::SerialNo).unwrap()).unwrap();
        assert!(provd::protocol::standard::unprotect(
            "1.Password",
            None,
            "REGISTER",
            &serial,
            &blob
        )
        .is_err());
    }
}

#[test]
fn password_change_during_register() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let e = client
            .execute(
                Command::Register,
                &[
                    (A::UserId, "testuser"),
                    (A::StaticPassword, "1.Password"),
                    (A::NewStaticPassword, "New.Password1"),
                    (A::ConfirmNewStaticPassword, "New.Password2"),
                ],
            )
            .unwrap_err();
        let (status, description) = status_of(&e);
        assert_eq!(status, "STAT_INVDATA", "{backend:?}");
        assert!(
            description.contains("PROVFLD_CONFIRM_NEW_STATIC_PASSWORD"),
            "{description}"
        );

        client
            .execute(
                Command::Register,
                &[
                    (A::UserId, "testuser"),
                    (A::StaticPassword, "1.Password"),
                    (A::NewStaticPassword, "New.Password1"),
                    (A::ConfirmNewStaticPassword, "New.Password1"),
                ],
            )
            .unwrap();
        let e = client
            .register_standard("testuser", None, "1.Password", None, None, false)
            .unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS", "{backend:?}");
        // The activation code of a registration with a password change opens with the new one.
        client
            .register_standard("testuser", None, "New.Password1", None, None, false)
            .unwrap();
    }
}

#[test]
fn refusals_name_what_is_wrong() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 0));
        let client = Client::new(&server.base);
        let cases: &[Case] = &[
            (
                &[(A::UserId, "testuser"), (A::StaticPassword, "1.Password")],
                "STAT_DIGIPASS_NOT_AVAILABLE",
                "",
            ),
            (
                &[(A::UserId, "testuser"), (A::StaticPassword, "wrong")],
                "STAT_INVCREDENTIALS",
                "",
            ),
            (
                &[(A::UserId, "testuser")],
                "STAT_MISSINGFLD",
                "PROVFLD_STATIC_PASSWORD",
            ),
            (
                &[
                    (A::UserId, "testuser"),
                    (A::StaticPassword, "1.Password"),
                    (A::DeliveryMethod, "E-Mail"),
                ],
                "STAT_NOT_SUPPORTED",
                "PROVFLD_DELIVERY_METHOD",
            ),
            (
                &[
                    (A::UserId, "testuser"),
                    (A::StaticPassword, "1.Password"),
                    (A::DeliveryMethod, "SMS"),
                ],
                "STAT_INVDATA",
                "PROVFLD_DELIVERY_METHOD",
            ),
            (
                &[
                    (A::UserId, "testuser"),
                    (A::StaticPassword, "1.Password"),
                    (A::Destination, "a@example.test"),
                ],
                "STAT_INVDATA",
                "PROVFLD_DESTINATION",
            ),
            (
                &[
                    (A::UserId, "testuser"),
                    (A::StaticPassword, "1.Password"),
                    (A::DpResponse, "123456"),
                ],
                "STAT_INVDATA",
                "PROVFLD_DP_RESPONSE",
            ),
        ];
        for (args, status, names) in cases {
            let e = client.execute(Command::Register, args).unwrap_err();
            let (got, description) = status_of(&e);
            assert_eq!(got, *status, "{backend:?} {description}");
            assert!(description.contains(names), "{description}");
        }
        let e = client
            .execute(
                Command::Activate,
                &[
                    (A::UserId, "testuser"),
                    (A::RequestType, "0"),
                    (A::DpResponse, "123456"),
                ],
            )
            .unwrap_err();
        assert!(status_of(&e).1.contains("PROVFLD_DP_RESPONSE"));
    }
}
