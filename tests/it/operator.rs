//! Operator experience (issue 15): readable times, audit of admin commands, audit filters and
//! export, a closed pipe, configuration checks.

use std::process::{Command, Stdio};

use crate::common::{backends, cli, cli_result, TestDb, BIN, MASTER_KEY};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn admin_commands_are_audited_and_the_trail_filters_and_exports() {
    for backend in backends() {
        let db = TestDb::new(backend);
        cli(&db, &["migrate"], None);
        cli(&db, &["user", "add", "--user", "alice"], Some(""));
        cli(
            &db,
            &["user", "add", "--user", "bob", "--password-stdin"],
            Some("s3cret-pw\n"),
        );
        let (ok, _, err) = cli_result(&db, &["user", "add", "--user", "alice"], None);
        assert!(!ok && err.contains("already exists"), "{err}");

        let all = json(&cli(
            &db,
            &["--json", "audit", "list", "--limit", "0"],
            None,
        ));
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        for row in all {
            assert_eq!(row["command"], "cli user add");
            assert!(row["client_addr"].as_str().unwrap().starts_with("cli:"));
            let at = row["at"].as_str().unwrap();
            assert!(at.ends_with('Z') && at.contains('T'), "{at}");
            assert!(row["at_unix"].as_i64().unwrap() > 1_700_000_000);
        }
        assert!(!serde_json::to_string(all).unwrap().contains("s3cret"));

        let errors = json(&cli(
            &db,
            &[
                "--json", "audit", "list", "--status", "error", "--user", "alice",
            ],
            None,
        ));
        assert_eq!(errors.as_array().unwrap().len(), 1);
        assert!(errors[0]["detail"]
            .as_str()
            .unwrap()
            .contains("already exists"));
        let bob = json(&cli(
            &db,
            &["--json", "audit", "list", "--user", "bob"],
            None,
        ));
        assert_eq!(bob.as_array().unwrap().len(), 1);
        assert_eq!(bob[0]["status"], "ok");
        let future = json(&cli(
            &db,
            &["--json", "audit", "list", "--since", "2999-01-01"],
            None,
        ));
        assert_eq!(future.as_array().unwrap().len(), 0);
        let one = json(&cli(
            &db,
            &["--json", "audit", "list", "--limit", "1"],
            None,
        ));
        assert_eq!(one.as_array().unwrap().len(), 1);
        let (ok, _, _) = cli_result(&db, &["audit", "list", "--limit", "-1"], None);
        assert!(!ok);
        let (ok, _, err) = cli_result(&db, &["audit", "list", "--since", "yesterday"], None);
        assert!(!ok && err.contains("yesterday"), "{err}");

        let lines = cli(&db, &["audit", "export", "--format", "jsonl"], None);
        let lines: Vec<serde_json::Value> = lines.lines().map(json).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["user_id"], "alice");
        assert_eq!(lines[2]["status"], "error");
        let file = db.dir().join("audit.csv");
        cli(
            &db,
            &[
                "audit",
                "export",
                "--format",
                "csv",
                "--command",
                "cli user add",
                "--to",
                file.to_str().unwrap(),
            ],
            None,
        );
        let csv = std::fs::read_to_string(&file).unwrap();
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows.len(), 4, "{csv}");
        assert!(rows[0].starts_with("id,at,at_unix,client,command"));
        assert!(rows[1].contains(",cli user add,alice,master,"), "{csv}");
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let db = TestDb::new(crate::common::Backend::Sqlite);
    cli(&db, &["migrate"], None);
    for i in 0..50 {
        cli(&db, &["user", "add", "--user", &format!("u{i}")], None);
    }
    let mut child = Command::new(BIN)
        .args(["--json", "audit", "list", "--limit", "0"])
        .current_dir(db.dir())
        .env("PROVD_DATABASE_URL", &db.url)
        .env("PROVD_MASTER_KEY", MASTER_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unknown_settings_are_refused_and_config_show_names_sources() {
    let db = TestDb::new(crate::common::Backend::Sqlite);
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(db.dir())
            .env("PROVD_DATABASE_URL", &db.url)
            .env("PROVD_MASTER_KEY", MASTER_KEY)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = run(&[("PROVD_LISEN", "127.0.0.1:1")], &["user", "list"]);
    assert!(
        !ok && err.contains("PROVD_LISEN") && err.contains("PROVD_LISTEN"),
        "{err}"
    );
    std::fs::write(db.dir().join("provd.toml"), "pool_sise = 3\n").unwrap();
    let (ok, _, err) = run(&[], &["user", "list"]);
    assert!(
        !ok && err.contains("`pool_sise`") && err.contains("`pool_size`"),
        "{err}"
    );
    std::fs::write(db.dir().join("provd.toml"), "pool_size = 3\n").unwrap();
    let (ok, out, err) = run(
        &[("PROVD_RATE_LIMIT_BURST", "7"), ("PROVD_LOG", "warn")],
        &["--json", "config", "show"],
    );
    assert!(ok, "{err}");
    let rows = json(&out);
    let find = |k: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == k)
            .unwrap_or_else(|| panic!("{k}"))
            .clone()
    };
    assert_eq!(find("pool_size")["value"], 3);
    assert!(find("pool_size")["source"]
        .as_str()
        .unwrap()
        .starts_with("file "));
    assert_eq!(
        find("rate_limit_burst")["source"],
        "environment PROVD_RATE_LIMIT_BURST"
    );
    assert_eq!(find("listen")["source"], "default");
    assert_eq!(find("master_key")["value"], "(set, redacted)");
    assert!(!out.contains(MASTER_KEY));
}

#[cfg(provd_pg_tests)]
#[test]
fn a_missing_postgres_database_is_one_clear_error() {
    let admin = std::env::var("PROVD_TEST_POSTGRES_URL").unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    let db = TestDb::at_url(&format!("{base}/provd_no_such_database"));
    let (ok, _, err) = cli_result(&db, &["user", "list"], None);
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
