//! E-mail delivery against a real SMTP server on a socket (`common::SmtpSink`): a queued
//! message reaches it, a server killed before delivery loses nothing, and senders sharing a
//! database never claim the same message.

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{backends, cli, Backend, SmtpSink, TestDb, TestServer, MASTER_KEY};
use provd::crypto::MasterKey;
use provd::store::{MailStatus, OutgoingMail, Store};
use zeroize::Zeroizing;

const TO: &str = "someone@example.test";

fn outbox(db: &TestDb) -> Vec<serde_json::Value> {
    serde_json::from_str(&cli(db, &["--json", "outbox", "list"], None)).unwrap()
}

/// Polls `outbox list` until `done` holds for the newest row (panics after `timeout`).
fn wait_outbox(
    db: &TestDb,
    timeout: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = outbox(db);
        if let Some(row) = rows.first().filter(|r| done(r)) {
            return row.clone();
        }
        assert!(Instant::now() < deadline, "{what}: outbox is {rows:#?}");
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

fn start(db: TestDb, env: &[(&str, &str)]) -> TestServer {
    TestServer::start_with(db, env, ureq::AgentBuilder::new().build())
}

#[test]
fn outbox_test_is_delivered_through_smtp() {
    for backend in backends() {
        let sink = SmtpSink::start();
        let url = sink.url();
        let server = start(
            TestDb::new(backend),
            &[("PROVD_SMTP_URL", &url), ("PROVD_MAIL_POLL_SECS", "1")],
        );
        let queued: serde_json::Value = serde_json::from_str(&cli(
            &server.db,
            &["--json", "outbox", "test", "--to", TO],
            None,
        ))
        .unwrap();
        assert_eq!(queued["status"], "queued");
        let got = sink.wait_for(1, Duration::from_secs(30));
        assert_eq!(got[0].to, vec![TO.to_owned()], "{backend:?}");
        assert_eq!(got[0].from, "provd@localhost");
        assert_eq!(
            got[0].header("Subject").as_deref(),
            Some("provd test message")
        );
        assert!(got[0].data.contains("provd test message"));
        let row = wait_outbox(&server.db, Duration::from_secs(30), "sent", |r| {
            r["status"] == "sent"
        });
        assert_eq!(row["recipient"], TO);
        assert_eq!(row["attempts"], 1);
        assert!(row["sent_at_unix"].is_i64());
        assert!(row.get("body").is_none() && row.get("sealed_body").is_none());
        assert_eq!(sink.messages().len(), 1, "{backend:?}: sent more than once");
        let (_, metrics) = server.get("metrics");
        assert!(metrics.contains("provd_mail_sent_total 1"), "{metrics}");
        // The table form lists it too, without the body.
        let table = cli(&server.db, &["outbox", "list"], None);
        assert!(table.contains(TO) && table.contains("sent"), "{table}");
        assert!(!table.contains("If you read this"));
        // SIGTERM stops the worker with the server.
        let mut server = server;
        server.signal("TERM");
        assert_eq!(server.wait_exit(), Some(0), "{backend:?}");
    }
}

#[test]
fn a_server_killed_before_delivery_loses_no_mail() {
    for backend in backends() {
        // The SMTP server refuses for now (451): the first instance fails its attempts.
        let sink = SmtpSink::start_refusing();
        let url = sink.url();
        let env = [
            ("PROVD_SMTP_URL", url.as_str()),
            ("PROVD_MAIL_POLL_SECS", "1"),
            ("PROVD_MAIL_RETRY_BASE_SECS", "1"),
            ("PROVD_MAIL_LEASE_SECS", "2"),
        ];
        let server = start(TestDb::new(backend), &env);
        cli(&server.db, &["outbox", "test", "--to", TO], None);
        let row = wait_outbox(
            &server.db,
            Duration::from_secs(30),
            "a failed attempt",
            |r| {
                r["attempts"].as_i64() >= Some(1)
                    && r["status"] == "queued"
                    && r["last_error"].as_str().is_some_and(|e| e.contains("451"))
            },
        );
        assert!(row["next_attempt_at_unix"].is_i64());
        let db = server.kill();
        assert!(sink.messages().is_empty());

        // The SMTP server recovers; a new instance on the same database delivers.
        sink.set_refusing(false);
        let server = start(db, &env);
        let got = sink.wait_for(1, Duration::from_secs(60));
        assert!(got.iter().all(|m| m.to == vec![TO.to_owned()]));
        let row = wait_outbox(&server.db, Duration::from_secs(30), "sent", |r| {
            r["status"] == "sent"
        });
        assert!(row["attempts"].as_i64() >= Some(2), "{backend:?}: {row}");
        assert!(!sink.messages().is_empty(), "{backend:?}");
    }
}

#[test]
fn a_server_without_smtp_leaves_mail_queued() {
    let db = TestDb::new(Backend::Sqlite);
    let server = start(db, &[]);
    cli(&server.db, &["outbox", "test", "--to", TO], None);
    let (_, metrics) = server.get("metrics");
    assert!(metrics.contains("provd_mail_sent_total 0"));
    let rows = outbox(&server.db);
    assert_eq!(
        (rows[0]["status"].as_str(), rows[0]["attempts"].as_i64()),
        (Some("queued"), Some(0))
    );
    // And the command line refuses what is not an address.
    let (ok, _, err) = common::cli_result(&server.db, &["outbox", "test", "--to", "nobody"], None);
    assert!(!ok && err.contains("not an e-mail address"), "{err}");
}

#[test]
fn a_bad_smtp_url_stops_the_server_at_startup_without_showing_the_password() {
    let db = TestDb::new(Backend::Sqlite);
    let (ok, _, err) = common::cli_result(&db, &["outbox", "list"], None);
    assert!(ok, "{err}");
    let mut cmd = std::process::Command::new(common::BIN);
    let out = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(db.dir())
        .env("PROVD_DATABASE_URL", &db.url)
        .env("PROVD_MASTER_KEY", MASTER_KEY)
        .env(
            "PROVD_SMTP_URL",
            "smtp://user:hunter2@mail.example.test?tls=maybe",
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("smtp_url") && !err.contains("hunter2"),
        "{err}"
    );
}

fn mail(i: usize) -> OutgoingMail {
    OutgoingMail {
        command: "TEST".into(),
        recipient: format!("u{i}@example.test"),
        subject: "s".into(),
        body: Zeroizing::new("b".into()),
    }
}

/// Four stores on one database stand for four instances: only the database keeps them apart.
#[test]
fn concurrent_claimers_never_get_the_same_message() {
    const N: usize = 80;
    for backend in backends() {
        let db = TestDb::new(backend);
        let key = MasterKey::from_hex(MASTER_KEY).unwrap();
        let stores: Vec<Store> = (0..4)
            .map(|_| Store::open(&db.url, key.clone(), 2).unwrap())
            .collect();
        for i in 0..N {
            stores[0].enqueue_mail(&mail(i), 0).unwrap();
        }
        let claimed: Vec<Vec<i64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores
                .iter()
                .map(|st| {
                    scope.spawn(move || {
                        let mut mine = Vec::new();
                        loop {
                            let got = st.claim_due_mail(1, 600, 3).unwrap();
                            if got.is_empty() {
                                break;
                            }
                            mine.extend(got.iter().map(|m| m.id));
                        }
                        mine
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let all: Vec<i64> = claimed.concat();
        let unique: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(
            all.len(),
            unique.len(),
            "{backend:?}: a message was claimed twice"
        );
        assert_eq!(all.len(), N, "{backend:?}: every message is claimed once");
    }
}

/// The worker in process: it scans at startup, wakes on the notifier (with a poll interval
/// of an hour, nothing else would wake it), and stops when told.
#[test]
fn the_worker_scans_at_startup_wakes_on_notify_and_stops() {
    use provd::config::Config;
    use provd::delivery::{Delivery, MailNotifier};

    let sink = SmtpSink::start();
    let db = TestDb::new(Backend::Sqlite);
    let store = Store::open(&db.url, MasterKey::from_hex(MASTER_KEY).unwrap(), 2).unwrap();
    let config = Config {
        smtp_url: Some(sink.url()),
        mail_poll_secs: 3600,
        ..Config::default()
    };
    store.enqueue_mail(&mail(1), provd::store::now()).unwrap();
    let notifier = MailNotifier::for_config(&config);
    let metrics = provd::metrics::Metrics::new();
    let delivery = Delivery::new(store.clone(), &config, &notifier, metrics.clone())
        .unwrap()
        .expect("smtp_url is set");
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(delivery.run(stop_rx))
    });
    assert_eq!(
        sink.wait_for(1, Duration::from_secs(30))[0].to,
        ["u1@example.test"]
    );

    // Queued the way a command does it: commit, then poke.
    store.enqueue_mail(&mail(2), provd::store::now()).unwrap();
    notifier.notify();
    let got = sink.wait_for(2, Duration::from_secs(30));
    assert_eq!(got[1].to, ["u2@example.test"]);

    stop.send(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !worker.is_finished() {
        assert!(Instant::now() < deadline, "the worker did not stop");
        std::thread::park_timeout(Duration::from_millis(50));
    }
    worker.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics.render().contains("provd_mail_sent_total 2") {
        assert!(Instant::now() < deadline, "{}", metrics.render());
        std::thread::park_timeout(Duration::from_millis(50));
    }
    let rows = store.list_outbox(None, 10).unwrap();
    assert!(
        rows.iter().all(|r| r.status == MailStatus::Sent),
        "{rows:?}"
    );
}
