//! The audit trail stays bounded: rate-limited refusals are aggregated into one row per
//! address and minute, and rows past `audit_retention_days` are swept.

use crate::common;

use std::time::{Duration, Instant};

use common::{backends, cli, element, seeded, srp_register, TestServer, MASTER_KEY};
use provd::crypto::MasterKey;
use provd::store::{NewAudit, Store};

fn audit_rows(server: &TestServer) -> Vec<serde_json::Value> {
    let out = cli(
        &server.db,
        &["--json", "audit", "list", "--limit", "1000"],
        None,
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn refusals_from_one_address_are_one_row_with_their_count() {
    for backend in backends() {
        let db = seeded(backend, 1);
        let log = db.dir().join("server.log");
        let mut cmd = common::command(&db, &["serve", "--listen", "127.0.0.1:0"]);
        cmd.envs([
            ("PROVD_RATE_LIMIT_PER_MINUTE", "1"),
            ("PROVD_RATE_LIMIT_BURST", "1"),
            ("PROVD_LOG", "info"),
        ])
        .stderr(std::fs::File::create(&log).unwrap());
        let mut server = TestServer::spawn(db, cmd, ureq::AgentBuilder::new().build());
        let refused = (0..25)
            .filter(|_| {
                let (_, body) = server.post(&srp_register("testuser", "wrong"));
                element(&body, "statusCodeEnum") == Some("STAT_RATE_LIMITED")
            })
            .count();
        assert!(refused >= 20, "{backend:?}: only {refused} refused");
        // The first refusal's row is there at once; the count reaches it when the minute is
        // over, or when the server stops.
        let limited = |rows: &[serde_json::Value]| -> Vec<serde_json::Value> {
            rows.iter()
                .filter(|r| r["status"] == "STAT_RATE_LIMITED")
                .cloned()
                .collect()
        };
        assert!(!limited(&audit_rows(&server)).is_empty(), "{backend:?}");
        server.signal("TERM");
        assert_eq!(server.wait_exit(), Some(0));
        let rows = limited(&audit_rows(&server));
        let counted: i64 = rows
            .iter()
            .map(|r| r["occurrences"].as_i64().unwrap())
            .sum();
        assert_eq!(counted, refused as i64, "{backend:?}: {rows:?}");
        // One row per address and minute: 25 calls take far less than the minutes it would
        // take to need as many rows.
        assert!(rows.len() * 5 < refused, "{backend:?}: {} rows", rows.len());
        assert!(rows.iter().all(|r| r["client_addr"] == "127.0.0.1"));
        // Logged as often as audited: once per address and minute, not once per refusal.
        let logged = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.contains("rate-limited") || l.contains("STAT_RATE_LIMITED"))
            .count();
        assert_eq!(logged, rows.len(), "{backend:?}");
    }
}

#[test]
fn the_sweeper_deletes_audit_rows_past_retention() {
    for backend in backends() {
        let db = seeded(backend, 0);
        let store = Store::open(&db.url, MasterKey::from_hex(MASTER_KEY).unwrap(), 1).unwrap();
        let now = provd::store::now();
        let entry = |command: &str| NewAudit {
            command: command.into(),
            status: "STAT_SUCCESS".into(),
            ..NewAudit::default()
        };
        store.audit_at(&entry("OLD"), now - 100 * 86_400).unwrap();
        store.audit_at(&entry("RECENT"), now - 10 * 86_400).unwrap();
        drop(store);
        let server = TestServer::start_with(
            db,
            &[
                ("PROVD_AUDIT_RETENTION_DAYS", "30"),
                ("PROVD_SWEEP_INTERVAL_SECS", "1"),
            ],
            ureq::AgentBuilder::new().build(),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let rows = audit_rows(&server);
            let has = |c: &str| rows.iter().any(|r| r["command"] == c);
            assert!(
                has("RECENT"),
                "{backend:?}: a row within retention was swept"
            );
            if !has("OLD") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{backend:?}: the 100-day-old row is still there"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
