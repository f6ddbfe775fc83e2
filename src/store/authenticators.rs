use diesel::prelude::*;
use serde::Serialize;
use zeroize::Zeroizing;

use super::schema::{authenticators, users};
use super::{now, DbConnection, Store, StoreError};
use crate::types::{Domain, SerialNumber, UserId};

/// The authenticator type provd generates: a software (mobile) authenticator.
pub const DEFAULT_TYPE: &str = "DIGIPASS APP";
/// Its default applications: a response-only OTP application.
pub const DEFAULT_APPLICATIONS: &str = "RESPONSE_ONLY";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthenticatorStatus {
    /// In the pool, assigned to nobody.
    Available,
    /// Assigned to a user, not yet activated on a device.
    Assigned,
    /// Activated and bound to its user.
    Active,
}

impl AuthenticatorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Assigned => "assigned",
            Self::Active => "active",
        }
    }

    fn parse(raw: &str) -> Result<Self, StoreError> {
        match raw {
            "available" => Ok(Self::Available),
            "assigned" => Ok(Self::Assigned),
            "active" => Ok(Self::Active),
            other => Err(StoreError::Corrupt(format!(
                "unknown authenticator status {other:?}"
            ))),
        }
    }
}

/// An authenticator as the admin tools see it: never its key.
#[derive(Debug, Clone, Serialize)]
pub struct Authenticator {
    pub serial_no: SerialNumber,
    pub auth_type: String,
    pub applications: String,
    pub status: AuthenticatorStatus,
    pub user_id: Option<UserId>,
    pub domain: Option<Domain>,
    pub license_limit: i32,
    pub created_at: i64,
    pub assigned_at: Option<i64>,
    pub activated_at: Option<i64>,
    /// Registrations so far: the event reactivation counter.
    pub reactivation_counter: i32,
}

/// An authenticator to insert; its key is sealed under the master key on the way in.
pub struct NewAuthenticator {
    pub serial_no: SerialNumber,
    pub auth_type: String,
    pub applications: String,
    pub key: Zeroizing<Vec<u8>>,
    pub license_limit: i32,
}

type Row = (
    String,
    String,
    String,
    String,
    Option<i64>,
    i32,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    i32,
);

fn to_authenticator(r: Row) -> Result<Authenticator, StoreError> {
    let corrupt = |e: crate::types::ParseError| StoreError::Corrupt(format!("authenticator: {e}"));
    Ok(Authenticator {
        serial_no: SerialNumber::parse(&r.0).map_err(corrupt)?,
        auth_type: r.1,
        applications: r.2,
        status: AuthenticatorStatus::parse(&r.3)?,
        license_limit: r.5,
        created_at: r.6,
        assigned_at: r.7,
        activated_at: r.8,
        reactivation_counter: r.11,
        user_id: r
            .9
            .as_deref()
            .map(UserId::parse)
            .transpose()
            .map_err(corrupt)?,
        domain: r
            .10
            .as_deref()
            .map(Domain::parse)
            .transpose()
            .map_err(corrupt)?,
    })
}

pub(super) fn sealing_context(serial: &(impl std::fmt::Display + ?Sized)) -> String {
    format!("authenticator-key:{serial}")
}

macro_rules! joined {
    () => {
        authenticators::table.left_join(users::table).select((
            authenticators::serial_no,
            authenticators::auth_type,
            authenticators::applications,
            authenticators::status,
            authenticators::user_pk,
            authenticators::license_limit,
            authenticators::created_at,
            authenticators::assigned_at,
            authenticators::activated_at,
            users::user_id.nullable(),
            users::domain.nullable(),
            authenticators::reactivation_counter,
        ))
    };
}

impl Store {
    /// Inserts a batch in one transaction; an existing serial number fails the whole batch
    /// with an error naming it, so an import is never half-applied.
    /// `progress` is called with the number inserted so far.
    pub fn insert_authenticators(
        &self,
        batch: &[NewAuthenticator],
        progress: &mut dyn FnMut(usize),
    ) -> Result<(), StoreError> {
        let t = now();
        self.write_tx(|c| {
            for (i, a) in batch.iter().enumerate() {
                let sealed = self.key().seal(&sealing_context(&a.serial_no), &a.key);
                diesel::insert_into(authenticators::table)
                    .values((
                        authenticators::serial_no.eq(a.serial_no.as_str()),
                        authenticators::auth_type.eq(&a.auth_type),
                        authenticators::applications.eq(&a.applications),
                        authenticators::status.eq(AuthenticatorStatus::Available.as_str()),
                        authenticators::sealed_key.eq(&sealed),
                        authenticators::license_limit.eq(a.license_limit),
                        authenticators::created_at.eq(t),
                    ))
                    .execute(c)
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict(_) => StoreError::Conflict(format!(
                            "authenticator {} already exists",
                            a.serial_no
                        )),
                        other => other,
                    })?;
                if (i + 1) % 256 == 0 || i + 1 == batch.len() {
                    progress(i + 1);
                }
            }
            Ok(())
        })
    }

    /// The serial numbers that start with `prefix`.
    pub fn serials_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut conn = self.conn()?;
        let all: Vec<String> = authenticators::table
            .filter(authenticators::serial_no.like(format!("{prefix}%")))
            .select(authenticators::serial_no)
            .load(&mut conn)?;
        Ok(all.into_iter().collect())
    }

    pub fn list_authenticators(
        &self,
        status: Option<AuthenticatorStatus>,
    ) -> Result<Vec<Authenticator>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = joined!().order(authenticators::serial_no).into_boxed();
        if let Some(s) = status {
            q = q.filter(authenticators::status.eq(s.as_str()));
        }
        q.load::<Row>(&mut conn)?
            .into_iter()
            .map(to_authenticator)
            .collect()
    }

    pub fn get_authenticator(&self, serial: &SerialNumber) -> Result<Authenticator, StoreError> {
        let mut conn = self.conn()?;
        joined!()
            .filter(authenticators::serial_no.eq(serial.as_str()))
            .first::<Row>(&mut conn)
            .optional()?
            .map(to_authenticator)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("no authenticator {serial}")))
    }

    /// The authenticator's secret key, unsealed. Zeroized when dropped.
    pub fn authenticator_key(
        &self,
        serial: &SerialNumber,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let mut conn = self.conn()?;
        let sealed: Vec<u8> = authenticators::table
            .find(serial.as_str())
            .select(authenticators::sealed_key)
            .first(&mut conn)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("no authenticator {serial}")))?;
        Ok(self.key().open(&sealing_context(serial), &sealed)?)
    }

    /// Assigns a free authenticator to a user (admin command).
    pub fn assign_authenticator(
        &self,
        serial: &SerialNumber,
        user_id: &UserId,
        domain: &Domain,
    ) -> Result<Authenticator, StoreError> {
        let user = self
            .find_user(user_id, domain)?
            .ok_or_else(|| StoreError::NotFound(format!("no user {user_id} in domain {domain}")))?;
        let current = self.get_authenticator(serial)?;
        if current.status != AuthenticatorStatus::Available {
            return Err(StoreError::Conflict(format!(
                "authenticator {serial} is already assigned to {}",
                current
                    .user_id
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "another user".into())
            )));
        }
        if !self.write_tx(|c| Ok(try_claim(c, serial.as_str(), user.pk)?))? {
            return Err(StoreError::Conflict(format!(
                "authenticator {serial} was assigned concurrently"
            )));
        }
        self.get_authenticator(serial)
    }

    /// Returns an authenticator to the free pool and drops its pending registrations.
    pub fn unassign_authenticator(
        &self,
        serial: &SerialNumber,
    ) -> Result<Authenticator, StoreError> {
        let current = self.get_authenticator(serial)?;
        if current.status == AuthenticatorStatus::Available {
            return Err(StoreError::Conflict(format!(
                "authenticator {serial} is not assigned"
            )));
        }
        self.write_tx(|c| {
            use super::schema::registrations as r;
            diesel::delete(r::table.filter(r::serial_no.eq(serial.as_str()))).execute(c)?;
            diesel::update(authenticators::table.find(serial.as_str()))
                .set((
                    authenticators::user_pk.eq(None::<i64>),
                    authenticators::status.eq(AuthenticatorStatus::Available.as_str()),
                    authenticators::assigned_at.eq(None::<i64>),
                    authenticators::activated_at.eq(None::<i64>),
                ))
                .execute(c)?;
            Ok(())
        })?;
        self.get_authenticator(serial)
    }
}

/// Claims a free authenticator for a user with one conditional UPDATE: of two concurrent
/// claims on the same row, exactly one sees a row changed.
pub(super) fn try_claim(conn: &mut DbConnection, serial: &str, user_pk: i64) -> QueryResult<bool> {
    diesel::update(
        authenticators::table
            .find(serial)
            .filter(authenticators::status.eq(AuthenticatorStatus::Available.as_str()))
            .filter(authenticators::user_pk.is_null()),
    )
    .set((
        authenticators::user_pk.eq(user_pk),
        authenticators::status.eq(AuthenticatorStatus::Assigned.as_str()),
        authenticators::assigned_at.eq(now()),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// The user's current authenticator, or a free one claimed for them. `None` when the pool is
/// empty. Runs inside the caller's transaction.
pub(super) fn authenticator_for_user(
    conn: &mut DbConnection,
    user_pk: i64,
) -> QueryResult<Option<String>> {
    let existing: Option<String> = authenticators::table
        .filter(authenticators::user_pk.eq(user_pk))
        .order(authenticators::serial_no)
        .select(authenticators::serial_no)
        .first(conn)
        .optional()?;
    if existing.is_some() {
        return Ok(existing);
    }
    // A few candidates at a time; one another instance took in between is skipped.
    loop {
        let candidates: Vec<String> = authenticators::table
            .filter(authenticators::status.eq(AuthenticatorStatus::Available.as_str()))
            .filter(authenticators::user_pk.is_null())
            .order(authenticators::serial_no)
            .select(authenticators::serial_no)
            .limit(8)
            .load(conn)?;
        if candidates.is_empty() {
            // A concurrent registration of the same user may have claimed the last free one
            // while this transaction waited on its row: then that one is the user's.
            return authenticators::table
                .filter(authenticators::user_pk.eq(user_pk))
                .order(authenticators::serial_no)
                .select(authenticators::serial_no)
                .first(conn)
                .optional();
        }
        for serial in candidates {
            if try_claim(conn, &serial, user_pk)? {
                return Ok(Some(serial));
            }
        }
    }
}

/// An authenticator handed out by [`Store::register_authenticator`], key unsealed.
pub struct Assignment {
    pub serial_no: SerialNumber,
    pub key: Zeroizing<Vec<u8>>,
    pub reactivation_counter: i32,
}

impl Store {
    /// One transaction for `PROVISIONCMD_REGISTER`: takes the named authenticator (the
    /// caller checked it is the user's) or the user's own or a free one, sets the new
    /// password hash when given, counts a reactivation, activates at once when
    /// `activate_now`, and hands the authenticator to `produce`, whose mail, if any, commits
    /// with the rest. `None` (and nothing written) when no authenticator is free.
    pub fn register_authenticator<T>(
        &self,
        user_pk: i64,
        serial: Option<&SerialNumber>,
        new_password_hash: Option<&str>,
        activate_now: bool,
        produce: impl FnOnce(&Assignment) -> (T, Option<super::OutgoingMail>),
    ) -> Result<Option<T>, StoreError> {
        let at = now();
        self.write_tx(|c| {
            let serial = match serial {
                Some(s) => s.as_str().to_owned(),
                None => match authenticator_for_user(c, user_pk)? {
                    Some(s) => s,
                    None => return Ok(None),
                },
            };
            if let Some(hash) = new_password_hash {
                diesel::update(users::table.find(user_pk))
                    .set((
                        users::password_hash.eq(Some(hash)),
                        users::failure_count.eq(0),
                        users::updated_at.eq(at),
                    ))
                    .execute(c)?;
            }
            diesel::update(authenticators::table.find(&serial))
                .set(
                    authenticators::reactivation_counter
                        .eq(authenticators::reactivation_counter + 1),
                )
                .execute(c)?;
            if activate_now {
                diesel::update(
                    authenticators::table
                        .find(&serial)
                        .filter(authenticators::status.ne(AuthenticatorStatus::Active.as_str())),
                )
                .set((
                    authenticators::status.eq(AuthenticatorStatus::Active.as_str()),
                    authenticators::activated_at.eq(Some(at)),
                ))
                .execute(c)?;
            }
            let (sealed, counter): (Vec<u8>, i32) = authenticators::table
                .find(&serial)
                .select((
                    authenticators::sealed_key,
                    authenticators::reactivation_counter,
                ))
                .first(c)?;
            let serial_no = SerialNumber::parse(&serial)
                .map_err(|e| StoreError::Corrupt(format!("authenticator: {e}")))?;
            let key = self.key().open(&sealing_context(&serial_no), &sealed)?;
            let (out, mail) = produce(&Assignment {
                serial_no,
                key,
                reactivation_counter: counter,
            });
            if let Some(mail) = mail {
                super::outbox::enqueue_mail(c, self.key(), &mail, at)?;
            }
            Ok(Some(out))
        })
    }

    /// Makes a user's assigned authenticator active (`PROVISIONCMD_ACTIVATE`). False when it
    /// is not assigned to that user or already active: an activation counts once.
    pub fn activate_assigned(
        &self,
        serial: &SerialNumber,
        user_pk: i64,
    ) -> Result<bool, StoreError> {
        let n = self.write_tx(|c| {
            Ok(diesel::update(
                authenticators::table
                    .find(serial.as_str())
                    .filter(authenticators::user_pk.eq(user_pk))
                    .filter(authenticators::status.eq(AuthenticatorStatus::Assigned.as_str())),
            )
            .set((
                authenticators::status.eq(AuthenticatorStatus::Active.as_str()),
                authenticators::activated_at.eq(Some(now())),
            ))
            .execute(c)?)
        })?;
        Ok(n == 1)
    }

    /// The user's authenticators, for commands that act on "the user's authenticator".
    pub fn serials_of_user(&self, user_pk: i64) -> Result<Vec<SerialNumber>, StoreError> {
        let mut conn = self.conn()?;
        authenticators::table
            .filter(authenticators::user_pk.eq(user_pk))
            .order(authenticators::serial_no)
            .select(authenticators::serial_no)
            .load::<String>(&mut conn)?
            .into_iter()
            .map(|s| {
                SerialNumber::parse(&s)
                    .map_err(|e| StoreError::Corrupt(format!("authenticator: {e}")))
            })
            .collect()
    }
}
