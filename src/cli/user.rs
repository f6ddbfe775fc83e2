use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use super::output::{opt, Output};
use super::PasswordArgs;
use crate::crypto::hash_password;
use crate::store::{NewUser, Store, User};
use crate::types::{Domain, OrgUnit, UserId};

#[derive(Debug, Args)]
pub struct Who {
    /// User id.
    #[arg(long = "user")]
    pub user_id: UserId,
    /// Domain [default: master].
    #[arg(long, default_value = Domain::DEFAULT)]
    pub domain: Domain,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        #[command(flatten)]
        who: Who,
        /// Organizational unit.
        #[arg(long = "ou")]
        organizational_unit: Option<OrgUnit>,
        /// E-mail address (for delivery of activation data).
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List users.
    List {
        /// Only this domain.
        #[arg(long)]
        domain: Option<Domain>,
    },
    /// Show one user.
    Show {
        #[command(flatten)]
        who: Who,
    },
    /// Set a user's static password (and clear the failure count).
    SetPassword {
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Unlock a user locked by failed passwords.
    Unlock {
        #[command(flatten)]
        who: Who,
    },
    /// Disable a user: no registration or activation until enabled again.
    Disable {
        #[command(flatten)]
        who: Who,
    },
    /// Enable a disabled user.
    Enable {
        #[command(flatten)]
        who: Who,
    },
    /// Delete a user; their authenticators return to the free pool.
    Delete {
        #[command(flatten)]
        who: Who,
    },
    /// Create users from a CSV or JSON file: fields user_id, domain, organizational_unit,
    /// email, and at most one of password (hashed here, on every core) and password_hash (an
    /// Argon2id PHC string). Every record is checked first; all are created or none.
    Import {
        #[arg(long)]
        file: std::path::PathBuf,
        /// csv or json [default: by the file's extension].
        #[arg(long, value_enum)]
        format: Option<super::user_import::FileFormat>,
    },
    /// Write users in the import format (without passwords unless --with-password-hashes).
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: super::user_import::FileFormat,
        /// Only this domain.
        #[arg(long)]
        domain: Option<Domain>,
        /// Include the Argon2id password hashes (sensitive: protect the file).
        #[arg(long)]
        with_password_hashes: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        to: Option<std::path::PathBuf>,
    },
}

fn row(u: &User) -> Vec<String> {
    vec![
        u.user_id.to_string(),
        u.domain.to_string(),
        opt(&u.organizational_unit),
        if u.has_password { "yes" } else { "no" }.into(),
        if u.locked_at(crate::store::now()) {
            "locked"
        } else {
            ""
        }
        .into(),
        u.failure_count.to_string(),
        if u.disabled { "disabled" } else { "" }.into(),
    ]
}

const HEADERS: &[&str] = &[
    "user", "domain", "ou", "password", "locked", "failures", "disabled",
];

pub fn run(cmd: UserCommand, store: &Store, out: &Output) -> Result<()> {
    match cmd {
        UserCommand::Add {
            who,
            organizational_unit,
            email,
            password,
        } => {
            let password_hash = match password.read()? {
                Some(p) => Some(hash_password(&p)?),
                None => None,
            };
            let user = store.create_user(&NewUser {
                user_id: who.user_id,
                domain: who.domain,
                organizational_unit,
                email,
                password_hash,
            })?;
            out.one(&user);
        }
        UserCommand::List { domain } => {
            let users = store.list_users(domain.as_ref())?;
            out.list(&users, HEADERS, row);
        }
        UserCommand::Show { who } => match store.find_user(&who.user_id, &who.domain)? {
            Some(u) => {
                // The user's Hermod device profiles (and their keys) are listed with them.
                let mut v = serde_json::to_value(&u)?;
                v["hermod_profiles"] =
                    serde_json::to_value(store.list_hermod_profiles(Some(u.pk))?)?;
                out.one(&v)
            }
            None => bail!("no user {} in domain {}", who.user_id, who.domain),
        },
        UserCommand::SetPassword { who, password } => {
            let Some(p) = password.read()? else {
                bail!("give the new password with --password-stdin (or --password)");
            };
            let user = store.set_password(&who.user_id, &who.domain, &hash_password(&p)?)?;
            out.one(&user);
        }
        UserCommand::Unlock { who } => {
            let user = store.unlock_user(&who.user_id, &who.domain)?;
            out.one(&user);
        }
        UserCommand::Disable { who } => {
            let user = store.set_user_disabled(&who.user_id, &who.domain, true)?;
            out.one(&user);
        }
        UserCommand::Enable { who } => {
            let user = store.set_user_disabled(&who.user_id, &who.domain, false)?;
            out.one(&user);
        }
        UserCommand::Import { file, format } => {
            use std::io::IsTerminal;
            let quiet = out.json || !std::io::stderr().is_terminal();
            let n = super::user_import::import(store, &file, format, quiet)?;
            out.message(&format!("imported {n} user(s)"));
        }
        UserCommand::Export {
            format,
            domain,
            with_password_hashes,
            to,
        } => {
            let n = super::user_import::export(
                store,
                domain.as_ref(),
                format,
                with_password_hashes,
                to.as_ref(),
            )?;
            if let Some(path) = &to {
                eprintln!("wrote {n} user(s) to {}", path.display());
            }
        }
        UserCommand::Delete { who } => {
            store.delete_user(&who.user_id, &who.domain)?;
            out.message(&format!(
                "deleted user {} in domain {}",
                who.user_id, who.domain
            ));
        }
    }
    Ok(())
}
