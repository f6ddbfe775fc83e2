//! Protocol logic: what each provisioning command does. Works on typed inputs and the store's
//! records; never sees XML, never writes SQL. Calls block (Argon2, database): async callers run
//! them on a blocking thread.

pub mod cpace;
pub mod dsapp;
pub mod dsapp_commands;
pub mod mdl;
pub mod mdl_commands;
pub mod otp;
pub mod record;
pub mod srp;
pub mod standard;

pub use srp::ActivationProof;

use std::sync::OnceLock;

use thiserror::Error;

use crate::crypto::{hash_password, verify_password};
use crate::store::{
    Begun, Blocked, NewRegistration, OutgoingMail, ReactivationRule, Registration,
    RegistrationKind, RegistrationStatus, Store, StoreError, User,
};
use crate::types::{Domain, EmailAddress, HexValue, RegistrationId, SerialNumber, UserId};

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

/// A decoded provisioning command, ready to run.
#[derive(Debug)]
pub enum Call {
    ServerTime,
    SrpRegister(srp::RegisterInput),
    SrpEphemeralKey(srp::EphemeralKeyInput),
    SrpActivationData(srp::ActivationDataInput),
    SrpActivate(srp::ActivateInput),
    Register(standard::RegisterInput),
    Activate(standard::ActivateInput),
    DsappRegister(dsapp_commands::RegisterInput),
    DsappKeyExchange(dsapp_commands::KeyExchangeInput),
    DsappActivate(dsapp_commands::ActivateInput),
    MdlRegister(mdl_commands::RegisterInput),
    MdlAddDevice(mdl_commands::AddDeviceInput),
    MdlActivate(mdl_commands::ActivateInput),
    /// A command provd knows by name but does not serve yet.
    NotImplemented(&'static str),
}

impl Call {
    /// The user a call is about, for the audit trail.
    pub fn audit_user(&self) -> Option<(&UserId, Option<&Domain>)> {
        match self {
            Call::SrpRegister(r) => Some((&r.user_id, r.domain.as_ref())),
            Call::Register(r) => Some((&r.credentials.user_id, r.credentials.domain.as_ref())),
            Call::Activate(r) => Some((&r.user_id, r.domain.as_ref())),
            Call::DsappRegister(r) => Some((&r.credentials.user_id, r.credentials.domain.as_ref())),
            Call::MdlRegister(r) => Some((&r.credentials.user_id, r.credentials.domain.as_ref())),
            _ => None,
        }
    }

    /// Whether the call runs Argon2 (checks a static password, derives a key from one): the
    /// server runs these under a global concurrency limit.
    pub fn checks_password(&self) -> bool {
        matches!(
            self,
            Call::SrpRegister(_)
                | Call::Register(_)
                | Call::DsappRegister(_)
                | Call::MdlRegister(_)
        )
    }

    /// The registration a call is about, for the audit trail.
    pub fn audit_registration(&self) -> Option<&RegistrationId> {
        match self {
            Call::SrpEphemeralKey(c) => Some(&c.registration_id),
            Call::SrpActivationData(c) => Some(&c.registration_id),
            Call::SrpActivate(c) => Some(&c.registration_id),
            Call::DsappKeyExchange(c) => Some(&c.registration_id),
            Call::DsappActivate(c) => Some(&c.registration_id),
            Call::MdlAddDevice(c) => Some(&c.registration_id),
            Call::MdlActivate(c) => Some(&c.registration_id),
            _ => None,
        }
    }
}

/// What a successful call produced.
#[derive(Debug)]
pub enum Reply {
    ServerTime(i64),
    SrpRegistered(srp::Registered),
    SrpEphemeralKey(srp::EphemeralKey),
    SrpActivationData(srp::ActivationData),
    SrpActivated(srp::Activated),
    Registered(standard::Registered),
    Activated(standard::Activated),
    DsappRegistered(dsapp_commands::Registered),
    DsappKeyExchanged(dsapp_commands::KeyExchanged),
    DsappActivated(dsapp_commands::Activated),
    MdlRegistered(mdl_commands::Registered),
    MdlDeviceAdded(mdl_commands::DeviceAdded),
    MdlActivated(mdl_commands::Activated),
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

    fn concealed(shown: ProvisionError, reason: impl Into<String>) -> Self {
        ProvisionError::Concealed {
            shown: Box::new(shown),
            reason: reason.into(),
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

/// A source of Unix seconds; tests substitute their own.
pub use crate::store::Clock;

pub struct Provisioning {
    store: Store,
    policy: Policy,
    clock: Clock,
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
        Self::with_clock(store, policy, std::sync::Arc::new(crate::store::now))
    }

    pub fn with_clock(store: Store, policy: Policy, clock: Clock) -> Self {
        Provisioning {
            store,
            policy,
            clock,
            mail_queued: None,
        }
    }

    /// Sets what wakes the delivery worker once a mail is committed.
    pub fn with_mail_notifier(mut self, notify: std::sync::Arc<dyn Fn() + Send + Sync>) -> Self {
        self.mail_queued = Some(notify);
        self
    }

    fn mail_queued(&self) {
        if let Some(n) = &self.mail_queued {
            n();
        }
    }

    /// Where `PROVFLD_DELIVERY_METHOD` sends: the destination given, else the user's own
    /// address. `None` when no delivery was asked for.
    fn mail_recipient(
        &self,
        user: &User,
        delivery: Option<&standard::Delivery>,
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
    fn begin_register(
        &self,
        creds: &standard::Credentials,
        serial: Option<&SerialNumber>,
        delivery: Option<&standard::Delivery>,
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
    fn with_new_registration_id<T>(
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
    fn check_owned(
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

    fn now(&self) -> i64 {
        (self.clock)()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs a call. Under `generic_status_codes`, every failed credential check (unknown,
    /// locked or disabled user, wrong password) answers the same, its reason kept for the
    /// audit trail.
    pub fn handle(&self, call: Call) -> Result<Reply, ProvisionError> {
        self.run(call).map_err(|e| {
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
        })
    }

    fn run(&self, call: Call) -> Result<Reply, ProvisionError> {
        match call {
            Call::ServerTime => Ok(Reply::ServerTime(self.now())),
            Call::SrpRegister(input) => self.srp_register(input).map(Reply::SrpRegistered),
            Call::SrpEphemeralKey(input) => {
                self.srp_ephemeral_key(input).map(Reply::SrpEphemeralKey)
            }
            Call::SrpActivationData(input) => self
                .srp_activation_data(input)
                .map(Reply::SrpActivationData),
            Call::SrpActivate(input) => self.srp_activate(input).map(Reply::SrpActivated),
            Call::Register(input) => self.register(input).map(Reply::Registered),
            Call::Activate(input) => self.activate(input).map(Reply::Activated),
            Call::DsappRegister(input) => self.dsapp_register(input).map(Reply::DsappRegistered),
            Call::DsappKeyExchange(input) => {
                self.dsapp_key_exchange(input).map(Reply::DsappKeyExchanged)
            }
            Call::DsappActivate(input) => self.dsapp_activate(input).map(Reply::DsappActivated),
            Call::MdlRegister(input) => self.mdl_register(input).map(Reply::MdlRegistered),
            Call::MdlAddDevice(input) => self.mdl_add_device(input).map(Reply::MdlDeviceAdded),
            Call::MdlActivate(input) => self.mdl_activate(input).map(Reply::MdlActivated),
            Call::NotImplemented(name) => Err(ProvisionError::NotImplemented(name)),
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
    fn reactivation_notice(
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
    fn complete_activation(
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

    /// `dsappSRPRegister`: authenticates the user, assigns a free software authenticator if
    /// the user has none, and creates a registration (salt and verifier only).
    pub fn srp_register(
        &self,
        input: srp::RegisterInput,
    ) -> Result<srp::Registered, ProvisionError> {
        let domain = input.domain.clone().unwrap_or_else(Domain::master);
        let user = self.authenticate(&input.user_id, &domain, &input.static_password)?;
        if let Some(serial) = &input.serial_no {
            self.check_owned(serial, &user, "serialNumber")?;
        }
        // A registration id that collides with a live one is drawn again.
        let (registration_id, activation_password, begun) =
            self.with_new_registration_id(|registration_id| {
                let activation_password = srp::new_activation_password();
                let salt = crate::crypto::random_bytes(srp::SALT_BYTES);
                let verifier = srp::verifier(&salt, registration_id.as_str(), &activation_password);
                let new = NewRegistration {
                    registration_id: registration_id.clone(),
                    kind: RegistrationKind::DsappSrp,
                    serial_no: input.serial_no.clone(),
                    srp_salt: salt.to_vec(),
                    srp_verifier: verifier,
                    secret: None,
                    created_at: self.now(),
                    lifetime_secs: self.policy.registration_lifetime_secs,
                    mail: None,
                };
                let begun =
                    self.store
                        .begin_registration(user.pk, &new, &self.policy.reactivation)?;
                Ok((registration_id, activation_password, begun))
            })?;
        let serial_no = Self::begun(begun)?;
        Ok(srp::Registered {
            registration_id,
            activation_password,
            serial_no,
            user_id: user.user_id,
            domain: user.domain,
        })
    }
}

impl Provisioning {
    /// The authenticator a registration took, or why it could not take one.
    fn begun(begun: Begun) -> Result<SerialNumber, ProvisionError> {
        match begun {
            Begun::Created(serial) => Ok(serial),
            Begun::Blocked(blocked) => Err(blocked.into()),
        }
    }

    /// A registration that exists and has not expired, whose user may still use it (not
    /// locked, not disabled) and whose authenticator is not disabled: every step after
    /// register goes through here.
    fn live_registration(&self, id: &RegistrationId) -> Result<Registration, ProvisionError> {
        self.live_registration_of(id).map(|(reg, _)| reg)
    }

    /// [`Self::live_registration`] with the registration's user.
    fn live_registration_of(
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

    fn require_status(reg: &Registration, want: RegistrationStatus) -> Result<(), ProvisionError> {
        if reg.status == want {
            return Ok(());
        }
        Err(ProvisionError::RegistrationSpent {
            id: reg.registration_id.clone(),
            state: reg.status.as_str(),
        })
    }

    /// Counts a failed proof and answers accordingly.
    fn proof_failed(&self, id: &RegistrationId, what: &'static str) -> ProvisionError {
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

    /// `dsappSRPGenerateEphemeralKey`: draws b, computes B, and derives the session (K, M1,
    /// M2) now, so that only those, sealed, are kept for the next step, on whichever
    /// instance it lands.
    pub fn srp_ephemeral_key(
        &self,
        input: srp::EphemeralKeyInput,
    ) -> Result<srp::EphemeralKey, ProvisionError> {
        let id = input.registration_id;
        let reg = self.live_registration(&id)?;
        Self::require_status(&reg, RegistrationStatus::Pending)?;
        let srp = srp::srp();
        let invalid = |e: srp::math::SrpError| ProvisionError::Invalid {
            field: "clientEphemeralPublicKey",
            reason: e.to_string(),
        };
        let a_pub = srp
            .group
            .parse(input.client_public.as_bytes())
            .map_err(invalid)?;
        srp.check_public(&a_pub).map_err(invalid)?;
        let v = srp
            .group
            .parse(&self.store.open_verifier(&reg)?)
            .map_err(|e| ProvisionError::Store(StoreError::Corrupt(format!("verifier: {e}"))))?;
        let b_bytes = crate::crypto::random_bytes(32);
        let b = zeroize::Zeroizing::new(srp.group.parse(&b_bytes).map_err(invalid)?);
        let b_pub = srp.server_public(&v, &b);
        let u = srp.u(&a_pub, &b_pub).map_err(invalid)?;
        let premaster = srp.server_premaster(&a_pub, &v, &u, &b).map_err(invalid)?;
        let session = srp.session(
            &premaster,
            id.as_str().as_bytes(),
            &reg.srp_salt,
            &a_pub,
            &b_pub,
        );
        let mut state = zeroize::Zeroizing::new(Vec::with_capacity(srp::SESSION_BYTES));
        state.extend_from_slice(&session.key);
        state.extend_from_slice(&session.m1);
        state.extend_from_slice(&session.m2);
        let now = self.now();
        if !self
            .store
            .set_session(&id, &state, now, now + self.policy.ephemeral_lifetime_secs)?
        {
            // Spent or expired between the read and the write.
            return Err(ProvisionError::RegistrationSpent {
                id,
                state: "no longer pending",
            });
        }
        Ok(srp::EphemeralKey {
            registration_id: id,
            server_public: HexValue::from_bytes(srp.group.pad(&b_pub)),
            salt: HexValue::from_bytes(reg.srp_salt),
        })
    }

    /// `dsappSRPGenerateActivationData`: checks M1 in constant time; only then returns M2 and
    /// the authenticator's activation data, encrypted and MACed under the session keys.
    pub fn srp_activation_data(
        &self,
        input: srp::ActivationDataInput,
    ) -> Result<srp::ActivationData, ProvisionError> {
        let id = input.registration_id;
        let reg = self.live_registration(&id)?;
        Self::require_status(&reg, RegistrationStatus::Pending)?;
        let fresh = reg.ephemeral_expires_at.is_some_and(|t| t > self.now());
        let state = match self.store.open_session(&reg)? {
            Some(s) if fresh && s.len() == srp::SESSION_BYTES => s,
            _ => return Err(ProvisionError::NoKeyExchange(id)),
        };
        let (key, rest) = state.split_at(32);
        let (m1, m2) = rest.split_at(32);
        if !crate::crypto::ct_eq(m1, input.client_evidence.as_bytes()) {
            return Err(self.proof_failed(&id, "the client evidence message"));
        }
        // The key this registration prepared: never the key of a device holding it already.
        let auth_key = self.store.registration_key(&reg)?;
        let plaintext = srp::activation_plaintext(&reg.serial_no, &auth_key);
        let keys = srp::record::RecordKeys::derive(&reg.srp_salt, key);
        let iv: [u8; 16] = crate::crypto::random_bytes(16)
            .as_slice()
            .try_into()
            .expect("16 bytes");
        let activation = keys.seal(id.as_str().as_bytes(), iv, &plaintext);
        // K_mac stays, sealed, until the registration expires: a derivation code is checked
        // against it in dsappSRPActivate.
        if !self
            .store
            .deliver_with_session(&id, &keys.mac_key_bytes(), reg.expires_at)?
        {
            return Err(ProvisionError::RegistrationSpent {
                id,
                state: "no longer pending",
            });
        }
        Ok(srp::ActivationData {
            registration_id: id,
            server_evidence: HexValue::from_bytes(m2.to_vec()),
            activation,
        })
    }

    /// `dsappSRPActivate`: the OTP of the authenticator just delivered ends the registration
    /// and makes the authenticator active.
    pub fn srp_activate(
        &self,
        input: srp::ActivateInput,
    ) -> Result<srp::Activated, ProvisionError> {
        let id = input.registration_id;
        let (reg, user) = self.live_registration_of(&id)?;
        Self::require_status(&reg, RegistrationStatus::Delivered)?;
        let step = match &input.proof {
            srp::ActivationProof::Otp(otp) => {
                let key = self.store.registration_key(&reg)?;
                let Some(step) = otp::verify_totp(&key, otp, self.now()) else {
                    return Err(self.proof_failed(&id, "the one-time password"));
                };
                Some(step)
            }
            srp::ActivationProof::DerivationCode(code) => {
                let mac_key = match self.store.open_session(&reg)? {
                    Some(k) if k.len() == 32 => k,
                    _ => return Err(ProvisionError::NoKeyExchange(id)),
                };
                if !srp::record::verify_derivation_code(
                    &mac_key,
                    id.as_str().as_bytes(),
                    reg.serial_no.as_str().as_bytes(),
                    code,
                ) {
                    return Err(self.proof_failed(&id, "the derivation code"));
                }
                None
            }
        };
        self.complete_activation(&reg, &user, step)?;
        Ok(srp::Activated {
            registration_id: id,
            user_id: user.user_id,
            domain: user.domain,
            serial_no: reg.serial_no,
        })
    }

    /// Drops expired registrations and key exchanges; returns how many registrations went.
    pub fn sweep(&self) -> Result<usize, StoreError> {
        self.store
            .sweep_expired(self.now(), self.policy.registration_retention_secs)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::crypto::{hash_password, random_bytes, MasterKey};
    use crate::store::NewAuthenticator;
    use crate::types::{HexValue, SerialNumber};

    struct Fixture {
        prov: Provisioning,
        clock: Arc<AtomicI64>,
        _dir: TempDir,
    }

    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn fixture(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("provd-proto-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(
            &dir.join("p.db").display().to_string(),
            MasterKey::generate(),
            2,
        )
        .unwrap();
        store
            .create_user(&crate::store::NewUser {
                user_id: UserId::parse("u").unwrap(),
                domain: Domain::master(),
                organizational_unit: None,
                email: None,
                password_hash: Some(hash_password("pw").unwrap()),
            })
            .unwrap();
        store
            .insert_authenticators(
                &[NewAuthenticator {
                    serial_no: SerialNumber::parse("VDS0000001").unwrap(),
                    auth_type: "t".into(),
                    applications: "a".into(),
                    key: random_bytes(32),
                    license_limit: 1,
                }],
                &mut |_| {},
            )
            .unwrap();
        let clock = Arc::new(AtomicI64::new(crate::store::now()));
        let c = clock.clone();
        let prov = Provisioning::with_clock(
            store,
            Policy::default(),
            Arc::new(move || c.load(Ordering::SeqCst)),
        );
        Fixture {
            prov,
            clock,
            _dir: TempDir(dir),
        }
    }

    fn register(f: &Fixture) -> srp::Registered {
        f.prov
            .srp_register(srp::RegisterInput {
                component_type: None,
                user_id: UserId::parse("u").unwrap(),
                domain: None,
                static_password: zeroize::Zeroizing::new("pw".into()),
                serial_no: None,
            })
            .unwrap()
    }

    fn client_public() -> HexValue {
        let s = srp::srp();
        let a = s.group.parse(&random_bytes(32)).unwrap();
        HexValue::from_bytes(s.group.pad(&s.client_public(&a)))
    }

    #[test]
    fn an_expired_key_exchange_must_be_started_again() {
        let f = fixture("eph");
        let r = register(&f);
        f.prov
            .srp_ephemeral_key(srp::EphemeralKeyInput {
                registration_id: r.registration_id.clone(),
                client_public: client_public(),
            })
            .unwrap();
        f.clock.fetch_add(
            Policy::default().ephemeral_lifetime_secs + 1,
            Ordering::SeqCst,
        );
        let e = f
            .prov
            .srp_activation_data(srp::ActivationDataInput {
                registration_id: r.registration_id.clone(),
                client_evidence: HexValue::from_bytes(vec![0; 32]),
            })
            .unwrap_err();
        assert!(matches!(e, ProvisionError::NoKeyExchange(_)), "{e}");
        // Not counted as a failure: the registration is intact.
        let reg = f.prov.store().get_registration(&r.registration_id).unwrap();
        assert_eq!(reg.failures, 0);
        assert_eq!(reg.status, RegistrationStatus::Pending);
    }

    #[test]
    fn an_expired_registration_is_refused_and_swept() {
        let f = fixture("reg");
        let r = register(&f);
        f.clock.fetch_add(
            Policy::default().registration_lifetime_secs + 1,
            Ordering::SeqCst,
        );
        let e = f
            .prov
            .srp_ephemeral_key(srp::EphemeralKeyInput {
                registration_id: r.registration_id.clone(),
                client_public: client_public(),
            })
            .unwrap_err();
        assert!(matches!(e, ProvisionError::RegistrationExpired(_)), "{e}");
        assert_eq!(f.prov.sweep().unwrap(), 1);
        assert!(matches!(
            f.prov.store().get_registration(&r.registration_id),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn an_activated_registration_is_kept_for_the_retention_period_then_swept() {
        let f = fixture("kept");
        let r = register(&f);
        let reg = f.prov.store().get_registration(&r.registration_id).unwrap();
        assert!(f.prov.store().mark_delivered(&r.registration_id).unwrap());
        let now = f.prov.now();
        assert!(f
            .prov
            .store()
            .activate_registration(&r.registration_id, &reg.serial_no, None, None, now)
            .unwrap()
            .is_some());
        let policy = Policy::default();
        f.clock
            .fetch_add(policy.registration_lifetime_secs + 1, Ordering::SeqCst);
        assert_eq!(f.prov.sweep().unwrap(), 0, "kept after its expiry");
        assert!(f.prov.store().get_registration(&r.registration_id).is_ok());
        f.clock
            .fetch_add(policy.registration_retention_secs, Ordering::SeqCst);
        assert_eq!(
            f.prov.sweep().unwrap(),
            1,
            "removed after the retention period"
        );
        assert!(matches!(
            f.prov.store().get_registration(&r.registration_id),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn a_live_registration_survives_the_sweep() {
        let f = fixture("live");
        let r = register(&f);
        assert_eq!(f.prov.sweep().unwrap(), 0);
        assert!(f.prov.store().get_registration(&r.registration_id).is_ok());
    }

    #[test]
    fn lock_duration_doubles_up_to_its_cap_and_zero_means_until_unlocked() {
        let p = Policy::default();
        assert_eq!(p.lock_duration(1), Some(900));
        assert_eq!(p.lock_duration(2), Some(1800));
        assert_eq!(p.lock_duration(7), Some(900 * MAX_LOCK_GROWTH));
        assert_eq!(p.lock_duration(50), Some(900 * MAX_LOCK_GROWTH));
        let forever = Policy {
            lock_duration_secs: 0,
            ..Policy::default()
        };
        assert_eq!(forever.lock_duration(1), None);
    }

    #[test]
    fn a_lock_expires_on_the_protocol_clock() {
        let f = fixture("lock");
        let u = UserId::parse("u").unwrap();
        for _ in 0..5 {
            let e = f
                .prov
                .authenticate(&u, &Domain::master(), "nope")
                .unwrap_err();
            assert!(matches!(e, ProvisionError::WrongPassword), "{e}");
        }
        let e = f
            .prov
            .authenticate(&u, &Domain::master(), "pw")
            .unwrap_err();
        assert!(matches!(e, ProvisionError::UserLocked), "{e}");
        f.clock.fetch_add(900, Ordering::SeqCst);
        let user = f.prov.authenticate(&u, &Domain::master(), "pw").unwrap();
        assert_eq!(user.pk, f.prov.store().user_by_pk(user.pk).unwrap().pk);
        let after = f.prov.store().user_by_pk(user.pk).unwrap();
        assert!(!after.locked && after.lock_count == 0 && after.failure_count == 0);
    }

    #[test]
    fn generic_codes_hide_the_reason_from_the_client_only() {
        let mut f = fixture("generic");
        f.prov.policy.generic_status_codes = true;
        let call = |user: &str, pw: &str| {
            f.prov
                .handle(Call::SrpRegister(srp::RegisterInput {
                    component_type: None,
                    user_id: UserId::parse(user).unwrap(),
                    domain: None,
                    static_password: zeroize::Zeroizing::new(pw.into()),
                    serial_no: None,
                }))
                .unwrap_err()
        };
        let unknown = call("nobody", "pw");
        let wrong = call("u", "nope");
        assert_eq!(unknown.to_string(), wrong.to_string());
        assert_eq!(
            unknown.audit_detail(),
            Some("unknown user nobody in domain master")
        );
        assert_eq!(wrong.audit_detail(), Some("wrong static password"));
    }

    #[test]
    fn every_registration_prepares_its_own_key_and_activation_installs_it() {
        let f = fixture("rekey");
        let a = register(&f);
        let b = register(&f);
        let store = f.prov.store();
        let ra = store.get_registration(&a.registration_id).unwrap();
        let rb = store.get_registration(&b.registration_id).unwrap();
        let (ka, kb) = (
            store.registration_key(&ra).unwrap(),
            store.registration_key(&rb).unwrap(),
        );
        assert_ne!(ka, kb);
        assert_ne!(ka, store.authenticator_key(&ra.serial_no).unwrap());
        assert!(store.mark_delivered(&a.registration_id).unwrap());
        let user = store.user_by_pk(ra.user_pk).unwrap();
        f.prov.complete_activation(&ra, &user, Some(7)).unwrap();
        assert_eq!(store.authenticator_key(&ra.serial_no).unwrap(), ka);
        // The step that proved the key is spent; the next one is not.
        assert!(!store.accept_otp_step(&ra.serial_no, 7).unwrap());
        assert!(store.accept_otp_step(&ra.serial_no, 8).unwrap());
    }
}
