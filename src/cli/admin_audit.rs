//! Audit of the admin commands that change the store: who (the operating-system user), what
//! (`cli user add`, ...), which object (user, domain, serial, registration) and how it ended.
//! Never a secret: passwords, keys and file contents are not recorded. Read-only commands
//! (list, show, export, config show) and the reference client are not audited.

use super::authenticator::AuthenticatorCommand as A;
use super::outbox::OutboxCommand as O;
use super::user::UserCommand as U;
use super::{Command, RegistrationCommand as R};
use crate::store::{NewAudit, Store};

/// The `client_addr` of an admin command's audit row: `cli:<os user>`.
pub fn os_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var) {
            if !u.is_empty() {
                return u;
            }
        }
    }
    // No login name in the environment (a service, a container): the numeric uid.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(|u| format!("uid {u}")))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The audit row for `cmd` (status still unset), or `None` for a command that changes nothing.
pub fn describe(cmd: &Command) -> Option<NewAudit> {
    let mut a = NewAudit::default();
    let who = |a: &mut NewAudit, w: &super::user::Who| {
        a.user_id = Some(w.user_id.to_string());
        a.domain = Some(w.domain.to_string());
    };
    let name = match cmd {
        Command::User(u) => match u {
            U::Add { who: w, .. } => {
                who(&mut a, w);
                "user add"
            }
            U::SetPassword { who: w, .. } => {
                who(&mut a, w);
                "user set-password"
            }
            U::Unlock { who: w } => {
                who(&mut a, w);
                "user unlock"
            }
            U::Disable { who: w } => {
                who(&mut a, w);
                "user disable"
            }
            U::Enable { who: w } => {
                who(&mut a, w);
                "user enable"
            }
            U::Delete { who: w } => {
                who(&mut a, w);
                "user delete"
            }
            U::Import { file, .. } => {
                a.detail = Some(format!("file {}", file.display()));
                "user import"
            }
            U::Export {
                with_password_hashes: true,
                ..
            } => {
                a.detail = Some("with password hashes".into());
                "user export"
            }
            U::List { .. } | U::Show { .. } | U::Export { .. } => return None,
        },
        Command::Authenticator(c) => match c {
            A::Generate { prefix, count, .. } => {
                a.detail = Some(format!("prefix {prefix:?} count {count}"));
                "authenticator generate"
            }
            A::Import { file, .. } => {
                a.detail = Some(format!("file {}", file.display()));
                "authenticator import"
            }
            A::Assign { serial, who: w } => {
                who(&mut a, w);
                a.serial_no = Some(serial.to_string());
                "authenticator assign"
            }
            A::Unassign { serial, force } => {
                a.serial_no = Some(serial.to_string());
                if *force {
                    a.detail = Some("force".into());
                }
                "authenticator unassign"
            }
            A::Disable { serial } => {
                a.serial_no = Some(serial.to_string());
                "authenticator disable"
            }
            A::Enable { serial } => {
                a.serial_no = Some(serial.to_string());
                "authenticator enable"
            }
            A::Export { to, .. } => {
                a.detail = Some(format!("pskc to {}", to.display()));
                "authenticator export"
            }
            A::List { .. } | A::Show { .. } => return None,
        },
        Command::Registration(R::Revoke { registration_id }) => {
            a.registration_id = Some(registration_id.to_string());
            "registration revoke"
        }
        Command::Outbox(O::Test { .. }) => "outbox test",
        Command::Backup { to } => {
            a.detail = Some(format!("to {}", to.display()));
            "backup"
        }
        _ => return None,
    };
    a.command = format!("cli {name}");
    a.client_addr = Some(format!("cli:{}", os_user()));
    Some(a)
}

/// Writes `entry` with the outcome of the command. A failure to write is reported on standard
/// error and does not change the command's own outcome.
pub fn record(store: &Store, mut entry: NewAudit, outcome: &anyhow::Result<()>) {
    match outcome {
        Ok(()) => {
            entry.status = "ok".into();
        }
        Err(e) => {
            entry.status = "error".into();
            entry.return_code = 1;
            let text = format!("{e}");
            let text: String = text.chars().take(200).collect();
            entry.detail = Some(match entry.detail.take() {
                Some(d) => format!("{d}; {text}"),
                None => text,
            });
        }
    }
    if let Err(e) = store.audit(&entry) {
        eprintln!(
            "provd: could not write the audit entry for {}: {e}",
            entry.command
        );
    }
}
