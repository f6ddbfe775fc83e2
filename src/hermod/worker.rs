//! The Hermod worker of `provd serve`: delivers callbacks from the transactional outbox
//! (`hermod_callbacks`, spec section 8) and sweeps commands past their timeout and lifespan.
//! Shaped like the e-mail delivery (`crate::delivery`): leases so any instance delivers,
//! at-least-once, exponential backoff; woken after every commit that queued a callback.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use tokio::sync::watch;

use super::service::Hermod;
use crate::store::hermod::ClaimedCallback;

const BATCH: i64 = 16;
/// The longest wait between two attempts (15 minutes).
const MAX_RETRY_SECS: u64 = 900;

/// The wait after the `attempts`-th failure: `base × 2^(attempts-1)`, at most 15 minutes,
/// then ±20 % jitter.
pub fn retry_delay_secs(base: u64, attempts: i32, jitter: f64) -> u64 {
    let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
    let d = base.saturating_mul(1u64 << doublings).min(MAX_RETRY_SECS) as f64;
    (d * (1.0 + jitter.clamp(-0.2, 0.2))).round().max(1.0) as u64
}

/// `v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retry(String),
    Failed(String),
}

/// Posts one callback: no redirects followed, at most 4 KiB of the answer read.
pub fn post(agent: &ureq::Agent, cb: &ClaimedCallback, now: i64) -> Outcome {
    let body = &cb.entry.body;
    let result = agent
        .post(&cb.entry.url)
        .set("Content-Type", "application/json")
        .set("X-Provd-Delivery", &cb.entry.id.to_string())
        .set("X-Provd-Timestamp", &now.to_string())
        .set("X-Provd-Signature", &signature(&cb.secret, now, body))
        .send_string(body);
    let (status, resp) = match result {
        Ok(r) => (r.status(), Some(r)),
        Err(ureq::Error::Status(code, r)) => (code, Some(r)),
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    if let Some(r) = resp {
        let mut sink = Vec::new();
        let _ = r.into_reader().take(4096).read_to_end(&mut sink);
    }
    match status {
        200..=299 => Outcome::Sent,
        408 | 429 | 500..=599 => Outcome::Retry(format!("HTTP {status}")),
        other => Outcome::Failed(format!("HTTP {other}")),
    }
}

/// Runs until `stop` turns true: sweep, deliver, wait for a wake-up or the poll interval.
pub async fn run(front: Arc<Hermod>, mut stop: watch::Receiver<bool>) {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(
            front.settings.callback_timeout_secs.max(1),
        ))
        .build();
    let poll = Duration::from_secs(front.settings.poll_secs.max(1));
    loop {
        let f = front.clone();
        match tokio::task::spawn_blocking(move || f.sweep()).await {
            Ok(Ok((0, 0))) => {}
            Ok(Ok((t, p))) => tracing::info!(timed_out = t, purged = p, "hermod: swept commands"),
            Ok(Err(e)) => tracing::warn!(error = %e, "hermod: sweep failed"),
            Err(_) => return,
        }
        drain(&front, &agent, &stop).await;
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = front.wake.0.notified() => {}
            _ = tokio::time::sleep(poll) => {}
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
}

async fn drain(front: &Arc<Hermod>, agent: &ureq::Agent, stop: &watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let f = front.clone();
        let lease = front.settings.callback_lease_secs.max(1) as i64;
        let claimed =
            tokio::task::spawn_blocking(move || f.store.claim_due_callbacks(f.now(), lease, BATCH))
                .await;
        let batch = match claimed {
            Ok(Ok(b)) if !b.is_empty() => b,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "hermod: claiming callbacks failed");
                return;
            }
            _ => return,
        };
        for cb in batch {
            let f = front.clone();
            let agent = agent.clone();
            let _ = tokio::task::spawn_blocking(move || deliver(&f, &agent, cb)).await;
        }
    }
}

fn deliver(front: &Hermod, agent: &ureq::Agent, cb: ClaimedCallback) {
    let id = cb.entry.id;
    let now = front.now();
    let outcome = post(agent, &cb, now);
    if let Some(m) = &front.metrics {
        m.hermod_callback(match &outcome {
            Outcome::Sent => "sent",
            Outcome::Retry(_) if cb.entry.attempts < front.settings.callback_max_attempts => {
                "retry"
            }
            _ => "failed",
        });
    }
    let recorded = match &outcome {
        Outcome::Sent => {
            tracing::info!(
                callback_id = id,
                command_id = cb.entry.command_id,
                "hermod: callback delivered"
            );
            front.store.mark_callback_sent(id, now)
        }
        Outcome::Retry(e) if cb.entry.attempts < front.settings.callback_max_attempts => {
            let jitter = rand::thread_rng().gen_range(-0.2..=0.2);
            let delay = retry_delay_secs(
                front.settings.callback_retry_base_secs.max(1),
                cb.entry.attempts,
                jitter,
            );
            tracing::warn!(callback_id = id, attempts = cb.entry.attempts, retry_in_secs = delay, error = %e, "hermod: callback not delivered; will retry");
            front.store.mark_callback_retry(id, e, now + delay as i64)
        }
        Outcome::Retry(e) | Outcome::Failed(e) => {
            tracing::error!(callback_id = id, attempts = cb.entry.attempts, error = %e, "hermod: callback failed; giving up");
            front.store.mark_callback_failed(id, e)
        }
    };
    if let Err(e) = recorded {
        tracing::error!(callback_id = id, error = %e, "hermod: recording a callback outcome failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        assert_eq!(retry_delay_secs(5, 1, 0.0), 5);
        assert_eq!(retry_delay_secs(5, 2, 0.0), 10);
        assert_eq!(retry_delay_secs(5, 3, 0.2), 24);
        assert_eq!(retry_delay_secs(5, 3, -0.2), 16);
        assert_eq!(retry_delay_secs(5, 12, 0.0), 900);
        assert_eq!(
            retry_delay_secs(5, 12, 0.9),
            1080,
            "jitter is clamped to 20 %"
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Expected value computed independently with Python's hmac module.
        let s = signature("secret", 1795000000, "{}");
        assert_eq!(
            s,
            "v1=6b4c7e66d3b69c810f27c4aa67ee370757d4dfdabf1fbb338ea7cf6aba9e0494"
        );
        assert_ne!(s, signature("secret", 1795000001, "{}"));
        assert_ne!(s, signature("secreT", 1795000000, "{}"));
    }
}
