//! DSAPP-SRP (protocols.md section 3): SRP-6a over the RFC 5054 2048-bit group with SHA-256.
//! This part covers registration: the registration identifier, the activation password with
//! its Luhn mod N check character, and the salt and verifier that are all the server keeps.

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Encoding, U2048};
use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::types::{Domain, RegistrationId, SerialNumber, UserId};

/// RFC 5054 Appendix A, the 2048-bit group's prime N (generator g = 2).
pub const N_2048_HEX: &str = concat!(
    "AC6BDB41324A9A9BF166DE5E1389582FAF72B6651987EE07FC3192943DB56050",
    "A37329CBB4A099ED8193E0757767A13DD52312AB4B03310DCD7F48A9DA04FD50",
    "E8083969EDB767B0CF6095179A163AB3661A05FBD5FAAAE82918A9962F0B93B8",
    "55F97993EC975EEAA80D740ADBF4FF747359D041D5C33EA71D281E446B14773B",
    "CA97B43A23FB801676BD207A436C6481F1D2B9078717461A5B9D32E688F87748",
    "544523B524B0D57D5EA77A2775D2ECFA032CFBDBF52FB37861602790",
    "04E57AE6AF874E7303CE53299CCC041C7BC308D82A5698F3A8D0C38271AE35F8",
    "E9DBFBB694B5C803D89F7AE435DE236D525F54759B65E372FCD68EF20FA7111F",
    "9E4AFF73"
);

/// Bytes of one group element (PAD width).
pub const GROUP_BYTES: usize = 256;
/// Salt length in bytes.
pub const SALT_BYTES: usize = 16;

fn modulus() -> U2048 {
    U2048::from_be_hex(N_2048_HEX)
}

/// `g^e mod N` in constant time (Montgomery form).
pub fn pow_g(exponent: &U2048) -> U2048 {
    let params = DynResidueParams::new(&modulus());
    DynResidue::new(&U2048::from_u8(2), params)
        .pow(exponent)
        .retrieve()
}

/// `x = H(s | H(I | ":" | P))`.
pub fn private_key(salt: &[u8], identity: &str, password: &str) -> Zeroizing<[u8; 32]> {
    let mut inner = Sha256::new();
    inner.update(identity.as_bytes());
    inner.update(b":");
    inner.update(password.as_bytes());
    let inner: Zeroizing<[u8; 32]> = Zeroizing::new(inner.finalize().into());
    let mut outer = Sha256::new();
    outer.update(salt);
    outer.update(inner.as_slice());
    Zeroizing::new(outer.finalize().into())
}

/// The verifier `v = g^x mod N`, padded to 256 bytes.
pub fn verifier(salt: &[u8], identity: &str, password: &str) -> Vec<u8> {
    let x = private_key(salt, identity, password);
    let mut wide = Zeroizing::new([0u8; GROUP_BYTES]);
    wide[GROUP_BYTES - 32..].copy_from_slice(x.as_slice());
    let exponent = Zeroizing::new(U2048::from_be_slice(wide.as_slice()));
    pow_g(&exponent).to_be_bytes().to_vec()
}

const REG_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh registration identifier: 8 mixed-case alphanumerics from the OS CSPRNG.
pub fn new_registration_id() -> RegistrationId {
    let id: String = (0..RegistrationId::LEN)
        .map(|_| REG_ID_ALPHABET[OsRng.gen_range(0..REG_ID_ALPHABET.len())] as char)
        .collect();
    RegistrationId::parse(&id).expect("generated from the alphabet")
}

/// The activation password alphabet: A-Z and 2-9 without I, O, 0 and 1 (32 characters).
pub const ACTIVATION_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// The Luhn mod N check character for `payload` over [`ACTIVATION_ALPHABET`], or `None` when
/// `payload` has a character outside it.
pub fn luhn_check_char(payload: &str) -> Option<char> {
    let n = ACTIVATION_ALPHABET.len();
    let mut factor = 2;
    let mut sum = 0;
    for c in payload.bytes().rev() {
        let code = ACTIVATION_ALPHABET.iter().position(|&a| a == c)?;
        let addend = factor * code;
        sum += addend / n + addend % n;
        factor = if factor == 2 { 1 } else { 2 };
    }
    let check = (n - sum % n) % n;
    Some(ACTIVATION_ALPHABET[check] as char)
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
        pw.push(ACTIVATION_ALPHABET[OsRng.gen_range(0..ACTIVATION_ALPHABET.len())] as char);
    }
    let check = luhn_check_char(&pw).expect("generated from the alphabet");
    pw.push(check);
    pw
}

/// What `dsappSRPRegister` needs.
#[derive(Debug)]
pub struct RegisterInput {
    pub component_type: Option<String>,
    pub user_id: UserId,
    pub domain: Option<Domain>,
    pub static_password: Zeroizing<String>,
    pub serial_no: Option<SerialNumber>,
}

/// What `dsappSRPRegister` returns. The activation password exists only here, on its way to
/// the caller; the store keeps the SRP salt and verifier.
#[derive(Debug)]
pub struct Registered {
    pub registration_id: RegistrationId,
    pub activation_password: Zeroizing<String>,
    pub serial_no: SerialNumber,
    pub user_id: UserId,
    pub domain: Domain,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_matches_the_spec_vector() {
        let s = hex::decode("BEB25379D1A8581EB5A727673A2441EE").unwrap();
        let x = private_key(&s, "e3wfISG9", "Tb048aX1");
        assert_eq!(
            hex::encode_upper(x.as_slice()),
            "E91B4DC4B722D8987675E6E61F3F6E160834570E73A12480649E536606374598"
        );
    }

    #[test]
    fn group_prime_matches_the_spec_multiplier() {
        let mut h = Sha256::new();
        h.update(modulus().to_be_bytes());
        let mut g = [0u8; GROUP_BYTES];
        g[GROUP_BYTES - 1] = 2;
        h.update(g);
        assert_eq!(
            hex::encode_upper(h.finalize()),
            "05B9E8EF059C6B32EA59FC1D322D37F04AA30BAE5AA9003B8321E21DDB04E300"
        );
    }

    #[test]
    fn verifier_is_g_to_the_x() {
        let s = hex::decode("BEB25379D1A8581EB5A727673A2441EE").unwrap();
        let v = verifier(&s, "e3wfISG9", "Tb048aX1");
        assert_eq!(v.len(), GROUP_BYTES);
        // g^1 = 2: the exponentiation itself is sound.
        assert_eq!(pow_g(&U2048::ONE), U2048::from_u8(2));
        // A different password gives a different verifier.
        assert_ne!(v, verifier(&s, "e3wfISG9", "Tb048aX2"));
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
