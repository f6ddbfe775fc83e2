use diesel::prelude::*;
use serde::Serialize;

use super::authenticators::authenticator_for_user;
use super::schema::registrations;
use super::{now, Store, StoreError};
use crate::types::{RegistrationId, SerialNumber};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationKind {
    DsappSrp,
}

impl RegistrationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DsappSrp => "dsapp-srp",
        }
    }
    fn parse(raw: &str) -> Result<Self, StoreError> {
        match raw {
            "dsapp-srp" => Ok(Self::DsappSrp),
            other => Err(StoreError::Corrupt(format!(
                "unknown registration kind {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationStatus {
    /// Created by the register command, waiting for the client's first step.
    Pending,
    /// Spent by a successful activation.
    Activated,
    /// Revoked after too many failures.
    Revoked,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Activated => "activated",
            Self::Revoked => "revoked",
        }
    }
    fn parse(raw: &str) -> Result<Self, StoreError> {
        match raw {
            "pending" => Ok(Self::Pending),
            "activated" => Ok(Self::Activated),
            "revoked" => Ok(Self::Revoked),
            other => Err(StoreError::Corrupt(format!(
                "unknown registration status {other:?}"
            ))),
        }
    }
}

/// A registration as stored: the SRP salt and verifier, never the activation password.
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
    #[serde(skip)]
    pub srp_verifier: Vec<u8>,
    pub failures: i32,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A registration to create for a user; the authenticator is chosen in the same transaction.
pub struct NewRegistration {
    pub registration_id: RegistrationId,
    pub kind: RegistrationKind,
    /// The user's own authenticator to register, when the caller named one.
    pub serial_no: Option<SerialNumber>,
    pub srp_salt: Vec<u8>,
    pub srp_verifier: Vec<u8>,
    pub lifetime_secs: i64,
}

type Row = (
    String,
    i64,
    String,
    String,
    String,
    Vec<u8>,
    Vec<u8>,
    i32,
    i64,
    i64,
);

fn to_registration(r: Row) -> Result<Registration, StoreError> {
    let corrupt = |e: crate::types::ParseError| StoreError::Corrupt(format!("registration: {e}"));
    Ok(Registration {
        registration_id: RegistrationId::parse(&r.0).map_err(corrupt)?,
        user_pk: r.1,
        serial_no: SerialNumber::parse(&r.2).map_err(corrupt)?,
        kind: RegistrationKind::parse(&r.3)?,
        status: RegistrationStatus::parse(&r.4)?,
        srp_salt: r.5,
        srp_verifier: r.6,
        failures: r.7,
        created_at: r.8,
        expires_at: r.9,
    })
}

/// What `begin_registration` did.
pub enum Begun {
    Created(SerialNumber),
    /// The user has no authenticator and the pool has none free.
    NoFreeAuthenticator,
}

impl Store {
    /// In one transaction: finds the user's authenticator or claims a free one, and inserts
    /// the registration for it. A registration id already in use is `StoreError::Conflict`;
    /// the caller draws a new one.
    pub fn begin_registration(
        &self,
        user_pk: i64,
        new: &NewRegistration,
    ) -> Result<Begun, StoreError> {
        let t = now();
        self.write_tx(|c| {
            let serial = match &new.serial_no {
                Some(s) => s.as_str().to_owned(),
                None => match authenticator_for_user(c, user_pk)? {
                    Some(s) => s,
                    None => return Ok(Begun::NoFreeAuthenticator),
                },
            };
            diesel::insert_into(registrations::table)
                .values((
                    registrations::registration_id.eq(new.registration_id.as_str()),
                    registrations::user_pk.eq(user_pk),
                    registrations::serial_no.eq(&serial),
                    registrations::kind.eq(new.kind.as_str()),
                    registrations::status.eq(RegistrationStatus::Pending.as_str()),
                    registrations::srp_salt.eq(&new.srp_salt),
                    registrations::srp_verifier.eq(&new.srp_verifier),
                    registrations::failures.eq(0),
                    registrations::created_at.eq(t),
                    registrations::expires_at.eq(t + new.lifetime_secs),
                ))
                .execute(c)?;
            let serial = SerialNumber::parse(&serial)
                .map_err(|e| StoreError::Corrupt(format!("authenticator: {e}")))?;
            Ok(Begun::Created(serial))
        })
    }

    pub fn get_registration(&self, id: &RegistrationId) -> Result<Registration, StoreError> {
        let mut conn = self.conn()?;
        registrations::table
            .find(id.as_str())
            .select((
                registrations::registration_id,
                registrations::user_pk,
                registrations::serial_no,
                registrations::kind,
                registrations::status,
                registrations::srp_salt,
                registrations::srp_verifier,
                registrations::failures,
                registrations::created_at,
                registrations::expires_at,
            ))
            .first::<Row>(&mut conn)
            .optional()?
            .map(to_registration)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("no registration {id}")))
    }
}
