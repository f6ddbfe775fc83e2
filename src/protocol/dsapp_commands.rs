//! `PROVISIONCMD_DSAPPREGISTER`, `PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA` and
//! `PROVISIONCMD_DSAPPACTIVATE`: DSAPP v1/v2 online activation, revision 3 (CPace, see
//! [`super::dsapp`]).
//!
//! Register authenticates the user, assigns an authenticator and creates a registration that
//! keeps the activation password (CPace's PRS) sealed under the master key until the
//! registration is spent or revoked. The key exchange counts (at most
//! [`dsapp::MAX_UNCONFIRMED_EXCHANGES`] per registration; the next revokes it), answers the
//! client's share, and returns the activation data sealed (encrypt-then-MAC) under the new
//! session; the session replaces any earlier one and is kept, sealed, for the activation, which
//! checks the client's confirmation tag and then an OTP or a derivation code. A wrong tag, OTP
//! or derivation code counts as a failure (3 revoke). Same lifetime and single use as
//! DSAPP-SRP.

use zeroize::Zeroizing;

use super::dsapp::{self, Field, SealedField, Version};
use super::standard::{Credentials, Delivery};
use super::{otp, srp, ActivationProof, ProvisionError, Provisioning};
use crate::store::{
    ExchangeRecorded, NewRegistration, OutgoingMail, RegistrationKind, RegistrationStatus,
    StoreError,
};
use crate::types::{Domain, HexValue, OrgUnit, RegistrationId, SerialNumber, UserId};

/// `PROVISIONCMD_DSAPPREGISTER` in.
#[derive(Debug)]
pub struct RegisterInput {
    pub credentials: Credentials,
    pub version: Version,
    pub serial_no: Option<SerialNumber>,
    pub delivery: Option<Delivery>,
}

/// `PROVISIONCMD_DSAPPREGISTER` out. The activation password exists only here.
#[derive(Debug)]
pub struct Registered {
    pub registration_id: RegistrationId,
    pub activation_password: Zeroizing<String>,
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub serial_no: SerialNumber,
}

/// `PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA` in.
#[derive(Debug)]
pub struct KeyExchangeInput {
    pub registration_id: RegistrationId,
    /// `PROVFLD_DSAPP_VERSION` when the caller repeats it: must match the registration's.
    pub version: Option<Version>,
    /// `PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE`: `Ya` (X | Y) and `cn`.
    pub encrypted_client_key_nonce: HexValue,
    /// `PROVFLD_CLIENT_IV`: CPace's `sid`.
    pub client_iv: [u8; 16],
}

/// `PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA` out.
#[derive(Debug)]
pub struct KeyExchanged {
    pub version: Version,
    /// `Yb` (X | Y).
    pub encrypted_server_public_key: HexValue,
    /// The server's confirmation tag.
    pub encrypted_nonces: HexValue,
    /// `ADb`.
    pub server_iv: HexValue,
    pub activation_code: SealedField,
    pub event_reactivation_counter: SealedField,
}

/// `PROVISIONCMD_DSAPPACTIVATE` in.
#[derive(Debug)]
pub struct ActivateInput {
    pub registration_id: RegistrationId,
    /// The client's confirmation tag.
    pub encrypted_server_nonce: HexValue,
    /// `sid` again.
    pub client_iv: [u8; 16],
    pub proof: ActivationProof,
}

/// `PROVISIONCMD_DSAPPACTIVATE` out: what `PROVISIONCMD_ACTIVATE` returns.
pub use super::standard::Activated;

fn kind_of(version: Version) -> RegistrationKind {
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

const COMMAND: &str = "DSAPPREGISTER";

impl Provisioning {
    /// `PROVISIONCMD_DSAPPREGISTER`.
    pub fn dsapp_register(&self, input: RegisterInput) -> Result<Registered, ProvisionError> {
        let creds = &input.credentials;
        let (user, recipient) =
            self.begin_register(creds, input.serial_no.as_ref(), input.delivery.as_ref())?;
        let (registration_id, activation_password, begun) = self.with_new_registration_id(|registration_id| {
            let activation_password = srp::new_activation_password();
            let mail = recipient.as_ref().map(|to| OutgoingMail {
                command: COMMAND.into(),
                recipient: to.as_str().to_owned(),
                subject: "Your authenticator activation".into(),
                body: Zeroizing::new(format!(
                    "Activate your authenticator in the app with:\nRegistration identifier: {registration_id}\nActivation password: {}\nThe registration can be used once and expires in {} hours.\n",
                    activation_password.as_str(),
                    self.policy.registration_lifetime_secs / 3600
                )),
            });
            let new = NewRegistration {
                registration_id: registration_id.clone(),
                kind: kind_of(input.version),
                serial_no: input.serial_no.clone(),
                srp_salt: Vec::new(),
                srp_verifier: Vec::new(),
                secret: Some(Zeroizing::new(activation_password.as_bytes().to_vec())),
                created_at: self.now(),
                lifetime_secs: self.policy.registration_lifetime_secs,
                mail,
            };
            let begun = self.store.begin_registration(user.pk, &new, &self.policy.reactivation)?;
            Ok((registration_id, activation_password, begun))
        })?;
        let serial_no = Self::begun(begun)?;
        if recipient.is_some() {
            self.mail_queued();
        }
        Ok(Registered {
            registration_id,
            activation_password,
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no,
        })
    }

    /// A live DSAPP registration in `want`, with its version.
    fn dsapp_registration(
        &self,
        id: &RegistrationId,
        want: &[RegistrationStatus],
    ) -> Result<(crate::store::Registration, Version), ProvisionError> {
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

    /// `PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA`: the key exchange and the activation data
    /// in one step.
    pub fn dsapp_key_exchange(
        &self,
        input: KeyExchangeInput,
    ) -> Result<KeyExchanged, ProvisionError> {
        let id = input.registration_id;
        let (reg, version) = self.dsapp_registration(
            &id,
            &[RegistrationStatus::Pending, RegistrationStatus::Delivered],
        )?;
        if let Some(asked) = input.version {
            if asked != version {
                return Err(ProvisionError::Invalid {
                    field: "PROVFLD_DSAPP_VERSION",
                    reason: format!(
                        "registration {id} was made for DSAPP version {}, not {}",
                        version.number(),
                        asked.number()
                    ),
                });
            }
        }
        let secret = self.store.open_secret(&reg)?.ok_or_else(|| {
            StoreError::Corrupt(format!("registration {id} has no activation password"))
        })?;
        let prs = std::str::from_utf8(&secret)
            .map_err(|_| StoreError::Corrupt(format!("registration {id}: activation password")))?;
        let exchange = dsapp::server_key_exchange(
            id.as_str(),
            prs,
            input.encrypted_client_key_nonce.as_bytes(),
            &input.client_iv,
        )
        .map_err(|e| ProvisionError::Invalid {
            field: "PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE",
            reason: e.to_string(),
        })?;
        let key = self.store.registration_key(&reg)?;
        let counter = self
            .store
            .get_authenticator(&reg.serial_no)?
            .reactivation_counter;
        let session = &exchange.session;
        let plaintext = dsapp::activation_code_plaintext(&reg.serial_no, &key, counter);
        let activation_code = session.seal_field(version, Field::ActivationCode, &plaintext);
        let event_reactivation_counter = session.seal_field(
            version,
            Field::EventReactivationCounter,
            counter.to_string().as_bytes(),
        );
        let now = self.now();
        let session_expires = (now + self.policy.ephemeral_lifetime_secs).min(reg.expires_at);
        match self.store.record_dsapp_exchange(
            &id,
            &session.to_bytes(),
            now,
            session_expires,
            dsapp::MAX_UNCONFIRMED_EXCHANGES,
        )? {
            ExchangeRecorded::Kept { .. } => {}
            ExchangeRecorded::Revoked { .. } => {
                return Err(ProvisionError::TooManyExchanges {
                    id,
                    max: dsapp::MAX_UNCONFIRMED_EXCHANGES,
                })
            }
            ExchangeRecorded::NotLive => {
                return Err(ProvisionError::RegistrationSpent {
                    id,
                    state: "no longer pending",
                })
            }
        }
        Ok(KeyExchanged {
            version,
            encrypted_server_public_key: HexValue::from_bytes(exchange.server_public_key.to_vec()),
            encrypted_nonces: HexValue::from_bytes(exchange.server_tag.to_vec()),
            server_iv: HexValue::from_bytes(exchange.adb.to_vec()),
            activation_code,
            event_reactivation_counter,
        })
    }

    /// `PROVISIONCMD_DSAPPACTIVATE`: the client's proof of the session key, then its OTP or
    /// derivation code, spend the registration and activate the authenticator.
    pub fn dsapp_activate(&self, input: ActivateInput) -> Result<Activated, ProvisionError> {
        let id = input.registration_id;
        let (reg, _) = self.dsapp_registration(&id, &[RegistrationStatus::Delivered])?;
        let user = self.store.user_by_pk(reg.user_pk)?;
        let fresh = reg.ephemeral_expires_at.is_some_and(|t| t > self.now());
        let session = match self.store.open_dsapp_session(&reg)? {
            Some(s) if fresh => dsapp::Session::from_bytes(&s)
                .map_err(|e| StoreError::Corrupt(format!("registration {id}: {e}")))?,
            _ => return Err(ProvisionError::NoKeyExchange(id)),
        };
        // The sid must be the latest exchange's and the tag must verify; both in constant
        // time, and either failing counts.
        let same_sid = crate::crypto::ct_eq(session.sid(), &input.client_iv);
        let tag_ok = session.verify_client_tag(input.encrypted_server_nonce.as_bytes());
        if !(same_sid & tag_ok) {
            return Err(self.dsapp_failed(&id, "PROVFLD_ENCRYPTED_SERVER_NONCE"));
        }
        let key = self.store.registration_key(&reg)?;
        let (ok, step) = match &input.proof {
            ActivationProof::Otp(code) => {
                let step = otp::verify_totp(&key, code, self.now());
                (step.is_some(), step)
            }
            ActivationProof::DerivationCode(code) => {
                (session.verify_derivation_code(&reg.serial_no, code), None)
            }
        };
        if !ok {
            let what = match input.proof {
                ActivationProof::Otp(_) => "PROVFLD_DP_RESPONSE",
                ActivationProof::DerivationCode(_) => "PROVFLD_DERIVATION_CODE",
            };
            return Err(self.dsapp_failed(&id, what));
        }
        self.complete_activation(&reg, &user, step)?;
        self.store.drop_registration_secrets(&id)?;
        Ok(Activated {
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no: reg.serial_no,
        })
    }

    /// Counts a failed DSAPP proof; a revoked registration loses its secrets at once.
    fn dsapp_failed(&self, id: &RegistrationId, what: &'static str) -> ProvisionError {
        let e = self.proof_failed(id, what);
        if matches!(e, ProvisionError::RevokedNow { .. }) {
            if let Err(store) = self.store.drop_registration_secrets(id) {
                return store.into();
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::crypto::{hash_password, random_bytes, MasterKey};
    use crate::store::{NewAuthenticator, NewUser, Store};
    use crate::types::{Domain, UserId};

    struct Fixture {
        prov: Provisioning,
        clock: Arc<AtomicI64>,
        dir: std::path::PathBuf,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn fixture(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("provd-dsapp-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(
            &dir.join("p.db").display().to_string(),
            MasterKey::generate(),
            2,
        )
        .unwrap();
        store
            .create_user(&NewUser {
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
            super::super::Policy::default(),
            Arc::new(move || c.load(Ordering::SeqCst)),
        );
        Fixture { prov, clock, dir }
    }

    fn exchange(
        f: &Fixture,
        r: &Registered,
    ) -> (dsapp::Session, Result<KeyExchanged, ProvisionError>) {
        let hello = dsapp::client_hello(r.registration_id.as_str(), &r.activation_password);
        let sid = hello.sid;
        let out = f.prov.dsapp_key_exchange(KeyExchangeInput {
            registration_id: r.registration_id.clone(),
            version: None,
            encrypted_client_key_nonce: HexValue::from_bytes(hello.key_nonce.to_vec()),
            client_iv: sid,
        });
        let session = match &out {
            Ok(k) => hello
                .finish(
                    k.encrypted_server_public_key.as_bytes(),
                    k.server_iv.as_bytes(),
                    k.encrypted_nonces.as_bytes(),
                )
                .unwrap(),
            Err(_) => dsapp::Session::from_bytes(&[0; dsapp::SESSION_BYTES]).unwrap(),
        };
        (session, out)
    }

    fn activate(
        f: &Fixture,
        r: &Registered,
        s: &dsapp::Session,
    ) -> Result<Activated, ProvisionError> {
        f.prov.dsapp_activate(ActivateInput {
            registration_id: r.registration_id.clone(),
            encrypted_server_nonce: HexValue::from_bytes(s.client_tag().to_vec()),
            client_iv: *s.sid(),
            proof: ActivationProof::DerivationCode(s.derivation_code(&r.serial_no)),
        })
    }

    #[test]
    fn a_session_expires_a_new_exchange_replaces_it_and_the_password_is_dropped_when_spent() {
        let f = fixture("expiry");
        let r = f
            .prov
            .dsapp_register(RegisterInput {
                credentials: Credentials {
                    user_id: UserId::parse("u").unwrap(),
                    domain: None,
                    static_password: Zeroizing::new("pw".into()),
                },
                version: Version::V2,
                serial_no: None,
                delivery: None,
            })
            .unwrap();
        let (old, out) = exchange(&f, &r);
        out.unwrap();
        f.clock.fetch_add(
            super::super::Policy::default().ephemeral_lifetime_secs + 1,
            Ordering::SeqCst,
        );
        assert!(matches!(
            activate(&f, &r, &old).unwrap_err(),
            ProvisionError::NoKeyExchange(_)
        ));
        let (latest, out) = exchange(&f, &r);
        out.unwrap();
        // The replaced session no longer activates (and counts as a failure).
        assert!(matches!(
            activate(&f, &r, &old).unwrap_err(),
            ProvisionError::ProofFailed { failures: 1, .. }
        ));
        let reg = f.prov.store.get_registration(&r.registration_id).unwrap();
        assert!(reg.sealed_secret.is_some());
        activate(&f, &r, &latest).unwrap();
        let reg = f.prov.store.get_registration(&r.registration_id).unwrap();
        assert_eq!(reg.status, RegistrationStatus::Activated);
        assert!(reg.sealed_secret.is_none() && reg.sealed_ephemeral.is_none());
    }
}
