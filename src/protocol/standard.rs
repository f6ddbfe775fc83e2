//! The cryptography of the standard registration (`PROVISIONCMD_REGISTER`, whose command
//! module is `crate::commands::register`; `PROVISIONCMD_MDL_REGISTER` protects its message the
//! same way): activation data and its protection under a password.
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

use super::otp;
use super::srp::record::{RecordError, RecordKeys, Sealed};
use crate::types::{HexValue, SerialNumber};

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

/// Shared data plus alea must not exceed 512 characters (the catalogue's limit).
pub const PROTECTION_MAX_CHARS: usize = 512;

/// Why activation data could not be protected.
#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    #[error("the encryption password plus the alea must not exceed {PROTECTION_MAX_CHARS} characters, got {0}")]
    TooLong(usize),
    #[error("{0}")]
    Stretch(String),
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
) -> Result<Zeroizing<[u8; 32]>, ProtectionError> {
    let mut material = Zeroizing::new(Vec::with_capacity(password.len() + 64));
    material.extend_from_slice(password.as_bytes());
    if let Some(a) = alea {
        material.extend_from_slice(a.as_bytes());
    }
    crate::crypto::derive_key(&material, salt).map_err(|e| ProtectionError::Stretch(e.to_string()))
}

fn identity(command: &str, serial: &SerialNumber) -> Vec<u8> {
    format!("{command}:{serial}").into_bytes()
}

impl PasswordKey {
    /// Checks the combined length and stretches `password | alea` under a fresh salt.
    pub fn derive(password: &str, alea: Option<&str>) -> Result<Self, ProtectionError> {
        let total = password.chars().count() + alea.map_or(0, |a| a.chars().count());
        if total > PROTECTION_MAX_CHARS {
            return Err(ProtectionError::TooLong(total));
        }
        let salt: [u8; SALT_BYTES] = crate::crypto::random_array();
        let k = stretch(password, alea, &salt)?;
        Ok(PasswordKey {
            salt,
            keys: RecordKeys::derive(&salt, k.as_ref()),
        })
    }

    /// `salt | IV | C | MAC` for one message of `command` about `serial`.
    pub fn protect(&self, command: &str, serial: &SerialNumber, plaintext: &[u8]) -> HexValue {
        let iv: [u8; 16] = crate::crypto::random_array();
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
        assert!(matches!(e, ProtectionError::TooLong(513)), "{e}");
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
