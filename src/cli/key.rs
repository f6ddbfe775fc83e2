//! Opening the store with its master key, and `provd key ...`.
//!
//! A new master key is created only together with a new database: by `provd init`, or by
//! `provd serve` on a SQLite database that does not exist yet. Every other command refuses a
//! database that does not exist, a missing key file, and a key that does not match the
//! database's key check value.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use super::output::Output;
use crate::config::{missing_key, redact_url, write_key_file, Config, KeySource};
use crate::crypto::MasterKey;
use crate::store::{Backend, KeyCheck, Store};

/// What opening the store may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// The database must exist (every admin command).
    Existing,
    /// `provd serve`: a SQLite database that does not exist yet is created, with its key.
    CreateIfMissing,
    /// `provd init`: the database must be new.
    Init,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Re-seal every sealed value under a new master key, in one transaction. Stop every
    /// `provd serve` using the database first.
    Rotate {
        /// Write the new key here (created, mode 0600). Default: replace the key file the
        /// current key came from (through `<file>.new`); required with PROVD_MASTER_KEY.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
    /// Check the master key against the database: its check value and every sealed value.
    Check,
}

/// Creates the SQLite database file, empty and mode 0600, so that SQLite's own files
/// (`-journal`, `-wal`, `-shm`), which take the database file's mode, are private too.
fn create_private_file(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .with_context(|| format!("creating the database {}", path.display()))?;
    Ok(())
}

/// Warns about database files others may read.
fn warn_if_readable(db: &str) {
    #[cfg(unix)]
    for suffix in ["", "-journal", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let path = format!("{db}{suffix}");
        if let Ok(meta) = std::fs::metadata(&path) {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path,
                    mode = format!("{mode:04o}"),
                    "a database file is readable by other users; `chmod 600` it"
                );
            }
        }
    }
}

/// Opens the store, applying migrations, and checks the master key against the database.
pub fn open_store(config: &Config, mode: Open) -> Result<Store> {
    let source = config.key_source()?;
    let (backend, path) = Backend::from_url(&config.database_url);
    let url = redact_url(&config.database_url);
    let mut created = false;
    if backend == Backend::Sqlite && path != ":memory:" {
        let exists = Path::new(&path).exists();
        match (exists, mode) {
            (false, Open::Existing) => bail!(
                "there is no database at {path}: `provd init` creates one (with its master key), \
                 as does the first `provd serve`; check --database / PROVD_DATABASE_URL and the \
                 working directory"
            ),
            (true, Open::Init) => bail!("the database {path} already exists"),
            (false, _) => {
                create_private_file(Path::new(&path))?;
                created = true;
            }
            (true, _) => warn_if_readable(&path),
        }
    }
    let (key, new_key_file) = match &source {
        KeySource::Explicit(k) | KeySource::File { key: Some(k), .. } => (k.clone(), None),
        KeySource::File {
            path: key_path,
            key: None,
            ..
        } => {
            if mode == Open::Existing {
                return Err(missing_key(key_path));
            }
            (MasterKey::generate(), Some(key_path.clone()))
        }
    };
    let store = match Store::open(&config.database_url, key.clone(), config.pool_size) {
        Ok(s) => s,
        Err(e) => {
            if created {
                let _ = std::fs::remove_file(&path);
            }
            return Err(e).with_context(|| format!("opening the database {url}"));
        }
    };
    match store.key_check()? {
        KeyCheck::Matches if mode == Open::Init => {
            bail!("the database {url} is already initialised")
        }
        KeyCheck::Matches => {}
        KeyCheck::WrongKey | KeyCheck::Unrecorded { sealed_data: true }
            if new_key_file.is_some() =>
        {
            return Err(missing_key(
                new_key_file.as_deref().unwrap_or(Path::new("")),
            ));
        }
        KeyCheck::WrongKey => bail!(
            "{} does not match the database {url}: its key check value does not open under \
             this key. Use the key the database was created with (restore it from the backup \
             taken with the database)",
            source.describe()
        ),
        KeyCheck::Unrecorded { .. } => {
            if let Some(key_path) = &new_key_file {
                write_key_file(key_path, &key).with_context(|| {
                    format!("creating the master key file {}", key_path.display())
                })?;
                tracing::warn!(path = %key_path.display(), "created a new master key with the new database; back it up with the database");
            }
            store.record_key_check()?;
            if store.key_check()? != KeyCheck::Matches {
                bail!("the database {url} recorded another master key at the same time");
            }
        }
    }
    Ok(store)
}

pub fn run(c: KeyCommand, config: &Config, out: &Output) -> Result<()> {
    match c {
        KeyCommand::Check => {
            let store = open_store(config, Open::Existing)?;
            let (opening, total) = store.sealed_values_opening()?;
            let columns: serde_json::Map<String, serde_json::Value> = store
                .sealed_value_counts()?
                .into_iter()
                .map(|(c, n)| (c, n.into()))
                .collect();
            out.one(&serde_json::json!({
                "key_check": "matches",
                "sealed_values": total,
                "opening": opening,
                "columns": columns,
            }));
            if opening != total {
                bail!(
                    "{} of {total} sealed values do not open under the key",
                    total - opening
                );
            }
            Ok(())
        }
        KeyCommand::Rotate { new_key_file } => rotate(config, new_key_file, out),
    }
}

fn rotate(config: &Config, new_key_file: Option<PathBuf>, out: &Output) -> Result<()> {
    let source = config.key_source()?;
    // Where the new key goes, and which file it replaces once the database is re-sealed.
    let (target, replaces) = match (&new_key_file, &source) {
        (Some(p), _) => (p.clone(), None),
        (None, KeySource::File { path, .. }) => (
            PathBuf::from(format!("{}.new", path.display())),
            Some(path.clone()),
        ),
        (None, KeySource::Explicit(_)) => bail!(
            "the current key comes from master_key (PROVD_MASTER_KEY): give --new-key-file \
             PATH to receive the new key"
        ),
    };
    let store = open_store(config, Open::Existing)?;
    let total = store.sealed_value_count()?;
    let new = MasterKey::generate();
    write_key_file(&target, &new).with_context(|| {
        format!(
            "creating {} for the new key (a file left by an interrupted rotation? the \
             database says which key it needs: `provd key check`)",
            target.display()
        )
    })?;
    let bar = if out.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("re-sealing {bar:40} {pos}/{len} values")
            .expect("a valid template"),
    );
    let result = store.rotate_key(&new, &|done| bar.set_position(done));
    bar.finish_and_clear();
    let done = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&target);
            return Err(e).context("key rotation failed; nothing was changed");
        }
    };
    if let Some(old) = &replaces {
        std::fs::rename(&target, old).with_context(|| {
            format!(
                "the database is re-sealed under the new key in {}, but it could not replace {}: \
                 move it there by hand",
                target.display(),
                old.display()
            )
        })?;
    }
    let holder = replaces.as_ref().unwrap_or(&target);
    out.one(&serde_json::json!({
        "resealed": done,
        "new_key_file": holder.display().to_string(),
    }));
    if replaces.is_none() {
        tracing::warn!(path = %target.display(), "the database now needs the new key: configure it (master_key_file or PROVD_MASTER_KEY)");
    }
    tracing::warn!("back up the new key with the database; the old key opens nothing any more");
    Ok(())
}
