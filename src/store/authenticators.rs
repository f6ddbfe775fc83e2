use diesel::prelude::*;
use serde::Serialize;
use zeroize::Zeroizing;

use super::schema::{authenticators, users};
use super::text_enum::{text_enum_sql, TextEnum};
use super::{DbConnection, Store, StoreError};
use crate::types::{Domain, SerialNumber, UserId};

/// The authenticator type provd generates: a software (mobile) authenticator.
pub const DEFAULT_TYPE: &str = "DIGIPASS APP";
/// Its default applications: a response-only OTP application.
pub const DEFAULT_APPLICATIONS: &str = "RESPONSE_ONLY";

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
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
}

impl TextEnum for AuthenticatorStatus {
    const COLUMN: &'static str = "authenticators.status";
    const VARIANTS: &'static [Self] = &[Self::Available, Self::Assigned, Self::Active];
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(AuthenticatorStatus);

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
    /// Disabled by an administrator: not handed out, registered or activated.
    pub disabled: bool,
    /// Completed re-keyings of this authenticator while it was active.
    pub reactivations: i32,
    /// Wrong OTPs presented for it outside a registration (`PROVISIONCMD_ACTIVATE`).
    pub otp_failures: i32,
}

/// Length of the key every registration prepares, in bytes.
pub const KEY_BYTES: usize = 32;

/// The reactivation policy: whether registering an active authenticator again (re-keying it
/// for a new device) is allowed, and how many times (`max` 0: no cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactivationRule {
    pub allow: bool,
    pub max: i32,
}

impl Default for ReactivationRule {
    fn default() -> Self {
        ReactivationRule {
            allow: true,
            max: 0,
        }
    }
}

/// Why a registration could not take an authenticator. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// The user has none and the pool has none free.
    NoFreeAuthenticator,
    /// The user's authenticator is disabled.
    Disabled(SerialNumber),
    /// The authenticator is active and the reactivation policy refuses re-keying it.
    ReactivationRefused {
        serial: SerialNumber,
        reason: String,
    },
}

/// An authenticator to insert; its key is sealed under the master key on the way in.
pub struct NewAuthenticator {
    pub serial_no: SerialNumber,
    pub auth_type: String,
    pub applications: String,
    pub key: Zeroizing<Vec<u8>>,
    pub license_limit: i32,
}

/// A new row of `authenticators`: in the pool, assigned to nobody.
#[derive(Insertable)]
#[diesel(table_name = authenticators)]
struct AuthenticatorInsert<'a> {
    serial_no: &'a str,
    auth_type: &'a str,
    applications: &'a str,
    status: AuthenticatorStatus,
    sealed_key: &'a [u8],
    license_limit: i32,
    created_at: i64,
}

type Row = (
    String,
    String,
    String,
    AuthenticatorStatus,
    Option<i64>,
    i32,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    i32,
    bool,
    i32,
    i32,
);

fn to_authenticator(r: Row) -> Result<Authenticator, StoreError> {
    let corrupt = |e: crate::types::ParseError| StoreError::Corrupt(format!("authenticator: {e}"));
    Ok(Authenticator {
        serial_no: SerialNumber::parse(&r.0).map_err(corrupt)?,
        auth_type: r.1,
        applications: r.2,
        status: r.3,
        license_limit: r.5,
        created_at: r.6,
        assigned_at: r.7,
        activated_at: r.8,
        reactivation_counter: r.11,
        disabled: r.12,
        reactivations: r.13,
        otp_failures: r.14,
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
            authenticators::disabled,
            authenticators::reactivations,
            authenticators::otp_failures,
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
        let t = self.now();
        self.write_tx(|c| {
            for (i, a) in batch.iter().enumerate() {
                let sealed = self.key().seal(&sealing_context(&a.serial_no), &a.key);
                diesel::insert_into(authenticators::table)
                    .values(AuthenticatorInsert {
                        serial_no: a.serial_no.as_str(),
                        auth_type: &a.auth_type,
                        applications: &a.applications,
                        status: AuthenticatorStatus::Available,
                        sealed_key: &sealed,
                        license_limit: a.license_limit,
                        created_at: t,
                    })
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
            q = q.filter(authenticators::status.eq(s));
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
        let at = self.now();
        if !self.write_tx(|c| Ok(try_claim(c, serial.as_str(), user.pk, at)?))? {
            return Err(StoreError::Conflict(format!(
                "authenticator {serial} was assigned concurrently"
            )));
        }
        self.get_authenticator(serial)
    }

    /// Returns an authenticator to the free pool: its registrations and device instances go,
    /// and its key is retired (replaced by a fresh random key that was never delivered), so
    /// no device and no later registration ever sees the old key again. An active
    /// authenticator (or one with active device instances) is refused unless `force`.
    pub fn unassign_authenticator(
        &self,
        serial: &SerialNumber,
        force: bool,
    ) -> Result<Authenticator, StoreError> {
        let current = self.get_authenticator(serial)?;
        if current.status == AuthenticatorStatus::Available {
            return Err(StoreError::Conflict(format!(
                "authenticator {serial} is not assigned"
            )));
        }
        self.write_tx(|c| {
            use super::schema::device_instances as d;
            let status: AuthenticatorStatus = authenticators::table
                .find(serial.as_str())
                .select(authenticators::status)
                .first(c)?;
            let active_instances: i64 = d::table
                .filter(d::serial_no.eq(serial.as_str()))
                .filter(d::status.eq(super::devices::InstanceStatus::Active))
                .count()
                .get_result(c)?;
            if !force && (status == AuthenticatorStatus::Active || active_instances > 0) {
                return Err(StoreError::Conflict(format!(
                    "authenticator {serial} is active on a device; unassigning it retires its key \
                     and that device stops working: repeat with --force"
                )));
            }
            retire(c, self, serial.as_str())
        })?;
        self.get_authenticator(serial)
    }

    /// Disables or enables an authenticator.
    pub fn set_authenticator_disabled(
        &self,
        serial: &SerialNumber,
        disabled: bool,
    ) -> Result<Authenticator, StoreError> {
        let n = self.write_tx(|c| {
            Ok(diesel::update(authenticators::table.find(serial.as_str()))
                .set(authenticators::disabled.eq(disabled))
                .execute(c)?)
        })?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no authenticator {serial}")));
        }
        self.get_authenticator(serial)
    }

    /// Accepts a verified OTP time step of an authenticator's current key once: true when
    /// `step` is after the last accepted one (and is now the last), false for a replay.
    pub fn accept_otp_step(&self, serial: &SerialNumber, step: i64) -> Result<bool, StoreError> {
        let n = self.write_tx(|c| {
            Ok(diesel::update(
                authenticators::table.find(serial.as_str()).filter(
                    authenticators::last_otp_step
                        .is_null()
                        .or(authenticators::last_otp_step.lt(step)),
                ),
            )
            .set((
                authenticators::last_otp_step.eq(Some(step)),
                authenticators::otp_failures.eq(0),
            ))
            .execute(c)?)
        })?;
        Ok(n == 1)
    }

    /// Counts a wrong OTP presented for an authenticator outside a registration. It locks
    /// nothing (a stranger must not be able to disable someone's authenticator); it is shown
    /// by `authenticator show` and recorded in the audit trail.
    pub fn record_otp_failure(&self, serial: &SerialNumber) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::update(authenticators::table.find(serial.as_str()))
                .set(authenticators::otp_failures.eq(authenticators::otp_failures + 1))
                .execute(c)?;
            Ok(())
        })
    }
}

/// Retires an authenticator's key and returns it to the pool, inside the caller's
/// transaction: a fresh random key replaces the old one, registrations, device instances,
/// license key and OTP state go.
pub(super) fn retire(c: &mut DbConnection, store: &Store, serial: &str) -> Result<(), StoreError> {
    use super::schema::{device_instances as d, registrations as r};
    diesel::delete(r::table.filter(r::serial_no.eq(serial))).execute(c)?;
    diesel::delete(d::table.filter(d::serial_no.eq(serial))).execute(c)?;
    let serial_no = SerialNumber::parse(serial)
        .map_err(|e| StoreError::Corrupt(format!("authenticator: {e}")))?;
    let fresh = crate::crypto::random_bytes(KEY_BYTES);
    diesel::update(authenticators::table.find(serial))
        .set((
            authenticators::sealed_key.eq(store.key().seal(&sealing_context(&serial_no), &fresh)),
            authenticators::user_pk.eq(None::<i64>),
            authenticators::status.eq(AuthenticatorStatus::Available),
            authenticators::assigned_at.eq(None::<i64>),
            authenticators::activated_at.eq(None::<i64>),
            authenticators::sealed_license_key.eq(None::<Vec<u8>>),
            authenticators::mdl_challenge.eq(None::<Vec<u8>>),
            authenticators::last_otp_step.eq(None::<i64>),
            authenticators::otp_failures.eq(0),
        ))
        .execute(c)?;
    Ok(())
}

/// The authenticator a registration of `user_pk` takes, inside the caller's transaction: the
/// one named (the caller checked it is the user's), else the user's own, else a free one
/// claimed for them. Refused when it is disabled, or active and the reactivation policy says
/// no. `Ok((serial, active))`: `active` when registering it is a reactivation. `at`: the
/// time a free authenticator is claimed at.
pub(super) fn prepare(
    c: &mut DbConnection,
    user_pk: i64,
    named: Option<&SerialNumber>,
    rule: &ReactivationRule,
    at: i64,
) -> Result<Result<(String, bool), Blocked>, StoreError> {
    let serial = match named {
        Some(s) => s.as_str().to_owned(),
        None => match authenticator_for_user(c, user_pk, at)? {
            Some(s) => s,
            None => return Ok(Err(Blocked::NoFreeAuthenticator)),
        },
    };
    let (status, disabled, reactivations): (AuthenticatorStatus, bool, i32) = authenticators::table
        .find(&serial)
        .select((
            authenticators::status,
            authenticators::disabled,
            authenticators::reactivations,
        ))
        .first(c)?;
    let serial_no = SerialNumber::parse(&serial)
        .map_err(|e| StoreError::Corrupt(format!("authenticator: {e}")))?;
    if disabled {
        return Ok(Err(Blocked::Disabled(serial_no)));
    }
    let active = status == AuthenticatorStatus::Active;
    if active && !rule.allow {
        return Ok(Err(Blocked::ReactivationRefused {
            serial: serial_no,
            reason: "the reactivation policy refuses re-registering an active authenticator".into(),
        }));
    }
    if active && rule.max > 0 && reactivations >= rule.max {
        return Ok(Err(Blocked::ReactivationRefused {
            serial: serial_no,
            reason: format!(
                "the authenticator was reactivated {reactivations} times, the policy's limit"
            ),
        }));
    }
    Ok(Ok((serial, active)))
}

/// Claims a free authenticator for a user with one conditional UPDATE: of two concurrent
/// claims on the same row, exactly one sees a row changed.
/// The predicate of the partial index `authenticators_free` (migration
/// `2026-11-25-000014_store_at_scale`), written as a literal rather than bound parameters: on
/// PostgreSQL a partial index serves a prepared statement's generic plan only when the query
/// states its predicate literally, so picking a free authenticator stays an index lookup
/// whatever the plan cache and the statistics say.
const FREE_PREDICATE: &str = "status = 'available' AND user_pk IS NULL";

#[test]
fn the_free_predicate_names_the_available_status() {
    assert!(FREE_PREDICATE.contains(&format!("'{}'", AuthenticatorStatus::Available.as_str())));
}

/// `at`: the claim's time, its `assigned_at`.
pub(super) fn try_claim(
    conn: &mut DbConnection,
    serial: &str,
    user_pk: i64,
    at: i64,
) -> QueryResult<bool> {
    diesel::update(
        authenticators::table
            .find(serial)
            .filter(authenticators::status.eq(AuthenticatorStatus::Available))
            .filter(authenticators::user_pk.is_null()),
    )
    .set((
        authenticators::user_pk.eq(user_pk),
        authenticators::status.eq(AuthenticatorStatus::Assigned),
        authenticators::assigned_at.eq(at),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// The user's current authenticator, or a free one claimed for them. `None` when the pool is
/// empty. Runs inside the caller's transaction; a claim is dated `at`.
pub(super) fn authenticator_for_user(
    conn: &mut DbConnection,
    user_pk: i64,
    at: i64,
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
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(FREE_PREDICATE))
            .filter(authenticators::disabled.eq(false))
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
            if try_claim(conn, &serial, user_pk, at)? {
                return Ok(Some(serial));
            }
        }
    }
}

/// An authenticator handed out by [`Store::register_authenticator`], with the NEW key this
/// registration prepared (never the key of a device already holding it).
pub struct Assignment {
    pub serial_no: SerialNumber,
    pub key: Zeroizing<Vec<u8>>,
    pub reactivation_counter: i32,
}

/// What `PROVISIONCMD_REGISTER` registers: online, a registration that
/// `PROVISIONCMD_ACTIVATE` completes; offline, the new key takes effect at once.
pub struct StandardRegistration<'a> {
    pub user_pk: i64,
    pub serial: Option<&'a SerialNumber>,
    pub new_password_hash: Option<&'a str>,
    /// Online: the registration to create (its key replaces the authenticator's when
    /// ACTIVATE checks the first OTP). `None`: offline, activate now.
    pub online: Option<&'a super::NewRegistration>,
    pub rule: ReactivationRule,
    /// Sent when this registration re-keys an active authenticator at once (offline).
    pub notice: Option<&'a super::OutgoingMail>,
    pub at: i64,
}

impl Store {
    /// One transaction for `PROVISIONCMD_REGISTER`: takes the named authenticator or the
    /// user's own or a free one (refused when disabled, or active against the reactivation
    /// policy), sets the new password hash when given, counts a registration in the event
    /// reactivation counter, prepares a new key, and hands it to `produce`, whose mail, if
    /// any, commits with the rest. Online, the key waits in a registration for ACTIVATE;
    /// offline it replaces the authenticator's key at once. A refusal writes nothing.
    pub fn register_authenticator<T>(
        &self,
        reg: &StandardRegistration<'_>,
        produce: impl FnOnce(&Assignment) -> (T, Option<super::OutgoingMail>),
    ) -> Result<Result<T, Blocked>, StoreError> {
        let at = reg.at;
        let now = self.now();
        self.write_tx(|c| {
            let (serial, active) = match prepare(c, reg.user_pk, reg.serial, &reg.rule, now)? {
                Ok(s) => s,
                Err(blocked) => return Ok(Err(blocked)),
            };
            if let Some(hash) = reg.new_password_hash {
                diesel::update(users::table.find(reg.user_pk))
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
            let serial_no = SerialNumber::parse(&serial)
                .map_err(|e| StoreError::Corrupt(format!("authenticator: {e}")))?;
            let key = match reg.online {
                Some(new) => {
                    let key = super::registrations::insert_registration(
                        c,
                        self,
                        reg.user_pk,
                        &serial,
                        new,
                    )?;
                    use super::schema::registrations as r;
                    diesel::update(r::table.find(new.registration_id.as_str()))
                        .set(r::status.eq(super::RegistrationStatus::Delivered))
                        .execute(c)?;
                    key
                }
                None => {
                    let key = crate::crypto::random_bytes(KEY_BYTES);
                    install_key(c, self, &serial_no, &key, active, None, at)?;
                    if active {
                        if let Some(mail) = reg.notice {
                            super::outbox::enqueue_mail(c, self.key(), mail, at)?;
                        }
                    }
                    key
                }
            };
            let counter: i32 = authenticators::table
                .find(&serial)
                .select(authenticators::reactivation_counter)
                .first(c)?;
            let (out, mail) = produce(&Assignment {
                serial_no,
                key,
                reactivation_counter: counter,
            });
            if let Some(mail) = mail {
                super::outbox::enqueue_mail(c, self.key(), &mail, at)?;
            }
            Ok(Ok(out))
        })
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

/// Makes `key` the authenticator's key (the old one is retired), marks it active, and counts
/// a reactivation when it was active already. `step`: the OTP time step that proved the new
/// key, now its last accepted one. Inside the caller's transaction.
pub(super) fn install_key(
    c: &mut DbConnection,
    store: &Store,
    serial: &SerialNumber,
    key: &[u8],
    was_active: bool,
    step: Option<i64>,
    at: i64,
) -> Result<(), StoreError> {
    diesel::update(authenticators::table.find(serial.as_str()))
        .set((
            authenticators::sealed_key.eq(store.key().seal(&sealing_context(serial), key)),
            authenticators::status.eq(AuthenticatorStatus::Active),
            authenticators::activated_at.eq(Some(at)),
            authenticators::last_otp_step.eq(step),
            authenticators::otp_failures.eq(0),
            authenticators::reactivations.eq(authenticators::reactivations + i32::from(was_active)),
        ))
        .execute(c)?;
    Ok(())
}
