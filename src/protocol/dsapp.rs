//! DSAPP v1/v2 (protocols.md section 4): the ECDH key exchange behind
//! `PROVISIONCMD_DSAPPREGISTER` and the commands that follow it. Pure: bytes in, bytes out; no
//! XML, no SQL. The wire layer hex-encodes (section 2) and the store seals [`Session::to_bytes`]
//! between steps (section 7).
//!
//! OneSpan publishes the shapes only; the inside is ours and is fixed here:
//!
//! * Sizes: client nonce 4 bytes, server nonce 12 bytes, keys 16 bytes, IVs 16 bytes. Public
//!   keys travel as the 64-byte uncompressed P-256 point without its `0x04` prefix.
//! * `chsKey = HKDF-SHA256(salt = registration id, IKM = activation password,
//!   info = "DSAPP/v2 chs")`, 16 bytes ([`chs_key`]).
//! * Encryption is AES-128-CTR (`Ctr128BE<Aes128>`): the whole 16-byte IV is the initial counter
//!   block, incremented as one 128-bit big-endian integer.
//! * Client hello: an ephemeral P-256 key, a 4-byte client nonce and a random client IV;
//!   `PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE = CTR(chsKey, client IV, pub64 | client nonce)`,
//!   exactly 68 bytes (136 hex), sent with `PROVFLD_CLIENT_IV`.
//! * Server key exchange ([`server_key_exchange`]): decrypts, and requires a valid P-256 point
//!   (a wrong activation password decrypts to noise, which is [`DsappError::BadClientKey`]; the
//!   caller counts it as a failed proof). The server draws an ephemeral key, a 12-byte server
//!   nonce and a random server IV different from the client's, and encrypts, as one keystream,
//!   `CTR(chsKey, server IV, server pub64 | server nonce | client nonce)`: the first 64 bytes are
//!   `PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY` (128 hex), the last 16 `PROVFLD_ENCRYPTED_NONCES`
//!   (32 hex). The echoed client nonce is how the client knows the server holds chsKey.
//! * Session key: `HKDF-SHA256(salt = client nonce | server nonce, IKM = x-coordinate of the
//!   ECDH point, info = "DSAPP/v2 session")`, 16 bytes.
//! * Activation data fields: per-field key `HKDF-SHA256(no salt, IKM = session key,
//!   info = "DSAPP/v2 field " + label)`, labels "activation code", "event reactivation
//!   counter", "activation message". V1 uses an all-zero IV and sends none: safe because every
//!   field has its own key in every session and is sealed once. V2 draws a random IV per field
//!   and sends it as the field's `*_IV` attribute.
//! * Key confirmation: the client returns `PROVFLD_ENCRYPTED_SERVER_NONCE = CTR(session key,
//!   fresh client IV, server nonce | client nonce)` (16 bytes); the server compares in constant
//!   time ([`verify_server_nonce_proof`]).
//! * Derivation code (activation with device binding): `HMAC-SHA256(authenticator key,
//!   "DSAPP/v2 derivation" | server nonce | client nonce)`, first 8 bytes as a big-endian u64,
//!   mod 10^15, as 15 zero-padded decimal digits ([`derivation_code`]).
//!
//! Secrets live in [`Zeroizing`] wrappers and no `Debug` prints a key.

use aes::Aes128;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::PublicKey;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::crypto::ct_eq;

type Ctr = ctr::Ctr128BE<Aes128>;

/// Client nonce length in bytes.
pub const CLIENT_NONCE_BYTES: usize = 4;
/// Server nonce length in bytes.
pub const SERVER_NONCE_BYTES: usize = 12;
/// Key length (chsKey, session key, field keys) in bytes.
pub const KEY_BYTES: usize = 16;
/// IV length in bytes.
pub const IV_BYTES: usize = 16;
/// A public key on the wire: the uncompressed P-256 point without its `0x04` prefix.
pub const PUBLIC_KEY_BYTES: usize = 64;
/// `PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE`: public key and client nonce.
pub const CLIENT_KEY_NONCE_BYTES: usize = PUBLIC_KEY_BYTES + CLIENT_NONCE_BYTES;
/// `PROVFLD_ENCRYPTED_NONCES`: server nonce and the echoed client nonce.
pub const NONCES_BYTES: usize = SERVER_NONCE_BYTES + CLIENT_NONCE_BYTES;
/// `PROVFLD_ENCRYPTED_SERVER_NONCE`: the client's key confirmation.
pub const SERVER_NONCE_PROOF_BYTES: usize = SERVER_NONCE_BYTES + CLIENT_NONCE_BYTES;
/// Length of [`Session::to_bytes`].
pub const SESSION_BYTES: usize = KEY_BYTES + CLIENT_NONCE_BYTES + SERVER_NONCE_BYTES;
/// Digits of a derivation code.
pub const DERIVATION_CODE_DIGITS: usize = 15;

const CHS_INFO: &[u8] = b"DSAPP/v2 chs";
const SESSION_INFO: &[u8] = b"DSAPP/v2 session";
const FIELD_INFO: &[u8] = b"DSAPP/v2 field ";
const DERIVATION_LABEL: &[u8] = b"DSAPP/v2 derivation";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DsappError {
    #[error("PROVFLD_DSAPP_VERSION {0} is not supported (1 or 2)")]
    UnsupportedVersion(u32),
    #[error("{what} must be {expected} bytes ({} hex), got {got} bytes", expected * 2)]
    BadLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE does not decrypt to a P-256 public key (wrong activation password?)")]
    BadClientKey,
    #[error("PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY does not decrypt to a P-256 public key")]
    BadServerKey,
    #[error("PROVFLD_ENCRYPTED_NONCES does not echo the client nonce: the server did not prove it knows the activation key")]
    ServerProofFailed,
    #[error("PROVFLD_SERVER_IV equals PROVFLD_CLIENT_IV; refusing to reuse a keystream")]
    ReusedIv,
    #[error("the stored DSAPP session is malformed")]
    BadSession,
    #[error("{0} is required with DSAPP version 2")]
    MissingIv(&'static str),
    #[error("{0} is not used with DSAPP version 1")]
    UnexpectedIv(&'static str),
}

/// The DSAPP version of a registration (`PROVFLD_DSAPP_VERSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Activation data under an all-zero IV, no IV sent.
    V1,
    /// A random IV per activation data field, sent as its `*_IV` attribute.
    V2,
}

impl Version {
    pub fn from_number(n: u32) -> Result<Version, DsappError> {
        match n {
            1 => Ok(Version::V1),
            2 => Ok(Version::V2),
            other => Err(DsappError::UnsupportedVersion(other)),
        }
    }

    pub fn number(self) -> u32 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
        }
    }
}

/// An activation data field encrypted under the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ActivationCode,
    EventReactivationCounter,
    ActivationMessage,
}

impl Field {
    /// The HKDF label of the field's key.
    fn label(self) -> &'static str {
        match self {
            Field::ActivationCode => "activation code",
            Field::EventReactivationCounter => "event reactivation counter",
            Field::ActivationMessage => "activation message",
        }
    }

    /// The attribute that carries the field.
    pub fn attribute(self) -> &'static str {
        match self {
            Field::ActivationCode => "PROVFLD_ACTIVATION_CODE",
            Field::EventReactivationCounter => "PROVFLD_EVENT_REACTIVATION_COUNTER",
            Field::ActivationMessage => "PROVFLD_ACTIVATION_MESSAGE",
        }
    }

    /// The attribute that carries the field's IV (version 2).
    pub fn iv_attribute(self) -> &'static str {
        match self {
            Field::ActivationCode => "PROVFLD_ACTIVATION_CODE_IV",
            Field::EventReactivationCounter => "PROVFLD_EVENT_REACTIVATION_COUNTER_IV",
            Field::ActivationMessage => "PROVFLD_ACTIVATION_MESSAGE_IV",
        }
    }
}

/// The agreed session: what the server keeps, sealed, between the key exchange and activation.
#[derive(Clone)]
pub struct Session {
    pub key: Zeroizing<[u8; KEY_BYTES]>,
    pub client_nonce: [u8; CLIENT_NONCE_BYTES],
    pub server_nonce: [u8; SERVER_NONCE_BYTES],
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session(..)")
    }
}

impl Session {
    /// `key | client nonce | server nonce`, [`SESSION_BYTES`] long.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(SESSION_BYTES));
        out.extend_from_slice(self.key.as_ref());
        out.extend_from_slice(&self.client_nonce);
        out.extend_from_slice(&self.server_nonce);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Session, DsappError> {
        if bytes.len() != SESSION_BYTES {
            return Err(DsappError::BadSession);
        }
        let (key, rest) = bytes.split_at(KEY_BYTES);
        let (client_nonce, server_nonce) = rest.split_at(CLIENT_NONCE_BYTES);
        let mut k = Zeroizing::new([0u8; KEY_BYTES]);
        k.copy_from_slice(key);
        Ok(Session {
            key: k,
            client_nonce: client_nonce.try_into().expect("split at 4"),
            server_nonce: server_nonce.try_into().expect("12 bytes left"),
        })
    }
}

/// What the server answers to the client hello, and the session it keeps.
#[derive(Debug)]
pub struct ServerExchange {
    /// `PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY`.
    pub encrypted_server_public_key: [u8; PUBLIC_KEY_BYTES],
    /// `PROVFLD_ENCRYPTED_NONCES`.
    pub encrypted_nonces: [u8; NONCES_BYTES],
    /// `PROVFLD_SERVER_IV`.
    pub server_iv: [u8; IV_BYTES],
    pub session: Session,
}

/// One encrypted activation data field; `iv` is `Some` with version 2 only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedField {
    pub ciphertext: Vec<u8>,
    pub iv: Option<[u8; IV_BYTES]>,
}

/// The client's first message and the secrets it keeps to finish the exchange.
pub struct ClientHello {
    /// `PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE`.
    pub encrypted_key_nonce: [u8; CLIENT_KEY_NONCE_BYTES],
    /// `PROVFLD_CLIENT_IV`.
    pub client_iv: [u8; IV_BYTES],
    secret: EphemeralSecret,
    nonce: [u8; CLIENT_NONCE_BYTES],
}

impl std::fmt::Debug for ClientHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHello")
            .field(
                "encrypted_key_nonce",
                &hex::encode(self.encrypted_key_nonce),
            )
            .field("client_iv", &hex::encode(self.client_iv))
            .finish_non_exhaustive()
    }
}

/// `HKDF-SHA256(salt = registration id, IKM = activation password, info = "DSAPP/v2 chs")`.
pub fn chs_key(registration_id: &str, activation_password: &str) -> Zeroizing<[u8; KEY_BYTES]> {
    hkdf16(
        Some(registration_id.as_bytes()),
        activation_password.as_bytes(),
        CHS_INFO,
    )
}

/// The server's step: checks and decrypts the client's key and nonce, draws its own, and
/// derives the session.
pub fn server_key_exchange(
    chs: &[u8; KEY_BYTES],
    encrypted_client_key_nonce: &[u8],
    client_iv: &[u8; IV_BYTES],
) -> Result<ServerExchange, DsappError> {
    check_len(
        "PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE",
        CLIENT_KEY_NONCE_BYTES,
        encrypted_client_key_nonce,
    )?;
    let mut plain = Zeroizing::new([0u8; CLIENT_KEY_NONCE_BYTES]);
    plain.copy_from_slice(encrypted_client_key_nonce);
    ctr_apply(chs, client_iv, plain.as_mut());
    let client_public = parse_public(&plain[..PUBLIC_KEY_BYTES]).ok_or(DsappError::BadClientKey)?;
    let client_nonce: [u8; CLIENT_NONCE_BYTES] =
        plain[PUBLIC_KEY_BYTES..].try_into().expect("4 bytes left");

    let secret = EphemeralSecret::random(&mut OsRng);
    let mut server_nonce = [0u8; SERVER_NONCE_BYTES];
    OsRng.fill_bytes(&mut server_nonce);
    let server_iv = loop {
        let iv = random_iv();
        if iv != *client_iv {
            break iv;
        }
    };

    let shared = secret.diffie_hellman(&client_public);
    let key = session_key(
        shared.raw_secret_bytes().as_slice(),
        &client_nonce,
        &server_nonce,
    );

    let mut out = [0u8; PUBLIC_KEY_BYTES + NONCES_BYTES];
    out[..PUBLIC_KEY_BYTES].copy_from_slice(&public_bytes(&secret.public_key()));
    out[PUBLIC_KEY_BYTES..PUBLIC_KEY_BYTES + SERVER_NONCE_BYTES].copy_from_slice(&server_nonce);
    out[PUBLIC_KEY_BYTES + SERVER_NONCE_BYTES..].copy_from_slice(&client_nonce);
    ctr_apply(chs, &server_iv, &mut out);

    Ok(ServerExchange {
        encrypted_server_public_key: out[..PUBLIC_KEY_BYTES].try_into().expect("64 bytes"),
        encrypted_nonces: out[PUBLIC_KEY_BYTES..].try_into().expect("16 bytes"),
        server_iv,
        session: Session {
            key,
            client_nonce,
            server_nonce,
        },
    })
}

/// The client's first step: an ephemeral key, a nonce and an IV, encrypted under chsKey.
pub fn client_hello(chs: &[u8; KEY_BYTES]) -> ClientHello {
    let secret = EphemeralSecret::random(&mut OsRng);
    let mut nonce = [0u8; CLIENT_NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    let client_iv = random_iv();
    let mut encrypted_key_nonce = [0u8; CLIENT_KEY_NONCE_BYTES];
    encrypted_key_nonce[..PUBLIC_KEY_BYTES].copy_from_slice(&public_bytes(&secret.public_key()));
    encrypted_key_nonce[PUBLIC_KEY_BYTES..].copy_from_slice(&nonce);
    ctr_apply(chs, &client_iv, &mut encrypted_key_nonce);
    ClientHello {
        encrypted_key_nonce,
        client_iv,
        secret,
        nonce,
    }
}

impl ClientHello {
    /// The client's second step: decrypts the server's answer, checks the echoed client nonce
    /// (the server's proof of chsKey) in constant time, and derives the session.
    pub fn finish(
        self,
        chs: &[u8; KEY_BYTES],
        encrypted_server_public_key: &[u8],
        encrypted_nonces: &[u8],
        server_iv: &[u8; IV_BYTES],
    ) -> Result<Session, DsappError> {
        check_len(
            "PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY",
            PUBLIC_KEY_BYTES,
            encrypted_server_public_key,
        )?;
        check_len("PROVFLD_ENCRYPTED_NONCES", NONCES_BYTES, encrypted_nonces)?;
        if *server_iv == self.client_iv {
            return Err(DsappError::ReusedIv);
        }
        let mut plain = Zeroizing::new([0u8; PUBLIC_KEY_BYTES + NONCES_BYTES]);
        plain[..PUBLIC_KEY_BYTES].copy_from_slice(encrypted_server_public_key);
        plain[PUBLIC_KEY_BYTES..].copy_from_slice(encrypted_nonces);
        ctr_apply(chs, server_iv, plain.as_mut());
        let (public, nonces) = plain.split_at(PUBLIC_KEY_BYTES);
        let (server_nonce, echoed) = nonces.split_at(SERVER_NONCE_BYTES);
        if !ct_eq(echoed, &self.nonce) {
            return Err(DsappError::ServerProofFailed);
        }
        let server_public = parse_public(public).ok_or(DsappError::BadServerKey)?;
        let server_nonce: [u8; SERVER_NONCE_BYTES] = server_nonce.try_into().expect("12 bytes");
        let shared = self.secret.diffie_hellman(&server_public);
        Ok(Session {
            key: session_key(
                shared.raw_secret_bytes().as_slice(),
                &self.nonce,
                &server_nonce,
            ),
            client_nonce: self.nonce,
            server_nonce,
        })
    }
}

/// Encrypts one activation data field under the session (see the module documentation for
/// keys and IVs). With version 1 each field must be sealed at most once per session.
pub fn seal_field(
    session: &Session,
    version: Version,
    field: Field,
    plaintext: &[u8],
) -> SealedField {
    let key = field_key(&session.key, field);
    let iv = match version {
        Version::V1 => None,
        Version::V2 => Some(random_iv()),
    };
    let mut ciphertext = plaintext.to_vec();
    ctr_apply(&key, &iv.unwrap_or([0u8; IV_BYTES]), &mut ciphertext);
    SealedField { ciphertext, iv }
}

/// Decrypts one activation data field; version 2 requires its IV, version 1 refuses one.
pub fn open_field(
    session: &Session,
    version: Version,
    field: Field,
    ciphertext: &[u8],
    iv: Option<&[u8; IV_BYTES]>,
) -> Result<Zeroizing<Vec<u8>>, DsappError> {
    let iv = match (version, iv) {
        (Version::V1, None) => [0u8; IV_BYTES],
        (Version::V1, Some(_)) => return Err(DsappError::UnexpectedIv(field.iv_attribute())),
        (Version::V2, Some(iv)) => *iv,
        (Version::V2, None) => return Err(DsappError::MissingIv(field.iv_attribute())),
    };
    let key = field_key(&session.key, field);
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    ctr_apply(&key, &iv, &mut plain);
    Ok(plain)
}

/// The client's key confirmation: a fresh IV and `CTR(session key, IV, server nonce | client
/// nonce)`, sent as `PROVFLD_CLIENT_IV` and `PROVFLD_ENCRYPTED_SERVER_NONCE`.
pub fn server_nonce_proof(session: &Session) -> ([u8; IV_BYTES], [u8; SERVER_NONCE_PROOF_BYTES]) {
    let iv = random_iv();
    let mut out = proof_plaintext(session);
    ctr_apply(&session.key, &iv, &mut out);
    (iv, out)
}

/// Checks the client's key confirmation in constant time; false on a wrong length.
pub fn verify_server_nonce_proof(
    session: &Session,
    client_iv: &[u8; IV_BYTES],
    encrypted: &[u8],
) -> bool {
    let mut expected = proof_plaintext(session);
    ctr_apply(&session.key, client_iv, &mut expected);
    ct_eq(&expected, encrypted)
}

/// The 15-digit derivation code that binds the authenticator to this session.
pub fn derivation_code(authenticator_key: &[u8], session: &Session) -> Zeroizing<String> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(authenticator_key)
        .expect("HMAC takes any key length");
    m.update(DERIVATION_LABEL);
    m.update(&session.server_nonce);
    m.update(&session.client_nonce);
    let h = m.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&h[..8]);
    let n = u64::from_be_bytes(first) % 10u64.pow(DERIVATION_CODE_DIGITS as u32);
    Zeroizing::new(format!("{n:0width$}", width = DERIVATION_CODE_DIGITS))
}

/// Checks a derivation code in constant time.
pub fn verify_derivation_code(authenticator_key: &[u8], session: &Session, code: &str) -> bool {
    let expected = derivation_code(authenticator_key, session);
    ct_eq(expected.as_bytes(), code.as_bytes())
}

fn proof_plaintext(session: &Session) -> [u8; SERVER_NONCE_PROOF_BYTES] {
    let mut out = [0u8; SERVER_NONCE_PROOF_BYTES];
    out[..SERVER_NONCE_BYTES].copy_from_slice(&session.server_nonce);
    out[SERVER_NONCE_BYTES..].copy_from_slice(&session.client_nonce);
    out
}

fn session_key(
    shared_x: &[u8],
    client_nonce: &[u8; CLIENT_NONCE_BYTES],
    server_nonce: &[u8; SERVER_NONCE_BYTES],
) -> Zeroizing<[u8; KEY_BYTES]> {
    let mut salt = [0u8; CLIENT_NONCE_BYTES + SERVER_NONCE_BYTES];
    salt[..CLIENT_NONCE_BYTES].copy_from_slice(client_nonce);
    salt[CLIENT_NONCE_BYTES..].copy_from_slice(server_nonce);
    hkdf16(Some(&salt), shared_x, SESSION_INFO)
}

fn field_key(session_key: &[u8; KEY_BYTES], field: Field) -> Zeroizing<[u8; KEY_BYTES]> {
    let mut info = Vec::with_capacity(FIELD_INFO.len() + 32);
    info.extend_from_slice(FIELD_INFO);
    info.extend_from_slice(field.label().as_bytes());
    hkdf16(None, session_key, &info)
}

fn hkdf16(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; KEY_BYTES]> {
    let mut out = Zeroizing::new([0u8; KEY_BYTES]);
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, out.as_mut())
        .expect("16 bytes is a valid HKDF length");
    out
}

/// AES-128-CTR in place; the IV is the whole initial counter block.
fn ctr_apply(key: &[u8; KEY_BYTES], iv: &[u8; IV_BYTES], buf: &mut [u8]) {
    Ctr::new(key.into(), iv.into()).apply_keystream(buf);
}

fn random_iv() -> [u8; IV_BYTES] {
    let mut iv = [0u8; IV_BYTES];
    OsRng.fill_bytes(&mut iv);
    iv
}

fn check_len(what: &'static str, expected: usize, got: &[u8]) -> Result<(), DsappError> {
    if got.len() == expected {
        Ok(())
    } else {
        Err(DsappError::BadLength {
            what,
            expected,
            got: got.len(),
        })
    }
}

/// The 64 wire bytes of a public key.
fn public_bytes(key: &PublicKey) -> [u8; PUBLIC_KEY_BYTES] {
    let point = key.to_encoded_point(false);
    point.as_bytes()[1..]
        .try_into()
        .expect("an uncompressed P-256 point is 65 bytes")
}

/// A public key from its 64 wire bytes, if they are a point on the curve.
fn parse_public(bytes: &[u8]) -> Option<PublicKey> {
    let mut sec1 = [0u8; 1 + PUBLIC_KEY_BYTES];
    sec1[0] = 0x04;
    sec1[1..].copy_from_slice(bytes);
    PublicKey::from_sec1_bytes(&sec1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cross-checked with an independent Python implementation (hmac/hashlib HKDF by hand,
    // `cryptography` AES-CTR); see the commit that introduced this module.
    const CHS_E3WFISG9_TB048AX1: &str = "a3fa8df74a3eaa3e61a754363705271f";
    const CTR_IV_00_0F: &str = "d9e0025730eb4bc6031906090b9c3013c63ca88db44163b3b14e862988b6f72d\
        1f71d85b7cf60ddb76885f2a0f2fd767c57146a100c0ae500c087060b57e3cec\
        97e7c45b1533503b93dcaae3f636c66f";
    const CTR_IV_FF: &str = "7e07c7b221e502758b0bba09ca74074c3d25d0ee2068db53b3fcad0bb7834337\
        9ac2f59c5b98c35a81d1947a73d417cd";
    const SESSION_KEY: &str = "7d82ce0c45149a566ce46e82237d3105";
    const FIELD_KEYS: [(Field, &str); 3] = [
        (Field::ActivationCode, "3a65a5be6c52904e027d03f4530f4ceb"),
        (
            Field::EventReactivationCounter,
            "cd5a415fc20cc5b57a13d4930767d09a",
        ),
        (Field::ActivationMessage, "bc3b73c5ceb120e8a98ee7cb1afe9ba6"),
    ];
    const DERIVATION_CODE: &str = "676916026829447";

    fn fixed_session() -> Session {
        let client_nonce = [1, 2, 3, 4];
        let server_nonce: [u8; 12] = std::array::from_fn(|i| 0xa0 + i as u8);
        let shared: [u8; 32] = std::array::from_fn(|i| 0x20 + i as u8);
        Session {
            key: session_key(&shared, &client_nonce, &server_nonce),
            client_nonce,
            server_nonce,
        }
    }

    fn exchange(chs: &[u8; 16]) -> (Session, Session) {
        let hello = client_hello(chs);
        let server =
            server_key_exchange(chs, &hello.encrypted_key_nonce, &hello.client_iv).unwrap();
        let client = hello
            .finish(
                chs,
                &server.encrypted_server_public_key,
                &server.encrypted_nonces,
                &server.server_iv,
            )
            .unwrap();
        (client, server.session)
    }

    #[test]
    fn chs_key_known_answer() {
        assert_eq!(
            hex::encode(chs_key("e3wfISG9", "Tb048aX1").as_ref()),
            CHS_E3WFISG9_TB048AX1
        );
    }

    #[test]
    fn ctr_matches_nist_sp800_38a_f51() {
        let key: [u8; 16] = hex::decode("2b7e151628aed2a6abf7158809cf4f3c")
            .unwrap()
            .try_into()
            .unwrap();
        let iv: [u8; 16] = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .unwrap()
            .try_into()
            .unwrap();
        let mut buf = hex::decode(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
             30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        )
        .unwrap();
        ctr_apply(&key, &iv, &mut buf);
        assert_eq!(
            hex::encode(buf),
            "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff\
             5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee"
        );
    }

    #[test]
    fn ctr_matches_python_cryptography() {
        let chs = chs_key("e3wfISG9", "Tb048aX1");
        let pt: Vec<u8> = (0u8..80).collect();
        let iv: [u8; 16] = std::array::from_fn(|i| i as u8);
        let mut buf = pt.clone();
        ctr_apply(&chs, &iv, &mut buf);
        assert_eq!(hex::encode(&buf), CTR_IV_00_0F);
        // The whole 128-bit block is the counter: all-ones wraps to zero.
        let mut buf = pt[..48].to_vec();
        ctr_apply(&chs, &[0xff; 16], &mut buf);
        assert_eq!(hex::encode(&buf), CTR_IV_FF);
    }

    #[test]
    fn session_field_and_derivation_known_answers() {
        let s = fixed_session();
        assert_eq!(hex::encode(s.key.as_ref()), SESSION_KEY);
        for (field, want) in FIELD_KEYS {
            assert_eq!(hex::encode(field_key(&s.key, field).as_ref()), want);
        }
        let auth_key: Vec<u8> = (0u8..32).collect();
        assert_eq!(derivation_code(&auth_key, &s).as_str(), DERIVATION_CODE);
    }

    #[test]
    fn round_trip_both_versions() {
        let chs = chs_key("e3wfISG9", "Tb048aX1");
        for version in [Version::V1, Version::V2] {
            let (client, server) = exchange(&chs);
            assert_eq!(client.key.as_ref(), server.key.as_ref());
            assert_eq!(client.client_nonce, server.client_nonce);
            assert_eq!(client.server_nonce, server.server_nonce);

            for (field, plain) in [
                (Field::ActivationCode, &b"XFAD activation code"[..]),
                (Field::EventReactivationCounter, &b"\x00\x00\x00\x07"[..]),
                (Field::ActivationMessage, &b"message"[..]),
            ] {
                let sealed = seal_field(&server, version, field, plain);
                assert_eq!(sealed.ciphertext.len(), plain.len());
                assert_ne!(sealed.ciphertext, plain);
                let opened = open_field(
                    &client,
                    version,
                    field,
                    &sealed.ciphertext,
                    sealed.iv.as_ref(),
                )
                .unwrap();
                assert_eq!(opened.as_slice(), plain);
            }

            let (iv, proof) = server_nonce_proof(&client);
            assert!(verify_server_nonce_proof(&server, &iv, &proof));
            let mut wrong = proof;
            wrong[0] ^= 1;
            assert!(!verify_server_nonce_proof(&server, &iv, &wrong));
            let mut other_iv = iv;
            other_iv[15] ^= 1;
            assert!(!verify_server_nonce_proof(&server, &other_iv, &proof));
            assert!(!verify_server_nonce_proof(&server, &iv, &proof[..15]));

            let auth_key = crate::crypto::random_bytes(32);
            let code = derivation_code(&auth_key, &client);
            assert_eq!(code.len(), 15);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
            assert!(verify_derivation_code(&auth_key, &server, &code));
            let mut bad = code.as_bytes().to_vec();
            bad[14] = if bad[14] == b'0' { b'1' } else { b'0' };
            assert!(!verify_derivation_code(
                &auth_key,
                &server,
                std::str::from_utf8(&bad).unwrap()
            ));
            assert!(!verify_derivation_code(&auth_key, &server, &code[..14]));
            assert!(!verify_derivation_code(b"other key", &server, &code));
        }
    }

    #[test]
    fn wrong_activation_password_is_a_bad_client_key() {
        let client_chs = chs_key("e3wfISG9", "Tb048aX1");
        let server_chs = chs_key("e3wfISG9", "Tb048aX2");
        for _ in 0..20 {
            let hello = client_hello(&client_chs);
            let e = server_key_exchange(&server_chs, &hello.encrypted_key_nonce, &hello.client_iv)
                .unwrap_err();
            assert_eq!(e, DsappError::BadClientKey);
            assert!(e
                .to_string()
                .contains("PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE"));
        }
    }

    #[test]
    fn tampered_server_answer_fails_the_client() {
        let chs = chs_key("e3wfISG9", "Tb048aX1");
        for i in SERVER_NONCE_BYTES..NONCES_BYTES {
            let hello = client_hello(&chs);
            let mut server =
                server_key_exchange(&chs, &hello.encrypted_key_nonce, &hello.client_iv).unwrap();
            server.encrypted_nonces[i] ^= 0x01;
            let e = hello
                .finish(
                    &chs,
                    &server.encrypted_server_public_key,
                    &server.encrypted_nonces,
                    &server.server_iv,
                )
                .unwrap_err();
            assert_eq!(e, DsappError::ServerProofFailed);
        }
        // A server without chsKey fails its proof.
        let hello = client_hello(&chs);
        let server =
            server_key_exchange(&chs, &hello.encrypted_key_nonce, &hello.client_iv).unwrap();
        let other = chs_key("e3wfISG9", "wrong");
        assert_eq!(
            hello
                .finish(
                    &other,
                    &server.encrypted_server_public_key,
                    &server.encrypted_nonces,
                    &server.server_iv,
                )
                .unwrap_err(),
            DsappError::ServerProofFailed
        );
        // A tampered server key with an intact nonce echo is not a point.
        let hello = client_hello(&chs);
        let mut server =
            server_key_exchange(&chs, &hello.encrypted_key_nonce, &hello.client_iv).unwrap();
        server.encrypted_server_public_key[40] ^= 0x01;
        assert_eq!(
            hello
                .finish(
                    &chs,
                    &server.encrypted_server_public_key,
                    &server.encrypted_nonces,
                    &server.server_iv,
                )
                .unwrap_err(),
            DsappError::BadServerKey
        );
    }

    #[test]
    fn server_iv_differs_and_reuse_is_refused() {
        let chs = chs_key("e3wfISG9", "Tb048aX1");
        let hello = client_hello(&chs);
        let server =
            server_key_exchange(&chs, &hello.encrypted_key_nonce, &hello.client_iv).unwrap();
        assert_ne!(server.server_iv, hello.client_iv);
        let iv = hello.client_iv;
        assert_eq!(
            hello
                .finish(
                    &chs,
                    &server.encrypted_server_public_key,
                    &server.encrypted_nonces,
                    &iv,
                )
                .unwrap_err(),
            DsappError::ReusedIv
        );
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        let chs = chs_key("e3wfISG9", "Tb048aX1");
        let hello = client_hello(&chs);
        for len in [0, 67, 69, 136] {
            let e = server_key_exchange(&chs, &vec![0u8; len], &hello.client_iv).unwrap_err();
            assert_eq!(
                e,
                DsappError::BadLength {
                    what: "PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE",
                    expected: 68,
                    got: len
                }
            );
            assert!(e.to_string().contains("136 hex"), "{e}");
        }
        let server =
            server_key_exchange(&chs, &hello.encrypted_key_nonce, &hello.client_iv).unwrap();
        let e = client_hello(&chs)
            .finish(
                &chs,
                &[0u8; 63],
                &server.encrypted_nonces,
                &server.server_iv,
            )
            .unwrap_err();
        assert!(
            matches!(e, DsappError::BadLength { what, .. } if what == "PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY")
        );
        let e = client_hello(&chs)
            .finish(
                &chs,
                &server.encrypted_server_public_key,
                &[0u8; 17],
                &server.server_iv,
            )
            .unwrap_err();
        assert!(
            matches!(e, DsappError::BadLength { what, .. } if what == "PROVFLD_ENCRYPTED_NONCES")
        );
        assert_eq!(
            Session::from_bytes(&[0u8; 31]).unwrap_err(),
            DsappError::BadSession
        );
        assert_eq!(
            Session::from_bytes(&[0u8; 33]).unwrap_err(),
            DsappError::BadSession
        );
    }

    #[test]
    fn v1_sends_no_iv_and_v2_ivs_differ_per_field() {
        let s = fixed_session();
        let a = seal_field(&s, Version::V1, Field::ActivationCode, b"same plaintext");
        let b = seal_field(&s, Version::V1, Field::ActivationMessage, b"same plaintext");
        assert_eq!(a.iv, None);
        assert_eq!(b.iv, None);
        // One key per field: the same plaintext under the zero IV still differs.
        assert_ne!(a.ciphertext, b.ciphertext);
        let e = open_field(
            &s,
            Version::V1,
            Field::ActivationCode,
            &a.ciphertext,
            Some(&[0; 16]),
        )
        .unwrap_err();
        assert_eq!(e, DsappError::UnexpectedIv("PROVFLD_ACTIVATION_CODE_IV"));

        let fields = [
            Field::ActivationCode,
            Field::EventReactivationCounter,
            Field::ActivationMessage,
        ];
        let ivs: Vec<[u8; 16]> = fields
            .iter()
            .map(|&f| seal_field(&s, Version::V2, f, b"x").iv.unwrap())
            .collect();
        assert_ne!(ivs[0], ivs[1]);
        assert_ne!(ivs[1], ivs[2]);
        assert_ne!(ivs[0], ivs[2]);
        let sealed = seal_field(&s, Version::V2, Field::ActivationMessage, b"m");
        let e = open_field(
            &s,
            Version::V2,
            Field::ActivationMessage,
            &sealed.ciphertext,
            None,
        )
        .unwrap_err();
        assert_eq!(e, DsappError::MissingIv("PROVFLD_ACTIVATION_MESSAGE_IV"));
        // Opening under another field's key does not give the plaintext.
        let wrong = open_field(
            &s,
            Version::V2,
            Field::ActivationCode,
            &sealed.ciphertext,
            sealed.iv.as_ref(),
        )
        .unwrap();
        assert_ne!(wrong.as_slice(), b"m");
    }

    #[test]
    fn session_bytes_round_trip_and_debug_is_redacted() {
        let s = fixed_session();
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), SESSION_BYTES);
        let back = Session::from_bytes(&bytes).unwrap();
        assert_eq!(back.key.as_ref(), s.key.as_ref());
        assert_eq!(back.client_nonce, s.client_nonce);
        assert_eq!(back.server_nonce, s.server_nonce);
        assert_eq!(format!("{s:?}"), "Session(..)");
        let hello = client_hello(&chs_key("a", "b"));
        assert!(!format!("{hello:?}").contains("secret"));
    }

    #[test]
    fn versions() {
        assert_eq!(Version::from_number(1).unwrap(), Version::V1);
        assert_eq!(Version::from_number(2).unwrap(), Version::V2);
        assert_eq!(Version::V1.number(), 1);
        assert_eq!(Version::V2.number(), 2);
        for n in [0, 3, 42] {
            let e = Version::from_number(n).unwrap_err();
            assert_eq!(e, DsappError::UnsupportedVersion(n));
            assert!(e.to_string().contains(&n.to_string()));
        }
    }
}
