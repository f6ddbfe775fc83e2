//! Multi-device licensing over HTTP, driven by the reference client, on every backend:
//! Activation Message 1, the device code, Activation Message 2 and the confirmation.

use crate::common;

use common::{backends, cli, status_of, TestDb, TestServer};
use provd::client::Client;
use provd::protocol::mdl::DeviceType;
use provd::soap::{AttributeId as A, Command};

/// testuser (1.Password) and one authenticator whose license allows `limit` instances.
fn licensed(backend: common::Backend, limit: u32) -> TestDb {
    let db = TestDb::new(backend);
    cli(
        &db,
        &["user", "add", "--user", "testuser", "--password-stdin"],
        Some("1.Password\n"),
    );
    cli(
        &db,
        &[
            "authenticator",
            "generate",
            "--prefix",
            "MDL",
            "--license-limit",
            &limit.to_string(),
        ],
        None,
    );
    db
}

fn instances(server: &TestServer, serial: &str) -> Vec<serde_json::Value> {
    let shown = cli(
        &server.db,
        &["--json", "authenticator", "show", serial],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    v["device_instances"].as_array().unwrap().clone()
}

#[test]
fn two_devices_up_to_the_license_limit_then_a_clear_refusal() {
    for backend in backends() {
        let server = TestServer::start(licensed(backend, 2));
        let client = Client::new(&server.base);

        let first = client.mdl_register("testuser", "1.Password", None).unwrap();
        let serial = first.am1.serial.clone();
        let am2 = client
            .mdl_add_device(
                &first,
                DeviceType::Android,
                0x1234_5678,
                Some("Jane's <phone>"),
            )
            .unwrap();
        assert_eq!(am2.sequence, 1);
        let out = client.mdl_activate(&first, &am2, false).unwrap();
        assert_eq!(out.get(A::SerialNo), Some(serial.as_str()), "{backend:?}");
        assert_eq!(out.get(A::DeviceId), Some("305419896"));

        // The second device, with a custom encryption password and an OTP confirmation.
        let second = client
            .mdl_register("testuser", "1.Password", Some("Other.Secret"))
            .unwrap();
        assert_eq!(second.am1.serial, serial);
        let am2 = client
            .mdl_add_device(&second, DeviceType::Ios, 7, None)
            .unwrap();
        assert_eq!(am2.sequence, 2);
        client.mdl_activate(&second, &am2, true).unwrap();

        let listed = instances(&server, serial.as_str());
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_eq!(listed[0]["sequence_no"], 1);
        assert_eq!(listed[0]["device_type"], 7);
        assert_eq!(listed[0]["status"], "active");
        assert_eq!(listed[0]["description"], "Jane's  phone ");
        assert_eq!(listed[1]["device_type"], 3);
        assert_eq!(listed[1]["status"], "active");

        let e = client
            .mdl_register("testuser", "1.Password", None)
            .unwrap_err();
        let (status, description) = status_of(&e);
        assert_eq!(status, "STAT_LICENSE_EXHAUSTED", "{backend:?}");
        assert!(description.contains("allows 2"), "{description}");
    }
}

#[test]
fn wrong_codes_and_signatures_fail_and_a_revoked_step_frees_its_sequence() {
    for backend in backends() {
        let server = TestServer::start(licensed(backend, 1));
        let client = Client::new(&server.base);
        let reg = client.mdl_register("testuser", "1.Password", None).unwrap();

        // A device code computed from another challenge does not verify.
        let mut other = client.mdl_register("testuser", "1.Password", None).unwrap();
        other.registration_id = reg.registration_id.clone();
        let e = client
            .mdl_add_device(&other, DeviceType::Android, 1, None)
            .unwrap_err();
        let (status, description) = status_of(&e);
        assert_eq!(status, "STAT_INVCREDENTIALS", "{backend:?}");
        assert!(description.contains("PROVFLD_DEVICE_CODE"), "{description}");

        // The device type must be the one inside the code.
        let code = provd::protocol::mdl::DeviceCode::compute(
            &reg.am1.license_key,
            &reg.am1.serial,
            &reg.am1.challenge,
            DeviceType::Android,
            1,
        )
        .render();
        let e = client
            .execute(
                Command::MdlAddDevice,
                &[
                    (A::RegistrationId, reg.registration_id.as_str()),
                    (A::DeviceCode, &code),
                    (A::DeviceType, "3"),
                ],
            )
            .unwrap_err();
        let (status, description) = status_of(&e);
        assert_eq!(status, "STAT_INVDATA");
        assert!(description.contains("PROVFLD_DEVICE_TYPE"), "{description}");

        let am2 = client
            .mdl_add_device(&reg, DeviceType::Android, 1, None)
            .unwrap();
        assert_eq!(am2.sequence, 1);
        // One failure so far (the device code); two wrong signatures revoke the step.
        for attempt in 2..=3 {
            let e = client
                .execute(
                    Command::MdlActivate,
                    &[
                        (A::RegistrationId, reg.registration_id.as_str()),
                        (A::Signature, "0000000000000000"),
                    ],
                )
                .unwrap_err();
            let want = if attempt < 3 {
                "STAT_INVCREDENTIALS"
            } else {
                "STAT_REGISTRATION_SPENT"
            };
            assert_eq!(status_of(&e).0, want, "{backend:?} attempt {attempt}");
        }
        assert_eq!(
            instances(&server, reg.am1.serial.as_str())[0]["status"],
            "revoked"
        );
        assert!(client.mdl_activate(&reg, &am2, false).is_err());

        // The revoked instance gives its place back: a new device gets sequence 1.
        let again = client.mdl_register("testuser", "1.Password", None).unwrap();
        let am2 = client
            .mdl_add_device(&again, DeviceType::Windows, 9, None)
            .unwrap();
        assert_eq!(am2.sequence, 1, "{backend:?}");
        client.mdl_activate(&again, &am2, false).unwrap();
        let listed = instances(&server, reg.am1.serial.as_str());
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["status"], "active");
    }
}

#[test]
fn devices_added_at_once_get_distinct_sequence_numbers() {
    for backend in backends() {
        let server = TestServer::start(licensed(backend, 4));
        let client = Client::new(&server.base);
        let regs: Vec<_> = (0..4)
            .map(|_| client.mdl_register("testuser", "1.Password", None).unwrap())
            .collect();
        let mut sequences: Vec<u8> = std::thread::scope(|s| {
            let handles: Vec<_> = regs
                .iter()
                .enumerate()
                .map(|(i, reg)| {
                    let base = server.base.clone();
                    s.spawn(move || {
                        Client::new(&base)
                            .mdl_add_device(reg, DeviceType::Android, 100 + i as u32, None)
                            .map(|am2| am2.sequence)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        sequences.sort_unstable();
        assert_eq!(sequences, [1, 2, 3, 4], "{backend:?}");
    }
}
