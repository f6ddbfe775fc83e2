//! A server killed with SIGKILL in the middle of activations loses no committed activation
//! and leaves none half-written: after a restart, a registration is activated exactly when
//! its authenticator is active, and every activation a client saw succeed is there.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;

use common::{backends, cli, element, seeded, srp_register, TestServer};
use provd::client::Client;
use provd::types::RegistrationId;

const USERS: usize = 10;

fn json_rows(out: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(out).unwrap()
}

#[test]
fn sigkill_mid_activation_loses_nothing_committed_and_half_writes_nothing() {
    for backend in backends() {
        let db = seeded(backend, USERS as u32);
        for i in 0..USERS {
            cli(
                &db,
                &[
                    "user",
                    "add",
                    "--user",
                    &format!("crash{i}"),
                    "--password-stdin",
                ],
                Some("Crash.Pass1\n"),
            );
        }
        let server = TestServer::start(db);
        let registrations: Vec<(RegistrationId, String)> = (0..USERS)
            .map(|i| {
                let (_, body) = server.post(&srp_register(&format!("crash{i}"), "Crash.Pass1"));
                (
                    RegistrationId::parse(element(&body, "registrationID").unwrap()).unwrap(),
                    element(&body, "activationPassword").unwrap().to_owned(),
                )
            })
            .collect();

        // Activate them all at once; kill the server as soon as three have succeeded.
        let (tx, rx) = mpsc::channel::<(RegistrationId, String)>();
        let base = server.base.clone();
        let workers: Vec<_> = registrations
            .iter()
            .cloned()
            .map(|(id, pw)| {
                let tx = tx.clone();
                let base = base.clone();
                std::thread::spawn(move || {
                    if let Ok(a) = Client::new(&base).activate(&id, &pw) {
                        let _ = tx.send((id, a.serial_no.to_string()));
                    }
                })
            })
            .collect();
        drop(tx);
        let mut seen: HashMap<String, String> = HashMap::new();
        for (id, serial) in rx.iter().take(3) {
            seen.insert(id.to_string(), serial);
        }
        let db = server.kill();
        for w in workers {
            w.join().unwrap();
        }

        let server = TestServer::start(db);
        let regs = json_rows(&cli(&server.db, &["--json", "registration", "list"], None));
        let auths = json_rows(&cli(&server.db, &["--json", "authenticator", "list"], None));
        let active: HashSet<&str> = auths
            .iter()
            .filter(|a| a["status"] == "active")
            .map(|a| a["serial_no"].as_str().unwrap())
            .collect();
        let activated: HashSet<&str> = regs
            .iter()
            .filter(|r| r["status"] == "activated")
            .map(|r| r["serial_no"].as_str().unwrap())
            .collect();
        assert_eq!(active, activated, "{backend:?}: activation half-written");
        for (id, serial) in &seen {
            let r = regs
                .iter()
                .find(|r| r["registration_id"] == id.as_str())
                .unwrap();
            assert_eq!(r["status"], "activated", "{backend:?}: {id} lost");
            assert!(
                active.contains(serial.as_str()),
                "{backend:?}: {serial} lost"
            );
        }
        assert!(activated.len() >= 3, "{backend:?}");
        // The restarted server carries on: a registration that never got its activation
        // data still completes.
        if let Some((id, pw)) = registrations.iter().find(|(id, _)| {
            regs.iter()
                .any(|r| r["registration_id"] == id.as_str() && r["status"] == "pending")
        }) {
            Client::new(&server.base).activate(id, pw).unwrap();
        }
    }
}
