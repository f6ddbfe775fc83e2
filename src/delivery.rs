//! E-mail delivery: a worker in `provd serve` (when `smtp_url` is set) that sends what the
//! outbox holds through the configured SMTP server (lettre, blocking, on a blocking thread).
//!
//! Messages are queued in the database by the transaction that produced them
//! (`store::enqueue_mail`), so a crash between commit and send loses nothing: the worker
//! scans at startup, every `mail_poll_secs`, and at once when poked through [`MailNotifier`].
//! Each message is leased while it is sent, so instances sharing a database never send the
//! same one together; a message whose sender died is sent again after the lease
//! (at-least-once). A failed attempt is retried with exponential backoff (from
//! `mail_retry_base_secs`, doubling, at most an hour) until `mail_max_attempts`.
//! Logs name the message id and the recipient's domain, never a body or a full address.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};
use tokio::sync::{watch, Notify};

use crate::config::{redact_url, Config};
use crate::metrics::Metrics;
use crate::store::{now, ClaimedMail, Store};

/// Messages claimed per database round trip.
const BATCH: i64 = 16;
/// The longest wait between two attempts at one message.
const MAX_RETRY_SECS: u64 = 3600;

/// Wakes the delivery worker. Cheap to clone and to call; a no-op when e-mail is off. Call
/// [`MailNotifier::notify`] after the transaction that queued a message has committed, so
/// the message leaves without waiting for the next scan.
#[derive(Clone, Default)]
pub struct MailNotifier(Option<Arc<Notify>>);

impl MailNotifier {
    /// A notifier for a server that delivers e-mail.
    pub fn enabled() -> Self {
        MailNotifier(Some(Arc::new(Notify::new())))
    }

    /// A notifier that wakes nothing (no `smtp_url`).
    pub fn disabled() -> Self {
        MailNotifier(None)
    }

    /// Enabled exactly when `config` has an `smtp_url`.
    pub fn for_config(config: &Config) -> Self {
        if config.email_enabled() {
            Self::enabled()
        } else {
            Self::disabled()
        }
    }

    /// Whether this server delivers e-mail.
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Wakes the worker (or makes its next wait return at once, if it is busy).
    pub fn notify(&self) {
        if let Some(n) = &self.0 {
            n.notify_one();
        }
    }
}

impl std::fmt::Debug for MailNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MailNotifier")
            .field(&self.is_enabled())
            .finish()
    }
}

/// The wait after the `attempts`-th failed attempt: `base`, doubling, at most an hour.
pub fn retry_delay_secs(base: u64, attempts: i32) -> u64 {
    let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
    base.saturating_mul(1u64 << doublings).min(MAX_RETRY_SECS)
}

/// The part of an address after the last `@`, for logs.
fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("?", |(_, d)| d)
}

/// An error to record and log: short, and never quoting the body.
fn scrub(error: &str, body: &str) -> String {
    let body = body.trim();
    if body.len() >= 8 && error.contains(body) {
        return "the SMTP error quoted the message; withheld".into();
    }
    error.chars().take(500).collect()
}

/// The delivery worker; [`Delivery::run`] it on the server's runtime.
pub struct Delivery {
    store: Store,
    transport: SmtpTransport,
    from: Mailbox,
    server: String,
    max_attempts: i32,
    retry_base_secs: u64,
    poll: Duration,
    lease_secs: i64,
    wake: Arc<Notify>,
    metrics: Metrics,
}

impl Delivery {
    /// The worker for `config`, woken by `notifier`; `None` when e-mail is off (no
    /// `smtp_url`, or a disabled notifier).
    pub fn new(
        store: Store,
        config: &Config,
        notifier: &MailNotifier,
        metrics: Metrics,
    ) -> anyhow::Result<Option<Self>> {
        let (Some(transport), Some(wake)) = (config.smtp_transport()?, notifier.0.clone()) else {
            return Ok(None);
        };
        Ok(Some(Delivery {
            store,
            transport,
            from: config.mail_from()?,
            server: config
                .smtp_url
                .as_deref()
                .map(redact_url)
                .unwrap_or_default(),
            max_attempts: config.mail_max_attempts.max(1),
            retry_base_secs: config.mail_retry_base_secs.max(1),
            poll: Duration::from_secs(config.mail_poll_secs.max(1)),
            lease_secs: config.mail_lease_secs.max(1) as i64,
            wake,
            metrics,
        }))
    }

    /// Sends until `stop` turns true (or its sender is dropped): scans at once, then after
    /// every poke and every poll interval. A message being sent when the stop comes is
    /// finished; messages claimed but not begun are handed back.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(server = %self.server, from = %self.from, "e-mail delivery started");
        let this = Arc::new(self);
        loop {
            this.drain(&stop).await;
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = this.wake.notified() => {}
                _ = tokio::time::sleep(this.poll) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
            if *stop.borrow() {
                break;
            }
        }
        tracing::info!("e-mail delivery stopped");
    }

    /// Claims and sends due messages until none is left or `stop` is set.
    async fn drain(self: &Arc<Self>, stop: &watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let this = self.clone();
            let claimed = tokio::task::spawn_blocking(move || {
                this.store.claim_due_mail(now(), this.lease_secs, BATCH)
            })
            .await;
            let batch = match claimed {
                Ok(Ok(batch)) => batch,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "claiming outbox mail failed");
                    return;
                }
                Err(_) => return,
            };
            if batch.is_empty() {
                let this = self.clone();
                if let Ok(Ok(n)) =
                    tokio::task::spawn_blocking(move || this.store.count_queued_mail()).await
                {
                    self.metrics.mail_queued(n);
                }
                return;
            }
            let mut batch = batch.into_iter();
            while let Some(mail) = batch.next() {
                if *stop.borrow() {
                    let ids: Vec<i64> = std::iter::once(mail.id)
                        .chain(batch.map(|m| m.id))
                        .collect();
                    let this = self.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        for id in ids {
                            if let Err(e) = this.store.release_mail(id) {
                                tracing::warn!(mail_id = id, error = %e, "releasing mail failed");
                            }
                        }
                    })
                    .await;
                    return;
                }
                let this = self.clone();
                // Sending and recording the outcome happen on one blocking thread, which the
                // runtime lets finish even while shutting down.
                let _ = tokio::task::spawn_blocking(move || this.deliver(mail)).await;
            }
        }
    }

    /// Sends one message and records the outcome.
    fn deliver(&self, mail: ClaimedMail) {
        let id = mail.id;
        let domain = domain_of(&mail.recipient).to_owned();
        let sent = self.send(&mail);
        let recorded = match sent {
            Ok(()) => {
                self.metrics.mail_sent();
                tracing::info!(mail_id = id, domain = %domain, command = %mail.command, "mail sent");
                self.store.mark_mail_sent(id, now())
            }
            Err((error, permanent)) => {
                let error = scrub(&error, &mail.body);
                let give_up = permanent || mail.attempts >= self.max_attempts;
                self.metrics.mail_failed(give_up);
                if give_up {
                    tracing::error!(mail_id = id, domain = %domain, attempts = mail.attempts, error = %error, "mail failed; giving up");
                    self.store.mark_mail_failed(id, &error)
                } else {
                    let delay = retry_delay_secs(self.retry_base_secs, mail.attempts);
                    tracing::warn!(mail_id = id, domain = %domain, attempts = mail.attempts, retry_in_secs = delay, error = %error, "mail not sent; will retry");
                    self.store.mark_mail_retry(id, &error, now() + delay as i64)
                }
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the message is tried again (perhaps sent twice).
            tracing::error!(mail_id = id, error = %e, "recording a mail outcome failed");
        }
    }

    /// `Err((error, permanent))`: permanent when no attempt can ever succeed.
    fn send(&self, mail: &ClaimedMail) -> Result<(), (String, bool)> {
        let to: lettre::Address = mail
            .recipient
            .parse()
            .map_err(|_| ("the recipient is not an e-mail address".to_owned(), true))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(mail.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.as_str().to_owned())
            .map_err(|e| (format!("building the message: {e}"), true))?;
        self.transport
            .send(&message)
            .map(|_| ())
            .map_err(|e| (e.to_string(), false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(retry_delay_secs(30, 1), 30);
        assert_eq!(retry_delay_secs(30, 2), 60);
        assert_eq!(retry_delay_secs(30, 4), 240);
        assert_eq!(retry_delay_secs(30, 8), 3600);
        assert_eq!(retry_delay_secs(30, 1000), 3600);
        assert_eq!(retry_delay_secs(u64::MAX, 3), 3600);
        assert_eq!(retry_delay_secs(1, 0), 1);
    }

    #[test]
    fn errors_never_quote_the_body() {
        let body = "activation code 12345678";
        assert!(!scrub(&format!("550 rejected: {body}"), body).contains("12345678"));
        assert_eq!(scrub("451 try later", body), "451 try later");
        assert_eq!(scrub(&"x".repeat(2000), body).len(), 500);
    }

    #[test]
    fn a_disabled_notifier_is_a_no_op() {
        let n = MailNotifier::disabled();
        n.notify();
        assert!(!n.is_enabled());
        assert!(MailNotifier::enabled().is_enabled());
        assert_eq!(domain_of("a@b.example"), "b.example");
    }
}
