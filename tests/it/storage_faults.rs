//! Storage faults under a running server (SQLite): the database files made unwritable, and a
//! full disk. The server keeps running (no SIGBUS), answers the calls that need a write with
//! a clean failure, `/health` says 503 until the store can write again, and then it carries
//! on. Both need root (an ext4 loop mount and `chattr +i`, which stops root where `chmod`
//! does not; a small tmpfs); without it they are skipped with a message.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{cli, element, seed, srp_register, TestDb, TestServer};

static N: AtomicUsize = AtomicUsize::new(0);

fn ok(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A file system mounted for one test, unmounted (and its loop device detached) on drop.
struct Mounted {
    dir: PathBuf,
    mnt: PathBuf,
    loop_dev: Option<String>,
}

impl Mounted {
    fn dir() -> PathBuf {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("provd-fault-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        dir
    }

    /// A 32 MiB ext4 image on a loop device.
    fn ext4() -> Result<Self, String> {
        let dir = Self::dir();
        let img = dir.join("fs.img");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(32 << 20))
            .map_err(|e| e.to_string())?;
        if !ok("mkfs.ext4", &["-q", "-F", img.to_str().unwrap()]) {
            return Err("mkfs.ext4 failed or is missing".into());
        }
        let out = Command::new("losetup")
            .args(["-f", "--show", img.to_str().unwrap()])
            .output()
            .map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "losetup: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let mounted = Mounted {
            mnt: dir.join("mnt"),
            dir,
            loop_dev: Some(dev.clone()),
        };
        if !ok("mount", &[&dev, mounted.mnt.to_str().unwrap()]) {
            return Err("mount of the loop device failed".into());
        }
        Ok(mounted)
    }

    /// A tmpfs of `size` (e.g. `4m`).
    fn tmpfs(size: &str) -> Result<Self, String> {
        let dir = Self::dir();
        let mounted = Mounted {
            mnt: dir.join("mnt"),
            dir,
            loop_dev: None,
        };
        if !ok(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                mounted.mnt.to_str().unwrap(),
            ],
        ) {
            return Err("mount -t tmpfs failed".into());
        }
        Ok(mounted)
    }

    /// The database's files (`provd.db`, its journal, its key file).
    fn db_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.mnt)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("provd.db"))
            })
            .collect()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for f in self.db_files() {
            let _ = Command::new("chattr").arg("-i").arg(&f).output();
        }
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).output();
        if let Some(dev) = &self.loop_dev {
            let _ = Command::new("losetup").args(["-d", dev]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED storage_faults::{test}: {why}");
}

/// A seeded database on `mnt` (testuser, second, three authenticators) and its server.
fn server_on(mnt: &Path) -> TestServer {
    let db = TestDb::at_url(mnt.join("provd.db").to_str().unwrap());
    cli(&db, &["init"], None);
    TestServer::start(seed(db, 3))
}

fn register(server: &TestServer, user: &str, password: &str) -> Result<String, String> {
    let (status, body) = server.try_post(&srp_register(user, password))?;
    Ok(match element(&body, "statusCodeEnum") {
        Some(s) => s.to_owned(),
        None => format!(
            "HTTP {status}: {}",
            element(&body, "faultstring").unwrap_or(&body)
        ),
    })
}

/// Polls `/health` until it answers `status`.
fn health_becomes(server: &TestServer, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = server.get("health");
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/health still {got} {body} after 30 s (waiting for {status})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fault: the call needing a write gets an answer that is not a success, the process
/// lives, `/health` turns 503.
fn fails_cleanly(server: &mut TestServer) {
    let during = register(server, "second", "2.Password")
        .expect("an HTTP answer while the store cannot write");
    assert_ne!(during, "STAT_SUCCESS");
    assert!(server.is_running(), "the server died on the fault");
    let body = health_becomes(server, 503);
    assert!(body.contains("cannot write"), "{body}");
    assert!(server.is_running(), "the server died on the fault");
}

/// The fault as in [`fails_cleanly`]; then `heal`, and everything works again.
fn survives(server: &mut TestServer, heal: impl FnOnce()) {
    fails_cleanly(server);
    heal();
    health_becomes(server, 200);
    assert_eq!(
        register(server, "second", "2.Password").as_deref(),
        Ok("STAT_SUCCESS")
    );
}

#[test]
fn database_files_made_unwritable_under_a_running_server() {
    const TEST: &str = "database_files_made_unwritable_under_a_running_server";
    if !is_root() {
        return skip(TEST, "needs root (an ext4 loop mount and chattr +i)");
    }
    if !ok("chattr", &["--help"]) && !Path::new("/usr/bin/chattr").exists() {
        return skip(TEST, "chattr is missing");
    }
    let mounted = match Mounted::ext4() {
        Ok(m) => m,
        Err(e) => return skip(TEST, &e),
    };
    let mut server = server_on(&mounted.mnt);
    assert_eq!(
        register(&server, "testuser", "1.Password").as_deref(),
        Ok("STAT_SUCCESS")
    );
    assert!(ok("sync", &[]));
    for f in mounted.db_files() {
        assert!(
            ok("chattr", &["+i", f.to_str().unwrap()]),
            "chattr +i {f:?}"
        );
    }
    let files = mounted.db_files();
    survives(&mut server, || {
        for f in &files {
            assert!(ok("chattr", &["-i", f.to_str().unwrap()]));
        }
    });
    drop(server);
}

#[test]
fn a_full_disk_under_a_running_server() {
    const TEST: &str = "a_full_disk_under_a_running_server";
    if !is_root() {
        return skip(TEST, "needs root (mounting a small tmpfs)");
    }
    let mounted = match Mounted::tmpfs("4m") {
        Ok(m) => m,
        Err(e) => return skip(TEST, &e),
    };
    let mut server = server_on(&mounted.mnt);
    assert_eq!(
        register(&server, "testuser", "1.Password").as_deref(),
        Ok("STAT_SUCCESS")
    );
    // Fill the file system to the last byte.
    let filler = mounted.mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).and_then(|_| f.flush()).is_ok() {}
        while f.write_all(&chunk[..1]).is_ok() {}
    }
    survives(&mut server, || std::fs::remove_file(&filler).unwrap());
    drop(server);
}

/// The file system turns read-only under the server, as ext4 does on an error with
/// `errors=remount-ro` (triggered through `/sys/fs/ext4/<device>/trigger_fs_error`); it
/// stays read-only until remounted, so there is no recovery step.
#[test]
fn a_file_system_gone_read_only_under_a_running_server() {
    const TEST: &str = "a_file_system_gone_read_only_under_a_running_server";
    if !is_root() {
        return skip(TEST, "needs root (an ext4 loop mount)");
    }
    let mounted = match Mounted::ext4() {
        Ok(m) => m,
        Err(e) => return skip(TEST, &e),
    };
    let dev = mounted.loop_dev.clone().unwrap();
    let trigger = PathBuf::from("/sys/fs/ext4")
        .join(Path::new(&dev).file_name().unwrap())
        .join("trigger_fs_error");
    if !trigger.exists() {
        return skip(TEST, &format!("{} is missing", trigger.display()));
    }
    assert!(ok(
        "mount",
        &[
            "-o",
            "remount,errors=remount-ro",
            mounted.mnt.to_str().unwrap()
        ]
    ));
    let mut server = server_on(&mounted.mnt);
    assert_eq!(
        register(&server, "testuser", "1.Password").as_deref(),
        Ok("STAT_SUCCESS")
    );
    assert!(ok("sync", &[]));
    std::fs::write(&trigger, "1").unwrap();
    fails_cleanly(&mut server);
    drop(server);
}
