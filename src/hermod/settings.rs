//! `[hermod]` settings (`PROVD_HERMOD__*` in the environment).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::jws::Alg;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Serve the REST front at all.
    pub enabled: bool,
    /// Where the front is mounted on this server.
    pub context_path: String,
    /// The full public base of the front, e.g. `https://host:20400/hermod`; default: provd's
    /// `public_url` without a trailing "/", plus the context path.
    pub public_url: Option<String>,
    /// `seed` (`com.nexusgroup.pluginout:///url=...`) or `public`
    /// (`com.nexusgroup.plugout:///?url=...`).
    pub uri_style: String,
    /// The provd domain that `userid` is looked up in.
    pub domain: String,
    /// Algorithms an attestation JWS may use (also pinned per trust-store entry).
    pub attestation_algs: Vec<String>,
    /// A trust-store file (format of `fixtures/hermod/trust_store.json`) upserted at start.
    pub trust_store: Option<PathBuf>,
    /// Refused answers before a command is FAILED.
    pub max_attempts: i32,
    /// Wrong tokens on one box before it is locked (command FAILED, `token_bruteforce`).
    pub token_failure_limit: i32,
    /// Callback attempts before giving up.
    pub callback_max_attempts: i32,
    /// The wait after a first failed callback; doubles, at most 15 minutes, ±20 % jitter.
    pub callback_retry_base_secs: u64,
    /// Seconds between scans of the callback outbox and sweeps of expired commands.
    pub poll_secs: u64,
    /// How long a callback being sent is reserved for its sender.
    pub callback_lease_secs: u64,
    /// Timeout of one callback request.
    pub callback_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            context_path: "/hermod".into(),
            public_url: None,
            uri_style: "seed".into(),
            domain: "master".into(),
            attestation_algs: vec!["RS256".into(), "PS256".into(), "ES256".into()],
            trust_store: None,
            max_attempts: 3,
            token_failure_limit: 5,
            callback_max_attempts: 12,
            callback_retry_base_secs: 5,
            poll_secs: 10,
            callback_lease_secs: 60,
            callback_timeout_secs: 10,
        }
    }
}

impl Settings {
    /// Checks the settings; called by `Config::load`.
    pub fn check(&self) -> anyhow::Result<()> {
        if !self.context_path.starts_with('/') || self.context_path.ends_with('/') {
            anyhow::bail!("hermod.context_path must start with / and not end with one");
        }
        if !matches!(self.uri_style.as_str(), "seed" | "public") {
            anyhow::bail!("hermod.uri_style must be seed or public");
        }
        self.algs()?;
        if self.max_attempts < 1 || self.token_failure_limit < 1 || self.callback_max_attempts < 1 {
            anyhow::bail!("hermod.max_attempts, token_failure_limit and callback_max_attempts must be at least 1");
        }
        Ok(())
    }

    pub fn algs(&self) -> anyhow::Result<Vec<Alg>> {
        self.attestation_algs
            .iter()
            .map(|a| {
                Alg::parse(a).ok_or_else(|| {
                    anyhow::anyhow!(
                        "hermod.attestation_algs: {a} is not one of RS256, PS256, ES256"
                    )
                })
            })
            .collect()
    }

    /// The public base of the front (no trailing "/").
    pub fn public_base(&self, provd_public_url: Option<&str>, listen: &str) -> String {
        match (&self.public_url, provd_public_url) {
            (Some(u), _) => u.trim_end_matches('/').to_owned(),
            (None, Some(p)) => format!("{}{}", p.trim_end_matches('/'), self.context_path),
            (None, None) => format!("http://{listen}{}", self.context_path),
        }
    }
}
