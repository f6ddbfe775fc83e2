//! Staying up under slow clients and floods: the request-body deadline, the global limit on
//! password checks, the health probe that never waits behind protocol work, and the cap on
//! open connections below the file-descriptor limit.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// When a connection was accepted, recorded by `HttpServer::on_connect`: the first request on
/// a connection must arrive whole (headers and body) within `request_timeout_secs` of it.
pub struct Opened {
    pub at: Instant,
    first_taken: Cell<bool>,
}

impl Opened {
    pub fn now() -> Self {
        Opened {
            at: Instant::now(),
            first_taken: Cell::new(false),
        }
    }

    /// Where the request-timeout clock of the next request on this connection starts: the
    /// accept for the first request, `now` for later ones (their headers arrive within the
    /// keep-alive time, which actix enforces).
    pub fn clock_start(&self, now: Instant) -> Instant {
        if self.first_taken.replace(true) {
            now
        } else {
            self.at
        }
    }
}

/// Why a request body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Declared or sent more than `max_body_bytes`.
    TooLarge(usize),
    /// Not complete by the deadline.
    TimedOut,
    /// The connection failed or the body was not valid HTTP framing.
    Broken(String),
}

/// Reads a whole request body, refusing it when it exceeds `max` bytes or is not complete at
/// `deadline`.
pub async fn read_body(
    req: &actix_web::HttpRequest,
    payload: web::Payload,
    max: usize,
    deadline: Instant,
) -> Result<web::Bytes, BodyError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(BodyError::TooLarge(max));
    }
    match tokio::time::timeout_at(deadline.into(), payload.to_bytes_limited(max)).await {
        Ok(Ok(Ok(body))) => Ok(body),
        Ok(Ok(Err(e))) => Err(BodyError::Broken(e.to_string())),
        Ok(Err(_)) => Err(BodyError::TooLarge(max)),
        Err(_) => Err(BodyError::TimedOut),
    }
}

/// Why a password-checking call was not let through: the server is saturated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// As many calls as the queue holds are already waiting.
    QueueFull,
    /// No check finished soon enough for this one to start within the wait limit.
    Waited,
}

/// The global limit on calls that run Argon2 (static password checks, password-derived
/// keys): at most `concurrency` at once; up to `queue` more wait, each at most `wait`; any
/// further one is refused at once. A call waits here, on the async side, without holding a
/// blocking thread.
pub struct PasswordGate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    wait: Duration,
}

impl PasswordGate {
    pub fn new(concurrency: usize, queue: usize, wait: Duration) -> Self {
        PasswordGate {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
            wait,
        }
    }

    /// A permit to run one password-checking call; dropping it lets the next one in.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(p);
        }
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        if ahead >= self.queue {
            return Err(Busy::QueueFull);
        }
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Busy::Waited),
        }
    }

    /// Seconds a refused client is told to wait (`Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        self.wait.as_secs().max(1)
    }
}

/// Raises the soft limit on open files to the hard limit; returns the soft limit now in
/// force (`None` where it cannot be read).
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return None;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim = raised;
                }
            }
        }
        Some(lim.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// File descriptors kept free of client connections: the database connections (a SQLite
/// connection holds the database, its WAL and shared-memory files), log files, the
/// runtime's own descriptors.
pub fn reserved_fds(pool_size: u32) -> u64 {
    128 + 4 * u64::from(pool_size)
}

/// Open connections allowed in total: `configured`, but never more than the file-descriptor
/// limit leaves after `reserved`; at least one.
pub fn connection_cap(configured: usize, fd_limit: Option<u64>, reserved: u64) -> usize {
    let by_fds = fd_limit.map_or(usize::MAX, |l| {
        usize::try_from(l.saturating_sub(reserved)).unwrap_or(usize::MAX)
    });
    configured.min(by_fds).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_stays_below_the_fd_limit() {
        assert_eq!(connection_cap(4096, Some(1024), 192), 832);
        assert_eq!(connection_cap(4096, Some(1_048_576), 192), 4096);
        assert_eq!(connection_cap(4096, None, 192), 4096);
        assert_eq!(connection_cap(4096, Some(100), 192), 1);
    }

    #[test]
    fn the_fd_soft_limit_is_raised_to_the_hard_limit() {
        let now = raise_fd_limit().expect("unix");
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: reads into the struct passed.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(now, lim.rlim_cur);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }

    #[test]
    fn the_first_request_of_a_connection_counts_from_the_accept() {
        let opened = Opened::now();
        let later = opened.at + Duration::from_secs(3);
        assert_eq!(opened.clock_start(later), opened.at);
        assert_eq!(opened.clock_start(later), later);
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn the_gate_lets_in_its_size_queues_its_queue_and_refuses_the_rest() {
        runtime().block_on(async {
            let gate = Arc::new(PasswordGate::new(1, 1, Duration::from_secs(3600)));
            let held = gate.enter().await.expect("a free permit");
            // One waits in the queue...
            let g = gate.clone();
            let queued = tokio::spawn(async move { g.enter().await.map(drop) });
            while gate.waiting.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
            // ...the next is refused at once.
            assert_eq!(gate.enter().await.err(), Some(Busy::QueueFull));
            drop(held);
            assert_eq!(queued.await.unwrap(), Ok(()));
            assert!(gate.enter().await.is_ok());
        });
    }

    #[test]
    fn a_queued_call_gives_up_at_the_wait_limit() {
        runtime().block_on(async {
            let gate = PasswordGate::new(1, 8, Duration::ZERO);
            let _held = gate.enter().await.unwrap();
            assert_eq!(gate.enter().await.err(), Some(Busy::Waited));
            assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
            assert_eq!(gate.retry_after_secs(), 1);
        });
    }
}
