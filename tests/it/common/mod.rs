//! Test harness: a real `provd` process per test, seeded through its own admin CLI, on SQLite
//! and, when `PROVD_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL database as well.
#![allow(dead_code)]

pub mod private_pg;
pub mod smtp;
#[allow(unused_imports)]
pub use smtp::SmtpSink;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_provd");
pub const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to run on: SQLite always; PostgreSQL when `PROVD_TEST_POSTGRES_URL` names a
/// server (CI sets it, and then an unreachable server fails the tests).
pub fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Sqlite];
    // build.rs sets `provd_pg_tests` when the URL is set AND the `postgres` feature is built.
    if cfg!(provd_pg_tests) {
        b.push(Backend::Postgres);
    }
    b
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database for one test, removed when dropped.
pub struct TestDb {
    pub url: String,
    dir: PathBuf,
    pg: Option<(String, String)>,
}

fn psql(admin_url: &str, sql: &str) {
    let out = Command::new("psql")
        .arg(admin_url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestDb {
    /// A new database, created by `provd init` (with [`MASTER_KEY`]).
    pub fn new(backend: Backend) -> Self {
        let db = Self::fresh(backend);
        cli(&db, &["init"], None);
        db
    }

    /// A place for a database that nothing has created yet: no SQLite file; on PostgreSQL an
    /// empty database.
    pub fn fresh(backend: Backend) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}_{}", std::process::id(), n);
        let dir = std::env::temp_dir().join(format!("provd-test-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        match backend {
            Backend::Sqlite => TestDb {
                url: dir.join("provd.db").display().to_string(),
                dir,
                pg: None,
            },
            Backend::Postgres => {
                let admin = std::env::var("PROVD_TEST_POSTGRES_URL").unwrap();
                let name = format!("provd_t_{tag}");
                psql(&admin, &format!("CREATE DATABASE {name}"));
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    dir,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    /// A database this harness did not create (and will not drop), at `url`; the directory
    /// for the CLI's working files is still the test's own.
    pub fn at_url(url: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("provd-test-{}_{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TestDb {
            url: url.to_owned(),
            dir,
            pg: None,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.url.is_empty() {
            return;
        }
        if let Some((admin, name)) = &self.pg {
            let _ = Command::new("psql")
                .arg(admin)
                .args([
                    "-q",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the admin CLI against a database; returns stdout, panics with stderr on failure.
pub fn cli(db: &TestDb, args: &[&str], stdin: Option<&str>) -> String {
    let (ok, out, err) = cli_result(db, args, stdin);
    assert!(ok, "provd {args:?} failed: {err}");
    out
}

/// `provd ARGS` in the database's directory, configured for it (add `.env(..)` to change it).
pub fn command(db: &TestDb, args: &[&str]) -> Command {
    provd(db, args)
}

/// `provd ARGS` in the database's directory, configured for it.
fn provd(db: &TestDb, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(db.dir())
        .env("PROVD_DATABASE_URL", &db.url)
        .env("PROVD_MASTER_KEY", MASTER_KEY)
        .env("PROVD_LOG", "warn");
    cmd
}

/// Runs the admin CLI; returns (success, stdout, stderr).
pub fn cli_result(db: &TestDb, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = provd(db, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("provd starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `provd serve` on an ephemeral port.
pub struct TestServer {
    pub db: TestDb,
    pub base: String,
    child: Child,
    agent: ureq::Agent,
}

impl TestServer {
    /// Starts a server on an already seeded database.
    pub fn start(db: TestDb) -> Self {
        Self::start_with(db, &[], ureq::AgentBuilder::new().build())
    }

    /// Starts a server with extra environment, talking to it through `agent`.
    pub fn start_with(db: TestDb, env: &[(&str, &str)], agent: ureq::Agent) -> Self {
        let mut cmd = provd(&db, &["serve", "--listen", "127.0.0.1:0"]);
        cmd.envs(env.iter().copied()).stderr(Stdio::inherit());
        Self::spawn(db, cmd, agent)
    }

    /// Starts `cmd` (a `provd serve --listen 127.0.0.1:0` command; its standard error as the
    /// caller set it) and waits for its address.
    pub fn spawn(db: TestDb, mut cmd: Command, agent: ureq::Agent) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("provd starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("provd listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from provd serve: {line:?}"))
            .to_owned();
        TestServer {
            db,
            base: format!("{addr}/"),
            child,
            agent,
        }
    }

    /// POSTs a SOAP body; returns the HTTP status and the response body.
    pub fn post(&self, body: &str) -> (u16, String) {
        self.post_with(body, &[])
    }

    /// POSTs a SOAP body with extra request headers.
    pub fn post_with(&self, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
        self.try_post_with(body, headers)
            .unwrap_or_else(|e| panic!("POST {}: {e}", self.base))
    }

    /// POSTs a SOAP body; `Err` when no HTTP answer came (connection failed, timed out).
    pub fn try_post(&self, body: &str) -> Result<(u16, String), String> {
        self.try_post_with(body, &[])
    }

    fn try_post_with(&self, body: &str, headers: &[(&str, &str)]) -> Result<(u16, String), String> {
        let mut request = self
            .agent
            .post(&self.base)
            .set("Content-Type", "text/xml; charset=utf-8");
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let (status, resp) = match request.send_string(body) {
            Ok(resp) => (resp.status(), resp),
            Err(ureq::Error::Status(code, resp)) => (code, resp),
            Err(e) => return Err(e.to_string()),
        };
        resp.into_string()
            .map(|text| (status, text))
            .map_err(|e| e.to_string())
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        match self.agent.get(&format!("{}{}", self.base, path)).call() {
            Ok(resp) => (resp.status(), resp.into_string().unwrap()),
            Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
            Err(e) => panic!("GET {path}: {e}"),
        }
    }
}

impl TestServer {
    /// Sends a signal (`TERM`, `INT`, ...) to the server.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Whether the server process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the server to exit; its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }

    /// Kills the server with SIGKILL, mid-whatever, and hands back its database.
    pub fn kill(mut self) -> TestDb {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Drop would kill again; take the database out instead.
        std::mem::replace(
            &mut self.db,
            TestDb {
                url: String::new(),
                dir: std::env::temp_dir().join("provd-test-none"),
                pg: None,
            },
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The standard seed: user `testuser` in `master` with password `1.Password` (OneSpan's
/// sample), user `second` with `2.Password`, and `authenticators` free authenticators.
pub fn seeded(backend: Backend, authenticators: u32) -> TestDb {
    seed(TestDb::new(backend), authenticators)
}

/// The standard seed (see [`seeded`]) written into `db`.
pub fn seed(db: TestDb, authenticators: u32) -> TestDb {
    cli(
        &db,
        &["user", "add", "--user", "testuser", "--password-stdin"],
        Some("1.Password\n"),
    );
    cli(
        &db,
        &["user", "add", "--user", "second", "--password-stdin"],
        Some("2.Password\n"),
    );
    if authenticators > 0 {
        cli(
            &db,
            &[
                "authenticator",
                "generate",
                "--prefix",
                "VDS",
                "--count",
                &authenticators.to_string(),
            ],
            None,
        );
    }
    db
}

/// A SOAP envelope around `body`, with OneSpan's prefixes.
pub fn envelope(body: &str) -> String {
    format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:PROV-TYPES="http://www.vasco.com/IdentikeyServer/IdentikeyTypes/Provisioning"><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

pub fn srp_register(user: &str, password: &str) -> String {
    envelope(&format!(
        "<PROV-TYPES:dsappSRPRegister><componentType>provd tests</componentType><user><userID>{user}</userID><domain>master</domain></user><credential><staticPassword>{password}</staticPassword></credential></PROV-TYPES:dsappSRPRegister>"
    ))
}

/// The text of the first `<tag>` element in `xml`.
pub fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

/// A raw `dsappSRPGenerateActivationData` request.
pub fn activation_data_request(registration_id: &str, evidence_hex: &str) -> String {
    envelope(&format!(
        "<PROV-TYPES:dsappSRPGenerateActivationData><registrationID>{registration_id}</registrationID><clientEvidenceMessage>{evidence_hex}</clientEvidenceMessage></PROV-TYPES:dsappSRPGenerateActivationData>"
    ))
}

/// The status and description of a failure the reference client reports.
pub fn status_of(e: &provd::client::ClientError) -> (&str, &str) {
    match e {
        provd::client::ClientError::Failed {
            status,
            description,
            ..
        } => (status, description),
        other => panic!("expected a failure status, got {other}"),
    }
}

/// An authenticator's status, as `provd authenticator show` reports it.
pub fn authenticator_status(server: &TestServer, serial: &str) -> String {
    let shown = cli(
        &server.db,
        &["--json", "authenticator", "show", serial],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    v["authenticator"]["status"].as_str().unwrap().to_owned()
}
