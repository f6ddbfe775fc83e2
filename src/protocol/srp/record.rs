//! DSAPP-SRP record protection (protocols.md section 3): HKDF-SHA256 keys from the session
//! key, AES-256-CBC with PKCS#7, and an HMAC-SHA256 tag over the label, the identity, the IV
//! and the ciphertext, checked in constant time before anything is decrypted. The mechanics
//! are the shared [`crate::protocol::record`]; this module fixes DSAPP-SRP's labels.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

pub use crate::protocol::record::{RecordError, Sealed};

const LABEL: &[u8] = b"DSAPP-SRP/v1";

/// Digits of a derivation code.
pub const DERIVATION_DIGITS: usize = 15;

/// The derivation code of protocols.md section 3: `HMAC-SHA256(K_mac, "DSAPP-SRP/v1
/// derivation" | BE16(len(I)) | I | serial)` taken as a big-endian integer mod 10^15, written
/// as 15 decimal digits.
pub fn derivation_code(mac_key: &[u8], identity: &[u8], serial: &[u8]) -> Zeroizing<String> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(mac_key).expect("HMAC takes any key length");
    m.update(b"DSAPP-SRP/v1 derivation");
    m.update(&(identity.len() as u16).to_be_bytes());
    m.update(identity);
    m.update(serial);
    let tag = Zeroizing::new(m.finalize().into_bytes());
    const MODULUS: u128 = 1_000_000_000_000_000;
    let value = tag
        .iter()
        .fold(0u128, |acc, b| (acc * 256 + u128::from(*b)) % MODULUS);
    Zeroizing::new(format!("{value:0width$}", width = DERIVATION_DIGITS))
}

/// Checks a derivation code in constant time (the length is public).
pub fn verify_derivation_code(mac_key: &[u8], identity: &[u8], serial: &[u8], code: &str) -> bool {
    let expected = derivation_code(mac_key, identity, serial);
    crate::crypto::ct_eq(expected.as_bytes(), code.trim().as_bytes())
}

/// The two keys of one session (or of one password-protected message).
pub struct RecordKeys(crate::protocol::record::RecordKeys);

impl RecordKeys {
    /// `K_enc = Expand("DSAPP-SRP/v1 enc")`, `K_mac = Expand("DSAPP-SRP/v1 mac")` from
    /// HKDF-SHA256 with salt s and input K.
    pub fn derive(salt: &[u8], session_key: &[u8]) -> Self {
        RecordKeys(crate::protocol::record::RecordKeys::derive(
            salt,
            session_key,
            b"DSAPP-SRP/v1 enc",
            b"DSAPP-SRP/v1 mac",
        ))
    }

    #[cfg(test)]
    fn enc_key(&self) -> &[u8] {
        self.0.enc_key()
    }

    #[cfg(test)]
    fn mac_key(&self) -> &[u8] {
        self.0.mac_key()
    }

    /// `K_mac`, which the server keeps (sealed) from the activation data to the activation,
    /// where a derivation code is checked against it.
    pub fn mac_key_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.mac_key().to_vec())
    }

    /// Encrypts and tags `plaintext` under the given IV (16 random bytes in use):
    /// `MAC = HMAC-SHA256(K_mac, "DSAPP-SRP/v1" | BE16(len(I)) | I | IV | C)`.
    pub fn seal(&self, identity: &[u8], iv: [u8; 16], plaintext: &[u8]) -> Sealed {
        let len = (identity.len() as u16).to_be_bytes();
        self.0.seal_cbc(&[LABEL, &len, identity], iv, plaintext)
    }

    /// Checks the tag in constant time, then decrypts.
    pub fn open(
        &self,
        identity: &[u8],
        record: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, RecordError> {
        let len = (identity.len() as u16).to_be_bytes();
        self.0.open_cbc(&[LABEL, &len, identity], record)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn derivation_code_known_answer() {
        // K_mac and I of the protocols.md section 3 vector; the code computed independently
        // (Python hmac) from the formula.
        let k_mac = hex::decode("1A604B086CE46B4EA1F045EC0991140501F4EE09DA18CF6DAD12689C9C231F01")
            .unwrap();
        let code = derivation_code(&k_mac, b"e3wfISG9", b"VDS0000001");
        assert_eq!(code.as_str(), "520589704086610");
        assert!(verify_derivation_code(
            &k_mac,
            b"e3wfISG9",
            b"VDS0000001",
            &code
        ));
        assert!(!verify_derivation_code(
            &k_mac,
            b"e3wfISG9",
            b"VDS0000002",
            &code
        ));
        assert!(!verify_derivation_code(
            &k_mac,
            b"e3wfISG8",
            b"VDS0000001",
            &code
        ));
        assert!(!verify_derivation_code(
            &k_mac,
            b"e3wfISG9",
            b"VDS0000001",
            &code[..14]
        ));
    }
    use super::*;

    fn spec_keys() -> RecordKeys {
        let s = hex::decode("BEB25379D1A8581EB5A727673A2441EE").unwrap();
        let k = hex::decode("038A8D94327601CED8057562D74B80318D111A0550DC440CE7E366CF5A15E4E2")
            .unwrap();
        RecordKeys::derive(&s, &k)
    }

    #[test]
    fn spec_vector() {
        let keys = spec_keys();
        assert_eq!(
            hex::encode_upper(keys.enc_key()),
            "C93E238F60ED0EA7FD3FABEF3A699BAF0A000BE2371EEEDAE1621CA151C7B376"
        );
        assert_eq!(
            hex::encode_upper(keys.mac_key()),
            "1A604B086CE46B4EA1F045EC0991140501F4EE09DA18CF6DAD12689C9C231F01"
        );
        let iv: [u8; 16] = hex::decode("000102030405060708090A0B0C0D0E0F")
            .unwrap()
            .try_into()
            .unwrap();
        let rec = keys.seal(
            b"e3wfISG9",
            iv,
            b"OUR-DESIGN TEST VECTOR: activation message 1",
        );
        assert_eq!(
            hex::encode_upper(&rec.ciphertext),
            "FA20E16ECD98132B2E1F451CCC4DF845FB5B30ED4E708F6A069FAA0A8B54D711AE55ED3668E5E9A9C37219695BDEC712"
        );
        assert_eq!(
            hex::encode_upper(rec.mac),
            "2AD515E56C06BE1EF63BCB2BBBE1F47ED02DFEAC30379FD62058DEA6D684FF5A"
        );
        assert_eq!(
            keys.open(b"e3wfISG9", &rec).unwrap().as_slice(),
            b"OUR-DESIGN TEST VECTOR: activation message 1"
        );
    }

    #[test]
    fn tampering_is_caught_before_decryption() {
        let keys = spec_keys();
        let rec = keys.seal(b"id", [7; 16], b"payload");
        let mut c = rec.clone();
        c.ciphertext[0] ^= 1;
        assert_eq!(keys.open(b"id", &c).unwrap_err(), RecordError::BadMac);
        let mut i = rec.clone();
        i.iv[0] ^= 1;
        assert_eq!(keys.open(b"id", &i).unwrap_err(), RecordError::BadMac);
        assert_eq!(keys.open(b"other", &rec).unwrap_err(), RecordError::BadMac);
    }
}
