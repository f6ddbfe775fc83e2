//! Rate-limited refusals, aggregated: per client address, the first refusal of a minute is
//! logged and written as an audit row at once; the further refusals of that minute are only
//! counted, and the count is added to that row when the minute is over (at the next refusal
//! after it, at the sweeper's next run, or when the server stops). One address flooding the
//! server costs one log line and one audit row a minute, not one per call.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::store::{NewAudit, Store, StoreError};

/// The length of one aggregation window, in seconds.
pub const WINDOW_SECS: i64 = 60;

struct Window {
    started: i64,
    /// The audit row of the window's first refusal, once written.
    row: Option<i64>,
    /// Refusals after the first, not yet added to the row.
    extra: i32,
    /// The first refusal's audit entry, for a window whose row could not be written.
    first: NewAudit,
}

/// A closed window whose further refusals still have to reach the audit trail.
#[derive(Debug, Clone)]
pub struct Pending {
    row: Option<i64>,
    extra: i32,
    first: NewAudit,
}

/// What to do with one refusal.
#[derive(Debug)]
pub enum Refusal {
    /// The first of its window: log it and write its row (then [`Refusals::written`]).
    First(Option<Box<Pending>>),
    /// Counted into the open window; nothing to log or write.
    Counted,
}

#[derive(Default)]
pub struct Refusals {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl Refusals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a refusal of `entry` from `addr` at `now` (seconds). `First` carries the
    /// window this refusal closed, if it had refusals left to add.
    pub fn record(&self, addr: IpAddr, now: i64, entry: &NewAudit) -> Refusal {
        let mut windows = self.lock();
        if let Some(w) = windows.get_mut(&addr) {
            if now < w.started + WINDOW_SECS {
                w.extra += 1;
                return Refusal::Counted;
            }
        }
        let closed = windows.insert(
            addr,
            Window {
                started: now,
                row: None,
                extra: 0,
                first: entry.clone(),
            },
        );
        Refusal::First(closed.and_then(Self::pending).map(Box::new))
    }

    /// The audit row written for the first refusal of `addr`'s open window.
    pub fn written(&self, addr: IpAddr, row: i64) {
        if let Some(w) = self.lock().get_mut(&addr) {
            w.row = Some(row);
        }
    }

    fn pending(w: Window) -> Option<Pending> {
        (w.extra > 0).then_some(Pending {
            row: w.row,
            extra: w.extra,
            first: w.first,
        })
    }

    /// Takes the windows over at `now` (all of them with `None`): their counts, to write.
    pub fn take_closed(&self, now: Option<i64>) -> Vec<Pending> {
        let mut windows = self.lock();
        let closed: Vec<IpAddr> = windows
            .iter()
            .filter(|(_, w)| match now {
                Some(t) => t >= w.started + WINDOW_SECS,
                None => true,
            })
            .map(|(a, _)| *a)
            .collect();
        closed
            .into_iter()
            .filter_map(|a| windows.remove(&a).and_then(Self::pending))
            .collect()
    }
}

impl Pending {
    /// Adds the counted refusals to their row (or writes a row for them when the first
    /// one's row was never written).
    pub fn write(&self, store: &Store) -> Result<(), StoreError> {
        match self.row {
            Some(id) => store.add_audit_occurrences(id, self.extra),
            None => store.audit_aggregated(&self.first, self.extra).map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> NewAudit {
        NewAudit {
            command: "PROVISIONCMD_REGISTER".into(),
            status: "STAT_RATE_LIMITED".into(),
            ..NewAudit::default()
        }
    }

    #[test]
    fn one_first_refusal_per_address_and_window_and_the_rest_counted() {
        let r = Refusals::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(matches!(r.record(a, 1000, &entry()), Refusal::First(None)));
        r.written(a, 7);
        for t in 1001..1000 + WINDOW_SECS {
            assert!(matches!(r.record(a, t, &entry()), Refusal::Counted));
        }
        assert!(matches!(r.record(b, 1030, &entry()), Refusal::First(None)));
        // Nothing is closed inside the window.
        assert!(r.take_closed(Some(1000 + WINDOW_SECS - 1)).is_empty());
        // The next minute's first refusal closes the window and hands back its count.
        let Refusal::First(Some(p)) = r.record(a, 1000 + WINDOW_SECS, &entry()) else {
            panic!("a new window");
        };
        assert_eq!((p.row, p.extra), (Some(7), WINDOW_SECS as i32 - 1));
        // b's window had no further refusals: nothing to write for it.
        assert!(r.take_closed(Some(1030 + WINDOW_SECS)).is_empty());
        assert!(matches!(
            r.record(a, 1000 + WINDOW_SECS + 1, &entry()),
            Refusal::Counted
        ));
        let all = r.take_closed(None);
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].row, all[0].extra), (None, 1));
    }
}
