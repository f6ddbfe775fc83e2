use anyhow::{bail, Result};
use clap::Subcommand;
use zeroize::Zeroizing;

use super::output::{opt, Output};
use crate::config::Config;
use crate::store::{is_mail_address, now, MailStatus, OutgoingMail, Store};

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List outbox messages, newest first (never their bodies).
    List {
        #[arg(long, value_parser = super::stored::<MailStatus>())]
        status: Option<MailStatus>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Queue a test message; a running `provd serve` with `smtp_url` set delivers it.
    Test {
        /// The recipient (a plain address: local@domain).
        #[arg(long)]
        to: String,
    },
}

pub const TEST_SUBJECT: &str = "provd test message";

pub fn run(c: OutboxCommand, store: &Store, config: &Config, out: &Output) -> Result<()> {
    match c {
        OutboxCommand::List { status, limit } => {
            let rows = store.list_outbox(status, limit.clamp(1, 100_000))?;
            out.list(
                &rows,
                &[
                    "id",
                    "created",
                    "command",
                    "recipient",
                    "subject",
                    "status",
                    "attempts",
                    "next attempt",
                    "sent",
                    "last error",
                ],
                |r| {
                    vec![
                        r.id.to_string(),
                        super::output::rfc3339(r.created_at),
                        r.command.clone(),
                        r.recipient.clone(),
                        r.subject.clone(),
                        r.status.as_str().into(),
                        r.attempts.to_string(),
                        if r.status == MailStatus::Queued {
                            super::output::rfc3339(r.next_attempt_at)
                        } else {
                            String::new()
                        },
                        super::output::opt_time(&r.sent_at),
                        opt(&r.last_error),
                    ]
                },
            );
            Ok(())
        }
        OutboxCommand::Test { to } => {
            if !is_mail_address(&to) {
                bail!("--to {to:?} is not an e-mail address (give a plain local@domain)");
            }
            let host = hostname();
            let id = store.enqueue_mail(
                &OutgoingMail {
                    command: "outbox test".into(),
                    recipient: to.clone(),
                    subject: TEST_SUBJECT.into(),
                    body: Zeroizing::new(format!(
                        "provd test message\r\n\r\nQueued by `provd outbox test` on {host}. \
                         If you read this, provd's SMTP settings work.\r\n"
                    )),
                },
                now(),
            )?;
            if !config.email_enabled() {
                eprintln!(
                    "provd: note: smtp_url is not set in this configuration; \
                     a `provd serve` with smtp_url set on this database sends the message"
                );
            }
            out.one(&serde_json::json!({
                "id": id,
                "recipient": to,
                "subject": TEST_SUBJECT,
                "status": "queued",
            }));
            Ok(())
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into())
}
