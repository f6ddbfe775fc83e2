//! The record protections of every protocol, in one module (docs/protocols.md section 2):
//! encrypt, then MAC with a key of its own, and check the MAC in constant time before
//! decrypting anything.
//!
//! * CBC records ([`RecordKeys::seal_cbc`]): AES-256-CBC with PKCS#7 and a full HMAC-SHA256 tag. DSAPP-SRP's
//!   activation data, REGISTER's activation code and MDL's Activation Messages 1 and 2.
//! * CTR records ([`RecordKeys::seal_ctr`]): AES-256-CTR (the 16-byte IV is the whole initial counter block)
//!   and the first 16 bytes of HMAC-SHA256. DSAPP revision 3's fields.
//!
//! The MAC input is always `prefix | IV | C`; each protocol chooses a prefix that names it
//! (a label, and the identity the record is bound to), so a record of one protocol never
//! verifies as another's. Secrets at rest use AES-256-GCM under the master key
//! ([`crate::crypto::MasterKey`]), which is authenticated by construction.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use ctr::cipher::StreamCipher;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::ct_eq;

type CbcEnc = cbc::Encryptor<aes::Aes256>;
type CbcDec = cbc::Decryptor<aes::Aes256>;
type Ctr = ctr::Ctr128BE<aes::Aes256>;

/// IV length of both modes.
pub const IV_BYTES: usize = 16;
/// The CBC records' tag: a whole HMAC-SHA256.
pub const CBC_TAG_BYTES: usize = 32;
/// The CTR records' tag: the first 16 bytes of HMAC-SHA256.
pub const CTR_TAG_BYTES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the record's MAC does not verify")]
    BadMac,
    #[error("the record does not decrypt")]
    BadPadding,
}

/// One CBC record: the IV, the ciphertext and the tag, as they travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub iv: [u8; IV_BYTES],
    pub ciphertext: Vec<u8>,
    pub mac: [u8; CBC_TAG_BYTES],
}

/// An encryption key and a MAC key, each used for nothing else.
pub struct RecordKeys {
    enc: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
}

impl RecordKeys {
    /// `K_enc = HKDF(salt, IKM, enc_info, 32)`, `K_mac = HKDF(salt, IKM, mac_info, 32)`.
    pub fn derive(salt: &[u8], ikm: &[u8], enc_info: &[u8], mac_info: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
        let mut enc = Zeroizing::new([0u8; 32]);
        let mut mac = Zeroizing::new([0u8; 32]);
        hk.expand(enc_info, enc.as_mut())
            .expect("32 bytes is a valid HKDF length");
        hk.expand(mac_info, mac.as_mut())
            .expect("32 bytes is a valid HKDF length");
        RecordKeys { enc, mac }
    }

    /// Two keys derived elsewhere.
    pub fn from_keys(enc: Zeroizing<[u8; 32]>, mac: Zeroizing<[u8; 32]>) -> Self {
        RecordKeys { enc, mac }
    }

    #[cfg(test)]
    pub(crate) fn enc_key(&self) -> &[u8] {
        self.enc.as_ref()
    }

    pub(crate) fn mac_key(&self) -> &[u8] {
        self.mac.as_ref()
    }

    /// `HMAC-SHA256(K_mac, prefix | IV | C)`.
    fn tag(&self, prefix: &[&[u8]], iv: &[u8; IV_BYTES], ciphertext: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.mac.as_ref())
            .expect("HMAC takes any key length");
        for p in prefix {
            m.update(p);
        }
        m.update(iv);
        m.update(ciphertext);
        m.finalize().into_bytes().into()
    }

    /// AES-256-CBC with PKCS#7 under `iv` (16 random bytes in use), then the tag.
    pub fn seal_cbc(&self, prefix: &[&[u8]], iv: [u8; IV_BYTES], plaintext: &[u8]) -> Sealed {
        let ciphertext = CbcEnc::new(self.enc.as_ref().into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let mac = self.tag(prefix, &iv, &ciphertext);
        Sealed {
            iv,
            ciphertext,
            mac,
        }
    }

    /// Checks the tag in constant time, then decrypts.
    pub fn open_cbc(
        &self,
        prefix: &[&[u8]],
        record: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, RecordError> {
        if !ct_eq(
            &self.tag(prefix, &record.iv, &record.ciphertext),
            &record.mac,
        ) {
            return Err(RecordError::BadMac);
        }
        CbcDec::new(self.enc.as_ref().into(), &record.iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&record.ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| RecordError::BadPadding)
    }

    /// AES-256-CTR under `iv`, then the 16-byte tag: `C | tag`.
    pub fn seal_ctr(&self, prefix: &[&[u8]], iv: &[u8; IV_BYTES], plaintext: &[u8]) -> Vec<u8> {
        let mut out = plaintext.to_vec();
        Ctr::new(self.enc.as_ref().into(), iv.into()).apply_keystream(&mut out);
        let t = self.tag(prefix, iv, &out);
        out.extend_from_slice(&t[..CTR_TAG_BYTES]);
        out
    }

    /// Checks the 16-byte tag of `C | tag` in constant time, without decrypting.
    pub fn verify_ctr(
        &self,
        prefix: &[&[u8]],
        iv: &[u8; IV_BYTES],
        value: &[u8],
    ) -> Result<(), RecordError> {
        if value.len() < CTR_TAG_BYTES {
            return Err(RecordError::BadMac);
        }
        let (c, t) = value.split_at(value.len() - CTR_TAG_BYTES);
        if ct_eq(&self.tag(prefix, iv, c)[..CTR_TAG_BYTES], t) {
            Ok(())
        } else {
            Err(RecordError::BadMac)
        }
    }

    /// Checks the tag (as [`RecordKeys::verify_ctr`]), then decrypts.
    pub fn open_ctr(
        &self,
        prefix: &[&[u8]],
        iv: &[u8; IV_BYTES],
        value: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, RecordError> {
        self.verify_ctr(prefix, iv, value)?;
        let mut plain = Zeroizing::new(value[..value.len() - CTR_TAG_BYTES].to_vec());
        Ctr::new(self.enc.as_ref().into(), iv.into()).apply_keystream(&mut plain);
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> RecordKeys {
        RecordKeys::derive(b"salt", b"ikm", b"enc", b"mac")
    }

    #[test]
    fn ctr_is_aes256_with_a_128_bit_counter_nist_sp800_38a_f55() {
        let key: [u8; 32] =
            hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap()
                .try_into()
                .unwrap();
        let iv: [u8; 16] = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .unwrap()
            .try_into()
            .unwrap();
        let k = RecordKeys::from_keys(Zeroizing::new(key), Zeroizing::new([0; 32]));
        let sealed = k.seal_ctr(
            &[],
            &iv,
            &hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
                .unwrap(),
        );
        assert_eq!(
            hex::encode(&sealed[..32]),
            "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
        );
    }

    #[test]
    fn every_byte_of_both_records_is_authenticated() {
        let k = keys();
        let iv = [9u8; 16];
        let c = k.seal_cbc(&[b"label", b"id"], iv, b"a CBC record");
        assert_eq!(
            k.open_cbc(&[b"label", b"id"], &c).unwrap().as_slice(),
            b"a CBC record"
        );
        assert_eq!(
            k.open_cbc(&[b"label", b"other"], &c).unwrap_err(),
            RecordError::BadMac
        );
        for i in 0..c.ciphertext.len() {
            let mut bad = c.clone();
            bad.ciphertext[i] ^= 1;
            assert_eq!(
                k.open_cbc(&[b"label", b"id"], &bad).unwrap_err(),
                RecordError::BadMac
            );
        }
        let mut bad = c.clone();
        bad.iv[0] ^= 1;
        assert!(k.open_cbc(&[b"label", b"id"], &bad).is_err());

        let v = k.seal_ctr(&[b"label"], &iv, b"a CTR record");
        assert_eq!(v.len(), 12 + CTR_TAG_BYTES);
        assert_eq!(
            k.open_ctr(&[b"label"], &iv, &v).unwrap().as_slice(),
            b"a CTR record"
        );
        for i in 0..v.len() {
            let mut bad = v.clone();
            bad[i] ^= 1;
            assert_eq!(
                k.open_ctr(&[b"label"], &iv, &bad).unwrap_err(),
                RecordError::BadMac
            );
        }
        assert!(k.open_ctr(&[b"other"], &iv, &v).is_err());
        assert!(k.open_ctr(&[b"label"], &[0; 16], &v).is_err());
        assert!(k.open_ctr(&[b"label"], &iv, &v[..15]).is_err());
    }

    #[test]
    fn the_two_keys_differ() {
        let k = keys();
        assert_ne!(k.enc_key(), k.mac_key());
    }
}
