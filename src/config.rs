//! Configuration: defaults, then a TOML file (`provd.toml` in the working directory, or the
//! file named by `--config` / `PROVD_CONFIG`), then `PROVD_*` environment variables, then
//! command-line flags; each later source overrides the earlier ones.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::crypto::MasterKey;
use crate::forwarded::TrustedProxies;
use crate::lifecycle::Policy;
use crate::store::Backend;

/// The SMTP timeout, per command.
pub const SMTP_TIMEOUT_SECS: u64 = 30;

#[derive(Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// `postgres://...` for PostgreSQL; anything else is a SQLite file path.
    pub database_url: String,
    /// The master key sealing secrets at rest, 64 hex characters. Required on PostgreSQL
    /// (every instance needs the same key); on SQLite a key file is created beside a new
    /// database when neither this nor `master_key_file` is set.
    pub master_key: Option<String>,
    /// A file holding the master key in hex.
    pub master_key_file: Option<PathBuf>,
    /// Database connections per process.
    pub pool_size: u32,
    /// Request bodies larger than this are refused before parsing.
    pub max_body_bytes: usize,
    /// The address written into the served WSDL; derived from the request when unset.
    pub public_url: Option<String>,
    /// Wrong static passwords in a row before a user is locked.
    pub lock_after_failures: i32,
    /// Registration lifetime in seconds.
    pub registration_lifetime_secs: i64,
    /// Lifetime of the server's state of one SRP key exchange, in seconds.
    pub ephemeral_lifetime_secs: i64,
    /// Failed proofs (client evidence or OTP) that revoke a registration.
    pub max_activation_failures: i32,
    /// Seconds between sweeps of expired registrations and key exchanges.
    pub sweep_interval_secs: u64,
    /// Days an activated registration is kept after its expiry before the sweeper removes it.
    pub registration_retention_days: u32,
    /// Also audit `PROVISIONCMD_SERVER_TIME` (unauthenticated and read-only; off by default).
    pub audit_server_time: bool,
    /// `text` or `json` log lines on standard error.
    pub log_format: String,
    /// Provisioning calls (all but `PROVISIONCMD_SERVER_TIME`) allowed per client address and
    /// minute, per instance; 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// Calls a client address may make at once before the per-minute rate applies.
    pub rate_limit_burst: u32,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client
    /// address for the rate limit and the audit trail; empty: the header is never read.
    pub trusted_proxies: TrustedProxies,
    /// PEM certificate chain; with `tls_key_file`, the server speaks HTTPS only.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Threads for database and protocol work (each Argon2 check holds 19 MiB while it
    /// runs); 0 means twice the pool size.
    pub blocking_threads: usize,
    /// The SMTP server that delivers e-mail (`smtp://host:25`, `smtp://host:587?tls=required`,
    /// `smtps://host:465`; `user:password@` allowed). Unset: no e-mail is sent.
    pub smtp_url: Option<String>,
    /// The `From` of every message.
    pub mail_from: String,
    /// Attempts at one message before it is marked failed.
    pub mail_max_attempts: i32,
    /// The wait after a first failed attempt; it doubles with each further failure, up to an
    /// hour.
    pub mail_retry_base_secs: u64,
    /// Seconds between scans of the outbox (new mail of this instance is sent at once).
    pub mail_poll_secs: u64,
    /// How long a message being sent is reserved for its sender; the messages of an instance
    /// that died are sent again after this.
    pub mail_lease_secs: u64,
    /// The Hermod-style REST front (`[hermod]`, `PROVD_HERMOD__*`).
    pub hermod: crate::hermod::Settings,
    /// A whole request (headers and body) must arrive within this many seconds of the
    /// connection opening (later requests on a kept-alive connection: of their headers), or
    /// the connection is closed.
    pub request_timeout_secs: u64,
    /// A TLS handshake must complete within this many seconds, or the connection is closed.
    pub tls_handshake_timeout_secs: u64,
    /// Open client connections at most, over all workers; lowered to fit the file-descriptor
    /// limit (whose soft value provd raises to the hard one at start).
    pub max_connections: usize,
    /// Calls that check a static password (Argon2) running at once; 0: one per core.
    pub password_checks: usize,
    /// Such calls waiting for their turn at most; past it a call is refused at once (HTTP 503).
    pub password_check_queue: usize,
    /// How long a waiting call waits at most, in milliseconds, before it is refused (HTTP 503).
    pub password_check_wait_ms: u64,
    /// Audit rows older than this many days are deleted by the sweeper; 0 keeps them forever.
    pub audit_retention_days: u32,
    /// `allow` (default) or `deny`: whether registering a user whose authenticator is already
    /// active (re-keying it for a new device) is allowed.
    pub reactivation: Reactivation,
    /// The most reactivations one authenticator may have; 0: no cap.
    pub max_reactivations: i32,
    /// How long a password lock lasts, in seconds (default 15 minutes); each further lock in
    /// a row lasts twice as long, up to 64 times this. 0: until an administrator unlocks.
    pub lock_duration_secs: i64,
    /// OneSpan's "Use Generic Authentication Status Codes": an unknown, locked or disabled
    /// user and a wrong password all answer STAT_INVCREDENTIALS with the same text.
    pub generic_status_codes: bool,
    /// Where `/metrics` (and `/health`) are served apart from the SOAP port, e.g.
    /// `127.0.0.1:9100`. Unset: `/metrics` is on the SOAP port, for loopback clients only.
    pub admin_listen: Option<String>,
}

/// The reactivation policy setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reactivation {
    Allow,
    Deny,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8888".into(),
            database_url: "provd.db".into(),
            master_key: None,
            master_key_file: None,
            pool_size: 16,
            max_body_bytes: 1024 * 1024,
            public_url: None,
            lock_after_failures: Policy::default().lock_after_failures,
            registration_lifetime_secs: Policy::default().registration_lifetime_secs,
            ephemeral_lifetime_secs: Policy::default().ephemeral_lifetime_secs,
            max_activation_failures: Policy::default().max_activation_failures,
            sweep_interval_secs: 60,
            registration_retention_days: 30,
            audit_server_time: false,
            log_format: "text".into(),
            rate_limit_per_minute: 600,
            rate_limit_burst: 100,
            trusted_proxies: TrustedProxies::default(),
            tls_cert_file: None,
            tls_key_file: None,
            blocking_threads: 0,
            smtp_url: None,
            mail_from: "provd <provd@localhost>".into(),
            mail_max_attempts: 8,
            mail_retry_base_secs: 30,
            mail_poll_secs: 10,
            mail_lease_secs: 300,
            request_timeout_secs: 10,
            tls_handshake_timeout_secs: 3,
            max_connections: 4096,
            password_checks: 0,
            password_check_queue: 64,
            password_check_wait_ms: 2000,
            reactivation: Reactivation::Allow,
            max_reactivations: 0,
            lock_duration_secs: Policy::default().lock_duration_secs,
            generic_status_codes: false,
            audit_retention_days: 90,
            hermod: crate::hermod::Settings::default(),
            admin_listen: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("master_key", &self.master_key.as_ref().map(|_| "(set)"))
            .field("master_key_file", &self.master_key_file)
            .field("pool_size", &self.pool_size)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("mail_from", &self.mail_from)
            .finish_non_exhaustive()
    }
}

/// A database URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Overrides from the command line; `None` leaves the other sources' value.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// The data directory (`--data-dir`, `PROVD_DATA_DIR`): the default database is
    /// `<dir>/provd.db` (its key file `<dir>/provd.db.key`) instead of `./provd.db`. A
    /// `database_url` from the file, the environment or `--database` still wins.
    #[serde(skip)]
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// The defaults, with the database inside `data_dir` when one is given.
    fn defaults_in(data_dir: Option<&Path>) -> Config {
        let mut c = Config::default();
        if let Some(dir) = data_dir {
            c.database_url = dir.join("provd.db").to_string_lossy().into_owned();
        }
        c
    }
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::defaults_in(
            overrides.data_dir.as_deref(),
        )));
        match file {
            Some(path) => {
                if !path.exists() {
                    bail!("configuration file {} does not exist", path.display());
                }
                fig = fig.merge(Toml::file(path));
            }
            None => fig = fig.merge(Toml::file("provd.toml")),
        }
        check_unknown_keys(file, std::env::vars())?;
        fig = fig
            .merge(Env::prefixed("PROVD_").ignore(&["config"]).split("__"))
            .merge(Serialized::defaults(overrides));
        let config: Config = fig.extract().context("invalid configuration")?;
        if config.pool_size == 0 {
            bail!("pool_size must be at least 1");
        }
        if config.tls_cert_file.is_some() != config.tls_key_file.is_some() {
            bail!("tls_cert_file and tls_key_file go together: set both or neither");
        }
        if config.max_activation_failures < 1 || config.lock_after_failures < 1 {
            bail!("max_activation_failures and lock_after_failures must be at least 1");
        }
        if config.ephemeral_lifetime_secs < 1 || config.registration_lifetime_secs < 1 {
            bail!("ephemeral_lifetime_secs and registration_lifetime_secs must be at least 1");
        }
        if config.max_reactivations < 0 || config.lock_duration_secs < 0 {
            bail!("max_reactivations and lock_duration_secs must not be negative");
        }
        config.check_mail()?;
        if config.request_timeout_secs < 1 || config.tls_handshake_timeout_secs < 1 {
            bail!("request_timeout_secs and tls_handshake_timeout_secs must be at least 1");
        }
        if config.max_connections < 1 {
            bail!("max_connections must be at least 1");
        }
        config.hermod.check()?;
        Ok(config)
    }

    /// Whether e-mail is delivered: `smtp_url` is set.
    pub fn email_enabled(&self) -> bool {
        self.smtp_url.is_some()
    }

    /// The SMTP transport for `smtp_url` (`None` when unset). Errors never quote the URL,
    /// which may hold a password.
    pub fn smtp_transport(&self) -> Result<Option<lettre::SmtpTransport>> {
        let Some(url) = &self.smtp_url else {
            return Ok(None);
        };
        if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
            bail!("smtp_url (PROVD_SMTP_URL) must start with smtp:// or smtps://");
        }
        let builder = lettre::SmtpTransport::from_url(url)
            .map_err(|e| anyhow::anyhow!("smtp_url (PROVD_SMTP_URL) is invalid: {e}"))?;
        Ok(Some(
            builder
                .timeout(Some(std::time::Duration::from_secs(SMTP_TIMEOUT_SECS)))
                .build(),
        ))
    }

    /// `mail_from` as a mailbox.
    pub fn mail_from(&self) -> Result<lettre::message::Mailbox> {
        self.mail_from.parse().map_err(|e| {
            anyhow::anyhow!(
                "mail_from (PROVD_MAIL_FROM) {:?} is not an e-mail address: {e}",
                self.mail_from
            )
        })
    }

    fn check_mail(&self) -> Result<()> {
        self.smtp_transport()?;
        self.mail_from()?;
        if self.mail_max_attempts < 1 {
            bail!("mail_max_attempts must be at least 1");
        }
        if self.mail_retry_base_secs < 1 || self.mail_poll_secs < 1 || self.mail_lease_secs < 1 {
            bail!("mail_retry_base_secs, mail_poll_secs and mail_lease_secs must be at least 1");
        }
        Ok(())
    }

    /// Password-checking calls at once: `password_checks`, or one per core.
    pub fn password_check_concurrency(&self) -> usize {
        match self.password_checks {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub fn policy(&self) -> Policy {
        Policy {
            lock_after_failures: self.lock_after_failures,
            registration_lifetime_secs: self.registration_lifetime_secs,
            ephemeral_lifetime_secs: self.ephemeral_lifetime_secs,
            max_activation_failures: self.max_activation_failures,
            email_delivery: self.email_enabled(),
            registration_retention_secs: i64::from(self.registration_retention_days) * 86_400,
            reactivation: crate::store::ReactivationRule {
                allow: self.reactivation == Reactivation::Allow,
                max: self.max_reactivations,
            },
            lock_duration_secs: self.lock_duration_secs,
            generic_status_codes: self.generic_status_codes,
        }
    }

    /// Where the master key comes from: `master_key`, `master_key_file`, or (SQLite only) the
    /// key file beside the database. Nothing is created here: a missing default key file is
    /// `KeySource::File { key: None, .. }`, for the caller to decide (only a new database gets
    /// a new key). A key file readable or writable by others is refused.
    pub fn key_source(&self) -> Result<KeySource> {
        if let Some(hex) = &self.master_key {
            let key = MasterKey::from_hex(hex).context("master_key (PROVD_MASTER_KEY)")?;
            return Ok(KeySource::Explicit(key));
        }
        if let Some(path) = &self.master_key_file {
            if !path.exists() {
                bail!(
                    "master_key_file {} does not exist; restore it from the backup taken \
                     with the database",
                    path.display()
                );
            }
            return Ok(KeySource::File {
                key: Some(read_key_file(path)?),
                path: path.clone(),
                configured: true,
            });
        }
        let (backend, path) = Backend::from_url(&self.database_url);
        if backend == Backend::Postgres {
            bail!(
                "PostgreSQL needs an explicit master key shared by every instance: \
                 set PROVD_MASTER_KEY (64 hex characters) or master_key_file"
            );
        }
        let key_path = PathBuf::from(format!("{path}.key"));
        let key = if key_path.exists() {
            Some(read_key_file(&key_path)?)
        } else {
            None
        };
        Ok(KeySource::File {
            key,
            path: key_path,
            configured: false,
        })
    }

    /// The configured master key; an error when it is missing (see [`Config::key_source`]).
    pub fn master_key(&self) -> Result<MasterKey> {
        match self.key_source()? {
            KeySource::Explicit(key) | KeySource::File { key: Some(key), .. } => Ok(key),
            KeySource::File { path, .. } => Err(missing_key(&path)),
        }
    }
}

/// Where the master key comes from.
pub enum KeySource {
    /// `master_key` / `PROVD_MASTER_KEY`.
    Explicit(MasterKey),
    /// A key file: `master_key_file` (`configured`), or `<database>.key` beside a SQLite
    /// database. `key` is `None` when the default key file does not exist.
    File {
        path: PathBuf,
        key: Option<MasterKey>,
        configured: bool,
    },
}

impl KeySource {
    /// How the key is named in messages.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Explicit(_) => "master_key (PROVD_MASTER_KEY)".into(),
            KeySource::File { path, .. } => format!("the master key file {}", path.display()),
        }
    }
}

/// The error for a key file that is not there.
pub fn missing_key(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "the master key file {} is missing. provd never replaces a lost key: restore the key \
         file from the backup taken with the database, or set PROVD_MASTER_KEY",
        path.display()
    )
}

/// Reads a key file; refuses one that others (not owner, not group) may read or write, and
/// warns about one its group may read.
fn read_key_file(path: &Path) -> Result<MasterKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading master key file {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o007 != 0 {
            bail!(
                "the master key file {} is accessible to other users (mode {:04o}); \
                 provd refuses to use it: run `chmod 600 {}`",
                path.display(),
                mode & 0o7777,
                path.display()
            );
        }
        if mode & 0o070 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:04o}", mode & 0o7777),
                "THE MASTER KEY FILE IS READABLE BY ITS GROUP; `chmod 600` it unless the group is meant to hold the key"
            );
            eprintln!(
                "provd: warning: the master key file {} is accessible to its group (mode {:04o})",
                path.display(),
                mode & 0o7777
            );
        }
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading master key file {}", path.display()))?,
    );
    MasterKey::from_hex(&text).with_context(|| format!("master key file {}", path.display()))
}

/// Writes a new key file, mode 0600; fails if the file exists.
pub fn write_key_file(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    write_private(path, key.to_hex().as_bytes())
}

/// `PROVD_*` variables that are not configuration keys: the configuration file, the log
/// filter, the data directory, and the test and development switches (`PROVD_TEST_*` too).
pub const NON_CONFIG_ENV: &[&str] = &[
    "PROVD_CONFIG",
    "PROVD_LOG",
    "PROVD_DATA_DIR",
    "PROVD_BLESS",
    "PROVD_PG_ADMIN_URL",
];

/// Refuses keys of the configuration file and `PROVD_*` variables that are no configuration
/// key, naming the key and the closest known one.
pub fn check_unknown_keys(
    file: Option<&Path>,
    env: impl Iterator<Item = (String, String)>,
) -> Result<()> {
    let defaults = match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => Default::default(),
    };
    let mut known: Vec<String> = defaults.keys().cloned().collect();
    // Nested sections (`[hermod]`) are set from the environment as `PROVD_HERMOD__KEY`.
    for (section, value) in &defaults {
        if let serde_json::Value::Object(inner) = value {
            known.extend(inner.keys().map(|k| format!("{section}__{k}")));
        }
    }
    let suggest = |key: &str| {
        known
            .iter()
            .map(|k| (strsim::damerau_levenshtein(k, key), k))
            .filter(|(d, k)| *d <= 3.max(k.len() / 4))
            .min()
            .map(|(_, k)| k.clone())
    };
    let path = file.unwrap_or(Path::new("provd.toml"));
    if path.exists() {
        let table: std::collections::BTreeMap<String, figment::value::Value> =
            Figment::from(Toml::file(path))
                .extract()
                .with_context(|| format!("reading {}", path.display()))?;
        for key in table.keys() {
            if !known.contains(key) {
                match suggest(key) {
                    Some(k) => bail!(
                        "unknown key `{key}` in {}; did you mean `{k}`?",
                        path.display()
                    ),
                    None => bail!("unknown key `{key}` in {}", path.display()),
                }
            }
        }
    }
    for (name, _) in env {
        let Some(key) = name.strip_prefix("PROVD_") else {
            continue;
        };
        if NON_CONFIG_ENV.contains(&name.as_str()) || key.starts_with("TEST_") {
            continue;
        }
        let key = key.to_lowercase();
        if !known.contains(&key) {
            match suggest(&key) {
                Some(k) => bail!(
                    "unknown environment variable {name}; did you mean PROVD_{}?",
                    k.to_uppercase()
                ),
                None => bail!("unknown environment variable {name} (not a configuration key)"),
            }
        }
    }
    Ok(())
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(contents)?;
    f.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("provd.db"), "provd.db");
    }

    #[test]
    fn debug_hides_the_master_key() {
        let c = Config {
            master_key: Some("ab".repeat(32)),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("abab"));
    }

    #[test]
    fn postgres_requires_an_explicit_key() {
        let c = Config {
            database_url: "postgres://127.0.0.1/test".into(),
            ..Config::default()
        };
        let e = c.master_key().unwrap_err().to_string();
        assert!(e.contains("PROVD_MASTER_KEY"), "{e}");
    }

    #[test]
    fn a_missing_key_file_is_never_created_and_an_open_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("provd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("k.db");
        let c = Config {
            database_url: db.display().to_string(),
            ..Config::default()
        };
        let e = c.master_key().unwrap_err().to_string();
        assert!(e.contains("missing") && e.contains("k.db.key"), "{e}");
        assert!(!dir.join("k.db.key").exists());
        let key = MasterKey::generate();
        write_key_file(&dir.join("k.db.key"), &key).unwrap();
        let mode = std::fs::metadata(dir.join("k.db.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let read = c.master_key().unwrap();
        assert_eq!(
            read.open("ctx", &key.seal("ctx", b"x")).unwrap().as_slice(),
            b"x"
        );
        std::fs::set_permissions(dir.join("k.db.key"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let e = c.master_key().unwrap_err().to_string();
        assert!(e.contains("other users") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(dir.join("k.db.key"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        assert!(
            c.master_key().is_ok(),
            "a group-readable key file is warned about, not refused"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn unknown_keys_and_variables_are_refused_with_a_suggestion() {
        let dir = std::env::temp_dir().join(format!("provd-cfgunknown-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("provd.toml");
        let none = || std::iter::empty::<(String, String)>();
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\n").unwrap();
        check_unknown_keys(Some(&file), none()).unwrap();
        std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let e = check_unknown_keys(Some(&file), none())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`lisen`") && e.contains("did you mean `listen`"),
            "{e}"
        );
        let e = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(format!("{e:#}").contains("lisen"), "{e:#}");
        std::fs::write(&file, "zzzzzzzzzzzzzz = 1\n").unwrap();
        let e = check_unknown_keys(Some(&file), none())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("zzzzzzzzzzzzzz") && !e.contains("did you mean"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let env = |pairs: &[&str]| {
            let v: Vec<(String, String)> =
                pairs.iter().map(|k| (k.to_string(), "1".into())).collect();
            check_unknown_keys(Some(&dir.join("absent.toml")), v.into_iter())
        };
        env(&[
            "PROVD_POOL_SIZE",
            "PROVD_LOG",
            "PROVD_CONFIG",
            "PROVD_BLESS",
            "PROVD_TEST_POSTGRES_URL",
            "PROVD_TEST_CLOCK_FILE",
            "PATH",
        ])
        .unwrap();
        let e = env(&["PROVD_POOL_SIZ"]).unwrap_err().to_string();
        assert!(
            e.contains("PROVD_POOL_SIZ;") && e.contains("PROVD_POOL_SIZE?"),
            "{e}"
        );
    }

    #[test]
    fn mail_settings_are_checked_at_load() {
        let dir = std::env::temp_dir().join(format!("provd-cfgmail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("provd.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), &Overrides::default()).map_err(|e| format!("{e:#}"))
        };
        let c = load("").unwrap();
        assert!(!c.email_enabled());
        assert!(c.smtp_transport().unwrap().is_none());
        assert_eq!(c.mail_from().unwrap().email.to_string(), "provd@localhost");
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://u:p%40ss@mail.example.test:587?tls=required",
            "smtp://mail.example.test?tls=opportunistic",
            "smtps://mail.example.test",
        ] {
            let c = load(&format!("smtp_url = \"{url}\"\n")).unwrap();
            assert!(c.email_enabled(), "{url}");
        }
        let e = load("smtp_url = \"http://u:hunter2@x\"\n").unwrap_err();
        assert!(e.contains("smtp_url") && !e.contains("hunter2"), "{e}");
        let e = load("smtp_url = \"smtp://u:hunter2@x?tls=sometimes\"\n").unwrap_err();
        assert!(e.contains("smtp_url") && !e.contains("hunter2"), "{e}");
        let e = load("mail_from = \"not an address\"\n").unwrap_err();
        assert!(e.contains("mail_from"), "{e}");
        assert!(load("mail_max_attempts = 0\n").is_err());
        assert!(load("mail_poll_secs = 0\n").is_err());
        let c = load("smtp_url = \"smtp://u:hunter2@x:25\"\n").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_config_file_is_read_and_flags_override_it() {
        let dir = std::env::temp_dir().join(format!("provd-cfgfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("provd.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\ndatabase_url = \"from-file.db\"\npool_size = 3\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.pool_size, 3);
        let c = Config::load(
            Some(&file),
            &Overrides {
                listen: None,
                database_url: Some("flag.db".into()),
                data_dir: Some("/var/lib/provd".into()),
            },
        )
        .unwrap();
        assert_eq!(
            c.database_url, "flag.db",
            "an explicit database wins over the data dir"
        );
        let c = Config::load(
            Some(&file),
            &Overrides {
                data_dir: Some("/var/lib/provd".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.database_url, "from-file.db", "so does the file's");
        assert_eq!(
            Config::defaults_in(Some(Path::new("/var/lib/provd"))).database_url,
            "/var/lib/provd/provd.db"
        );
        assert_eq!(c.listen, "127.0.0.1:9999");
        std::fs::write(&file, "pool_size = 0\n").unwrap();
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
        assert!(Config::load(Some(&dir.join("missing.toml")), &Overrides::default()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn trusted_proxies_are_checked_at_load_and_a_bad_entry_is_named() {
        let dir = std::env::temp_dir().join(format!("provd-cfgproxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("provd.toml");
        let load = |toml: &str| {
            std::fs::write(&file, toml).unwrap();
            Config::load(Some(&file), &Overrides::default())
        };
        assert!(load("").unwrap().trusted_proxies.is_empty());
        let list = load("trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n").unwrap();
        // One string of comma-separated entries (as in PROVD_TRUSTED_PROXIES) is the same.
        let string = load("trusted_proxies = \"127.0.0.1, 10.0.0.0/8\"\n").unwrap();
        assert_eq!(list.trusted_proxies, string.trusted_proxies);
        assert_eq!(
            list.trusted_proxies
                .client_addr("10.9.9.9".parse().unwrap(), &["192.0.2.5"]),
            "192.0.2.5".parse::<std::net::IpAddr>().unwrap()
        );
        let e = load("trusted_proxies = [\"127.0.0.1\", \"10.0.0/8x\"]\n").unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("10.0.0/8x") && e.contains("trusted_proxies"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

impl Config {
    /// The rustls server configuration, when a certificate and key are configured.
    pub fn tls(&self) -> Result<Option<rustls::ServerConfig>> {
        let (Some(cert), Some(key)) = (&self.tls_cert_file, &self.tls_key_file) else {
            return Ok(None);
        };
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing certificates in {}", cert.display()))?;
        if certs.is_empty() {
            bail!("{} holds no certificate", cert.display());
        }
        let key_der = rustls_pemfile::private_key(&mut read(key)?.as_slice())
            .with_context(|| format!("parsing the private key in {}", key.display()))?
            .with_context(|| format!("{} holds no private key", key.display()))?;
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .context("the TLS certificate and key do not fit together")?;
        Ok(Some(config))
    }
}
