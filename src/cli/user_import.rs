//! `provd user import` and `provd user export`.
//!
//! Import reads CSV (a header line) or JSON (an array of objects) with the fields `user_id`
//! (required), `domain` (default `master`), `organizational_unit`, `email`, and at most one of
//! `password` (a static password, hashed here with Argon2id on every core) and
//! `password_hash` (an Argon2id PHC string computed elsewhere). Every record is checked before
//! anything is written; then all are inserted in one transaction, so a refusal leaves the
//! store as it was.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::store::{NewUser, Store};
use crate::types::{Domain, OrgUnit, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    Csv,
    Json,
}

/// One record as read from the file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub user_id: String,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub organizational_unit: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

impl Drop for UserRecord {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(p) = &mut self.password {
            p.zeroize();
        }
    }
}

/// The format of `file`: `--format` when given, else by extension.
pub fn format_of(file: &Path, format: Option<FileFormat>) -> Result<FileFormat> {
    if let Some(f) = format {
        return Ok(f);
    }
    match file.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => Ok(FileFormat::Csv),
        Some(e) if e.eq_ignore_ascii_case("json") => Ok(FileFormat::Json),
        _ => bail!(
            "cannot tell the format of {}: use --format csv|json",
            file.display()
        ),
    }
}

/// Reads every record; a record that does not parse is named by its number (and CSV line).
pub fn read_records(text: &str, format: FileFormat) -> Result<Vec<UserRecord>> {
    match format {
        FileFormat::Json => serde_json::from_str(text).context("parsing the JSON array of users"),
        FileFormat::Csv => {
            let mut rd = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            let mut out = Vec::new();
            for (i, r) in rd.deserialize::<UserRecord>().enumerate() {
                out.push(r.with_context(|| format!("record {} (line {})", i + 1, i + 2))?);
            }
            Ok(out)
        }
    }
}

/// A checked record: its password (still to hash) or its hash.
struct Checked {
    user: NewUser,
    password: Option<Zeroizing<String>>,
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Checks every record, collecting up to 20 errors, each naming the record and the field.
fn check(records: &[UserRecord], existing: &HashSet<(String, String)>) -> Result<Vec<Checked>> {
    let mut errors = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let n = i + 1;
        let mut fail =
            |field: &str, why: String| errors.push(format!("record {n}: {field}: {why}"));
        let user_id = match UserId::parse(r.user_id.trim()) {
            Ok(u) => Some(u),
            Err(e) => {
                fail("user_id", format!("{:?}: {e}", r.user_id));
                None
            }
        };
        let domain = match blank(&r.domain) {
            None => Some(Domain::parse(Domain::DEFAULT).expect("the default domain")),
            Some(d) => match Domain::parse(d) {
                Ok(d) => Some(d),
                Err(e) => {
                    fail("domain", format!("{d:?}: {e}"));
                    None
                }
            },
        };
        let organizational_unit = match blank(&r.organizational_unit).map(OrgUnit::parse) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                fail("organizational_unit", e.to_string());
                None
            }
        };
        let email = blank(&r.email).map(str::to_owned);
        if let Some(e) = &email {
            if e.parse::<lettre::Address>().is_err() {
                fail("email", format!("{e:?} is not an e-mail address"));
            }
        }
        let password = r.password.as_deref().filter(|p| !p.is_empty());
        let hash = blank(&r.password_hash);
        if password.is_some() && hash.is_some() {
            fail(
                "password",
                "give password or password_hash, not both".into(),
            );
        }
        if let Some(h) = hash {
            match argon2::PasswordHash::new(h) {
                Ok(p) if p.algorithm.as_str() == "argon2id" && p.hash.is_some() => {}
                Ok(p) => fail(
                    "password_hash",
                    format!("algorithm {} (only argon2id is accepted)", p.algorithm),
                ),
                Err(e) => fail("password_hash", format!("not a PHC string: {e}")),
            }
        }
        if let (Some(u), Some(d)) = (&user_id, &domain) {
            let key = (u.as_str().to_owned(), d.as_str().to_owned());
            if existing.contains(&key) {
                fail("user_id", format!("user {u} already exists in domain {d}"));
            } else if !seen.insert(key) {
                fail(
                    "user_id",
                    format!("user {u} in domain {d} appears twice in the file"),
                );
            }
        }
        if errors.len() >= 20 {
            break;
        }
        if let (Some(user_id), Some(domain)) = (user_id, domain) {
            out.push(Checked {
                user: NewUser {
                    user_id,
                    domain,
                    organizational_unit,
                    email,
                    password_hash: hash.map(str::to_owned),
                },
                password: password.map(|p| Zeroizing::new(p.to_owned())),
            });
        }
    }
    if !errors.is_empty() {
        let more = if errors.len() >= 20 {
            "\n(stopped after 20 errors)"
        } else {
            ""
        };
        bail!(
            "nothing imported; the file has errors:\n{}{more}",
            errors.join("\n")
        );
    }
    Ok(out)
}

fn bar(total: usize, verb: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(verb.to_owned());
    bar
}

/// Hashes the plaintext passwords in parallel, one thread per core.
fn hash_all(checked: &mut [Checked], quiet: bool) -> Result<()> {
    let todo = checked.iter().filter(|c| c.password.is_some()).count();
    if todo == 0 {
        return Ok(());
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let progress = bar(todo, "hashing passwords", quiet);
    let per = checked.len().div_ceil(threads).max(1);
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = checked
            .chunks_mut(per)
            .map(|chunk| {
                let progress = &progress;
                s.spawn(move || -> Result<()> {
                    for c in chunk {
                        if let Some(p) = c.password.take() {
                            c.user.password_hash = Some(crate::crypto::hash_password(&p)?);
                            progress.inc(1);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a hashing thread panicked")?;
        }
        Ok(())
    })?;
    progress.finish_and_clear();
    Ok(())
}

/// `provd user import`: returns the number of users created.
pub fn import(
    store: &Store,
    file: &Path,
    format: Option<FileFormat>,
    quiet: bool,
) -> Result<usize> {
    let format = format_of(file, format)?;
    let text = Zeroizing::new(
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
    );
    let records = read_records(&text, format).with_context(|| file.display().to_string())?;
    if records.is_empty() {
        bail!("{} holds no users", file.display());
    }
    let existing = store.user_keys()?;
    let mut checked = check(&records, &existing).with_context(|| file.display().to_string())?;
    drop(records);
    hash_all(&mut checked, quiet)?;
    let users: Vec<NewUser> = checked.into_iter().map(|c| c.user).collect();
    let progress = bar(users.len(), "importing", quiet);
    let result = store.import_users(&users, &mut |n| progress.set_position(n as u64));
    progress.finish_and_clear();
    result?;
    Ok(users.len())
}

/// `provd user export`: every user (of `domain` when given) in the import format.
pub fn export(
    store: &Store,
    domain: Option<&Domain>,
    format: FileFormat,
    with_hashes: bool,
    to: Option<&PathBuf>,
) -> Result<usize> {
    let users = store.list_users(domain)?;
    let records: Vec<UserRecord> = users
        .into_iter()
        .map(|u| UserRecord {
            user_id: u.user_id.to_string(),
            domain: Some(u.domain.to_string()),
            organizational_unit: u.organizational_unit.map(|o| o.to_string()),
            email: u.email.clone(),
            password: None,
            password_hash: if with_hashes {
                u.password_hash.clone()
            } else {
                None
            },
        })
        .collect();
    let mut buf = Vec::new();
    match format {
        FileFormat::Json => {
            serde_json::to_writer_pretty(&mut buf, &records)?;
            buf.push(b'\n');
        }
        FileFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut buf);
            let mut header = vec!["user_id", "domain", "organizational_unit", "email"];
            if with_hashes {
                header.push("password_hash");
            }
            w.write_record(&header)?;
            for r in &records {
                let mut row = vec![
                    r.user_id.clone(),
                    r.domain.clone().unwrap_or_default(),
                    r.organizational_unit.clone().unwrap_or_default(),
                    r.email.clone().unwrap_or_default(),
                ];
                if with_hashes {
                    row.push(r.password_hash.clone().unwrap_or_default());
                }
                w.write_record(&row)?;
            }
            w.flush()?;
        }
    }
    match to {
        Some(path) => {
            std::fs::write(path, &buf).with_context(|| format!("writing {}", path.display()))?
        }
        None => super::output::emit(String::from_utf8_lossy(&buf).trim_end()),
    }
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named_and_nothing_passes() {
        let text = "user_id,domain,organizational_unit,email,password,password_hash\n\
                    alice,,,alice@example.test,,\n\
                    bob,master,,not-an-address,,\n\
                    carol,,,,pw,\"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n\
                    alice,,,,,\n\
                    dave,,,,,$2b$12$abcdefghijklmnopqrstuv\n";
        let records = read_records(text, FileFormat::Csv).unwrap();
        assert_eq!(records.len(), 5);
        let e = check(&records, &HashSet::new()).err().unwrap().to_string();
        assert!(e.contains("record 2: email"), "{e}");
        assert!(
            e.contains("record 3: password: give password or password_hash"),
            "{e}"
        );
        assert!(
            e.contains("record 4: user_id: user alice in domain master appears twice"),
            "{e}"
        );
        assert!(e.contains("record 5: password_hash"), "{e}");
        assert!(!e.contains("record 1:"), "{e}");
    }

    #[test]
    fn good_records_pass_and_existing_users_are_refused() {
        let json = r#"[{"user_id":"alice","email":"a@example.test"},
                       {"user_id":"bob","domain":"corp","organizational_unit":"sales",
                        "password_hash":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}]"#;
        let records = read_records(json, FileFormat::Json).unwrap();
        let ok = check(&records, &HashSet::new()).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].user.domain.as_str(), "master");
        assert!(ok[1]
            .user
            .password_hash
            .as_deref()
            .unwrap()
            .starts_with("$argon2id$"));
        let existing = HashSet::from([("bob".to_owned(), "corp".to_owned())]);
        let e = check(&records, &existing).err().unwrap().to_string();
        assert!(
            e.contains("record 2: user_id: user bob already exists in domain corp"),
            "{e}"
        );
        assert!(read_records(r#"[{"user_id":"x","pasword":"y"}]"#, FileFormat::Json).is_err());
    }
}
