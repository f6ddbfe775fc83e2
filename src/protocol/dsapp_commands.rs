//! `PROVISIONCMD_DSAPPREGISTER`, `PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA` and
//! `PROVISIONCMD_DSAPPACTIVATE`: DSAPP v1/v2 online activation over the ECDH exchange of
//! [`super::dsapp`].
//!
//! Register authenticates the user, assigns an authenticator and creates a registration that
//! keeps only chsKey (sealed); the activation password goes to the caller (or by e-mail) and
//! is never stored. The key exchange decrypts the client's public key with chsKey (noise, and
//! a counted failure, when the activation password is wrong), answers the server's, and
//! returns the activation data encrypted under the new session key; the session is kept,
//! sealed, for the activation, which checks the client's proof of the session key and then an
//! OTP or a derivation code. Same lifetime, single use and failure limit as DSAPP-SRP.

use zeroize::Zeroizing;

use super::dsapp::{self, Field, SealedField, Version};
use super::standard::{activation_plaintext, ActivationType, Credentials, Delivery};
use super::{otp, srp, ActivationProof, ProvisionError, Provisioning};
use crate::store::{
    NewRegistration, OutgoingMail, RegistrationKind, RegistrationStatus, StoreError,
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
    pub encrypted_client_key_nonce: HexValue,
    pub client_iv: [u8; 16],
}

/// `PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA` out.
#[derive(Debug)]
pub struct KeyExchanged {
    pub version: Version,
    pub encrypted_server_public_key: HexValue,
    pub encrypted_nonces: HexValue,
    pub server_iv: HexValue,
    pub activation_code: SealedField,
    pub event_reactivation_counter: SealedField,
}

/// `PROVISIONCMD_DSAPPACTIVATE` in.
#[derive(Debug)]
pub struct ActivateInput {
    pub registration_id: RegistrationId,
    pub encrypted_server_nonce: HexValue,
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
            let chs = dsapp::chs_key(registration_id.as_str(), &activation_password);
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
                secret: Some(Zeroizing::new(chs.to_vec())),
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
        want: RegistrationStatus,
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
        Self::require_status(&reg, want)?;
        Ok((reg, version))
    }

    /// `PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA`: the key exchange and the activation data
    /// in one step.
    pub fn dsapp_key_exchange(
        &self,
        input: KeyExchangeInput,
    ) -> Result<KeyExchanged, ProvisionError> {
        let id = input.registration_id;
        let (reg, version) = self.dsapp_registration(&id, RegistrationStatus::Pending)?;
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
        let secret = self
            .store
            .open_secret(&reg)?
            .ok_or_else(|| StoreError::Corrupt(format!("registration {id} has no chsKey")))?;
        let chs: [u8; dsapp::KEY_BYTES] = secret
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("registration {id}: chsKey length")))?;
        let chs = Zeroizing::new(chs);
        let exchange = match dsapp::server_key_exchange(
            &chs,
            input.encrypted_client_key_nonce.as_bytes(),
            &input.client_iv,
        ) {
            Ok(x) => x,
            Err(dsapp::DsappError::BadClientKey) => {
                return Err(self.proof_failed(
                    &id,
                    "PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE (wrong activation password?)",
                ))
            }
            Err(e) => {
                return Err(ProvisionError::Invalid {
                    field: "PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE",
                    reason: e.to_string(),
                })
            }
        };
        let key = self.store.registration_key(&reg)?;
        let counter = self.store.get_authenticator(&reg.serial_no)?;
        let session = &exchange.session;
        let plaintext = activation_plaintext(
            ActivationType::Online,
            &reg.serial_no,
            &key,
            counter.reactivation_counter,
        );
        let activation_code =
            dsapp::seal_field(session, version, Field::ActivationCode, &plaintext);
        let event_reactivation_counter = dsapp::seal_field(
            session,
            version,
            Field::EventReactivationCounter,
            counter.reactivation_counter.to_string().as_bytes(),
        );
        if !self
            .store
            .deliver_with_session(&id, &session.to_bytes(), reg.expires_at)?
        {
            return Err(ProvisionError::RegistrationSpent {
                id,
                state: "no longer pending",
            });
        }
        Ok(KeyExchanged {
            version,
            encrypted_server_public_key: HexValue::from_bytes(
                exchange.encrypted_server_public_key.to_vec(),
            ),
            encrypted_nonces: HexValue::from_bytes(exchange.encrypted_nonces.to_vec()),
            server_iv: HexValue::from_bytes(exchange.server_iv.to_vec()),
            activation_code,
            event_reactivation_counter,
        })
    }

    /// `PROVISIONCMD_DSAPPACTIVATE`: the client's proof of the session key, then its OTP or
    /// derivation code, spend the registration and activate the authenticator.
    pub fn dsapp_activate(&self, input: ActivateInput) -> Result<Activated, ProvisionError> {
        let id = input.registration_id;
        let (reg, _) = self.dsapp_registration(&id, RegistrationStatus::Delivered)?;
        let user = self.store.user_by_pk(reg.user_pk)?;
        let fresh = reg.ephemeral_expires_at.is_some_and(|t| t > self.now());
        let session = match self.store.open_session(&reg)? {
            Some(s) if fresh => dsapp::Session::from_bytes(&s)
                .map_err(|e| StoreError::Corrupt(format!("registration {id}: {e}")))?,
            _ => return Err(ProvisionError::NoKeyExchange(id)),
        };
        if !dsapp::verify_server_nonce_proof(
            &session,
            &input.client_iv,
            input.encrypted_server_nonce.as_bytes(),
        ) {
            return Err(self.proof_failed(&id, "PROVFLD_ENCRYPTED_SERVER_NONCE"));
        }
        let key = self.store.registration_key(&reg)?;
        let (ok, step) = match &input.proof {
            ActivationProof::Otp(code) => {
                let step = otp::verify_totp(&key, code, self.now());
                (step.is_some(), step)
            }
            ActivationProof::DerivationCode(code) => {
                (dsapp::verify_derivation_code(&key, &session, code), None)
            }
        };
        if !ok {
            let what = match input.proof {
                ActivationProof::Otp(_) => "PROVFLD_DP_RESPONSE",
                ActivationProof::DerivationCode(_) => "PROVFLD_DERIVATION_CODE",
            };
            return Err(self.proof_failed(&id, what));
        }
        self.complete_activation(&reg, &user, step)?;
        Ok(Activated {
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no: reg.serial_no,
        })
    }
}
