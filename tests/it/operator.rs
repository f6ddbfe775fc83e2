//! Operator experience (issue 15): readable times, audit of admin commands, audit filters and
//! export, a closed pipe, configuration checks.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use crate::common::{backends, cli, cli_result, TestDb, TestServer, BIN, MASTER_KEY};

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

#[test]
fn users_import_all_or_nothing_and_export_round_trips() {
    for backend in backends() {
        let db = TestDb::new(backend);
        cli(&db, &["migrate"], None);
        cli(&db, &["user", "add", "--user", "existing"], None);
        // 1200 records: more than two insert batches; two with passwords to hash.
        let mut csv = String::from("user_id,domain,organizational_unit,email,password\n");
        for i in 0..1200 {
            csv.push_str(&format!("u{i},corp,ou{},u{i}@example.test,\n", i % 3));
        }
        csv.push_str("p1,master,,,first-pw\np2,master,,,second-pw\n");
        let good = db.dir().join("users.csv");
        std::fs::write(&good, &csv).unwrap();
        // The same file with one bad record at the end, and one clashing with the store.
        let bad = db.dir().join("bad.csv");
        std::fs::write(&bad, format!("{csv},master,,,\nexisting,master,,,\n")).unwrap();
        let (ok, _, err) = cli_result(
            &db,
            &["user", "import", "--file", bad.to_str().unwrap()],
            None,
        );
        assert!(!ok);
        assert!(err.contains("record 1203: user_id"), "{err}");
        assert!(
            err.contains("record 1204: user_id: user existing already exists"),
            "{err}"
        );
        let users = json(&cli(&db, &["--json", "user", "list"], None));
        assert_eq!(users.as_array().unwrap().len(), 1, "nothing was written");

        let out = cli(
            &db,
            &["user", "import", "--file", good.to_str().unwrap()],
            None,
        );
        assert!(out.contains("imported 1202 user(s)"), "{out}");
        let users = json(&cli(
            &db,
            &["--json", "user", "list", "--domain", "corp"],
            None,
        ));
        assert_eq!(users.as_array().unwrap().len(), 1200);
        let p1 = json(&cli(&db, &["--json", "user", "show", "--user", "p1"], None));
        assert_eq!(p1["has_password"], true);
        let u7 = json(&cli(
            &db,
            &["--json", "user", "show", "--user", "u7", "--domain", "corp"],
            None,
        ));
        assert_eq!(u7["organizational_unit"], "ou1");
        assert_eq!(u7["email"], "u7@example.test");
        assert_eq!(u7["has_password"], false);

        // Export with hashes, import into a second store: same users, p1's hash carried over.
        let exported = db.dir().join("export.json");
        cli(
            &db,
            &[
                "user",
                "export",
                "--format",
                "json",
                "--with-password-hashes",
                "--to",
                exported.to_str().unwrap(),
            ],
            None,
        );
        let text = std::fs::read_to_string(&exported).unwrap();
        assert!(!text.contains("first-pw"));
        let db2 = TestDb::new(backend);
        cli(&db2, &["migrate"], None);
        let out = cli(
            &db2,
            &["user", "import", "--file", exported.to_str().unwrap()],
            None,
        );
        assert!(out.contains("imported 1203 user(s)"), "{out}");
        let csv1 = cli(&db, &["user", "export"], None);
        let csv2 = cli(&db2, &["user", "export"], None);
        assert_eq!(csv1, csv2);
        let p1b = json(&cli(
            &db2,
            &["--json", "user", "show", "--user", "p1"],
            None,
        ));
        assert_eq!(p1b["has_password"], true);
    }
}

#[test]
fn pskc_import_of_the_rfc_examples_and_an_encrypted_export_round_trip() {
    let fixture = |name: &str| format!("{}/fixtures/pskc/{name}", env!("CARGO_MANIFEST_DIR"));
    for backend in backends() {
        let db = TestDb::new(backend);
        cli(&db, &["migrate"], None);
        let psk = db.dir().join("psk.hex");
        std::fs::write(&psk, "12345678901234567890123456789012\n").unwrap();
        // Figure 6 (pre-shared key): without the key it is refused, nothing written.
        let fig6 = fixture("rfc6030-figure6.pskcxml");
        let (ok, _, err) = cli_result(&db, &["authenticator", "import", "--file", &fig6], None);
        assert!(!ok && err.contains("encrypted"), "{err}");
        let out = cli(
            &db,
            &[
                "authenticator",
                "import",
                "--file",
                &fig6,
                "--key-file",
                psk.to_str().unwrap(),
            ],
            None,
        );
        assert!(out.contains("imported 1 authenticator(s)"), "{out}");
        let a = json(&cli(
            &db,
            &["--json", "authenticator", "show", "0987654321"],
            None,
        ));
        assert_eq!(a["authenticator"]["serial_no"], "0987654321");
        // Figure 7 (PBKDF2): same serial, so the second import is refused as a whole.
        let fig7 = fixture("rfc6030-figure7.pskcxml");
        let (ok, _, err) = cli_result(
            &db,
            &[
                "authenticator",
                "import",
                "--file",
                &fig7,
                "--password-stdin",
            ],
            Some("qwertz\n"),
        );
        assert!(
            !ok && (err.contains("MAC") || err.contains("wrong")),
            "{err}"
        );
        let (ok, _, err) = cli_result(
            &db,
            &[
                "authenticator",
                "import",
                "--file",
                &fig7,
                "--password-stdin",
            ],
            Some("qwerty\n"),
        );
        assert!(!ok && err.contains("0987654321"), "{err}");
        // Figure 2's 4-byte secret is too short for provd: refused, naming the package.
        let (ok, _, err) = cli_result(
            &db,
            &[
                "authenticator",
                "import",
                "--file",
                &fixture("rfc6030-figure2.pskcxml"),
            ],
            None,
        );
        assert!(!ok && err.contains("key package 1"), "{err}");

        // Export encrypted under another key; import into a fresh store: same serials and keys.
        cli(
            &db,
            &[
                "authenticator",
                "generate",
                "--prefix",
                "VDS",
                "--count",
                "3",
            ],
            None,
        );
        let export_key = db.dir().join("export.hex");
        std::fs::write(&export_key, "000102030405060708090a0b0c0d0e0f").unwrap();
        let file = db.dir().join("export.pskcxml");
        cli(
            &db,
            &[
                "authenticator",
                "export",
                "--key-file",
                export_key.to_str().unwrap(),
                "--to",
                file.to_str().unwrap(),
            ],
            None,
        );
        let xml = std::fs::read_to_string(&file).unwrap();
        assert!(xml.contains("EncryptedValue") && !xml.contains("PlainValue"));
        let keys = provd::pskc::parse(
            xml.as_bytes(),
            &provd::pskc::Protection::PreShared(zeroize::Zeroizing::new(
                hex::decode("000102030405060708090a0b0c0d0e0f").unwrap(),
            )),
        )
        .unwrap();
        assert_eq!(keys.len(), 4);
        let fig6_key = keys
            .iter()
            .find(|k| k.serial_no.as_deref() == Some("0987654321"))
            .unwrap();
        assert_eq!(fig6_key.secret.as_slice(), b"12345678901234567890");
        let db2 = TestDb::new(backend);
        cli(&db2, &["migrate"], None);
        let out = cli(
            &db2,
            &[
                "authenticator",
                "import",
                "--file",
                file.to_str().unwrap(),
                "--key-file",
                export_key.to_str().unwrap(),
            ],
            None,
        );
        assert!(out.contains("imported 4 authenticator(s)"), "{out}");
    }
}

#[test]
fn metrics_move_to_admin_listen_and_backup_copies_the_store() {
    use crate::common::{seeded, Backend};
    // Default: /metrics on the SOAP port, answered to loopback clients (the harness is one).
    let server = TestServer::start(seeded(Backend::Sqlite, 1));
    let (status, body) = server.get("metrics");
    assert_eq!(status, 200, "{body}");
    drop(server);
    // admin_listen: /metrics there, and no longer on the SOAP port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = format!("127.0.0.1:{port}");
    let server = TestServer::start_with(
        seeded(Backend::Sqlite, 1),
        &[("PROVD_ADMIN_LISTEN", &admin)],
        ureq::AgentBuilder::new().build(),
    );
    assert_eq!(server.get("metrics").0, 404);
    let resp = ureq::get(&format!("http://{admin}/metrics"))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!resp.into_string().unwrap().is_empty());
    assert_eq!(server.get("health").0, 200);

    // Backup while the server runs: a consistent copy with the same users.
    let db = &server.db;
    cli(db, &["user", "add", "--user", "kept"], None);
    let copy = db.dir().join("copy.db");
    cli(db, &["backup", "--to", copy.to_str().unwrap()], None);
    let (ok, _, err) = cli_result(db, &["backup", "--to", copy.to_str().unwrap()], None);
    assert!(!ok && err.contains("exists"), "{err}");
    let restored = TestDb::at_url(copy.to_str().unwrap());
    let users = json(&cli(&restored, &["--json", "user", "list"], None));
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["user_id"] == "kept"));
}

#[test]
fn completions_man_page_and_help_name_the_settings() {
    let db = TestDb::new(crate::common::Backend::Sqlite);
    let bash = cli(&db, &["completions", "bash"], None);
    assert!(
        bash.contains("_provd()") && bash.contains("import"),
        "{bash}"
    );
    let zsh = cli(&db, &["completions", "zsh"], None);
    assert!(zsh.contains("#compdef provd"));
    let man = cli(&db, &["man"], None);
    assert!(man.contains(".TH provd 1"));
    let help = cli(&db, &["--help"], None);
    for name in [
        "PROVD_LISTEN",
        "PROVD_DATABASE_URL",
        "PROVD_ADMIN_LISTEN",
        "PROVD_LOG",
        "provd.db",
    ] {
        assert!(help.contains(name), "{name} missing from --help");
    }
    let activate = cli(&db, &["client", "activate", "--help"], None);
    assert!(activate.contains("activation password") && !activate.contains("static password"));
}

/// `--data-dir` (and `PROVD_DATA_DIR`) put the database and its key in one directory that
/// every command finds; a command pointed at a directory without a database creates nothing.
#[test]
fn the_data_directory_holds_the_database_and_the_key() {
    let root = std::env::temp_dir().join(format!(
        "provd-data-dir-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let data = root.join("data");
    let empty = root.join("empty");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    let run = |args: &[&str], env_dir: Option<&std::path::Path>| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&root)
            .args(args)
            .env_remove("PROVD_DATABASE_URL")
            .env_remove("PROVD_MASTER_KEY")
            .env_remove("PROVD_DATA_DIR")
            .stdin(Stdio::null());
        if let Some(d) = env_dir {
            cmd.env("PROVD_DATA_DIR", d);
        }
        cmd.output().unwrap()
    };
    let d = data.to_str().unwrap();
    assert!(run(&["--data-dir", d, "init"], None).status.success());
    assert!(data.join("provd.db").exists() && data.join("provd.db.key").exists());
    assert!(
        !root.join("provd.db").exists(),
        "nothing in the working directory"
    );
    assert!(run(&["--data-dir", d, "user", "add", "--user", "dd"], None)
        .status
        .success());
    // The environment variable names the same store.
    let out = run(&["--json", "user", "list"], Some(&data));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"dd\""));
    // A directory without a database: refused, and nothing is created there.
    let out = run(
        &["--data-dir", empty.to_str().unwrap(), "user", "list"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    std::fs::remove_dir_all(&root).unwrap();
}

/// Whether this machine lets a test put a server in a network namespace of its own (root,
/// `unshare`, `ip`). Not where CI runs: there the tests below must run, never be skipped.
fn network_namespaces() -> bool {
    let ok = Command::new("unshare")
        .args(["--net", "ip", "addr", "add", "192.0.2.1/32", "dev", "lo"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "CI must run this test: it needs root, unshare and ip (iproute2)"
    );
    if !ok {
        eprintln!("skipped: no network namespace (needs root, unshare and ip)");
    }
    ok
}

/// `provd serve --listen LISTEN` in a network namespace of its own (`unshare --net`) whose
/// loopback interface carries 192.0.2.1 (TEST-NET-1) besides 127.0.0.1 and ::1. A client in
/// that namespace that connects to 192.0.2.1 connects from 192.0.2.1: a peer the server sees
/// as not loopback, though no packet leaves the namespace. Returns the server and its port.
fn serve_in_namespace(db: TestDb, listen: &str, env: &[(&str, &str)]) -> (TestServer, u16) {
    let provd = crate::common::command(&db, &["serve", "--listen", listen]);
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--", "sh", "-c"])
        .arg(r#"ip link set lo up && ip addr add 192.0.2.1/32 dev lo && exec "$0" "$@""#)
        .arg(provd.get_program())
        .args(provd.get_args());
    if let Some(dir) = provd.get_current_dir() {
        cmd.current_dir(dir);
    }
    for (name, value) in provd.get_envs() {
        if let Some(value) = value {
            cmd.env(name, value);
        }
    }
    cmd.envs(env.iter().copied()).stderr(Stdio::inherit());
    // `unshare` and `sh` exec: the child is provd itself, in the new namespace.
    let server = TestServer::spawn(db, cmd, ureq::agent());
    let port = server
        .base
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {}", server.base));
    (server, port)
}

/// `GET PATH` over a plain socket from inside `server`'s network namespace, to `to`:`port`.
/// Asserts that the connection came from `to` (the address the server sees as its peer).
fn get_in_namespace(server: &TestServer, to: IpAddr, port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    let pid = server.pid();
    let path = path.to_owned();
    // A thread of its own: setns moves only the calling thread, which then ends.
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        // SAFETY: a plain system call on an open descriptor; it changes only this thread.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let mut stream = std::net::TcpStream::connect((to, port)).unwrap();
        let from = stream.local_addr().unwrap().ip();
        assert_eq!(from, to, "the client's address, the server's peer");
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: provd\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
    })
    .join()
    .unwrap()
}

/// The README: without `admin_listen`, `/metrics` on the SOAP port "answers only clients
/// connecting from a loopback address (403 otherwise)"; with it, `/metrics` is gone from the
/// SOAP port. Proven over real sockets from a peer that is not loopback (192.0.2.1 in a
/// network namespace of the test's own) against the same server a loopback peer reads it from.
#[test]
fn metrics_on_the_soap_port_are_refused_to_peers_that_are_not_loopback() {
    use crate::common::Backend;
    if !network_namespaces() {
        return;
    }
    let here: IpAddr = "127.0.0.1".parse().unwrap();
    let away: IpAddr = "192.0.2.1".parse().unwrap();
    let v6_here: IpAddr = "::1".parse().unwrap();

    // IPv4 listener on every address: a loopback peer reads, another is refused.
    let (server, port) = serve_in_namespace(TestDb::new(Backend::Sqlite), "0.0.0.0:0", &[]);
    let (status, body) = get_in_namespace(&server, here, port, "metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("provd_"), "{body}");
    let (status, body) = get_in_namespace(&server, away, port, "metrics");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("admin_listen"), "{body}");
    assert!(!body.contains("provd_"), "{body}");
    // The same peer is served everything else: the refusal is the rule, not the network.
    assert_eq!(get_in_namespace(&server, away, port, "health").0, 200);
    drop(server);

    // Dual-stack listener: IPv4 peers arrive as IPv4-mapped IPv6 addresses
    // (::ffff:127.0.0.1), and the rule holds for them as for ::1.
    let (server, port) = serve_in_namespace(TestDb::new(Backend::Sqlite), "[::]:0", &[]);
    assert_eq!(get_in_namespace(&server, v6_here, port, "metrics").0, 200);
    let (status, body) = get_in_namespace(&server, here, port, "metrics");
    assert_eq!(
        status, 200,
        "a loopback peer through a dual-stack socket: {body}"
    );
    assert_eq!(get_in_namespace(&server, away, port, "metrics").0, 403);
    drop(server);

    // admin_listen: /metrics is gone from the SOAP port for every peer, and served there.
    let (server, port) = serve_in_namespace(
        TestDb::new(Backend::Sqlite),
        "0.0.0.0:0",
        &[("PROVD_ADMIN_LISTEN", "127.0.0.1:9100")],
    );
    assert_eq!(get_in_namespace(&server, away, port, "metrics").0, 404);
    assert_eq!(get_in_namespace(&server, here, port, "metrics").0, 404);
    let (status, body) = get_in_namespace(&server, here, 9100, "metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("provd_"), "{body}");
}
