//! `provd seed FILE` (and `serve --seed FILE`): users, authenticators and assignments from a
//! TOML or JSON file, declaratively and idempotently. What exists is kept as it is (a user's
//! password included); what is missing is created; an authenticator is assigned when it is
//! free, and an assignment to another user is an error. The whole file is parsed and checked
//! before anything is written; running it twice changes nothing the second time.
//!
//! ```toml
//! [[users]]
//! user = "testuser"          # domain defaults to master
//! password = "1.Password"
//! [[authenticators]]
//! serial_no = "VDS0000001"   # type, applications, key (hex), license_limit as for import
//! assign = "testuser"        # optional; assign_domain defaults to master
//! ```

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::authenticator::{to_new, ImportRow};
use crate::crypto::hash_password;
use crate::store::{AuthenticatorStatus, NewUser, Store, StoreError};
use crate::types::{Domain, OrgUnit, UserId};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedUser {
    user: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    organizational_unit: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SeedAuthenticator {
    #[serde(flatten)]
    row: ImportRow,
    #[serde(default)]
    assign: Option<String>,
    #[serde(default)]
    assign_domain: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    users: Vec<SeedUser>,
    #[serde(default)]
    authenticators: Vec<SeedAuthenticator>,
}

/// What a seed run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    pub users_created: usize,
    pub authenticators_created: usize,
    pub assigned: usize,
    pub unchanged: usize,
}

fn domain(raw: Option<&str>) -> Result<Domain> {
    Domain::parse(raw.unwrap_or(Domain::DEFAULT)).map_err(|e| anyhow::anyhow!("domain: {e}"))
}

/// Applies the seed file at `path` (`.json` is JSON, anything else TOML).
pub fn apply(store: &Store, path: &Path) -> Result<Seeded> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: SeedFile = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
    } else {
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
    };
    // Parse everything first: nothing is written when any entry is bad.
    let mut users = Vec::new();
    for (i, u) in file.users.iter().enumerate() {
        let at = format!("users[{i}]");
        let user_id = UserId::parse(&u.user).map_err(|e| anyhow::anyhow!("{at}: user: {e}"))?;
        let d = domain(u.domain.as_deref()).with_context(|| at.clone())?;
        let ou = u
            .organizational_unit
            .as_deref()
            .map(OrgUnit::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{at}: organizational_unit: {e}"))?;
        users.push((user_id, d, ou, u));
    }
    let mut assigns = Vec::new();
    let mut rows = Vec::new();
    for (i, a) in file.authenticators.into_iter().enumerate() {
        let target = match a.assign.as_deref() {
            Some(u) => Some((
                UserId::parse(u)
                    .map_err(|e| anyhow::anyhow!("authenticators[{i}]: assign: {e}"))?,
                domain(a.assign_domain.as_deref())
                    .with_context(|| format!("authenticators[{i}]"))?,
            )),
            None => None,
        };
        assigns.push(target);
        rows.push(a.row);
    }
    let authenticators = to_new(rows)?;

    let mut done = Seeded::default();
    for (user_id, d, ou, u) in users {
        if store.find_user(&user_id, &d)?.is_some() {
            done.unchanged += 1;
            continue;
        }
        let password_hash = match &u.password {
            Some(p) => Some(hash_password(p)?),
            None => None,
        };
        store.create_user(&NewUser {
            user_id,
            domain: d,
            organizational_unit: ou,
            email: u.email.clone(),
            password_hash,
        })?;
        done.users_created += 1;
    }
    for (new, target) in authenticators.iter().zip(assigns) {
        let existing = match store.get_authenticator(&new.serial_no) {
            Ok(a) => Some(a),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let current = match existing {
            Some(a) => {
                done.unchanged += 1;
                a
            }
            None => {
                store.insert_authenticators(std::slice::from_ref(new), &mut |_| {})?;
                done.authenticators_created += 1;
                store.get_authenticator(&new.serial_no)?
            }
        };
        if let Some((user_id, d)) = target {
            match (&current.user_id, &current.domain) {
                (Some(u), Some(cd)) if *u == user_id && *cd == d => {}
                _ if current.status == AuthenticatorStatus::Available => {
                    store.assign_authenticator(&new.serial_no, &user_id, &d)?;
                    done.assigned += 1;
                }
                _ => bail!(
                    "authenticator {} is assigned to {}, not {user_id}",
                    new.serial_no,
                    current
                        .user_id
                        .as_ref()
                        .map_or("another user".to_owned(), |u| u.to_string())
                ),
            }
        }
    }
    Ok(done)
}
