//! What the commands share about users, authenticators and registrations: the policy, the
//! static-password check and lockout, assignment and reactivation, registrations and their
//! expiry, the protocol clock, and [`ProvisionError`], the one error type of the commands.
//! Works on typed values and the store's records; never sees XML, never writes SQL. Calls
//! block (Argon2, database): async callers run them on a blocking thread.

use std::sync::OnceLock;

use thiserror::Error;
use zeroize::Zeroizing;

use crate::crypto::{hash_password, verify_password};
use crate::protocol::dsapp::Version;
use crate::protocol::srp;
use crate::protocol::standard::ProtectionError;
use crate::store::{
    Begun, Blocked, OutgoingMail, ReactivationRule, Registration, RegistrationKind,
    RegistrationStatus, Store, StoreError, User,
};
use crate::types::{Domain, EmailAddress, RegistrationId, SerialNumber, UserId};

/// A user and the static password that proves them.
#[derive(Debug)]
pub struct Credentials {
    pub user_id: UserId,
    pub domain: Option<Domain>,
    pub static_password: Zeroizing<String>,
}

/// `PROVFLD_DELIVERY_METHOD` = `E-Mail`: deliver the activation data by e-mail, to
/// `PROVFLD_DESTINATION` or else to the user's own address.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub destination: Option<EmailAddress>,
}

/// Limits the protocol enforces; the defaults are those of protocols.md.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Wrong static passwords in a row before the user is locked.
    pub lock_after_failures: i32,
    /// How long a registration stays usable, in seconds.
    pub registration_lifetime_secs: i64,
    /// How long the server's state of one key exchange lives, in seconds.
    pub ephemeral_lifetime_secs: i64,
    /// Failed proofs (client evidence or OTP) that revoke a registration.
    pub max_activation_failures: i32,
    /// Whether an SMTP server is configured, so `PROVFLD_DELIVERY_METHOD` = `E-Mail` works.
    pub email_delivery: bool,
    /// How long a spent (activated) registration is kept after its expiry, for the admin's
    /// view and the audit trail, before the sweeper removes it; in seconds.
    pub registration_retention_secs: i64,
    /// Whether (and how often) an active authenticator may be registered again.
    pub reactivation: ReactivationRule,
    /// How long the first password lock lasts, in seconds; each further lock in a row lasts
    /// twice as long as the one before, up to [`MAX_LOCK_GROWTH`] times. 0: a lock lasts
    /// until an administrator unlocks.
    pub lock_duration_secs: i64,
    /// OneSpan's "Use Generic Authentication Status Codes": unknown user, locked user,
    /// disabled user and wrong password all answer STAT_INVCREDENTIALS with one text.
    pub generic_status_codes: bool,
}

/// The longest lock is this many times `lock_duration_secs`.
pub const MAX_LOCK_GROWTH: i64 = 64;

impl Policy {
    /// How long the `n`-th lock in a row lasts (n from 1); `None`: until an administrator
    /// unlocks.
    pub fn lock_duration(&self, n: i32) -> Option<i64> {
        if self.lock_duration_secs <= 0 {
            return None;
        }
        let growth = 1i64 << (n.clamp(1, 7) - 1);
        Some(
            self.lock_duration_secs
                .saturating_mul(growth.min(MAX_LOCK_GROWTH)),
        )
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lock_after_failures: 5,
            registration_lifetime_secs: 72 * 3600,
            ephemeral_lifetime_secs: 5 * 60,
            max_activation_failures: 3,
            email_delivery: false,
            registration_retention_secs: 30 * 86_400,
            reactivation: ReactivationRule::default(),
            lock_duration_secs: 15 * 60,
            generic_status_codes: false,
        }
    }
}

/// Why a call failed. Mapped once, in the wire layer, to OneSpan's return and status codes.
#[derive(Debug, Error)]
pub enum ProvisionError {
    #[error("unknown user {user_id} in domain {domain}")]
    UnknownUser { user_id: UserId, domain: Domain },
    #[error("wrong static password")]
    WrongPassword,
    #[error("the user is locked")]
    UserLocked,
    #[error("no software authenticator is free to assign")]
    NoFreeAuthenticator,
    #[error("{0} is not supported by this server yet")]
    NotImplemented(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("unknown registration {0}")]
    UnknownRegistration(RegistrationId),
    #[error("registration {0} has expired")]
    RegistrationExpired(RegistrationId),
    #[error("the key exchange of registration {0} has expired or was never started; generate a new ephemeral key")]
    NoKeyExchange(RegistrationId),
    #[error("registration {id} is {state} and cannot be used for this step")]
    RegistrationSpent {
        id: RegistrationId,
        state: &'static str,
    },
    #[error("{what} does not verify ({failures} of {max} failures)")]
    ProofFailed {
        what: &'static str,
        failures: i32,
        max: i32,
    },
    #[error("{what} does not verify; registration {id} is revoked after {max} failures")]
    RevokedNow {
        what: &'static str,
        id: RegistrationId,
        max: i32,
    },
    #[error("the one-time password does not verify")]
    OtpRejected,
    #[error("registration {id} is revoked: it allows {max} key exchanges without a successful activation")]
    TooManyExchanges { id: RegistrationId, max: i32 },
    #[error("authenticator {0} is already active")]
    AlreadyActive(SerialNumber),
    #[error(
        "PROVFLD_DELIVERY_METHOD: e-mail delivery is not configured on this server (smtp_url)"
    )]
    DeliveryUnavailable,
    #[error("the license of {} allows {limit} device instances and has them all", serial.as_ref().map_or("the user's authenticator".to_owned(), |s| s.to_string()))]
    LicenseExhausted {
        serial: Option<SerialNumber>,
        limit: i32,
    },
    #[error("the user is disabled")]
    UserDisabled,
    #[error("authenticator {0} is disabled")]
    AuthenticatorDisabled(SerialNumber),
    #[error("authenticator {serial} is active and cannot be registered again: {reason}")]
    ReactivationRefused {
        serial: SerialNumber,
        reason: String,
    },
    /// What every failed credential check answers under `generic_status_codes`.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// An answer that hides its reason: the client sees `shown`, the audit trail and the
    /// log see `reason`.
    #[error("{shown}")]
    Concealed {
        shown: Box<ProvisionError>,
        reason: String,
    },
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
}

impl ProvisionError {
    /// What the audit trail records: the real reason of a concealed answer.
    pub fn audit_detail(&self) -> Option<&str> {
        match self {
            ProvisionError::Concealed { reason, .. } => Some(reason),
            _ => None,
        }
    }

    pub(crate) fn concealed(shown: ProvisionError, reason: impl Into<String>) -> Self {
        ProvisionError::Concealed {
            shown: Box::new(shown),
            reason: reason.into(),
        }
    }
}

impl From<ProtectionError> for ProvisionError {
    fn from(e: ProtectionError) -> Self {
        let field = match e {
            ProtectionError::TooLong(_) => "PROVFLD_ALEA",
            ProtectionError::Stretch(_) => "PROVFLD_CUSTOM_ENCRYPT_PWD",
        };
        ProvisionError::Invalid {
            field,
            reason: e.to_string(),
        }
    }
}

impl From<Blocked> for ProvisionError {
    fn from(b: Blocked) -> Self {
        match b {
            Blocked::NoFreeAuthenticator => ProvisionError::NoFreeAuthenticator,
            Blocked::Disabled(serial) => ProvisionError::AuthenticatorDisabled(serial),
            Blocked::ReactivationRefused { serial, reason } => {
                ProvisionError::ReactivationRefused { serial, reason }
            }
        }
    }
}

/// The registration kind of a DSAPP version.
pub(crate) fn kind_of(version: Version) -> RegistrationKind {
    match version {
        Version::V1 => RegistrationKind::DsappV1,
        Version::V2 => RegistrationKind::DsappV2,
    }
}

fn version_of(kind: RegistrationKind) -> Option<Version> {
    match kind {
        RegistrationKind::DsappV1 => Some(Version::V1),
        RegistrationKind::DsappV2 => Some(Version::V2),
        _ => None,
    }
}

/// A source of Unix seconds; tests substitute their own (the store's one clock type).
pub use crate::store::Clock;

pub struct Provisioning {
    store: Store,
    policy: Policy,
    /// Called after a call committed a mail to the outbox, to wake the delivery worker.
    mail_queued: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

/// A hash to verify against when the user does not exist, so that an unknown user costs the
/// same time as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("provd-timing-equaliser").expect("argon2 with defaults"))
}

impl Provisioning {
    pub fn new(store: Store, policy: Policy) -> Self {
        Provisioning {
            store,
            policy,
            mail_queued: None,
        }
    }

    /// The same, with `clock` as the time of the protocol and of the store's own stamps.
    pub fn with_clock(store: Store, policy: Policy, clock: Clock) -> Self {
        Self::new(store.with_clock(clock), policy)
    }

    /// Sets what wakes the delivery worker once a mail is committed.
    pub fn with_mail_notifier(mut self, notify: std::sync::Arc<dyn Fn() + Send + Sync>) -> Self {
        self.mail_queued = Some(notify);
        self
    }

    pub(crate) fn mail_queued(&self) {
        if let Some(n) = &self.mail_queued {
            n();
        }
    }

    /// Where `PROVFLD_DELIVERY_METHOD` sends: the destination given, else the user's own
    /// address. `None` when no delivery was asked for.
    pub(crate) fn mail_recipient(
        &self,
        user: &User,
        delivery: Option<&Delivery>,
    ) -> Result<Option<EmailAddress>, ProvisionError> {
        let Some(delivery) = delivery else {
            return Ok(None);
        };
        if !self.policy.email_delivery {
            return Err(ProvisionError::DeliveryUnavailable);
        }
        if let Some(to) = &delivery.destination {
            return Ok(Some(to.clone()));
        }
        let on_file = user.email.as_deref().map(EmailAddress::parse);
        match on_file {
            Some(Ok(to)) => Ok(Some(to)),
            _ => Err(ProvisionError::Invalid {
                field: "PROVFLD_DESTINATION",
                reason: format!(
                    "{} has no usable e-mail address on file; give PROVFLD_DESTINATION",
                    user.user_id
                ),
            }),
        }
    }

    /// What every register command does first: authenticates the user (default domain
    /// `master`), checks a named serial number is theirs, and resolves where a requested
    /// delivery goes.
    pub(crate) fn begin_register(
        &self,
        creds: &Credentials,
        serial: Option<&SerialNumber>,
        delivery: Option<&Delivery>,
    ) -> Result<(User, Option<EmailAddress>), ProvisionError> {
        let domain = creds.domain.clone().unwrap_or_else(Domain::master);
        let user = self.authenticate(&creds.user_id, &domain, &creds.static_password)?;
        if let Some(serial) = serial {
            self.check_owned(serial, &user, "PROVFLD_SERIAL_NO")?;
        }
        let recipient = self.mail_recipient(&user, delivery)?;
        Ok((user, recipient))
    }

    /// Runs `attempt` with a fresh registration id until it does not collide with one in use
    /// (the store's `Conflict`), eight draws at most.
    pub(crate) fn with_new_registration_id<T>(
        &self,
        mut attempt: impl FnMut(RegistrationId) -> Result<T, StoreError>,
    ) -> Result<T, ProvisionError> {
        for _ in 0..8 {
            match attempt(srp::new_registration_id()) {
                Err(StoreError::Conflict(_)) => continue,
                other => return other.map_err(Into::into),
            }
        }
        Err(ProvisionError::Store(StoreError::Conflict(
            "could not draw a free registration id".into(),
        )))
    }

    /// Checks that a serial number the caller named is assigned to the user.
    pub(crate) fn check_owned(
        &self,
        serial: &SerialNumber,
        user: &User,
        field: &'static str,
    ) -> Result<(), ProvisionError> {
        let a = self.store.get_authenticator(serial).map_err(|e| match e {
            StoreError::NotFound(_) => ProvisionError::Invalid {
                field,
                reason: format!("no authenticator {serial}"),
            },
            other => other.into(),
        })?;
        if a.user_id.as_ref() != Some(&user.user_id) || a.domain.as_ref() != Some(&user.domain) {
            return Err(ProvisionError::Invalid {
                field,
                reason: format!("authenticator {serial} is not assigned to this user"),
            });
        }
        Ok(())
    }

    /// The protocol's time: the store's clock, so that both stamp the same time.
    pub(crate) fn now(&self) -> i64 {
        self.store.now()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The policy the commands follow.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// What a failed call answers. Under `generic_status_codes`, every failed credential
    /// check (unknown, locked or disabled user, wrong password) answers the same, its reason
    /// kept for the audit trail.
    pub fn conceal(&self, e: ProvisionError) -> ProvisionError {
        let hide = self.policy.generic_status_codes
            && matches!(
                e,
                ProvisionError::UnknownUser { .. }
                    | ProvisionError::WrongPassword
                    | ProvisionError::UserLocked
                    | ProvisionError::UserDisabled
            );
        if hide {
            let reason = e.to_string();
            ProvisionError::concealed(ProvisionError::InvalidCredentials, reason)
        } else {
            e
        }
    }

    /// THE static-password check: every path that checks a password, and every path that
    /// must take as long as one (unknown, locked or disabled user, no password set) calls
    /// this, with `None` for the dummy hash.
    pub fn check_password(&self, password: &str, phc: Option<&str>) -> bool {
        match phc {
            Some(phc) => verify_password(password, phc),
            None => {
                let _ = verify_password(password, dummy_hash());
                false
            }
        }
    }

    /// Checks a user's static password. Unknown, locked (until the lock expires), disabled
    /// and wrong each fail distinctly (`handle` hides which under `generic_status_codes`),
    /// and each costs one password check. A wrong password counts towards the lock; a
    /// right one clears the count and an expired lock.
    pub fn authenticate(
        &self,
        user_id: &UserId,
        domain: &Domain,
        password: &str,
    ) -> Result<User, ProvisionError> {
        let now = self.now();
        let Some(user) = self.store.find_user(user_id, domain)? else {
            self.check_password(password, None);
            return Err(ProvisionError::UnknownUser {
                user_id: user_id.clone(),
                domain: domain.clone(),
            });
        };
        if user.disabled {
            self.check_password(password, None);
            return Err(ProvisionError::UserDisabled);
        }
        if user.locked_at(now) {
            self.check_password(password, None);
            return Err(ProvisionError::UserLocked);
        }
        let ok = self.check_password(password, user.password_hash.as_deref());
        if !ok {
            let policy = &self.policy;
            self.store.record_password_failure(
                user.pk,
                policy.lock_after_failures,
                |n| policy.lock_duration(n),
                now,
            )?;
            return Err(ProvisionError::WrongPassword);
        }
        if user.failure_count != 0 || user.locked || user.lock_count != 0 {
            self.store.clear_password_failures(user.pk)?;
        }
        Ok(user)
    }

    /// The notice a completed reactivation sends, when e-mail is configured and the user has
    /// an address.
    pub(crate) fn reactivation_notice(
        &self,
        user: &User,
        serial: Option<&SerialNumber>,
    ) -> Option<OutgoingMail> {
        if !self.policy.email_delivery {
            return None;
        }
        let to = EmailAddress::parse(user.email.as_deref()?).ok()?;
        Some(OutgoingMail {
            command: "REACTIVATION".into(),
            recipient: to.as_str().to_owned(),
            subject: "A new device was activated for your account".into(),
            body: zeroize::Zeroizing::new(format!(
                "A new device was activated for your account {}{}.\n\
                 The device that held this authenticator before no longer works.\n\
                 If this was not you, contact your bank at once.\n",
                user.user_id,
                serial.map_or_else(String::new, |s| format!(" (authenticator {s})"))
            )),
        })
    }

    /// Completes a registration's activation: the authenticator takes the registration's
    /// key (its old key is retired), and a reactivation sends its notice.
    pub(crate) fn complete_activation(
        &self,
        reg: &Registration,
        user: &User,
        step: Option<i64>,
    ) -> Result<(), ProvisionError> {
        let notice = self.reactivation_notice(user, Some(&reg.serial_no));
        match self.store.activate_registration(
            &reg.registration_id,
            &reg.serial_no,
            step,
            notice.as_ref(),
            self.now(),
        )? {
            None => Err(ProvisionError::RegistrationSpent {
                id: reg.registration_id.clone(),
                state: "already activated",
            }),
            Some(reactivated) => {
                if reactivated && notice.is_some() {
                    self.mail_queued();
                }
                Ok(())
            }
        }
    }
}

impl Provisioning {
    /// The authenticator a registration took, or why it could not take one.
    pub(crate) fn begun(begun: Begun) -> Result<SerialNumber, ProvisionError> {
        match begun {
            Begun::Created(serial) => Ok(serial),
            Begun::Blocked(blocked) => Err(blocked.into()),
        }
    }

    /// A registration that exists and has not expired, whose user may still use it (not
    /// locked, not disabled) and whose authenticator is not disabled: every step after
    /// register goes through here.
    pub(crate) fn live_registration(
        &self,
        id: &RegistrationId,
    ) -> Result<Registration, ProvisionError> {
        self.live_registration_of(id).map(|(reg, _)| reg)
    }

    /// [`Self::live_registration`] with the registration's user.
    pub(crate) fn live_registration_of(
        &self,
        id: &RegistrationId,
    ) -> Result<(Registration, User), ProvisionError> {
        let reg = self.store.get_registration(id).map_err(|e| match e {
            StoreError::NotFound(_) => ProvisionError::UnknownRegistration(id.clone()),
            other => other.into(),
        })?;
        let now = self.now();
        if reg.expires_at <= now {
            return Err(ProvisionError::RegistrationExpired(id.clone()));
        }
        let user = self.store.user_by_pk(reg.user_pk)?;
        if user.disabled {
            return Err(ProvisionError::UserDisabled);
        }
        if user.locked_at(now) {
            return Err(ProvisionError::UserLocked);
        }
        if self.store.get_authenticator(&reg.serial_no)?.disabled {
            return Err(ProvisionError::AuthenticatorDisabled(reg.serial_no));
        }
        Ok((reg, user))
    }

    pub(crate) fn require_status(
        reg: &Registration,
        want: RegistrationStatus,
    ) -> Result<(), ProvisionError> {
        if reg.status == want {
            return Ok(());
        }
        Err(ProvisionError::RegistrationSpent {
            id: reg.registration_id.clone(),
            state: reg.status.as_str(),
        })
    }

    /// Counts a failed proof and answers accordingly.
    pub(crate) fn proof_failed(&self, id: &RegistrationId, what: &'static str) -> ProvisionError {
        let max = self.policy.max_activation_failures;
        match self.store.record_registration_failure(id, max) {
            Ok(c) if c.revoked => ProvisionError::RevokedNow {
                what,
                id: id.clone(),
                max,
            },
            Ok(c) => ProvisionError::ProofFailed {
                what,
                failures: c.failures,
                max,
            },
            Err(e) => e.into(),
        }
    }

    /// A live DSAPP registration in `want`, with its version.
    pub(crate) fn dsapp_registration(
        &self,
        id: &RegistrationId,
        want: &[RegistrationStatus],
    ) -> Result<(Registration, Version), ProvisionError> {
        let reg = self.live_registration(id)?;
        let Some(version) = version_of(reg.kind) else {
            return Err(ProvisionError::Invalid {
                field: "PROVFLD_REGISTRATIONID",
                reason: format!(
                    "registration {id} is a {} registration, not a DSAPP one",
                    reg.kind.as_str()
                ),
            });
        };
        if !want.contains(&reg.status) {
            return Err(ProvisionError::RegistrationSpent {
                id: id.clone(),
                state: reg.status.as_str(),
            });
        }
        Ok((reg, version))
    }

    /// Counts a failed DSAPP proof; a revoked registration loses its secrets at once.
    pub(crate) fn dsapp_failed(&self, id: &RegistrationId, what: &'static str) -> ProvisionError {
        let e = self.proof_failed(id, what);
        if matches!(e, ProvisionError::RevokedNow { .. }) {
            if let Err(store) = self.store.drop_registration_secrets(id) {
                return store.into();
            }
        }
        e
    }

    /// A live MDL registration in `want`.
    pub(crate) fn mdl_registration(
        &self,
        id: &RegistrationId,
        want: RegistrationStatus,
    ) -> Result<Registration, ProvisionError> {
        let reg = self.live_registration(id)?;
        if reg.kind != RegistrationKind::Mdl {
            return Err(ProvisionError::Invalid {
                field: "PROVFLD_REGISTRATIONID",
                reason: format!(
                    "registration {id} is a {} registration, not a multi-device one",
                    reg.kind.as_str()
                ),
            });
        }
        Self::require_status(&reg, want)?;
        Ok(reg)
    }

    /// Drops expired registrations and key exchanges; returns how many registrations went.
    pub fn sweep(&self) -> Result<usize, StoreError> {
        self.store
            .sweep_expired(self.now(), self.policy.registration_retention_secs)
    }
}
