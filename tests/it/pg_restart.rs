//! PostgreSQL restarted under a running provd: calls while it is down get a clean failure
//! (nothing hangs), calls once it is back succeed without restarting provd, and no committed
//! registration is lost. Runs on a private PostgreSQL server (see `common::private_pg`), never
//! the shared one the other tests use.

use crate::common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::private_pg::PrivatePostgres;
use common::{cli, element, envelope, seed, srp_register, TestDb, TestServer};

/// Where the database stands when a call starts and when it ends.
const UP: u8 = 0;
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const STARTING: u8 = 3;
const BACK: u8 = 4;

/// Clients registering at once.
const CLIENTS: usize = 2;

#[derive(Debug)]
enum Outcome {
    Registered(String),
    /// A clean refusal: a normal response with `STAT_ERROR`, or a SOAP
    /// `SOAP-ENV:Server` fault with HTTP 500.
    Failed,
}

#[derive(Debug)]
struct Call {
    started: u8,
    ended: u8,
    /// `Err`: no answer (the connection failed or the call hung past the client's timeout),
    /// or an answer that is neither a success nor a clean failure.
    outcome: Result<Outcome, String>,
}

fn classify(answer: Result<(u16, String), String>) -> Result<Outcome, String> {
    let (status, body) = answer?;
    match (status, element(&body, "statusCodeEnum")) {
        (200, Some("STAT_SUCCESS")) => Ok(Outcome::Registered(
            element(&body, "registrationID").unwrap().to_owned(),
        )),
        (200, Some("STAT_ERROR")) => Ok(Outcome::Failed),
        (500, None) if body.contains("<faultcode>SOAP-ENV:Server</faultcode>") => {
            Ok(Outcome::Failed)
        }
        _ => Err(format!("HTTP {status}: {body}")),
    }
}

/// Takes finished calls into `calls` until `done` holds; fails when `budget` more calls finish
/// without it, or when no call finishes for two minutes (provd hangs).
fn wait_until(
    rx: &mpsc::Receiver<Call>,
    calls: &mut Vec<Call>,
    what: &str,
    budget: usize,
    done: impl Fn(&[Call]) -> bool,
) {
    for _ in 0..budget {
        if done(calls) {
            return;
        }
        let call = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("waiting for {what}: no call finished ({e})"));
        calls.push(call);
    }
    assert!(done(calls), "{what}: not within {budget} calls: {calls:#?}");
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn registration_ids(db: &TestDb) -> HashSet<String> {
    let out = cli(db, &["--json", "registration", "list"], None);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    rows.iter()
        .map(|r| r["registration_id"].as_str().unwrap().to_owned())
        .collect()
}

fn server_time_answers(server: &TestServer) -> bool {
    let (status, body) = server.post(&envelope(
        "<PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet/></PROV-TYPES:provisioningExecute>",
    ));
    status == 200 && element(&body, "statusCodeEnum") == Some("STAT_SUCCESS")
}

#[test]
fn a_postgres_restart_fails_only_the_calls_while_it_is_down() {
    let Some(pg) = PrivatePostgres::start_or_skip("pg_restart") else {
        return;
    };
    let db = seed(TestDb::at_url(&pg.url()), 1);
    // The client's timeout only turns a hang into a failure; answers come far sooner.
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(90))
        .build();
    let server = TestServer::start_with(db, &[("PROVD_POOL_SIZE", "4")], agent);
    let register = srp_register("testuser", "1.Password");

    let phase = AtomicU8::new(UP);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Call>();
    let mut calls: Vec<Call> = Vec::new();
    let mut committed_before = HashSet::new();
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            let tx = tx.clone();
            let (server, register, phase, stop) = (&server, &register, &phase, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let started = phase.load(Ordering::SeqCst);
                    let outcome = classify(server.try_post(register));
                    let ended = phase.load(Ordering::SeqCst);
                    if tx
                        .send(Call {
                            started,
                            ended,
                            outcome,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // However this thread leaves the scope (a failed assertion too), the clients stop.
        let _stop_clients = StopOnDrop(&stop);
        let succeeded_in = |calls: &[Call], p: u8| {
            calls
                .iter()
                .filter(|c| c.started == p && matches!(c.outcome, Ok(Outcome::Registered(_))))
                .count()
        };

        wait_until(
            &rx,
            &mut calls,
            "registrations before the outage",
            40,
            |c| succeeded_in(c, UP) >= 2,
        );
        committed_before = registration_ids(&server.db);

        phase.store(STOPPING, Ordering::SeqCst);
        pg.stop_server();
        phase.store(DOWN, Ordering::SeqCst);
        // The server itself still answers; what needs the database is refused.
        assert!(
            server_time_answers(&server),
            "SERVER_TIME during the outage"
        );
        let (status, _) = server.get("health");
        assert_eq!(status, 503, "health during the outage");
        wait_until(&rx, &mut calls, "a call during the outage", 40, |c| {
            c.iter().any(|c| c.started == DOWN && c.ended == DOWN)
        });

        phase.store(STARTING, Ordering::SeqCst);
        pg.start_server();
        phase.store(BACK, Ordering::SeqCst);
        wait_until(
            &rx,
            &mut calls,
            "registrations after the restart",
            20,
            |c| succeeded_in(c, BACK) >= 3,
        );
        stop.store(true, Ordering::SeqCst);
        calls.extend(rx.iter());
    });

    eprintln!(
        "pg_restart: {} calls; (started, ended, outcome): {:?}",
        calls.len(),
        calls
            .iter()
            .map(|c| (
                c.started,
                c.ended,
                matches!(c.outcome, Ok(Outcome::Registered(_)))
            ))
            .collect::<Vec<_>>()
    );
    for call in &calls {
        let outcome = call
            .outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("not a clean answer: {e}"));
        match (call.started, call.ended) {
            (UP, UP) | (BACK, _) => assert!(
                matches!(outcome, Outcome::Registered(_)),
                "with the database up: {call:?}"
            ),
            (DOWN, DOWN) => assert!(
                matches!(outcome, Outcome::Failed),
                "with the database down: {call:?}"
            ),
            // In flight across a stop or a start: either, as long as it is clean.
            _ => {}
        }
    }
    assert_eq!(server.get("health").0, 200, "health after the restart");

    // Nothing committed is lost: every registration there before the outage, and every one a
    // client was told about, is there after it.
    let after = registration_ids(&server.db);
    assert!(committed_before.len() >= 2);
    assert!(
        committed_before.is_subset(&after),
        "lost: {:?}",
        committed_before.difference(&after).collect::<Vec<_>>()
    );
    for call in &calls {
        if let Ok(Outcome::Registered(id)) = &call.outcome {
            assert!(
                after.contains(id),
                "registration {id} was answered but is gone"
            );
        }
    }
    let _ = (STOPPING, STARTING);
}
