//! A private PostgreSQL server for one test, in a temporary directory on a free port, for tests
//! that stop and start the server (never the shared one at `PROVD_TEST_POSTGRES_URL`, which
//! other tests use at the same time).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running private server; stopped and removed when dropped.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    /// `runuser -u postgres --` when the tests run as root (postgres refuses to).
    as_postgres: bool,
    pub port: u16,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: the newest
/// `/usr/lib/postgresql/*/bin` (Debian), else the directory of `pg_ctl` on the path.
fn find_binaries() -> Option<PathBuf> {
    let complete = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| complete(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|d| complete(d))
            .map(|d| d.canonicalize().unwrap_or(d))
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn check(what: &str, out: std::io::Result<Output>) {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePostgres {
    /// Starts a fresh server. `None`, after saying why, when the PostgreSQL server binaries
    /// are not installed and `PROVD_TEST_POSTGRES_URL` is unset; with it set (CI), PostgreSQL
    /// is expected and their absence fails the test.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let missing = match find_binaries() {
            None => Some(
                "the PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed"
                    .to_owned(),
            ),
            Some(_)
                if is_root()
                    && !Command::new("id")
                        .arg("postgres")
                        .output()
                        .is_ok_and(|o| o.status.success()) =>
            {
                Some(
                    "running as root, and there is no postgres user to run PostgreSQL as"
                        .to_owned(),
                )
            }
            Some(_) => None,
        };
        if let Some(why) = missing {
            if std::env::var("PROVD_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
                panic!("{test}: PROVD_TEST_POSTGRES_URL is set but {why}");
            }
            eprintln!("SKIPPED {test}: {why}");
            return None;
        }
        Some(Self::start(find_binaries().unwrap()))
    }

    fn start(bin: PathBuf) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("provd-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            check(
                "chown postgres",
                Command::new("chown").arg("postgres:").arg(&dir).output(),
            );
        }
        let pg = PrivatePostgres {
            bin,
            dir,
            as_postgres,
            port: free_port(),
        };
        check(
            "initdb",
            pg.command("initdb")
                .arg("-D")
                .arg(pg.data())
                .args(["-U", "postgres", "-A", "trust", "--no-locale", "-E", "UTF8"])
                .arg("--no-sync")
                .output(),
        );
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n",
            pg.port,
            pg.dir.display()
        );
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(pg.data().join("postgresql.conf"))
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        pg.start_server();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // The caller's directory may not be readable by the postgres user.
        cmd.current_dir(&self.dir);
        cmd
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(self.data()).args(args);
        cmd
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server; returns once it accepts connections (`pg_ctl -w`).
    pub fn start_server(&self) {
        let log = self.dir.join("server.log");
        check(
            "pg_ctl start",
            self.pg_ctl(&["-w", "-t", "120", "-l"])
                .arg(&log)
                .arg("start")
                .output(),
        );
    }

    /// Stops the server the fast way (sessions are ended, transactions in progress rolled
    /// back, committed data kept); returns once it is down.
    pub fn stop_server(&self) {
        check(
            "pg_ctl stop",
            self.pg_ctl(&["-w", "-t", "120", "-m", "fast", "stop"])
                .output(),
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-w", "-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
