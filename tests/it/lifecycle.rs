//! The authenticator lifecycle (issue 10) over HTTP on every backend: re-keying on
//! reactivation, no lockout without a password, lock expiry, a locked user's pending
//! activation, OTP single use, unassign with and without force, generic status codes.

use crate::common;

use common::{
    authenticator_status, backends, cli, cli_result, element, envelope, seeded, srp_register,
    status_of, TestDb, TestServer, MASTER_KEY,
};
use provd::client::{Client, DsappProof};
use provd::protocol::otp;
use provd::soap::{AttributeId as A, Command};
use provd::types::{RegistrationId, SerialNumber};

fn start(db: TestDb, env: &[(&str, &str)]) -> TestServer {
    TestServer::start_with(db, env, ureq::AgentBuilder::new().build())
}

fn srp_registered(server: &TestServer, user: &str, password: &str) -> (RegistrationId, String) {
    let (_, body) = server.post(&srp_register(user, password));
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

fn status(body: &str) -> &str {
    element(body, "statusCodeEnum").unwrap_or("(none)")
}

/// The key the store holds for an authenticator (opened with the test master key).
fn stored_key(db: &TestDb, serial: &SerialNumber) -> Vec<u8> {
    let store = provd::store::Store::connect(
        &db.url,
        provd::crypto::MasterKey::from_hex(MASTER_KEY).unwrap(),
        1,
    )
    .unwrap();
    store.authenticator_key(serial).unwrap().to_vec()
}

/// `PROVISIONCMD_ACTIVATE` with the OTP of `key` at Unix time `at`.
fn activate_at(
    client: &Client,
    user: &str,
    key: &[u8],
    at: i64,
) -> Result<provd::client::Attributes, provd::client::ClientError> {
    let code = otp::totp(key, at, otp::DIGITS);
    client.execute(
        Command::Activate,
        &[(A::UserId, user), (A::DpResponse, &code)],
    )
}

fn json(db: &TestDb, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&cli(db, &all, None)).unwrap()
}

#[test]
fn a_stolen_password_cannot_clone_the_second_factor() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        // The victim activates with DSAPP-SRP.
        let (id, pw) = srp_registered(&server, "testuser", "1.Password");
        let first = client.activate(&id, &pw).unwrap();
        let serial = first.serial_no.clone();
        assert_eq!(stored_key(&server.db, &serial), first.key.to_vec());
        let t1 = provd::store::now();

        // The attacker registers with the static password: every register command prepares
        // a new key, never the active one.
        let (id2, pw2) = srp_registered(&server, "testuser", "1.Password");
        let ex = client.key_exchange(&id2, &pw2).unwrap();
        let (s2, second_key) = client.activation_data(&ex).unwrap();
        assert_eq!(s2, serial);
        assert_ne!(second_key.to_vec(), first.key.to_vec(), "{backend:?}");
        let reg = client
            .register_standard("testuser", None, "1.Password", None, None, false)
            .unwrap();
        assert_ne!(reg.key.to_vec(), first.key.to_vec());
        assert_ne!(reg.key.to_vec(), second_key.to_vec());
        let (did, dpw) = client.dsapp_register("testuser", "1.Password", 2).unwrap();
        let dex = client.dsapp_key_exchange(&did, &dpw, 2).unwrap();
        assert_ne!(dex.key.to_vec(), first.key.to_vec());
        let m1 = client.mdl_register("testuser", "1.Password", None).unwrap();
        let m2 = client.mdl_register("testuser", "1.Password", None).unwrap();
        assert_ne!(m1.am1.license_key.to_vec(), m2.am1.license_key.to_vec());

        // Until the new activation completes, the old key stays and its device works.
        assert_eq!(stored_key(&server.db, &serial), first.key.to_vec());
        let e = activate_at(&client, "testuser", &first.key, t1 + 30).unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT", "{e}");
        let before = json(&server.db, &["authenticator", "show", serial.as_str()]);

        // The second activation completes: the old key is retired.
        let code = otp::totp(&second_key, provd::store::now(), otp::DIGITS);
        client.activate_with_otp(&id2, &code).unwrap();
        assert_eq!(stored_key(&server.db, &serial), second_key.to_vec());
        let e = activate_at(&client, "testuser", &first.key, t1 + 30).unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS", "{backend:?}");
        let after = json(&server.db, &["authenticator", "show", serial.as_str()]);
        assert_eq!(
            after["authenticator"]["reactivations"],
            before["authenticator"]["reactivations"].as_i64().unwrap() + 1
        );
        // The other pending registrations still hold their own keys, not the retired one.
        let e = client
            .dsapp_activate_with(&dex, DsappProof::Otp)
            .map(|_| ())
            .err();
        assert!(e.is_none(), "{e:?}");
        assert_eq!(stored_key(&server.db, &serial), dex.key.to_vec());
    }
}

#[test]
fn reactivation_policy_deny_and_cap() {
    for backend in backends() {
        let server = start(seeded(backend, 1), &[("PROVD_REACTIVATION", "deny")]);
        let client = Client::new(&server.base);
        // The first activation is not a reactivation.
        let (id, pw) = srp_registered(&server, "testuser", "1.Password");
        let first = client.activate(&id, &pw).unwrap();
        let (_, body) = server.post(&srp_register("testuser", "1.Password"));
        assert_eq!(status(&body), "STAT_REACTIVATION_REFUSED", "{body}");
        let e = client
            .register_standard("testuser", None, "1.Password", None, None, false)
            .err()
            .unwrap();
        assert_eq!(status_of(&e).0, "STAT_REACTIVATION_REFUSED");
        let e = client
            .mdl_register("testuser", "1.Password", None)
            .err()
            .unwrap();
        assert_eq!(status_of(&e).0, "STAT_REACTIVATION_REFUSED");
        // Nothing was written by the refusals.
        let regs = json(&server.db, &["registration", "list"]);
        assert_eq!(regs.as_array().unwrap().len(), 1, "{regs}");
        assert_eq!(stored_key(&server.db, &first.serial_no), first.key.to_vec());
        drop(server);

        let server = start(seeded(backend, 1), &[("PROVD_MAX_REACTIVATIONS", "1")]);
        let client = Client::new(&server.base);
        for _ in 0..2 {
            let (id, pw) = srp_registered(&server, "testuser", "1.Password");
            client.activate(&id, &pw).unwrap();
        }
        let (_, body) = server.post(&srp_register("testuser", "1.Password"));
        assert_eq!(status(&body), "STAT_REACTIVATION_REFUSED", "{backend:?}");
    }
}

#[test]
fn a_completed_reactivation_queues_a_notice() {
    for backend in backends() {
        let db = seeded(backend, 1);
        cli(
            &db,
            &[
                "user",
                "add",
                "--user",
                "mailed",
                "--email",
                "mailed@example.test",
                "--password-stdin",
            ],
            Some("3.Password\n"),
        );
        // An address nobody listens on: the message stays queued, which is what is checked.
        let server = start(db, &[("PROVD_SMTP_URL", "smtp://127.0.0.1:9")]);
        let client = Client::new(&server.base);
        let (id, pw) = srp_registered(&server, "mailed", "3.Password");
        client.activate(&id, &pw).unwrap();
        let count = |db: &TestDb| json(db, &["outbox", "list"]).as_array().unwrap().len();
        assert_eq!(
            count(&server.db),
            0,
            "a first activation is not a reactivation"
        );
        let (id, pw) = srp_registered(&server, "mailed", "3.Password");
        assert_eq!(
            count(&server.db),
            0,
            "nothing before the activation completes"
        );
        client.activate(&id, &pw).unwrap();
        let rows = json(&server.db, &["outbox", "list"]);
        assert_eq!(rows.as_array().unwrap().len(), 1, "{backend:?} {rows}");
        assert_eq!(rows[0]["recipient"], "mailed@example.test");
        assert!(rows[0]["subject"]
            .as_str()
            .unwrap()
            .contains("new device was activated"));
    }
}

#[test]
fn wrong_otps_without_a_password_never_lock_the_user() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 2));
        let client = Client::new(&server.base);
        // A pending REGISTER: six wrong OTPs revoke that registration, not the user.
        client
            .register_standard("testuser", None, "1.Password", None, None, false)
            .unwrap();
        // An active authenticator with nothing pending: six wrong OTPs lock nothing.
        let (id, pw) = srp_registered(&server, "second", "2.Password");
        let active = client.activate(&id, &pw).unwrap();
        for user in ["testuser", "second"] {
            for _ in 0..6 {
                let e = activate_at(&client, user, &[7u8; 32], provd::store::now()).unwrap_err();
                assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS", "{backend:?}");
            }
        }
        for user in ["testuser", "second"] {
            let u = json(&server.db, &["user", "show", "--user", user]);
            assert_eq!(u["locked"], false, "{u}");
            assert_eq!(u["failure_count"], 0, "{u}");
        }
        let regs = json(&server.db, &["registration", "list", "--status", "revoked"]);
        assert_eq!(regs.as_array().unwrap().len(), 1, "{regs}");
        let a = json(
            &server.db,
            &["authenticator", "show", active.serial_no.as_str()],
        );
        assert_eq!(a["authenticator"]["otp_failures"], 6, "{a}");
        // The right passwords still work.
        for (user, pw) in [("testuser", "1.Password"), ("second", "2.Password")] {
            let (_, body) = server.post(&srp_register(user, pw));
            assert_eq!(status(&body), "STAT_SUCCESS", "{backend:?} {body}");
        }
    }
}

#[test]
fn a_lock_expires_and_grows_with_an_injected_clock() {
    for backend in backends() {
        let db = seeded(backend, 1);
        let clock = db.dir().join("clock");
        let set = |t: i64| std::fs::write(&clock, t.to_string()).unwrap();
        let t0 = 1_900_000_000;
        set(t0);
        let server = start(db, &[("PROVD_TEST_CLOCK_FILE", clock.to_str().unwrap())]);
        let try_right =
            || status(&server.post(&srp_register("testuser", "1.Password")).1).to_owned();
        let lock = || {
            for _ in 0..5 {
                let (_, body) = server.post(&srp_register("testuser", "wrong"));
                assert_eq!(status(&body), "STAT_INVCREDENTIALS");
            }
        };
        lock();
        assert_eq!(try_right(), "STAT_LOCKED", "{backend:?}");
        set(t0 + 899);
        assert_eq!(try_right(), "STAT_LOCKED");
        // Expired: a second lock in a row lasts twice as long.
        set(t0 + 900);
        lock();
        set(t0 + 900 + 1799);
        assert_eq!(try_right(), "STAT_LOCKED", "{backend:?}");
        set(t0 + 900 + 1800);
        assert_eq!(try_right(), "STAT_SUCCESS", "{backend:?}");
        // A right password ended the run: the next lock is 15 minutes again.
        let t1 = t0 + 900 + 1800;
        lock();
        set(t1 + 900);
        assert_eq!(try_right(), "STAT_SUCCESS", "{backend:?}");
        drop(server);

        // lock_duration_secs = 0: until an administrator unlocks.
        let db = seeded(backend, 1);
        let clock = db.dir().join("clock");
        std::fs::write(&clock, t0.to_string()).unwrap();
        let server = start(
            db,
            &[
                ("PROVD_TEST_CLOCK_FILE", clock.to_str().unwrap()),
                ("PROVD_LOCK_DURATION_SECS", "0"),
            ],
        );
        for _ in 0..5 {
            server.post(&srp_register("testuser", "wrong"));
        }
        std::fs::write(&clock, (t0 + 10 * 365 * 86400).to_string()).unwrap();
        let (_, body) = server.post(&srp_register("testuser", "1.Password"));
        assert_eq!(status(&body), "STAT_LOCKED", "{backend:?}");
        cli(&server.db, &["user", "unlock", "--user", "testuser"], None);
        let (_, body) = server.post(&srp_register("testuser", "1.Password"));
        assert_eq!(status(&body), "STAT_SUCCESS");
    }
}

#[test]
fn a_locked_user_cannot_finish_a_pending_activation() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 2));
        let client = Client::new(&server.base);
        let (id, pw) = srp_registered(&server, "testuser", "1.Password");
        let reg = client
            .register_standard("second", None, "2.Password", None, None, false)
            .unwrap();
        for (user, _) in [("testuser", ()), ("second", ())] {
            for _ in 0..5 {
                server.post(&srp_register(user, "wrong"));
            }
        }
        let e = client.activate(&id, &pw).err().unwrap();
        assert_eq!(status_of(&e).0, "STAT_LOCKED", "{backend:?}");
        let e = client
            .activate_standard("second", None, &reg.key)
            .unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_LOCKED", "{backend:?}");
        assert_eq!(
            authenticator_status(&server, reg.serial_no.as_str()),
            "assigned"
        );
        // Unlocked, the same registrations complete.
        cli(&server.db, &["user", "unlock", "--user", "testuser"], None);
        cli(&server.db, &["user", "unlock", "--user", "second"], None);
        client.activate(&id, &pw).unwrap();
        client.activate_standard("second", None, &reg.key).unwrap();
    }
}

#[test]
fn an_otp_is_accepted_once() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let reg = client
            .register_standard("testuser", None, "1.Password", None, None, false)
            .unwrap();
        let t = provd::store::now();
        activate_at(&client, "testuser", &reg.key, t).unwrap();
        // The same value again: refused, like a wrong OTP.
        let e = activate_at(&client, "testuser", &reg.key, t).unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS", "{backend:?}");
        // The next time step's value verifies (the authenticator is active) once.
        let e = activate_at(&client, "testuser", &reg.key, t + 30).unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT", "{e}");
        let e = activate_at(&client, "testuser", &reg.key, t + 30).unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS");
        // Earlier steps are refused too.
        let e = activate_at(&client, "testuser", &reg.key, t - 30).unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS");

        // Across registrations: the OTP that completed a DSAPP-SRP activation is spent.
        let (id, pw) = srp_registered(&server, "testuser", "1.Password");
        let ex = client.key_exchange(&id, &pw).unwrap();
        let (_, key) = client.activation_data(&ex).unwrap();
        let t = provd::store::now();
        client
            .activate_with_otp(&id, &otp::totp(&key, t, otp::DIGITS))
            .unwrap();
        let e = activate_at(&client, "testuser", &key, t).unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS", "{backend:?}");
    }
}

#[test]
fn unassigning_an_active_authenticator_needs_force_and_retires_its_key() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let client = Client::new(&server.base);
        let (id, pw) = srp_registered(&server, "testuser", "1.Password");
        let done = client.activate(&id, &pw).unwrap();
        let serial = done.serial_no.as_str();

        let (ok, _, err) = cli_result(&server.db, &["authenticator", "unassign", serial], None);
        assert!(!ok);
        assert!(err.contains("--force"), "{err}");
        assert_eq!(authenticator_status(&server, serial), "active");
        assert_eq!(stored_key(&server.db, &done.serial_no), done.key.to_vec());

        let out = json(
            &server.db,
            &["authenticator", "unassign", serial, "--force"],
        );
        assert_eq!(out["status"], "available", "{out}");
        assert!(out["user_id"].is_null());
        assert_ne!(stored_key(&server.db, &done.serial_no), done.key.to_vec());
        // The old device's OTP verifies for nobody; the next user gets a new key.
        let e = activate_at(&client, "testuser", &done.key, provd::store::now() + 30).unwrap_err();
        assert_eq!(status_of(&e).0, "STAT_INVCREDENTIALS");
        let (id, pw) = srp_registered(&server, "second", "2.Password");
        let next = client.activate(&id, &pw).unwrap();
        assert_eq!(next.serial_no, done.serial_no);
        assert_ne!(next.key.to_vec(), done.key.to_vec(), "{backend:?}");

        // Disabled: not registered, not activated, until enabled.
        let (id, pw) = srp_registered(&server, "second", "2.Password");
        let d = json(&server.db, &["authenticator", "disable", serial]);
        assert_eq!(d["disabled"], true);
        let (_, body) = server.post(&srp_register("second", "2.Password"));
        assert_eq!(status(&body), "STAT_DISABLED", "{body}");
        let e = client.activate(&id, &pw).err().unwrap();
        assert_eq!(status_of(&e).0, "STAT_DISABLED");
        cli(&server.db, &["authenticator", "enable", serial], None);
        // Revoked by the administrator: the registration cannot complete.
        let r = json(&server.db, &["registration", "revoke", id.as_str()]);
        assert_eq!(r["status"], "revoked", "{r}");
        let e = client.activate(&id, &pw).err().unwrap();
        assert_eq!(status_of(&e).0, "STAT_REGISTRATION_SPENT");
        let (ok, _, err) = cli_result(&server.db, &["registration", "revoke", id.as_str()], None);
        assert!(!ok && err.contains("revoked"), "{err}");
    }
}

fn activate_body(user: &str, otp: &str) -> String {
    envelope(&format!(
        r#"<PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_ACTIVATE</cmd><attributeSet><attributes><value xsi:type="xsd:string">{user}</value><attributeID>PROVFLD_USERID</attributeID></attributes><attributes><value xsi:type="xsd:string">{otp}</value><attributeID>PROVFLD_DP_RESPONSE</attributeID></attributes></attributeSet></PROV-TYPES:provisioningExecute>"#
    ))
}

#[test]
fn generic_status_codes_answer_alike() {
    for backend in backends() {
        let db = seeded(backend, 2);
        for user in ["locked", "disabled"] {
            cli(
                &db,
                &["user", "add", "--user", user, "--password-stdin"],
                Some("4.Password\n"),
            );
        }
        cli(&db, &["user", "disable", "--user", "disabled"], None);
        let server = start(db, &[("PROVD_GENERIC_STATUS_CODES", "true")]);
        for _ in 0..5 {
            server.post(&srp_register("locked", "wrong"));
        }
        let bodies: Vec<String> = [
            ("nobody", "4.Password"),
            ("locked", "4.Password"),
            ("disabled", "4.Password"),
            ("testuser", "wrong"),
        ]
        .iter()
        .map(|(u, p)| server.post(&srp_register(u, p)).1)
        .collect();
        assert_eq!(status(&bodies[0]), "STAT_INVCREDENTIALS", "{}", bodies[0]);
        for b in &bodies[1..] {
            assert_eq!(b, &bodies[0], "{backend:?}");
        }
        // The same through PROVISIONCMD_REGISTER.
        let client = Client::new(&server.base);
        let texts: Vec<(String, String)> = [
            ("nobody", "x"),
            ("locked", "4.Password"),
            ("disabled", "4.Password"),
            ("testuser", "x"),
        ]
        .iter()
        .map(|(u, p)| {
            let e = client
                .execute(Command::Register, &[(A::UserId, u), (A::StaticPassword, p)])
                .unwrap_err();
            let (s, d) = status_of(&e);
            (s.to_owned(), d.to_owned())
        })
        .collect();
        assert!(texts.iter().all(|t| t == &texts[0]), "{texts:?}");
        // The real reasons are in the audit trail.
        let audit = cli(
            &server.db,
            &["--json", "audit", "list", "--limit", "100"],
            None,
        );
        for reason in [
            "unknown user nobody",
            "locked",
            "disabled",
            "wrong static password",
        ] {
            assert!(audit.contains(reason), "{reason}: {audit}");
        }

        // ACTIVATE, without a password, tells nobody whether a user exists or has an
        // authenticator (in every mode).
        let (id, pw) = srp_registered(&server, "second", "2.Password");
        client.activate(&id, &pw).unwrap();
        let bodies: Vec<String> = ["nobody", "testuser", "second"]
            .iter()
            .map(|u| server.post(&activate_body(u, "123456")).1)
            .collect();
        assert_eq!(status(&bodies[0]), "STAT_INVCREDENTIALS", "{}", bodies[0]);
        for b in &bodies[1..] {
            assert_eq!(b, &bodies[0], "{backend:?}");
        }
    }
}

#[test]
fn activate_answers_alike_without_generic_codes_too() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 2));
        let client = Client::new(&server.base);
        client
            .register_standard("second", None, "2.Password", None, None, false)
            .unwrap();
        let bodies: Vec<String> = ["nobody", "testuser", "second"]
            .iter()
            .map(|u| server.post(&activate_body(u, "123456")).1)
            .collect();
        assert_eq!(status(&bodies[0]), "STAT_INVCREDENTIALS", "{}", bodies[0]);
        for b in &bodies[1..] {
            assert_eq!(b, &bodies[0], "{backend:?}");
        }
        // Without generic codes, password calls still say what went wrong.
        let (_, body) = server.post(&srp_register("nobody", "x"));
        assert_eq!(status(&body), "STAT_USER_UNKNOWN");
    }
}

#[test]
fn the_srp_verifier_is_sealed_at_rest() {
    for backend in backends() {
        let server = TestServer::start(seeded(backend, 1));
        let (id, pw) = srp_registered(&server, "testuser", "1.Password");
        let store = provd::store::Store::connect(
            &server.db.url,
            provd::crypto::MasterKey::from_hex(MASTER_KEY).unwrap(),
            1,
        )
        .unwrap();
        let reg = store.get_registration(&id).unwrap();
        let salt = reg.srp_salt.clone();
        let clear = provd::protocol::srp::verifier(&salt, id.as_str(), &pw);
        assert_ne!(reg.srp_verifier, clear, "{backend:?}");
        assert!(!reg
            .srp_verifier
            .windows(32)
            .any(|w| clear.windows(32).any(|c| c == w)));
        assert_eq!(store.open_verifier(&reg).unwrap(), clear);
        // And the flow still works with it.
        Client::new(&server.base).activate(&id, &pw).unwrap();
    }
}
