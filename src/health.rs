//! `/health`: whether the store answers, can write, and holds data sealed under this
//! process's master key. The probe (one tiny write transaction and the key check) runs on a
//! thread of its own, never on the request workers or their blocking pool, at most once per
//! `ttl`; requests in between get the cached answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{KeyCheck, Store, StoreError};

/// How long a probe's answer is served before the next request probes again.
pub const PROBE_TTL: Duration = Duration::from_secs(2);
/// How long a request waits for a probe before answering that the store does not answer.
const PROBE_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Ok,
    /// No connection to the database.
    Unavailable,
    /// Connected, but a write transaction fails (disk full, read-only file system).
    CannotWrite,
    /// The database's key check value does not open under this process's key (the key was
    /// rotated under a running server).
    WrongKey,
    /// The probe did not finish in time.
    NotAnswering,
}

impl HealthStatus {
    pub fn is_ok(self) -> bool {
        self == HealthStatus::Ok
    }

    /// The JSON body of `/health`.
    pub fn body(self) -> &'static str {
        match self {
            HealthStatus::Ok => r#"{"status":"ok"}"#,
            HealthStatus::Unavailable => r#"{"status":"database unavailable"}"#,
            HealthStatus::CannotWrite => r#"{"status":"database cannot write"}"#,
            HealthStatus::WrongKey => r#"{"status":"the master key does not match the database"}"#,
            HealthStatus::NotAnswering => r#"{"status":"database not answering"}"#,
        }
    }
}

pub struct Health {
    store: Store,
    ttl: Duration,
    last: Mutex<Option<(Instant, HealthStatus)>>,
    probing: AtomicBool,
    done: tokio::sync::watch::Sender<u64>,
}

impl Health {
    pub fn new(store: Store, ttl: Duration) -> Arc<Self> {
        Arc::new(Health {
            store,
            ttl,
            last: Mutex::new(None),
            probing: AtomicBool::new(false),
            done: tokio::sync::watch::channel(0).0,
        })
    }

    /// One probe, blocking.
    pub fn probe(store: &Store) -> HealthStatus {
        match store.write_probe() {
            Ok(()) => {}
            Err(StoreError::Unavailable(_)) => return HealthStatus::Unavailable,
            Err(e) => {
                tracing::warn!(error = %e, "health: the store cannot write");
                return HealthStatus::CannotWrite;
            }
        }
        match store.key_check() {
            Ok(KeyCheck::WrongKey) => HealthStatus::WrongKey,
            Ok(_) => HealthStatus::Ok,
            Err(StoreError::Unavailable(_)) => HealthStatus::Unavailable,
            Err(_) => HealthStatus::CannotWrite,
        }
    }

    fn fresh(&self) -> Option<HealthStatus> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, s)| s)
    }

    /// The cached answer, or a new probe's.
    pub async fn status(self: &Arc<Self>) -> HealthStatus {
        if let Some(s) = self.fresh() {
            return s;
        }
        let mut done = self.done.subscribe();
        if !self.probing.swap(true, Ordering::AcqRel) {
            let this = Arc::clone(self);
            std::thread::spawn(move || {
                let status = Self::probe(&this.store);
                *this.last.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), status));
                this.probing.store(false, Ordering::Release);
                this.done.send_modify(|n| *n += 1);
            });
        } else if let Some(s) = self.fresh() {
            // A probe finished between the first look and the subscription.
            return s;
        }
        match tokio::time::timeout(PROBE_WAIT, done.changed()).await {
            Ok(Ok(())) => self
                .last
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map_or(HealthStatus::NotAnswering, |(_, s)| s),
            _ => HealthStatus::NotAnswering,
        }
    }
}
