//! `PROVFLD_DELIVERY_METHOD` = `E-Mail` over HTTP: the activation data a command produces is
//! queued with it and reaches a real SMTP server (`common::SmtpSink`), and what arrives is
//! enough to complete the activation.

use crate::common;

use std::time::Duration;

use common::{backends, cli, seeded, SmtpSink, TestServer};
use provd::client::{Client, DsappProof};
use provd::soap::{AttributeId as A, Command};
use provd::types::RegistrationId;

fn start(backend: common::Backend, sink: &SmtpSink) -> TestServer {
    let db = seeded(backend, 2);
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
    // A long poll interval: delivery must come from the wake-up after the commit.
    TestServer::start_with(
        db,
        &[
            ("PROVD_SMTP_URL", &sink.url()),
            ("PROVD_MAIL_POLL_SECS", "3600"),
        ],
        ureq::AgentBuilder::new().build(),
    )
}

/// The text of a received message with quoted-printable soft line breaks undone (long hex
/// lines arrive folded).
fn text(m: &common::smtp::Received) -> String {
    m.data.replace("=\r\n", "")
}

/// The value after `label` on its line of a mail body.
fn line_value<'a>(data: &'a str, label: &str) -> &'a str {
    let start = data
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {data}"))
        + label.len();
    data[start..].lines().next().unwrap().trim()
}

#[test]
fn register_mails_the_activation_code_to_the_destination() {
    for backend in backends() {
        let sink = SmtpSink::start();
        let server = start(backend, &sink);
        let client = Client::new(&server.base);
        let out = client
            .execute(
                Command::Register,
                &[
                    (A::UserId, "testuser"),
                    (A::StaticPassword, "1.Password"),
                    (A::DeliveryMethod, "E-Mail"),
                    (A::Destination, "jane@example.test"),
                ],
            )
            .unwrap();
        let got = sink.wait_for(1, Duration::from_secs(30));
        assert_eq!(
            got[0].to,
            vec!["jane@example.test".to_owned()],
            "{backend:?}"
        );
        let serial = out.get(A::SerialNo).unwrap();
        assert!(
            got[0].header("Subject").unwrap().contains(serial),
            "{:?}",
            got[0].header("Subject")
        );
        assert!(
            text(&got[0]).contains(out.get(A::ActivationCode).unwrap()),
            "the mailed code is the one answered"
        );
        // Never the static password.
        assert!(!got[0].data.contains("1.Password"));
    }
}

#[test]
fn dsapp_register_mails_the_user_and_the_mail_completes_the_activation() {
    for backend in backends() {
        let sink = SmtpSink::start();
        let server = start(backend, &sink);
        let client = Client::new(&server.base);
        client
            .execute(
                Command::DsappRegister,
                &[
                    (A::UserId, "mailed"),
                    (A::StaticPassword, "3.Password"),
                    (A::DsappVersion, "2"),
                    (A::DeliveryMethod, "E-Mail"),
                ],
            )
            .unwrap();
        let got = sink.wait_for(1, Duration::from_secs(30));
        assert_eq!(
            got[0].to,
            vec!["mailed@example.test".to_owned()],
            "{backend:?}"
        );
        let body = text(&got[0]);
        let id = RegistrationId::parse(line_value(&body, "Registration identifier:")).unwrap();
        let password = line_value(&body, "Activation password:").to_owned();
        let done = client
            .dsapp_activate(&id, &password, 2, DsappProof::Otp)
            .unwrap();
        assert_eq!(done.user_id, "mailed");
        assert_eq!(sink.messages().len(), 1);
    }
}

#[test]
fn mdl_register_mails_activation_message_1() {
    for backend in backends() {
        let sink = SmtpSink::start();
        let server = start(backend, &sink);
        let client = Client::new(&server.base);
        let out = client
            .execute(
                Command::MdlRegister,
                &[
                    (A::UserId, "mailed"),
                    (A::StaticPassword, "3.Password"),
                    (A::DeliveryMethod, "E-Mail"),
                    (A::Destination, "device-owner@example.test"),
                ],
            )
            .unwrap();
        let got = sink.wait_for(1, Duration::from_secs(30));
        assert_eq!(got[0].to, vec!["device-owner@example.test".to_owned()]);
        assert!(
            text(&got[0]).contains(out.get(A::ActivationMessage).unwrap()),
            "{}",
            got[0].data
        );
        assert!(text(&got[0]).contains(out.get(A::RegistrationId).unwrap()));
    }
}

#[test]
fn delivery_refusals_name_the_attribute() {
    for backend in backends() {
        let sink = SmtpSink::start();
        let server = start(backend, &sink);
        let client = Client::new(&server.base);
        // testuser has no address on file.
        let e = client
            .execute(
                Command::Register,
                &[
                    (A::UserId, "testuser"),
                    (A::StaticPassword, "1.Password"),
                    (A::DeliveryMethod, "E-Mail"),
                ],
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("PROVFLD_DESTINATION"),
            "{backend:?}: {e}"
        );
        let e = client
            .execute(
                Command::Register,
                &[
                    (A::UserId, "testuser"),
                    (A::StaticPassword, "1.Password"),
                    (A::DeliveryMethod, "E-Mail"),
                    (A::Destination, "not an address"),
                ],
            )
            .unwrap_err();
        assert!(e.to_string().contains("PROVFLD_DESTINATION"), "{e}");
        assert!(sink.messages().is_empty());
    }
}
