//! DSAPP-SRP (protocols.md section 3): SRP-6a over the RFC 5054 2048-bit group with SHA-256.
//! This part covers registration: the registration identifier, the activation password with
//! its Luhn mod N check character, and the salt and verifier that are all the server keeps.

pub mod math;
pub mod record;

use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::random_index;
use crate::types::{RegistrationId, SerialNumber};

/// Salt length in bytes.
pub const SALT_BYTES: usize = 16;

/// The protocol's SRP: SHA-256 over the RFC 5054 2048-bit group.
pub fn srp() -> math::Srp<Sha256> {
    math::Srp::new(math::group_2048())
}

/// The verifier `v = g^x mod N` for an identity and password, padded to 256 bytes.
pub fn verifier(salt: &[u8], identity: &str, password: &str) -> Vec<u8> {
    let srp = srp();
    let x = srp.x(salt, identity.as_bytes(), password.as_bytes());
    srp.group.pad(&srp.verifier(&x))
}

const REG_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh registration identifier: 8 mixed-case alphanumerics from the OS CSPRNG.
pub fn new_registration_id() -> RegistrationId {
    let id: String = (0..RegistrationId::LEN)
        .map(|_| REG_ID_ALPHABET[random_index(REG_ID_ALPHABET.len())] as char)
        .collect();
    RegistrationId::parse(&id).expect("generated from the alphabet")
}

/// The activation password alphabet: A-Z and 2-9 without I, O, 0 and 1 (32 characters).
pub const ACTIVATION_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// The Luhn mod N check character for `payload` over [`ACTIVATION_ALPHABET`], or `None` when
/// `payload` has a character outside it.
pub fn luhn_check_char(payload: &str) -> Option<char> {
    super::luhn::check_char(ACTIVATION_ALPHABET, payload.as_bytes()).map(char::from)
}

/// Whether a full activation password (8 characters plus check character) is well formed.
pub fn activation_password_is_valid(password: &str) -> bool {
    if password.len() != 9 || !password.is_ascii() {
        return false;
    }
    let (payload, check) = password.split_at(8);
    luhn_check_char(payload).map(String::from).as_deref() == Some(check)
}

/// A fresh activation password: 8 random characters and the Luhn mod N check character.
pub fn new_activation_password() -> Zeroizing<String> {
    let mut pw = Zeroizing::new(String::with_capacity(9));
    for _ in 0..8 {
        pw.push(ACTIVATION_ALPHABET[random_index(ACTIVATION_ALPHABET.len())] as char);
    }
    let check = luhn_check_char(&pw).expect("generated from the alphabet");
    pw.push(check);
    pw
}

/// The session state kept (sealed) between the two exchange steps: K, M1 and M2.
pub const SESSION_BYTES: usize = 96;

/// The activation data an app receives inside the record: ASCII `key=value` pairs.
pub fn activation_plaintext(serial: &SerialNumber, key: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        format!(
            "DSAPP-SRP/v1 activation;serial={serial};key={};otp=TOTP-HMAC-SHA256;digits={};step={}",
            hex::encode_upper(key),
            super::otp::DIGITS,
            super::otp::STEP_SECS
        )
        .into_bytes(),
    )
}

/// The fields of an activation plaintext, for the reference client.
pub fn parse_activation_plaintext(text: &[u8]) -> Option<(SerialNumber, Zeroizing<Vec<u8>>)> {
    let text = std::str::from_utf8(text).ok()?;
    let mut parts = text.split(';');
    if parts.next()? != "DSAPP-SRP/v1 activation" {
        return None;
    }
    let mut serial = None;
    let mut key = None;
    for p in parts {
        match p.split_once('=')? {
            ("serial", v) => serial = SerialNumber::parse(v).ok(),
            ("key", v) => key = hex::decode(v).ok().map(Zeroizing::new),
            _ => {}
        }
    }
    Some((serial?, key?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_depends_on_identity_and_password() {
        let s = [7u8; SALT_BYTES];
        let v = verifier(&s, "e3wfISG9", "Tb048aX1");
        assert_eq!(v.len(), 256);
        assert_ne!(v, verifier(&s, "e3wfISG9", "Tb048aX2"));
        assert_ne!(v, verifier(&s, "e3wfISG8", "Tb048aX1"));
    }

    #[test]
    fn activation_passwords_carry_a_valid_check_character() {
        for _ in 0..200 {
            let pw = new_activation_password();
            assert_eq!(pw.len(), 9);
            assert!(pw.bytes().all(|b| ACTIVATION_ALPHABET.contains(&b)));
            assert!(activation_password_is_valid(&pw), "{}", pw.as_str());
        }
    }

    #[test]
    fn luhn_catches_a_single_typo_and_a_transposition() {
        let pw = "ABCDEFGH";
        let full = format!("{pw}{}", luhn_check_char(pw).unwrap());
        assert!(activation_password_is_valid(&full));
        assert!(!activation_password_is_valid(&full.replacen('C', "D", 1)));
        assert!(!activation_password_is_valid(&full.replacen("AB", "BA", 1)));
        assert!(luhn_check_char("AB1").is_none());
    }

    #[test]
    fn registration_ids_are_eight_alphanumerics() {
        let a = new_registration_id();
        assert_eq!(a.as_str().len(), 8);
        assert_ne!(a, new_registration_id());
    }
}
