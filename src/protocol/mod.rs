//! Protocol logic: what each provisioning command does. Works on typed inputs and the store's
//! records; never sees XML, never writes SQL. Calls block (Argon2, database): async callers run
//! them on a blocking thread.

pub mod otp;
pub mod srp;

use std::sync::OnceLock;

use thiserror::Error;

use crate::crypto::{hash_password, verify_password};
use crate::store::{Begun, NewRegistration, RegistrationKind, Store, StoreError, User};
use crate::types::{Domain, UserId};

/// Limits the protocol enforces; the defaults are those of protocols.md.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Wrong static passwords in a row before the user is locked.
    pub lock_after_failures: i32,
    /// How long a registration stays usable, in seconds.
    pub registration_lifetime_secs: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lock_after_failures: 5,
            registration_lifetime_secs: 72 * 3600,
        }
    }
}

/// A decoded provisioning command, ready to run.
#[derive(Debug)]
pub enum Call {
    ServerTime,
    SrpRegister(srp::RegisterInput),
    /// A command provd knows by name but does not serve yet.
    NotImplemented(&'static str),
}

impl Call {
    /// The user a call is about, for the audit trail.
    pub fn audit_user(&self) -> Option<(&UserId, Option<&Domain>)> {
        match self {
            Call::SrpRegister(r) => Some((&r.user_id, r.domain.as_ref())),
            _ => None,
        }
    }
}

/// What a successful call produced.
#[derive(Debug)]
pub enum Reply {
    ServerTime(i64),
    SrpRegistered(srp::Registered),
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
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
}

pub struct Provisioning {
    store: Store,
    policy: Policy,
}

/// A hash to verify against when the user does not exist, so that an unknown user costs the
/// same time as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("provd-timing-equaliser").expect("argon2 with defaults"))
}

impl Provisioning {
    pub fn new(store: Store, policy: Policy) -> Self {
        Provisioning { store, policy }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn handle(&self, call: Call) -> Result<Reply, ProvisionError> {
        match call {
            Call::ServerTime => Ok(Reply::ServerTime(crate::store::now())),
            Call::SrpRegister(input) => self.srp_register(input).map(Reply::SrpRegistered),
            Call::NotImplemented(name) => Err(ProvisionError::NotImplemented(name)),
        }
    }

    /// Checks a user's static password: unknown, locked and wrong each fail distinctly; a
    /// wrong password counts towards the lock, a right one clears the count.
    pub fn authenticate(
        &self,
        user_id: &UserId,
        domain: &Domain,
        password: &str,
    ) -> Result<User, ProvisionError> {
        let Some(user) = self.store.find_user(user_id, domain)? else {
            let _ = verify_password(password, dummy_hash());
            return Err(ProvisionError::UnknownUser {
                user_id: user_id.clone(),
                domain: domain.clone(),
            });
        };
        if user.locked {
            return Err(ProvisionError::UserLocked);
        }
        let ok = user
            .password_hash
            .as_deref()
            .is_some_and(|phc| verify_password(password, phc));
        if !ok {
            self.store
                .record_password_failure(user.pk, self.policy.lock_after_failures)?;
            return Err(ProvisionError::WrongPassword);
        }
        if user.failure_count != 0 {
            self.store.clear_password_failures(user.pk)?;
        }
        Ok(user)
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
            let a = self.store.get_authenticator(serial).map_err(|e| match e {
                StoreError::NotFound(_) => ProvisionError::Invalid {
                    field: "serialNumber",
                    reason: format!("no authenticator {serial}"),
                },
                other => other.into(),
            })?;
            if a.user_id.as_ref() != Some(&user.user_id) || a.domain.as_ref() != Some(&user.domain)
            {
                return Err(ProvisionError::Invalid {
                    field: "serialNumber",
                    reason: format!("authenticator {serial} is not assigned to this user"),
                });
            }
        }
        // A registration id that collides with a live one is drawn again.
        for _ in 0..8 {
            let registration_id = srp::new_registration_id();
            let activation_password = srp::new_activation_password();
            let salt = crate::crypto::random_bytes(srp::SALT_BYTES);
            let verifier = srp::verifier(&salt, registration_id.as_str(), &activation_password);
            let new = NewRegistration {
                registration_id: registration_id.clone(),
                kind: RegistrationKind::DsappSrp,
                serial_no: input.serial_no.clone(),
                srp_salt: salt.to_vec(),
                srp_verifier: verifier,
                lifetime_secs: self.policy.registration_lifetime_secs,
            };
            match self.store.begin_registration(user.pk, &new) {
                Ok(Begun::Created(serial_no)) => {
                    return Ok(srp::Registered {
                        registration_id,
                        activation_password,
                        serial_no,
                        user_id: user.user_id,
                        domain: user.domain,
                    })
                }
                Ok(Begun::NoFreeAuthenticator) => return Err(ProvisionError::NoFreeAuthenticator),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ProvisionError::Store(StoreError::Conflict(
            "could not draw a free registration id".into(),
        )))
    }
}
