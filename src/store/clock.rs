//! The one clock type of provd: a source of Unix seconds, injectable so that tests (and the
//! debug builds' `PROVD_TEST_CLOCK_FILE`) can set the time. The store stamps its own rows
//! (`created_at`, `assigned_at`, audit times, ...) from its clock ([`Store::with_clock`]);
//! the protocol (`crate::lifecycle::Provisioning::with_clock` gives the store its clock) and the
//! Hermod front (which takes the store's) share it.

use std::sync::Arc;

use super::Store;

/// Seconds since the Unix epoch, from wherever the owner decides.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system's clock ([`super::now`]).
pub fn system_clock() -> Clock {
    Arc::new(super::now)
}

impl Store {
    /// This store, stamping its rows with `clock`'s time instead of the system's. Clones of
    /// the store made afterwards share the clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The store's clock, for whoever must share its time.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// The store's time: Unix seconds from its clock.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use zeroize::Zeroizing;

    use super::*;
    use crate::crypto::MasterKey;
    use crate::store::{NewAudit, NewAuthenticator, NewUser};
    use crate::types::{Domain, SerialNumber, UserId};

    /// The store's own time stamps come from its clock, not the system's.
    #[test]
    fn the_store_stamps_its_rows_with_its_clock() {
        let dir = std::env::temp_dir().join(format!("provd-clock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = dir.join("c.db").display().to_string();
        // Far from the system's time: a stamp taken from the system cannot pass for it.
        let time = Arc::new(AtomicI64::new(1_000_000_000));
        let t = time.clone();
        let s = Store::open(&url, MasterKey::generate(), 2)
            .unwrap()
            .with_clock(Arc::new(move || t.load(Ordering::SeqCst)));
        assert_eq!(s.now(), 1_000_000_000);
        // Clones share the clock.
        assert_eq!(s.clone().now(), 1_000_000_000);

        let (user_id, domain) = (UserId::parse("clock").unwrap(), Domain::parse("d").unwrap());
        let user = s
            .create_user(&NewUser {
                user_id: user_id.clone(),
                domain: domain.clone(),
                organizational_unit: None,
                email: None,
                password_hash: None,
            })
            .unwrap();
        assert_eq!(
            (user.created_at, user.updated_at),
            (1_000_000_000, 1_000_000_000)
        );

        let serial = SerialNumber::parse("CLK0000001").unwrap();
        s.insert_authenticators(
            &[NewAuthenticator {
                serial_no: serial.clone(),
                auth_type: "DIGIPASS APP".into(),
                applications: "RESPONSE_ONLY".into(),
                key: Zeroizing::new(vec![1; 32]),
                license_limit: 1,
            }],
            &mut |_| {},
        )
        .unwrap();
        time.store(1_000_000_100, Ordering::SeqCst);
        let a = s.assign_authenticator(&serial, &user_id, &domain).unwrap();
        assert_eq!(
            (a.created_at, a.assigned_at),
            (1_000_000_000, Some(1_000_000_100))
        );

        time.store(1_000_000_200, Ordering::SeqCst);
        let u = s.set_user_disabled(&user_id, &domain, true).unwrap();
        assert_eq!(u.updated_at, 1_000_000_200);
        s.audit(&NewAudit {
            command: "TEST".into(),
            status: "ok".into(),
            ..NewAudit::default()
        })
        .unwrap();
        assert_eq!(s.recent_audit(1).unwrap()[0].at, 1_000_000_200);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
