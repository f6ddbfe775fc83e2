use diesel::prelude::*;
use serde::Serialize;

use super::authenticators::{install_key, prepare};
use super::schema::registrations;
use super::text_enum::{text_enum_sql, TextEnum};
use super::{DbConnection, Store, StoreError};
use crate::types::{RegistrationId, SerialNumber};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationKind {
    DsappSrp,
    /// DSAPP (revision 3, CPace), protocol version 1 or 2.
    DsappV1,
    DsappV2,
    /// Multi-device licensing: Activation Message 1 issued, a device to add.
    Mdl,
    /// `PROVISIONCMD_REGISTER`'s online activation data, waiting for `PROVISIONCMD_ACTIVATE`.
    Standard,
}

impl RegistrationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DsappSrp => "dsapp-srp",
            Self::DsappV1 => "dsapp-v1",
            Self::DsappV2 => "dsapp-v2",
            Self::Mdl => "mdl",
            Self::Standard => "standard",
        }
    }
}

impl TextEnum for RegistrationKind {
    const COLUMN: &'static str = "registrations.kind";
    const VARIANTS: &'static [Self] = &[
        Self::DsappSrp,
        Self::DsappV1,
        Self::DsappV2,
        Self::Mdl,
        Self::Standard,
    ];
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(RegistrationKind);

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationStatus {
    /// Created by the register command, waiting for the client's first step.
    Pending,
    /// The client proved the key; the activation data was delivered; waiting for the OTP.
    Delivered,
    /// Spent by a successful activation.
    Activated,
    /// Revoked after too many failures, or by an administrator.
    Revoked,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Activated => "activated",
            Self::Revoked => "revoked",
        }
    }
}

impl TextEnum for RegistrationStatus {
    const COLUMN: &'static str = "registrations.status";
    const VARIANTS: &'static [Self] = &[
        Self::Pending,
        Self::Delivered,
        Self::Activated,
        Self::Revoked,
    ];
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(RegistrationStatus);

/// A registration as stored: the SRP salt and the sealed verifier, never the activation
/// password; the new key it prepared, sealed.
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    pub registration_id: RegistrationId,
    #[serde(skip)]
    pub user_pk: i64,
    pub serial_no: SerialNumber,
    pub kind: RegistrationKind,
    pub status: RegistrationStatus,
    #[serde(skip)]
    pub srp_salt: Vec<u8>,
    /// The SRP verifier sealed under the master key (empty for other kinds); see
    /// [`Store::open_verifier`].
    #[serde(skip)]
    pub srp_verifier: Vec<u8>,
    #[serde(skip)]
    pub sealed_ephemeral: Option<Vec<u8>>,
    pub ephemeral_expires_at: Option<i64>,
    pub failures: i32,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(skip)]
    pub sealed_secret: Option<Vec<u8>>,
    #[serde(skip)]
    pub sealed_new_key: Option<Vec<u8>>,
}

/// A registration to create for a user; the authenticator is chosen in the same transaction.
pub struct NewRegistration {
    pub registration_id: RegistrationId,
    pub kind: RegistrationKind,
    /// The user's own authenticator to register, when the caller named one.
    pub serial_no: Option<SerialNumber>,
    pub srp_salt: Vec<u8>,
    pub srp_verifier: Vec<u8>,
    /// A protocol secret to keep sealed (DSAPP's activation password, MDL's challenge).
    pub secret: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// Creation time (the protocol's clock) and lifetime, in seconds.
    pub created_at: i64,
    pub lifetime_secs: i64,
    /// A mail that commits with the registration.
    pub mail: Option<super::OutgoingMail>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = registrations)]
struct Row {
    registration_id: String,
    user_pk: i64,
    serial_no: String,
    kind: RegistrationKind,
    status: RegistrationStatus,
    srp_salt: Vec<u8>,
    srp_verifier: Vec<u8>,
    sealed_ephemeral: Option<Vec<u8>>,
    ephemeral_expires_at: Option<i64>,
    failures: i32,
    created_at: i64,
    expires_at: i64,
    sealed_secret: Option<Vec<u8>>,
    sealed_new_key: Option<Vec<u8>>,
}

fn to_registration(r: Row) -> Result<Registration, StoreError> {
    let corrupt = |e: crate::types::ParseError| StoreError::Corrupt(format!("registration: {e}"));
    Ok(Registration {
        registration_id: RegistrationId::parse(&r.registration_id).map_err(corrupt)?,
        user_pk: r.user_pk,
        serial_no: SerialNumber::parse(&r.serial_no).map_err(corrupt)?,
        kind: r.kind,
        status: r.status,
        srp_salt: r.srp_salt,
        srp_verifier: r.srp_verifier,
        sealed_ephemeral: r.sealed_ephemeral,
        ephemeral_expires_at: r.ephemeral_expires_at,
        failures: r.failures,
        created_at: r.created_at,
        expires_at: r.expires_at,
        sealed_secret: r.sealed_secret,
        sealed_new_key: r.sealed_new_key,
    })
}

pub(super) fn secret_context(id: &str) -> String {
    format!("registration-secret:{id}")
}

pub(super) fn verifier_context(id: &str) -> String {
    format!("srp-verifier:{id}")
}

pub(super) fn new_key_context(id: &str) -> String {
    format!("registration-key:{id}")
}

/// A new row of `registrations`.
#[derive(Insertable)]
#[diesel(table_name = registrations, treat_none_as_default_value = false)]
struct RegistrationInsert<'a> {
    registration_id: &'a str,
    user_pk: i64,
    serial_no: &'a str,
    kind: RegistrationKind,
    status: RegistrationStatus,
    srp_salt: &'a [u8],
    srp_verifier: &'a [u8],
    failures: i32,
    created_at: i64,
    expires_at: i64,
    sealed_secret: Option<Vec<u8>>,
    sealed_new_key: Option<Vec<u8>>,
}

/// Inserts a pending registration for `serial`, its secret and SRP verifier sealed, with a
/// fresh key (sealed) that replaces the authenticator's when the registration's activation
/// completes. Returns that key. Inside a transaction.
pub(super) fn insert_registration(
    c: &mut DbConnection,
    store: &Store,
    user_pk: i64,
    serial: &str,
    new: &NewRegistration,
) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
    let t = new.created_at;
    let id = new.registration_id.as_str();
    let key = crate::crypto::random_bytes(super::authenticators::KEY_BYTES);
    let verifier = if new.srp_verifier.is_empty() {
        Vec::new()
    } else {
        store.key().seal(&verifier_context(id), &new.srp_verifier)
    };
    diesel::insert_into(registrations::table)
        .values(RegistrationInsert {
            registration_id: id,
            user_pk,
            serial_no: serial,
            kind: new.kind,
            status: RegistrationStatus::Pending,
            srp_salt: &new.srp_salt,
            srp_verifier: &verifier,
            failures: 0,
            created_at: t,
            expires_at: t + new.lifetime_secs,
            sealed_secret: new
                .secret
                .as_ref()
                .map(|secret| store.key().seal(&secret_context(id), secret)),
            sealed_new_key: Some(store.key().seal(&new_key_context(id), &key)),
        })
        .execute(c)?;
    Ok(key)
}

/// What `begin_registration` did.
pub enum Begun {
    Created(SerialNumber),
    /// No authenticator could be taken; nothing was written.
    Blocked(super::Blocked),
}

impl Store {
    /// In one transaction: finds the user's authenticator or claims a free one, and inserts
    /// the registration for it. A registration id already in use is `StoreError::Conflict`;
    /// the caller draws a new one.
    pub fn begin_registration(
        &self,
        user_pk: i64,
        new: &NewRegistration,
        rule: &super::ReactivationRule,
    ) -> Result<Begun, StoreError> {
        let t = new.created_at;
        self.write_tx(|c| {
            let serial = match prepare(c, user_pk, new.serial_no.as_ref(), rule, self.now())? {
                Ok((serial, _)) => serial,
                Err(blocked) => return Ok(Begun::Blocked(blocked)),
            };
            insert_registration(c, self, user_pk, &serial, new)?;
            // Every online registration of an authenticator is a reactivation.
            {
                use super::schema::authenticators as a;
                diesel::update(a::table.find(&serial))
                    .set(a::reactivation_counter.eq(a::reactivation_counter + 1))
                    .execute(c)?;
            }
            if let Some(mail) = &new.mail {
                super::outbox::enqueue_mail(c, self.key(), mail, t)?;
            }
            let serial = SerialNumber::parse(&serial)
                .map_err(|e| StoreError::Corrupt(format!("authenticator: {e}")))?;
            Ok(Begun::Created(serial))
        })
    }

    pub fn get_registration(&self, id: &RegistrationId) -> Result<Registration, StoreError> {
        let mut conn = self.conn()?;
        registrations::table
            .find(id.as_str())
            .select(Row::as_select())
            .first(&mut conn)
            .optional()?
            .map(to_registration)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("no registration {id}")))
    }
}

/// What a failed proof did to a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    pub failures: i32,
    pub revoked: bool,
}

pub(super) fn ephemeral_context(id: &(impl std::fmt::Display + ?Sized)) -> String {
    format!("srp-session:{id}")
}

impl Store {
    /// Stores (replacing any earlier one) the sealed session state of a key exchange on a
    /// pending, unexpired registration. Returns false when the registration is not pending.
    pub fn set_session(
        &self,
        id: &RegistrationId,
        secret: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let sealed = self.key().seal(&ephemeral_context(id), secret);
        let n = self.write_tx(|c| {
            Ok(diesel::update(
                registrations::table
                    .find(id.as_str())
                    .filter(registrations::status.eq(RegistrationStatus::Pending))
                    .filter(registrations::expires_at.gt(now)),
            )
            .set((
                registrations::sealed_ephemeral.eq(Some(sealed)),
                registrations::ephemeral_expires_at.eq(Some(expires_at)),
            ))
            .execute(c)?)
        })?;
        Ok(n == 1)
    }

    /// The SRP verifier of a registration, unsealed.
    pub fn open_verifier(&self, reg: &Registration) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .key()
            .open(
                &verifier_context(reg.registration_id.as_str()),
                &reg.srp_verifier,
            )?
            .to_vec())
    }

    /// The new key a live registration prepared, unsealed.
    pub fn registration_key(
        &self,
        reg: &Registration,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        let sealed = reg.sealed_new_key.as_ref().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "registration {} has no key (spent or revoked)",
                reg.registration_id
            ))
        })?;
        Ok(self
            .key()
            .open(&new_key_context(reg.registration_id.as_str()), sealed)?)
    }

    /// The unsealed protocol secret of a registration, if it has one.
    pub fn open_secret(
        &self,
        reg: &Registration,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StoreError> {
        reg.sealed_secret
            .as_ref()
            .map(|sealed| {
                self.key()
                    .open(&secret_context(reg.registration_id.as_str()), sealed)
                    .map_err(StoreError::from)
            })
            .transpose()
    }

    /// Moves a pending registration to `delivered` and keeps the session the activation step
    /// will check, sealed, until `expires_at`. False when another request got there first.
    pub fn deliver_with_session(
        &self,
        id: &RegistrationId,
        session: &[u8],
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let sealed = self.key().seal(&ephemeral_context(id), session);
        let n = self.write_tx(|c| {
            Ok(diesel::update(
                registrations::table
                    .find(id.as_str())
                    .filter(registrations::status.eq(RegistrationStatus::Pending)),
            )
            .set((
                registrations::status.eq(RegistrationStatus::Delivered),
                registrations::sealed_ephemeral.eq(Some(sealed)),
                registrations::ephemeral_expires_at.eq(Some(expires_at)),
            ))
            .execute(c)?)
        })?;
        Ok(n == 1)
    }

    /// The unsealed session state of a registration's key exchange.
    pub fn open_session(
        &self,
        reg: &Registration,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StoreError> {
        match &reg.sealed_ephemeral {
            None => Ok(None),
            Some(sealed) => Ok(Some(
                self.key()
                    .open(&ephemeral_context(&reg.registration_id), sealed)?,
            )),
        }
    }

    /// Counts a failed proof (wrong evidence or OTP); at `max_failures` the registration is
    /// revoked. The key exchange stays: a stranger's wrong guess must not cancel the
    /// exchange of the rightful client, and every guess costs an attacker a failure anyway.
    /// One transaction.
    pub fn record_registration_failure(
        &self,
        id: &RegistrationId,
        max_failures: i32,
    ) -> Result<FailureCount, StoreError> {
        self.write_tx(|c| {
            diesel::update(registrations::table.find(id.as_str()))
                .set(registrations::failures.eq(registrations::failures + 1))
                .execute(c)?;
            let failures: i32 = registrations::table
                .find(id.as_str())
                .select(registrations::failures)
                .first(c)?;
            let revoked = failures >= max_failures;
            if revoked {
                diesel::update(registrations::table.find(id.as_str()))
                    .set((
                        registrations::status.eq(RegistrationStatus::Revoked),
                        registrations::sealed_ephemeral.eq(None::<Vec<u8>>),
                        registrations::ephemeral_expires_at.eq(None::<i64>),
                        registrations::sealed_new_key.eq(None::<Vec<u8>>),
                    ))
                    .execute(c)?;
            }
            Ok(FailureCount { failures, revoked })
        })
    }

    /// Moves a pending registration whose client proved the key to `delivered`, dropping the
    /// key exchange. False when another request got there first.
    pub fn mark_delivered(&self, id: &RegistrationId) -> Result<bool, StoreError> {
        let n = self.write_tx(|c| {
            Ok(diesel::update(
                registrations::table
                    .find(id.as_str())
                    .filter(registrations::status.eq(RegistrationStatus::Pending)),
            )
            .set((
                registrations::status.eq(RegistrationStatus::Delivered),
                registrations::sealed_ephemeral.eq(None::<Vec<u8>>),
                registrations::ephemeral_expires_at.eq(None::<i64>),
            ))
            .execute(c)?)
        })?;
        Ok(n == 1)
    }

    /// Spends a delivered registration and activates its authenticator with the key the
    /// registration prepared, in one transaction: the authenticator's old key is retired
    /// (a device holding it stops verifying), `step` becomes the last accepted OTP time step,
    /// and when the authenticator was active already this is a reactivation: counted, and
    /// `notice` (if any) is queued. Of two concurrent activations exactly one sees
    /// `Some`; its value says whether it was a reactivation.
    pub fn activate_registration(
        &self,
        id: &RegistrationId,
        serial: &SerialNumber,
        step: Option<i64>,
        notice: Option<&super::OutgoingMail>,
        at: i64,
    ) -> Result<Option<bool>, StoreError> {
        use super::schema::authenticators as a;
        self.write_tx(|c| {
            let n = diesel::update(
                registrations::table
                    .find(id.as_str())
                    .filter(registrations::status.eq(RegistrationStatus::Delivered)),
            )
            .set(registrations::status.eq(RegistrationStatus::Activated))
            .execute(c)?;
            if n != 1 {
                return Ok(None);
            }
            let sealed: Option<Vec<u8>> = registrations::table
                .find(id.as_str())
                .select(registrations::sealed_new_key)
                .first(c)?;
            let sealed = sealed
                .ok_or_else(|| StoreError::Corrupt(format!("registration {id} has no key")))?;
            let key = self.key().open(&new_key_context(id.as_str()), &sealed)?;
            diesel::update(registrations::table.find(id.as_str()))
                .set(registrations::sealed_new_key.eq(None::<Vec<u8>>))
                .execute(c)?;
            let status: super::AuthenticatorStatus =
                a::table.find(serial.as_str()).select(a::status).first(c)?;
            let was_active = status == super::AuthenticatorStatus::Active;
            install_key(c, self, serial, &key, was_active, step, at)?;
            if was_active {
                if let Some(mail) = notice {
                    super::outbox::enqueue_mail(c, self.key(), mail, at)?;
                }
            }
            Ok(Some(was_active))
        })
    }

    /// Revokes a registration that is not spent (an administrator's `registration revoke`):
    /// its key exchange, prepared key and secrets go, and a device instance it added but
    /// did not confirm gives its sequence number back. False when it is already spent or
    /// revoked.
    pub fn revoke_registration(&self, id: &RegistrationId) -> Result<bool, StoreError> {
        use super::schema::device_instances as d;
        self.write_tx(|c| {
            let n = diesel::update(
                registrations::table.find(id.as_str()).filter(
                    registrations::status
                        .eq_any([RegistrationStatus::Pending, RegistrationStatus::Delivered]),
                ),
            )
            .set((
                registrations::status.eq(RegistrationStatus::Revoked),
                registrations::sealed_ephemeral.eq(None::<Vec<u8>>),
                registrations::ephemeral_expires_at.eq(None::<i64>),
                registrations::sealed_new_key.eq(None::<Vec<u8>>),
                registrations::sealed_secret.eq(None::<Vec<u8>>),
            ))
            .execute(c)?;
            if n == 1 {
                diesel::update(
                    d::table
                        .filter(d::registration_id.eq(id.as_str()))
                        .filter(d::status.eq(super::devices::InstanceStatus::Pending)),
                )
                .set(d::status.eq(super::devices::InstanceStatus::Revoked))
                .execute(c)?;
            }
            Ok(n == 1)
        })
    }

    /// The user's `PROVISIONCMD_REGISTER` registrations waiting for `PROVISIONCMD_ACTIVATE`
    /// at `now`, newest first; only those of `serial` when given.
    pub fn pending_activations(
        &self,
        user_pk: i64,
        serial: Option<&SerialNumber>,
        now: i64,
    ) -> Result<Vec<Registration>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = registrations::table
            .filter(registrations::user_pk.eq(user_pk))
            .filter(registrations::kind.eq(RegistrationKind::Standard))
            .filter(registrations::status.eq(RegistrationStatus::Delivered))
            .filter(registrations::expires_at.gt(now))
            .select(Row::as_select())
            .order((
                registrations::created_at.desc(),
                registrations::registration_id,
            ))
            .into_boxed();
        if let Some(s) = serial {
            q = q.filter(registrations::serial_no.eq(s.as_str()));
        }
        q.load(&mut conn)?
            .into_iter()
            .map(to_registration)
            .collect()
    }

    /// Removes expired, unspent registrations and expired key exchanges (expired means
    /// `expires_at <= at`, as the protocol checks it), and activated registrations
    /// `retention_secs` after their expiry. Every filter leads with an expiry column, so the
    /// sweep reads only expired rows (indexes `registrations_expiry`,
    /// `registrations_ephemeral_expiry`). Returns how many registrations were removed.
    pub fn sweep_expired(&self, at: i64, retention_secs: i64) -> Result<usize, StoreError> {
        self.write_tx(|c| {
            diesel::update(registrations::table.filter(registrations::ephemeral_expires_at.le(at)))
                .set((
                    registrations::sealed_ephemeral.eq(None::<Vec<u8>>),
                    registrations::ephemeral_expires_at.eq(None::<i64>),
                ))
                .execute(c)?;
            // A device instance an expired MDL registration added but never confirmed gives
            // its sequence number back.
            let expired: Vec<String> = registrations::table
                .filter(registrations::expires_at.le(at))
                .filter(registrations::status.ne(RegistrationStatus::Activated))
                .select(registrations::registration_id)
                .load(c)?;
            if !expired.is_empty() {
                use super::schema::device_instances as d;
                diesel::delete(
                    d::table
                        .filter(d::registration_id.eq_any(&expired))
                        .filter(d::status.eq(super::devices::InstanceStatus::Pending)),
                )
                .execute(c)?;
            }
            let n = diesel::delete(
                registrations::table
                    .filter(registrations::expires_at.le(at))
                    .filter(registrations::status.ne(RegistrationStatus::Activated)),
            )
            .execute(c)?;
            let spent = diesel::delete(
                registrations::table
                    .filter(registrations::expires_at.le(at.saturating_sub(retention_secs)))
                    .filter(registrations::status.eq(RegistrationStatus::Activated)),
            )
            .execute(c)?;
            Ok(n + spent)
        })
    }
}

impl Store {
    /// Registrations with their user, newest first; `status` filters when given.
    pub fn list_registrations(
        &self,
        status: Option<RegistrationStatus>,
    ) -> Result<Vec<(Registration, String, String)>, StoreError> {
        use super::schema::users;
        let mut conn = self.conn()?;
        let mut q = registrations::table
            .inner_join(users::table)
            .select((Row::as_select(), users::user_id, users::domain))
            .order((
                registrations::created_at.desc(),
                registrations::registration_id,
            ))
            .into_boxed();
        if let Some(s) = status {
            q = q.filter(registrations::status.eq(s));
        }
        q.load::<(Row, String, String)>(&mut conn)?
            .into_iter()
            .map(|(r, u, d)| Ok((to_registration(r)?, u, d)))
            .collect()
    }
}
