//! Cryptographic building blocks shared by the protocol and storage layers: the master key that
//! seals secrets at rest (AES-256-GCM), Argon2id static-password hashes, and constant-time
//! comparison. Nothing here logs or formats a secret.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::sync::{Condvar, Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use rand::RngCore;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("the master key must be 64 hex characters (32 bytes)")]
    BadMasterKey,
    #[error("a sealed secret failed its integrity check (wrong master key or tampered row)")]
    Unseal,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// The 32-byte key under which every secret at rest is sealed. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_hex(raw: &str) -> Result<Self, CryptoError> {
        let bytes = Zeroizing::new(hex::decode(raw.trim()).map_err(|_| CryptoError::BadMasterKey)?);
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadMasterKey)?;
        Ok(Self(key))
    }

    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Hex form, for writing a freshly generated key file. The caller owns the result's secrecy.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    /// Seals `plaintext`; `context` (for example `authenticator-key:VDS0000001`) is bound as
    /// associated data so that a sealed value copied to another row does not open there.
    /// Layout: 12-byte nonce | ciphertext | 16-byte tag.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new((&self.0).into());
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(12 + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < 12 + 16 {
            return Err(CryptoError::Unseal);
        }
        let cipher = Aes256Gcm::new((&self.0).into());
        let (nonce, body) = sealed.split_at(12);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Unseal)
    }
}

/// Hashes a static password with Argon2id (the crate's defaults: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::Hash(e.to_string()))
}

/// Argon2 working memory (19 MiB per check with the default parameters), reused across
/// checks and bounded: at most one buffer per core exists, and a check waits for a free one.
/// Without this, every blocking thread that ever ran a check keeps its own copy in the
/// allocator, and a busy server's memory grows to gigabytes.
struct ArgonMemory {
    free: Mutex<(Vec<Vec<Block>>, usize)>,
    returned: Condvar,
    capacity: usize,
}

fn argon_memory() -> &'static ArgonMemory {
    static POOL: OnceLock<ArgonMemory> = OnceLock::new();
    POOL.get_or_init(|| ArgonMemory {
        free: Mutex::new((Vec::new(), 0)),
        returned: Condvar::new(),
        capacity: std::thread::available_parallelism().map_or(2, |n| n.get()),
    })
}

impl ArgonMemory {
    fn take(&self, blocks: usize) -> Vec<Block> {
        let mut guard = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(mut buf) = guard.0.pop() {
                buf.resize(blocks, Block::default());
                return buf;
            }
            if guard.1 < self.capacity {
                guard.1 += 1;
                return vec![Block::default(); blocks];
            }
            guard = self.returned.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give(&self, mut buf: Vec<Block>) {
        buf.zeroize();
        let mut guard = self.free.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.push(buf);
        self.returned.notify_one();
    }
}

/// Checks a static password against its stored PHC string, in constant time. A malformed
/// hash never verifies.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(hash.algorithm),
        Params::try_from(&hash),
        hash.salt,
        hash.hash,
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let pool = argon_memory();
    let mut memory = pool.take(blocks);
    let computed = argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory)
        .is_ok();
    pool.give(memory);
    computed && ct_eq(&out, expected.as_bytes())
}

/// A 32-byte key stretched from a password with Argon2id (the same parameters as static
/// password hashes), for secrets that travel protected by a password the user knows: an
/// offline guess costs what a guess at the stored hash costs. Uses the bounded memory pool.
pub fn derive_key(password: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let argon = Argon2::default();
    let blocks = argon.params().block_count();
    let pool = argon_memory();
    let mut memory = pool.take(blocks);
    let mut out = Zeroizing::new([0u8; 32]);
    let result = argon.hash_password_into_with_memory(password, salt, out.as_mut(), &mut memory);
    pool.give(memory);
    result.map_err(|e| CryptoError::Hash(e.to_string()))?;
    Ok(out)
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `N` bytes from the operating system's CSPRNG, on the stack (IVs, nonces, session ids).
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng.fill_bytes(&mut out);
    out
}

/// A uniform index below `bound` from the operating system's CSPRNG (alphabet draws).
pub fn random_index(bound: usize) -> usize {
    use rand::Rng;
    OsRng.gen_range(0..bound)
}

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; n]);
    OsRng.fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_context() {
        let key = MasterKey::generate();
        let sealed = key.seal("authenticator-key:VDS0000001", b"secret");
        assert_eq!(
            key.open("authenticator-key:VDS0000001", &sealed)
                .unwrap()
                .as_slice(),
            b"secret"
        );
        assert!(key.open("authenticator-key:VDS0000002", &sealed).is_err());
        assert!(MasterKey::generate()
            .open("authenticator-key:VDS0000001", &sealed)
            .is_err());
    }

    #[test]
    fn tampered_ciphertext_is_refused() {
        let key = MasterKey::generate();
        let mut sealed = key.seal("c", b"secret");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(key.open("c", &sealed).is_err());
    }

    #[test]
    fn password_hash_round_trip() {
        let phc = hash_password("1.Password").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("1.Password", &phc));
        assert!(!verify_password("1.password", &phc));
        assert!(!verify_password("1.Password", "not a hash"));
    }

    #[test]
    fn verification_matches_the_reference_verifier() {
        use argon2::password_hash::PasswordVerifier;
        let phc = hash_password("s3cret").unwrap();
        let parsed = PasswordHash::new(&phc).unwrap();
        for candidate in ["s3cret", "s3cret ", "", "S3cret"] {
            assert_eq!(
                verify_password(candidate, &phc),
                Argon2::default()
                    .verify_password(candidate.as_bytes(), &parsed)
                    .is_ok(),
                "{candidate:?}"
            );
        }
        // Concurrent checks share the bounded memory and all answer right.
        std::thread::scope(|s| {
            for i in 0..6 {
                let phc = &phc;
                s.spawn(move || {
                    assert_eq!(
                        verify_password(if i % 2 == 0 { "s3cret" } else { "x" }, phc),
                        i % 2 == 0
                    )
                });
            }
        });
    }

    #[test]
    fn master_key_parses_only_32_bytes_of_hex() {
        assert!(MasterKey::from_hex(&"ab".repeat(32)).is_ok());
        assert!(MasterKey::from_hex(&"ab".repeat(31)).is_err());
        assert!(MasterKey::from_hex("zz").is_err());
        assert_eq!(format!("{:?}", MasterKey::generate()), "MasterKey(..)");
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
