//! `PROVISIONCMD_REGISTER` and `PROVISIONCMD_ACTIVATE`: the standard registration, without a
//! key exchange.
//!
//! REGISTER authenticates the user with the static password (changing it first when asked),
//! assigns a software authenticator when the user has none, counts a reactivation, prepares
//! a NEW key, and returns activation data with that key, protected by a password the user
//! knows: the custom encryption password when one is given, else the (new) static password.
//! Online activation data (`PROVFLD_ACTIVATION_TYPE` 0, the default) keeps the new key in a
//! registration until ACTIVATE checks its first OTP (the authenticator's current key, if it is
//! active, keeps working until then); offline activation data (1) installs it at once, since
//! no device will call back.
//!
//! OneSpan publishes no construction for the protection; provd's is:
//!
//! ```text
//! salt = 16 random bytes
//! k    = Argon2id(password | alea, salt)       the static-password hash parameters
//! K_enc, K_mac, C, MAC as in protocols.md section 3, with HKDF salt = salt and input k,
//!      identity = "<command>:" | serial
//! PROVFLD_ACTIVATION_CODE = hex(salt | IV | C | MAC)
//! ```
//!
//! so that a code read off an e-mail costs an offline guesser what the stored hash costs.

use zeroize::Zeroizing;

use super::srp::record::{RecordError, RecordKeys, Sealed};
use super::{otp, ActivationProof, ProvisionError, Provisioning};
use crate::store::{
    NewRegistration, OutgoingMail, Registration, RegistrationKind, StandardRegistration,
};
use crate::types::{Domain, EmailAddress, HexValue, OrgUnit, SerialNumber, UserId};

/// The command name bound into the protection of REGISTER's activation code.
pub const REGISTER: &str = "REGISTER";

/// Which activation data REGISTER produces (`PROVFLD_ACTIVATION_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationType {
    Online,
    Offline,
}

impl ActivationType {
    /// 0 is online, 1 offline; OneSpan takes any other value from the authenticator's own
    /// configuration, which for provd's software authenticators is online.
    pub fn from_number(n: u32) -> Self {
        if n == 1 {
            ActivationType::Offline
        } else {
            ActivationType::Online
        }
    }

    fn label(self) -> &'static str {
        match self {
            ActivationType::Online => "XFAD",
            ActivationType::Offline => "offline",
        }
    }
}

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

/// The password that protects activation data, with its optional diversifier.
#[derive(Debug, Default)]
pub struct Protection {
    /// `PROVFLD_CUSTOM_ENCRYPT_PWD`; the static password when absent.
    pub custom_password: Option<Zeroizing<String>>,
    /// `PROVFLD_ALEA`.
    pub alea: Option<Zeroizing<String>>,
}

impl Protection {
    /// The key that protects a message: the custom encryption password when given, else
    /// `password` (what the user knows), with the alea. Costs an Argon2id computation.
    pub fn key(&self, password: &str) -> Result<PasswordKey, ProvisionError> {
        PasswordKey::derive(
            self.custom_password
                .as_deref()
                .map_or(password, |c| c.as_str()),
            self.alea.as_deref().map(|a| a.as_str()),
        )
    }
}

/// Shared data plus alea must not exceed 512 characters (the catalogue's limit).
pub const PROTECTION_MAX_CHARS: usize = 512;

/// `PROVISIONCMD_REGISTER` in.
#[derive(Debug)]
pub struct RegisterInput {
    pub credentials: Credentials,
    /// `PROVFLD_NEW_STATIC_PASSWORD`, already checked against its confirmation.
    pub new_password: Option<Zeroizing<String>>,
    pub serial_no: Option<SerialNumber>,
    pub activation_type: ActivationType,
    pub protection: Protection,
    pub delivery: Option<Delivery>,
}

/// `PROVISIONCMD_REGISTER` out.
#[derive(Debug)]
pub struct Registered {
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub serial_no: SerialNumber,
    pub activation_code: HexValue,
    pub event_reactivation_counter: i32,
}

/// `PROVISIONCMD_ACTIVATE` in: the first OTP of the user's newly registered authenticator.
#[derive(Debug)]
pub struct ActivateInput {
    pub user_id: UserId,
    pub domain: Option<Domain>,
    pub serial_no: Option<SerialNumber>,
    pub proof: ActivationProof,
}

/// `PROVISIONCMD_ACTIVATE` out.
#[derive(Debug)]
pub struct Activated {
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub serial_no: SerialNumber,
}

/// The activation data of an authenticator, as its app reads it: ASCII `key=value` pairs.
pub fn activation_plaintext(
    mode: ActivationType,
    serial: &SerialNumber,
    key: &[u8],
    reactivation_counter: i32,
) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        format!(
            "DSAPP/v1 {};serial={serial};key={};otp=TOTP-HMAC-SHA256;digits={};step={};counter={reactivation_counter}",
            mode.label(),
            hex::encode_upper(key),
            otp::DIGITS,
            otp::STEP_SECS
        )
        .into_bytes(),
    )
}

/// Activation data read back (for the reference client): mode, serial number, key.
pub fn parse_activation_plaintext(
    text: &[u8],
) -> Option<(ActivationType, SerialNumber, Zeroizing<Vec<u8>>)> {
    let text = std::str::from_utf8(text).ok()?;
    let mut parts = text.split(';');
    let mode = match parts.next()? {
        "DSAPP/v1 XFAD" => ActivationType::Online,
        "DSAPP/v1 offline" => ActivationType::Offline,
        _ => return None,
    };
    let mut serial = None;
    let mut key = None;
    for p in parts {
        match p.split_once('=')? {
            ("serial", v) => serial = SerialNumber::parse(v).ok(),
            ("key", v) => key = hex::decode(v).ok().map(Zeroizing::new),
            _ => {}
        }
    }
    Some((mode, serial?, key?))
}

const SALT_BYTES: usize = 16;

/// A password stretched for protecting one message. Derive it before a transaction: it
/// costs an Argon2id computation.
pub struct PasswordKey {
    salt: [u8; SALT_BYTES],
    keys: RecordKeys,
}

fn stretch(
    password: &str,
    alea: Option<&str>,
    salt: &[u8],
) -> Result<Zeroizing<[u8; 32]>, ProvisionError> {
    let mut material = Zeroizing::new(Vec::with_capacity(password.len() + 64));
    material.extend_from_slice(password.as_bytes());
    if let Some(a) = alea {
        material.extend_from_slice(a.as_bytes());
    }
    crate::crypto::derive_key(&material, salt).map_err(|e| ProvisionError::Invalid {
        field: "PROVFLD_CUSTOM_ENCRYPT_PWD",
        reason: e.to_string(),
    })
}

fn identity(command: &str, serial: &SerialNumber) -> Vec<u8> {
    format!("{command}:{serial}").into_bytes()
}

impl PasswordKey {
    /// Checks the combined length and stretches `password | alea` under a fresh salt.
    pub fn derive(password: &str, alea: Option<&str>) -> Result<Self, ProvisionError> {
        let total = password.chars().count() + alea.map_or(0, |a| a.chars().count());
        if total > PROTECTION_MAX_CHARS {
            return Err(ProvisionError::Invalid {
                field: "PROVFLD_ALEA",
                reason: format!(
                    "the encryption password plus the alea must not exceed {PROTECTION_MAX_CHARS} characters, got {total}"
                ),
            });
        }
        let salt: [u8; SALT_BYTES] = crate::crypto::random_bytes(SALT_BYTES)
            .as_slice()
            .try_into()
            .expect("16 bytes");
        let k = stretch(password, alea, &salt)?;
        Ok(PasswordKey {
            salt,
            keys: RecordKeys::derive(&salt, k.as_ref()),
        })
    }

    /// `salt | IV | C | MAC` for one message of `command` about `serial`.
    pub fn protect(&self, command: &str, serial: &SerialNumber, plaintext: &[u8]) -> HexValue {
        let iv: [u8; 16] = crate::crypto::random_bytes(16)
            .as_slice()
            .try_into()
            .expect("16 bytes");
        let sealed = self.keys.seal(&identity(command, serial), iv, plaintext);
        let mut out = Vec::with_capacity(SALT_BYTES + 16 + sealed.ciphertext.len() + 32);
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&sealed.iv);
        out.extend_from_slice(&sealed.ciphertext);
        out.extend_from_slice(&sealed.mac);
        HexValue::from_bytes(out)
    }
}

/// Opens what [`PasswordKey::protect`] produced (the reference client's side).
pub fn unprotect(
    password: &str,
    alea: Option<&str>,
    command: &str,
    serial: &SerialNumber,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, RecordError> {
    // salt, IV, at least one block, MAC.
    if blob.len() < SALT_BYTES + 16 + 16 + 32 || !(blob.len() - SALT_BYTES - 48).is_multiple_of(16)
    {
        return Err(RecordError::BadPadding);
    }
    let (salt, rest) = blob.split_at(SALT_BYTES);
    let (iv, rest) = rest.split_at(16);
    let (ciphertext, mac) = rest.split_at(rest.len() - 32);
    let k = stretch(password, alea, salt).map_err(|_| RecordError::BadMac)?;
    let keys = RecordKeys::derive(salt, k.as_ref());
    let sealed = Sealed {
        iv: iv.try_into().expect("16 bytes"),
        ciphertext: ciphertext.to_vec(),
        mac: mac.try_into().expect("32 bytes"),
    };
    keys.open(&identity(command, serial), &sealed)
}

impl Provisioning {
    /// `PROVISIONCMD_REGISTER`.
    pub fn register(&self, input: RegisterInput) -> Result<Registered, ProvisionError> {
        let creds = &input.credentials;
        let (user, recipient) =
            self.begin_register(creds, input.serial_no.as_ref(), input.delivery.as_ref())?;
        let new_hash = input
            .new_password
            .as_deref()
            .map(|p| crate::crypto::hash_password(p))
            .transpose()
            .map_err(|e| ProvisionError::Invalid {
                field: "PROVFLD_NEW_STATIC_PASSWORD",
                reason: e.to_string(),
            })?;
        // The password the user will know once this call returns.
        let key = input.protection.key(
            input
                .new_password
                .as_deref()
                .unwrap_or(&creds.static_password),
        )?;
        let mode = input.activation_type;
        let produce = |a: &crate::store::Assignment| {
            let plaintext =
                activation_plaintext(mode, &a.serial_no, &a.key, a.reactivation_counter);
            let code = key.protect(REGISTER, &a.serial_no, &plaintext);
            let mail = recipient.as_ref().map(|to| OutgoingMail {
                command: REGISTER.into(),
                recipient: to.as_str().to_owned(),
                subject: format!("Activation data for authenticator {}", a.serial_no),
                body: Zeroizing::new(format!(
                    "Authenticator: {}\nActivation code ({} activation, protected by your password):\n{}\nEvent reactivation counter: {}\n",
                    a.serial_no,
                    match mode {
                        ActivationType::Online => "online",
                        ActivationType::Offline => "offline",
                    },
                    code,
                    a.reactivation_counter
                )),
            });
            ((a.serial_no.clone(), code, a.reactivation_counter), mail)
        };
        let at = self.now();
        let notice = self.reactivation_notice(&user, input.serial_no.as_ref());
        // Online, the new key waits in a registration (same lifetime and failure limit as
        // the others) for ACTIVATE; offline it takes effect at once.
        let assigned = self.with_new_registration_id(|registration_id| {
            let online = NewRegistration {
                registration_id,
                kind: RegistrationKind::Standard,
                serial_no: input.serial_no.clone(),
                srp_salt: Vec::new(),
                srp_verifier: Vec::new(),
                secret: None,
                created_at: at,
                lifetime_secs: self.policy.registration_lifetime_secs,
                mail: None,
            };
            self.store.register_authenticator(
                &StandardRegistration {
                    user_pk: user.pk,
                    serial: input.serial_no.as_ref(),
                    new_password_hash: new_hash.as_deref(),
                    online: (mode == ActivationType::Online).then_some(&online),
                    rule: self.policy.reactivation,
                    notice: notice.as_ref(),
                    at,
                },
                produce,
            )
        })?;
        let (serial_no, activation_code, event_reactivation_counter) = assigned?;
        if recipient.is_some() || (notice.is_some() && mode == ActivationType::Offline) {
            self.mail_queued();
        }
        Ok(Registered {
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no,
            activation_code,
            event_reactivation_counter,
        })
    }

    /// `PROVISIONCMD_ACTIVATE`: the first OTP of the key REGISTER prepared completes that
    /// registration (the authenticator takes the new key; its old key is retired). The call
    /// carries no password, so its answer never tells whether the user exists, has an
    /// authenticator or has a registration pending: each of those, and a wrong OTP, answers
    /// the same `OtpRejected` (the reason goes to the audit trail). A wrong OTP counts
    /// against the pending registrations (revoked after `max_activation_failures`), never
    /// against the user. Only a right OTP learns that the user is locked or disabled, and a
    /// locked user cannot complete the activation. With nothing pending, the OTP of the
    /// active authenticator's current key answers `AlreadyActive`, once per time step.
    pub fn activate(&self, input: ActivateInput) -> Result<Activated, ProvisionError> {
        let domain = input.domain.clone().unwrap_or_else(Domain::master);
        let otp_value = match &input.proof {
            ActivationProof::Otp(otp) => otp,
            ActivationProof::DerivationCode(_) => {
                return Err(ProvisionError::NotImplemented(
                    "PROVISIONCMD_ACTIVATE with a derivation code (send PROVFLD_DP_RESPONSE)",
                ))
            }
        };
        let now = self.now();
        let rejected =
            |reason: String| ProvisionError::concealed(ProvisionError::OtpRejected, reason);
        let Some(user) = self.store.find_user(&input.user_id, &domain)? else {
            // The work of a check, for the time it takes.
            let _ = otp::verify_totp(&[0u8; 32], otp_value, now);
            return Err(rejected(format!(
                "unknown user {} in domain {domain}",
                input.user_id
            )));
        };
        // A named serial number that is not the user's is treated as naming nothing pending.
        let named = match &input.serial_no {
            Some(s) if self.check_owned(s, &user, "PROVFLD_SERIAL_NO").is_err() => {
                let _ = otp::verify_totp(&[0u8; 32], otp_value, now);
                return Err(rejected(format!(
                    "authenticator {s} is not assigned to {}",
                    user.user_id
                )));
            }
            other => other.as_ref(),
        };
        let pending = self.store.pending_activations(user.pk, named, now)?;
        let mut matched: Option<(&Registration, i64)> = None;
        for reg in &pending {
            let key = self.store.registration_key(reg)?;
            if let Some(step) = otp::verify_totp(&key, otp_value, now) {
                matched = Some((reg, step));
                break;
            }
        }
        if let Some((reg, step)) = matched {
            if user.disabled {
                return Err(ProvisionError::UserDisabled);
            }
            if user.locked_at(now) {
                return Err(ProvisionError::UserLocked);
            }
            if self.store.get_authenticator(&reg.serial_no)?.disabled {
                return Err(ProvisionError::AuthenticatorDisabled(reg.serial_no.clone()));
            }
            self.complete_activation(reg, &user, Some(step))?;
            return Ok(Activated {
                user_id: user.user_id,
                domain: user.domain,
                organizational_unit: user.organizational_unit,
                serial_no: reg.serial_no.clone(),
            });
        }
        // Not a pending key: the current key of an active authenticator (its device still
        // works until a pending activation completes), each time step once.
        let serials = match named {
            Some(s) => vec![s.clone()],
            None => self.store.serials_of_user(user.pk)?,
        };
        let mut active = Vec::new();
        for serial in &serials {
            let a = self.store.get_authenticator(serial)?;
            if a.status != crate::store::AuthenticatorStatus::Active || a.disabled {
                continue;
            }
            let key = self.store.authenticator_key(serial)?;
            if let Some(step) = otp::verify_totp(&key, otp_value, now) {
                if self.store.accept_otp_step(serial, step)? {
                    return Err(ProvisionError::AlreadyActive(serial.clone()));
                }
                return Err(rejected(format!(
                    "the OTP of {serial} was used already (time step {step})"
                )));
            }
            active.push(serial);
        }
        // A wrong OTP: it counts against the pending registrations (and in the active
        // authenticators' failure count), never against the user.
        for reg in &pending {
            let _ = self.proof_failed(&reg.registration_id, "PROVFLD_DP_RESPONSE");
        }
        for serial in active {
            self.store.record_otp_failure(serial)?;
        }
        Err(rejected(if serials.is_empty() {
            format!("no authenticator is assigned to {}", user.user_id)
        } else {
            format!(
                "the OTP verifies for none of the authenticators and {} pending registration(s) of {}",
                pending.len(),
                user.user_id
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial() -> SerialNumber {
        SerialNumber::parse("VDS0000001").unwrap()
    }

    #[test]
    fn protected_data_opens_only_with_the_same_password_alea_and_serial() {
        let key = PasswordKey::derive("Secret.1", Some("A1EA")).unwrap();
        let blob = key.protect("REGISTER", &serial(), b"activation data");
        let bytes = blob.as_bytes();
        assert_eq!(
            unprotect("Secret.1", Some("A1EA"), "REGISTER", &serial(), bytes)
                .unwrap()
                .as_slice(),
            b"activation data"
        );
        assert!(unprotect("Secret.2", Some("A1EA"), "REGISTER", &serial(), bytes).is_err());
        assert!(unprotect("Secret.1", None, "REGISTER", &serial(), bytes).is_err());
        assert!(unprotect("Secret.1", Some("A1EA"), "MDL_REGISTER", &serial(), bytes).is_err());
        let other = SerialNumber::parse("VDS0000002").unwrap();
        assert!(unprotect("Secret.1", Some("A1EA"), "REGISTER", &other, bytes).is_err());
        let mut tampered = bytes.to_vec();
        tampered[20] ^= 1;
        assert!(unprotect("Secret.1", Some("A1EA"), "REGISTER", &serial(), &tampered).is_err());
        assert!(unprotect(
            "Secret.1",
            Some("A1EA"),
            "REGISTER",
            &serial(),
            &bytes[..40]
        )
        .is_err());
    }

    #[test]
    fn password_and_alea_together_are_bounded() {
        let long = "p".repeat(500);
        assert!(PasswordKey::derive(&long, Some(&"a".repeat(12))).is_ok());
        let e = PasswordKey::derive(&long, Some(&"a".repeat(13)))
            .err()
            .unwrap();
        assert!(e.to_string().contains("PROVFLD_ALEA"), "{e}");
    }

    #[test]
    fn activation_plaintext_round_trips() {
        let text = activation_plaintext(ActivationType::Offline, &serial(), &[0xAB; 32], 3);
        let (mode, s, key) = parse_activation_plaintext(&text).unwrap();
        assert_eq!(mode, ActivationType::Offline);
        assert_eq!(s, serial());
        assert_eq!(key.as_slice(), &[0xAB; 32]);
        assert!(std::str::from_utf8(&text).unwrap().ends_with(";counter=3"));
    }

    #[test]
    fn activation_type_numbers() {
        assert_eq!(ActivationType::from_number(0), ActivationType::Online);
        assert_eq!(ActivationType::from_number(1), ActivationType::Offline);
        assert_eq!(ActivationType::from_number(7), ActivationType::Online);
    }
}
