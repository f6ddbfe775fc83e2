//! DSAPP revision 3's online guessing bound (protocols.md section 4): every accepted key
//! exchange of a registration counts, a new one replaces the previous session, and the one
//! past the limit revokes the registration. The activation password (CPace's PRS) stays
//! sealed in `sealed_secret` until the registration is spent or revoked.

use diesel::prelude::*;

use super::schema::registrations;
use super::{Registration, RegistrationStatus, Store, StoreError};
use crate::types::RegistrationId;

/// What recording a key exchange did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeRecorded {
    /// The session is kept (sealed) for the activation; `exchanges` counts this one.
    Kept { exchanges: i32 },
    /// This exchange went past the limit: the registration is revoked, its secrets dropped.
    Revoked { exchanges: i32 },
    /// The registration is not pending or delivered, or has expired.
    NotLive,
}

/// The same context as an SRP key exchange's state: one sealed column, `sealed_ephemeral`, holds
/// either (a registration is of one kind), and `provd key rotate` re-seals it with one context.
fn session_context(id: &RegistrationId) -> String {
    super::registrations::ephemeral_context(id)
}

impl Store {
    /// In one transaction: counts a key exchange on a pending or delivered, unexpired
    /// registration; within `max` keeps `session` (sealed) until `session_expires_at` and
    /// marks the registration delivered; past `max` revokes it and drops its secrets.
    pub fn record_dsapp_exchange(
        &self,
        id: &RegistrationId,
        session: &[u8],
        now: i64,
        session_expires_at: i64,
        max: i32,
    ) -> Result<ExchangeRecorded, StoreError> {
        let sealed = self.key().seal(&session_context(id), session);
        let live = [RegistrationStatus::Pending, RegistrationStatus::Delivered];
        self.write_tx(|c| {
            let n = diesel::update(
                registrations::table
                    .find(id.as_str())
                    .filter(registrations::status.eq_any(live))
                    .filter(registrations::expires_at.gt(now)),
            )
            .set(registrations::exchanges.eq(registrations::exchanges + 1))
            .execute(c)?;
            if n != 1 {
                return Ok(ExchangeRecorded::NotLive);
            }
            let exchanges: i32 = registrations::table
                .find(id.as_str())
                .select(registrations::exchanges)
                .first(c)?;
            if exchanges > max {
                diesel::update(registrations::table.find(id.as_str()))
                    .set((
                        registrations::status.eq(RegistrationStatus::Revoked),
                        registrations::sealed_ephemeral.eq(None::<Vec<u8>>),
                        registrations::ephemeral_expires_at.eq(None::<i64>),
                        registrations::sealed_secret.eq(None::<Vec<u8>>),
                    ))
                    .execute(c)?;
                return Ok(ExchangeRecorded::Revoked { exchanges });
            }
            diesel::update(registrations::table.find(id.as_str()))
                .set((
                    registrations::status.eq(RegistrationStatus::Delivered),
                    registrations::sealed_ephemeral.eq(Some(&sealed)),
                    registrations::ephemeral_expires_at.eq(Some(session_expires_at)),
                ))
                .execute(c)?;
            Ok(ExchangeRecorded::Kept { exchanges })
        })
    }

    /// The unsealed session of a registration's latest DSAPP key exchange.
    pub fn open_dsapp_session(
        &self,
        reg: &Registration,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StoreError> {
        reg.sealed_ephemeral
            .as_ref()
            .map(|sealed| {
                self.key()
                    .open(&session_context(&reg.registration_id), sealed)
                    .map_err(StoreError::from)
            })
            .transpose()
    }

    /// Drops a registration's sealed protocol secret and session once it is spent or
    /// revoked: the activation password has no use left.
    pub fn drop_registration_secrets(&self, id: &RegistrationId) -> Result<(), StoreError> {
        let spent = [RegistrationStatus::Activated, RegistrationStatus::Revoked];
        self.write_tx(|c| {
            diesel::update(
                registrations::table
                    .find(id.as_str())
                    .filter(registrations::status.eq_any(spent)),
            )
            .set((
                registrations::sealed_secret.eq(None::<Vec<u8>>),
                registrations::sealed_ephemeral.eq(None::<Vec<u8>>),
                registrations::ephemeral_expires_at.eq(None::<i64>),
            ))
            .execute(c)?;
            Ok(())
        })
    }
}
