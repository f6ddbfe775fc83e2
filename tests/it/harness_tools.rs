//! The replay-harness tools over HTTP, on every backend: `provd seed` (idempotent, TOML and
//! JSON) and `provd replay` (record, compare, diff, summary, exit status, masks).

use crate::common::{backends, cli, cli_result, element, envelope, TestDb, TestServer};

const SEED: &str = r#"
[[users]]
user = "alice"
password = "Alice.Pass1"

[[users]]
user = "bob"
domain = "master"

[[authenticators]]
serial_no = "VDS1000001"
assign = "alice"

[[authenticators]]
serial_no = "VDS1000002"
"#;

fn status(body: &str) -> &str {
    element(body, "statusCodeEnum").unwrap_or("")
}

#[test]
fn seed_is_idempotent_and_brings_a_server_to_a_known_state() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let file = db.dir().join("seed.toml");
        std::fs::write(&file, SEED).unwrap();
        let f = file.to_str().unwrap();
        let out = cli(&db, &["seed", f], None);
        assert!(
            out.contains("2 user(s) and 2 authenticator(s) created, 1 assigned, 0 unchanged"),
            "{backend:?}: {out}"
        );
        let out = cli(&db, &["seed", f], None);
        assert!(
            out.contains("0 user(s) and 0 authenticator(s) created, 0 assigned, 4 unchanged"),
            "{backend:?}: {out}"
        );
        // JSON, and a conflicting assignment is refused naming the authenticator.
        let json = db.dir().join("seed.json");
        std::fs::write(
            &json,
            r#"{"authenticators":[{"serial_no":"VDS1000001","assign":"bob"}]}"#,
        )
        .unwrap();
        let (ok, _, err) = cli_result(&db, &["seed", json.to_str().unwrap()], None);
        assert!(!ok && err.contains("VDS1000001"), "{err}");
        // A bad entry: nothing of the file is written.
        let bad = db.dir().join("bad.toml");
        std::fs::write(
            &bad,
            "[[users]]\nuser = \"carol\"\n[[authenticators]]\nserial_no = \"x\"\n",
        )
        .unwrap();
        let (ok, _, err) = cli_result(&db, &["seed", bad.to_str().unwrap()], None);
        assert!(!ok && err.contains("serial_no"), "{err}");
        assert!(cli(&db, &["user", "list"], None).contains("alice"));
        assert!(!cli(&db, &["user", "list"], None).contains("carol"));

        let server = TestServer::start(db);
        let register = |user: &str, password: &str| {
            envelope(&format!(
                r#"<PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_REGISTER</cmd><attributeSet><attributes><value xsi:type="xsd:string">{user}</value><attributeID>PROVFLD_USERID</attributeID></attributes><attributes><value xsi:type="xsd:string">{password}</value><attributeID>PROVFLD_STATIC_PASSWORD</attributeID></attributes></attributeSet></PROV-TYPES:provisioningExecute>"#
            ))
        };
        let (_, body) = server.post(&register("alice", "Alice.Pass1"));
        assert_eq!(status(&body), "STAT_SUCCESS", "{backend:?}: {body}");
        assert!(body.contains(">VDS1000001</value>"), "{body}");
    }
}

#[test]
fn replay_records_compares_and_fails_with_a_diff() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = db.dir().join("cases");
        std::fs::create_dir_all(&dir).unwrap();
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        for name in ["01_server_time", "08_unknown_command"] {
            std::fs::copy(
                fixtures.join(format!("{name}.request.xml")),
                dir.join(format!("{name}.request.xml")),
            )
            .unwrap();
        }
        let server = TestServer::start(db);
        let d = dir.to_str().unwrap();
        let url = server.base.clone();
        let run = |extra: &[&str]| {
            let mut args = vec!["replay", d, "--url", url.as_str()];
            args.extend_from_slice(extra);
            cli_result(&server.db, &args, None)
        };
        // Nothing expected yet: a failure, saying what is missing.
        let (ok, out, _) = run(&[]);
        assert!(
            !ok && out.contains("MISSING") && out.contains("0 passed, 2 failed"),
            "{out}"
        );
        let (ok, out, _) = run(&["--record"]);
        assert!(
            ok && out.contains("0 passed, 0 failed, 2 recorded"),
            "{out}"
        );
        let recorded = std::fs::read_to_string(dir.join("01_server_time.response.xml")).unwrap();
        assert!(recorded.contains("{UNIX_TIME}"), "{recorded}");
        // The server's time changes; the mask hides it: the replay passes, as in the fixtures.
        assert_eq!(
            std::fs::read_to_string(dir.join("01_server_time.response.xml")).unwrap(),
            std::fs::read_to_string(fixtures.join("01_server_time.response.xml")).unwrap()
        );
        let (ok, out, _) = run(&[]);
        assert!(
            ok && out.contains("replay: 2 passed, 0 failed"),
            "{backend:?}: {out}"
        );
        // Without provd's masks the time differs: non-zero exit and a diff of that line.
        let (ok, out, _) = run(&["--no-default-masks"]);
        assert!(!ok && out.contains("DIFFERS  01_server_time"), "{out}");
        assert!(out.contains("-") && out.contains("{UNIX_TIME}"), "{out}");
        // A configured mask puts it back.
        let (ok, out, _) = run(&[
            "--no-default-masks",
            "--mask",
            r">\d{10}</value>=>{UNIX_TIME}</value>",
        ]);
        assert!(ok, "{out}");
        // A changed expectation is reported as a diff with the line, and fails.
        let path = dir.join("08_unknown_command.response.xml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("RET_FAILURE", "RET_SUCCESS")).unwrap();
        let (ok, out, _) = run(&[]);
        assert!(!ok, "{out}");
        assert!(out.contains("DIFFERS  08_unknown_command"), "{out}");
        assert!(
            out.contains("RET_SUCCESS") && out.contains("RET_FAILURE"),
            "{out}"
        );
        assert!(out.contains("replay: 1 passed, 1 failed"), "{out}");
    }
}
