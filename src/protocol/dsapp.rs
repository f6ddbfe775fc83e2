//! DSAPP v1/v2, revision 3 (protocols.md section 4; docs/protocols.md): CPace inside
//! OneSpan's `PROVISIONCMD_DSAPP*` fields. Pure: bytes in, bytes out; no XML, no SQL. The wire
//! layer hex-encodes and the store seals [`Session::to_bytes`] between steps.
//!
//! * `PRS` = the activation password (9 ASCII characters), `CI = lv_cat("DSAPP/v3",
//!   REGISTRATIONID)`, `sid` = the client's 16-byte `PROVFLD_CLIENT_IV`;
//!   `G = calculate_generator(PRS, CI, sid)` ([`super::cpace`]).
//! * Client: `Ya = ya·G`, a 4-byte `cn`; `PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE =
//!   X(Ya) | Y(Ya) | cn` (68 bytes), `PROVFLD_CLIENT_IV = sid`.
//! * Server: `Yb = yb·G`, `ADb` 16 random bytes, `K = scalar_mult_vfy(yb, Ya)`,
//!   `ISK = H(lv_cat(DSI_ISK, sid, K) | transcript_ir(Ya, cn, Yb, ADb))`; every key
//!   `HKDF-SHA256(salt = sid, IKM = ISK, info = "DSAPP/v3 " | purpose)`, 32 bytes, one per
//!   purpose ([`Purpose`]). `PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY = X(Yb) | Y(Yb)`,
//!   `PROVFLD_SERVER_IV = ADb`, `PROVFLD_ENCRYPTED_NONCES` = the server's confirmation tag.
//! * Fields ([`super::record`]'s CTR record): `C = AES-256-CTR(K_enc <label>, IV, plaintext)`,
//!   value `C | HMAC-SHA256(K_mac <label>, label | IV | C)[..16]`; IV zero and unsent in version 1, random and sent as the
//!   field's `_IV` attribute in version 2.
//! * Activation: `PROVFLD_ENCRYPTED_SERVER_NONCE` = the client's confirmation tag; the
//!   derivation code is `HMAC-SHA256(K_derivation, "derivation" | serial)[..8]` mod 10^15.
//!
//! Secrets live in [`Zeroizing`] wrappers and no `Debug` prints a key.

use crate::crypto::random_array;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::NonZeroScalar;
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

use super::cpace;
use crate::crypto::ct_eq;
use crate::types::SerialNumber;

/// `cn`, the client's associated data `ADa`.
pub const CLIENT_NONCE_BYTES: usize = 4;
/// `sid` (`PROVFLD_CLIENT_IV`) and `ADb` (`PROVFLD_SERVER_IV`).
pub const SID_BYTES: usize = 16;
/// A point on the wire: X | Y, without the SEC1 `0x04` prefix.
pub const PUBLIC_KEY_BYTES: usize = 64;
/// `PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE`: `Ya` and `cn`.
pub const CLIENT_KEY_NONCE_BYTES: usize = PUBLIC_KEY_BYTES + CLIENT_NONCE_BYTES;
/// Confirmation tags and field MACs: the first 16 bytes of an HMAC-SHA256.
pub const TAG_BYTES: usize = 16;
/// Field IVs.
pub const IV_BYTES: usize = 16;
/// Every derived key.
pub const KEY_BYTES: usize = 32;
/// Digits of a derivation code.
pub const DERIVATION_CODE_DIGITS: usize = 15;
/// A registration allows this many key exchanges without a successful activation.
pub const MAX_UNCONFIRMED_EXCHANGES: i32 = 3;

/// `transcript_ir(Ya, cn, Yb, ADb)` is always this long: four one-byte lengths, two points,
/// `cn` and `ADb`.
const TRANSCRIPT_BYTES: usize = 4 + 2 * cpace::POINT_BYTES + CLIENT_NONCE_BYTES + SID_BYTES;
/// Length of [`Session::to_bytes`]: sid, ISK, transcript.
pub const SESSION_BYTES: usize = SID_BYTES + cpace::SECRET_BYTES + TRANSCRIPT_BYTES;

const CI_LABEL: &[u8] = b"DSAPP/v3";
const KEY_INFO: &str = "DSAPP/v3 ";

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
    #[error("PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE does not hold a P-256 point other than the identity")]
    BadClientKey,
    #[error(
        "PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY does not hold a P-256 point other than the identity"
    )]
    BadServerKey,
    #[error("PROVFLD_ENCRYPTED_NONCES does not verify: the server did not prove it knows the activation password")]
    ServerProofFailed,
    #[error("{0} does not verify: the field was altered or the session differs")]
    BadFieldTag(&'static str),
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
    /// Field IVs are 16 zero bytes and are not sent.
    V1,
    /// A random IV per field, sent as its `*_IV` attribute.
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

/// An activation data field sealed under the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ActivationCode,
    EventReactivationCounter,
    ActivationMessage,
}

impl Field {
    /// The field's label: its keys' purpose suffix and the first part of its MAC input.
    pub fn label(self) -> &'static str {
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

/// What a key derived from ISK is for; each purpose has its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    ConfirmServer,
    ConfirmClient,
    Derivation,
    Enc(Field),
    Mac(Field),
}

impl Purpose {
    /// The HKDF info: `"DSAPP/v3 " | purpose`.
    pub fn info(self) -> String {
        let p = match self {
            Purpose::ConfirmServer => "confirm server".to_owned(),
            Purpose::ConfirmClient => "confirm client".to_owned(),
            Purpose::Derivation => "derivation".to_owned(),
            Purpose::Enc(f) => format!("enc {}", f.label()),
            Purpose::Mac(f) => format!("mac {}", f.label()),
        };
        format!("{KEY_INFO}{p}")
    }
}

/// `CI = lv_cat("DSAPP/v3", REGISTRATIONID)`.
pub fn channel_identifier(registration_id: &str) -> Vec<u8> {
    cpace::lv_cat(&[CI_LABEL, registration_id.as_bytes()])
}

/// The agreed session: sid, ISK and the transcript; what the server keeps, sealed, between
/// the key exchange and the activation.
#[derive(Clone)]
pub struct Session {
    sid: [u8; SID_BYTES],
    isk: Zeroizing<[u8; cpace::SECRET_BYTES]>,
    transcript: Vec<u8>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session(..)")
    }
}

impl Session {
    fn new(sid: [u8; SID_BYTES], k: &[u8], transcript: Vec<u8>) -> Session {
        let isk = cpace::isk(&sid, k, &transcript);
        Session {
            sid,
            isk,
            transcript,
        }
    }

    /// `sid | ISK | transcript_ir(Ya, cn, Yb, ADb)`, [`SESSION_BYTES`] long.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(SESSION_BYTES));
        out.extend_from_slice(&self.sid);
        out.extend_from_slice(self.isk.as_ref());
        out.extend_from_slice(&self.transcript);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Session, DsappError> {
        if bytes.len() != SESSION_BYTES {
            return Err(DsappError::BadSession);
        }
        let (sid, rest) = bytes.split_at(SID_BYTES);
        let (isk, transcript) = rest.split_at(cpace::SECRET_BYTES);
        let mut k = Zeroizing::new([0u8; cpace::SECRET_BYTES]);
        k.copy_from_slice(isk);
        Ok(Session {
            sid: sid.try_into().expect("split at 16"),
            isk: k,
            transcript: transcript.to_vec(),
        })
    }

    /// The session id (`PROVFLD_CLIENT_IV` of both client messages).
    pub fn sid(&self) -> &[u8; SID_BYTES] {
        &self.sid
    }

    /// `ISK`, for test vectors.
    pub fn isk(&self) -> &[u8; cpace::SECRET_BYTES] {
        &self.isk
    }

    /// `K_purpose = HKDF-SHA256(salt = sid, IKM = ISK, info = "DSAPP/v3 " | purpose)`.
    pub fn key(&self, purpose: Purpose) -> Zeroizing<[u8; KEY_BYTES]> {
        let mut out = Zeroizing::new([0u8; KEY_BYTES]);
        Hkdf::<Sha256>::new(Some(&self.sid), self.isk.as_ref())
            .expand(purpose.info().as_bytes(), out.as_mut())
            .expect("32 bytes is a valid HKDF length");
        out
    }

    /// `PROVFLD_ENCRYPTED_NONCES`: `HMAC(K_confirm server, "server" | transcript)[..16]`.
    pub fn server_tag(&self) -> [u8; TAG_BYTES] {
        tag(
            self.key(Purpose::ConfirmServer).as_ref(),
            &[b"server", &self.transcript],
        )
    }

    /// `PROVFLD_ENCRYPTED_SERVER_NONCE`: `HMAC(K_confirm client, "client" | transcript)[..16]`.
    pub fn client_tag(&self) -> [u8; TAG_BYTES] {
        tag(
            self.key(Purpose::ConfirmClient).as_ref(),
            &[b"client", &self.transcript],
        )
    }

    /// Checks the client's confirmation tag in constant time; false on a wrong length.
    pub fn verify_client_tag(&self, tag: &[u8]) -> bool {
        ct_eq(&self.client_tag(), tag)
    }

    /// Seals one field (encrypt, then MAC). With version 1 each field must be sealed at most
    /// once per session (its key sees one message under the zero IV).
    pub fn seal_field(&self, version: Version, field: Field, plaintext: &[u8]) -> SealedField {
        let iv = match version {
            Version::V1 => None,
            Version::V2 => Some(random_iv()),
        };
        self.seal_field_with_iv(field, iv, plaintext)
    }

    /// [`Session::seal_field`] with a chosen IV (`None` for version 1), for test vectors.
    pub fn seal_field_with_iv(
        &self,
        field: Field,
        iv: Option<[u8; IV_BYTES]>,
        plaintext: &[u8],
    ) -> SealedField {
        let iv_bytes = iv.unwrap_or([0u8; IV_BYTES]);
        let value =
            self.field_keys(field)
                .seal_ctr(&[field.label().as_bytes()], &iv_bytes, plaintext);
        SealedField { value, iv }
    }

    /// `K_enc <label>` and `K_mac <label>`.
    fn field_keys(&self, field: Field) -> super::record::RecordKeys {
        super::record::RecordKeys::from_keys(
            self.key(Purpose::Enc(field)),
            self.key(Purpose::Mac(field)),
        )
    }

    /// The IV a field uses: version 2 requires its IV, version 1 refuses one.
    fn field_iv(
        version: Version,
        field: Field,
        iv: Option<&[u8; IV_BYTES]>,
    ) -> Result<[u8; IV_BYTES], DsappError> {
        match (version, iv) {
            (Version::V1, None) => Ok([0u8; IV_BYTES]),
            (Version::V1, Some(_)) => Err(DsappError::UnexpectedIv(field.iv_attribute())),
            (Version::V2, Some(iv)) => Ok(*iv),
            (Version::V2, None) => Err(DsappError::MissingIv(field.iv_attribute())),
        }
    }

    /// Checks a field's IV rule and MAC (constant time) without decrypting it.
    pub fn verify_field(
        &self,
        version: Version,
        field: Field,
        value: &[u8],
        iv: Option<&[u8; IV_BYTES]>,
    ) -> Result<(), DsappError> {
        let iv = Self::field_iv(version, field, iv)?;
        self.field_keys(field)
            .verify_ctr(&[field.label().as_bytes()], &iv, value)
            .map_err(|_| DsappError::BadFieldTag(field.attribute()))
    }

    /// Checks a field (as [`Session::verify_field`]), then decrypts it.
    pub fn open_field(
        &self,
        version: Version,
        field: Field,
        value: &[u8],
        iv: Option<&[u8; IV_BYTES]>,
    ) -> Result<Zeroizing<Vec<u8>>, DsappError> {
        let iv = Self::field_iv(version, field, iv)?;
        self.field_keys(field)
            .open_ctr(&[field.label().as_bytes()], &iv, value)
            .map_err(|_| DsappError::BadFieldTag(field.attribute()))
    }

    /// The 15-digit derivation code: `HMAC(K_derivation, "derivation" | serial)[..8]` as a
    /// big-endian integer mod 10^15, zero-padded.
    pub fn derivation_code(&self, serial: &SerialNumber) -> Zeroizing<String> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.key(Purpose::Derivation).as_ref())
            .expect("HMAC takes any key length");
        m.update(b"derivation");
        m.update(serial.as_str().as_bytes());
        let h = m.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&h[..8]);
        let n = u64::from_be_bytes(first) % 10u64.pow(DERIVATION_CODE_DIGITS as u32);
        Zeroizing::new(format!("{n:0width$}", width = DERIVATION_CODE_DIGITS))
    }

    /// Checks a derivation code in constant time.
    pub fn verify_derivation_code(&self, serial: &SerialNumber, code: &str) -> bool {
        ct_eq(self.derivation_code(serial).as_bytes(), code.as_bytes())
    }
}

/// One sealed field: `C | tag` and, with version 2, its IV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedField {
    pub value: Vec<u8>,
    pub iv: Option<[u8; IV_BYTES]>,
}

/// What the server answers to the client's share, and the session it keeps.
#[derive(Debug)]
pub struct ServerExchange {
    /// `PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY`: `Yb` as X | Y.
    pub server_public_key: [u8; PUBLIC_KEY_BYTES],
    /// `PROVFLD_SERVER_IV`: `ADb`.
    pub adb: [u8; SID_BYTES],
    /// `PROVFLD_ENCRYPTED_NONCES`: the server's confirmation tag.
    pub server_tag: [u8; TAG_BYTES],
    pub session: Session,
}

/// The client's first message and the secret it keeps to finish the exchange.
pub struct ClientHello {
    /// `PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE`: `Ya` as X | Y, then `cn`.
    pub key_nonce: [u8; CLIENT_KEY_NONCE_BYTES],
    /// `PROVFLD_CLIENT_IV`: `sid`.
    pub sid: [u8; SID_BYTES],
    ya: NonZeroScalar,
}

impl std::fmt::Debug for ClientHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHello")
            .field("key_nonce", &hex::encode(self.key_nonce))
            .field("sid", &hex::encode(self.sid))
            .finish_non_exhaustive()
    }
}

fn generator(
    activation_password: &str,
    registration_id: &str,
    sid: &[u8],
) -> p256::ProjectivePoint {
    cpace::calculate_generator(
        activation_password.as_bytes(),
        &channel_identifier(registration_id),
        sid,
    )
}

/// The client's first step: a fresh sid, scalar and nonce.
pub fn client_hello(registration_id: &str, activation_password: &str) -> ClientHello {
    let sid = random_array::<SID_BYTES>();
    let cn = random_array::<CLIENT_NONCE_BYTES>();
    client_hello_with(
        registration_id,
        activation_password,
        sid,
        cpace::sample_scalar(),
        cn,
    )
}

/// [`client_hello`] with chosen values, for test vectors.
pub fn client_hello_with(
    registration_id: &str,
    activation_password: &str,
    sid: [u8; SID_BYTES],
    ya: NonZeroScalar,
    cn: [u8; CLIENT_NONCE_BYTES],
) -> ClientHello {
    let g = generator(activation_password, registration_id, &sid);
    let ya_point = cpace::scalar_mult(&ya, &g);
    let mut key_nonce = [0u8; CLIENT_KEY_NONCE_BYTES];
    key_nonce[..PUBLIC_KEY_BYTES].copy_from_slice(&ya_point[1..]);
    key_nonce[PUBLIC_KEY_BYTES..].copy_from_slice(&cn);
    ClientHello { key_nonce, sid, ya }
}

/// The SEC1 form of a wire point (X | Y).
fn sec1(wire: &[u8]) -> [u8; cpace::POINT_BYTES] {
    let mut out = [0u8; cpace::POINT_BYTES];
    out[0] = 0x04;
    out[1..].copy_from_slice(wire);
    out
}

/// The server's step. A `Ya` that is not a point of the curve (or is the identity) is
/// [`DsappError::BadClientKey`]; nothing about the password is learnt either way.
pub fn server_key_exchange(
    registration_id: &str,
    activation_password: &str,
    client_key_nonce: &[u8],
    sid: &[u8; SID_BYTES],
) -> Result<ServerExchange, DsappError> {
    let adb = random_array::<SID_BYTES>();
    server_key_exchange_with(
        registration_id,
        activation_password,
        client_key_nonce,
        sid,
        cpace::sample_scalar(),
        adb,
    )
}

/// [`server_key_exchange`] with chosen values, for test vectors.
pub fn server_key_exchange_with(
    registration_id: &str,
    activation_password: &str,
    client_key_nonce: &[u8],
    sid: &[u8; SID_BYTES],
    yb: NonZeroScalar,
    adb: [u8; SID_BYTES],
) -> Result<ServerExchange, DsappError> {
    check_len(
        "PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE",
        CLIENT_KEY_NONCE_BYTES,
        client_key_nonce,
    )?;
    let ya_point = sec1(&client_key_nonce[..PUBLIC_KEY_BYTES]);
    let cn = &client_key_nonce[PUBLIC_KEY_BYTES..];
    // Check Ya before the costly generator.
    if p256::PublicKey::from_sec1_bytes(&ya_point).is_err() {
        return Err(DsappError::BadClientKey);
    }
    let g = generator(activation_password, registration_id, sid);
    let yb_point = cpace::scalar_mult(&yb, &g);
    let k = cpace::scalar_mult_vfy(&yb, &ya_point).ok_or(DsappError::BadClientKey)?;
    let transcript = cpace::transcript_ir(&ya_point, cn, &yb_point, &adb);
    let session = Session::new(*sid, k.as_ref(), transcript);
    Ok(ServerExchange {
        server_public_key: yb_point[1..].try_into().expect("64 bytes"),
        adb,
        server_tag: session.server_tag(),
        session,
    })
}

impl ClientHello {
    /// The client's second step: checks `Yb`, derives the session and checks the server's
    /// confirmation tag in constant time.
    pub fn finish(
        self,
        server_public_key: &[u8],
        adb: &[u8],
        server_tag: &[u8],
    ) -> Result<Session, DsappError> {
        check_len(
            "PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY",
            PUBLIC_KEY_BYTES,
            server_public_key,
        )?;
        check_len("PROVFLD_SERVER_IV", SID_BYTES, adb)?;
        check_len("PROVFLD_ENCRYPTED_NONCES", TAG_BYTES, server_tag)?;
        let yb_point = sec1(server_public_key);
        let k = cpace::scalar_mult_vfy(&self.ya, &yb_point).ok_or(DsappError::BadServerKey)?;
        let ya_point = sec1(&self.key_nonce[..PUBLIC_KEY_BYTES]);
        let transcript = cpace::transcript_ir(
            &ya_point,
            &self.key_nonce[PUBLIC_KEY_BYTES..],
            &yb_point,
            adb,
        );
        let session = Session::new(self.sid, k.as_ref(), transcript);
        if !ct_eq(&session.server_tag(), server_tag) {
            return Err(DsappError::ServerProofFailed);
        }
        Ok(session)
    }
}

/// The activation code plaintext (an XFAD record).
pub fn activation_code_plaintext(
    serial: &SerialNumber,
    key: &[u8],
    counter: i32,
) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        format!(
            "DSAPP/v3 XFAD;serial={serial};key={};otp=TOTP-HMAC-SHA256;digits={};step={};counter={counter}",
            hex::encode_upper(key),
            super::otp::DIGITS,
            super::otp::STEP_SECS
        )
        .into_bytes(),
    )
}

/// An XFAD record read back by a client.
pub struct Xfad {
    pub serial: SerialNumber,
    pub key: Zeroizing<Vec<u8>>,
    pub digits: u32,
    pub step: u64,
    pub counter: u32,
}

impl std::fmt::Debug for Xfad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xfad")
            .field("serial", &self.serial)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// Parses an XFAD record: the first field fixed, `serial`, `key`, `otp`, `digits`, `step` and
/// `counter` required, unknown fields ignored.
pub fn parse_activation_code(text: &[u8]) -> Option<Xfad> {
    let text = std::str::from_utf8(text).ok()?;
    let mut parts = text.split(';');
    if parts.next()? != "DSAPP/v3 XFAD" {
        return None;
    }
    let (mut serial, mut key, mut otp, mut digits, mut step, mut counter) =
        (None, None, None, None, None, None);
    for p in parts {
        match p.split_once('=')? {
            ("serial", v) => serial = SerialNumber::parse(v).ok(),
            ("key", v) if v.len() == 64 => key = hex::decode(v).ok().map(Zeroizing::new),
            ("otp", v) => otp = (v == "TOTP-HMAC-SHA256").then_some(()),
            ("digits", v) => digits = v.parse().ok().filter(|d| (6..=8).contains(d)),
            ("step", v) => step = v.parse().ok().filter(|s| *s > 0),
            ("counter", v) => counter = v.parse().ok(),
            _ => {}
        }
    }
    otp?;
    Some(Xfad {
        serial: serial?,
        key: key?,
        digits: digits?,
        step: step?,
        counter: counter?,
    })
}

/// The first 16 bytes of HMAC-SHA256 over the concatenated parts.
fn tag(key: &[u8], parts: &[&[u8]]) -> [u8; TAG_BYTES] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    let h = m.finalize().into_bytes();
    h[..TAG_BYTES].try_into().expect("32 >= 16")
}

fn random_iv() -> [u8; IV_BYTES] {
    random_array()
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

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "e3wfISG9";
    const PW: &str = "TB048AX2K";

    fn exchange() -> (Session, Session) {
        let hello = client_hello(ID, PW);
        let server = server_key_exchange(ID, PW, &hello.key_nonce, &hello.sid).unwrap();
        let client = hello
            .finish(&server.server_public_key, &server.adb, &server.server_tag)
            .unwrap();
        (client, server.session)
    }

    fn serial() -> SerialNumber {
        SerialNumber::parse("VDS0000001").unwrap()
    }

    #[test]
    fn round_trip_both_versions_with_tags_and_derivation() {
        for version in [Version::V1, Version::V2] {
            let (client, server) = exchange();
            assert_eq!(client.to_bytes().as_slice(), server.to_bytes().as_slice());
            for (field, plain) in [
                (Field::ActivationCode, &b"DSAPP/v3 XFAD;serial=x"[..]),
                (Field::EventReactivationCounter, &b"7"[..]),
                (Field::ActivationMessage, &b"message"[..]),
            ] {
                let sealed = server.seal_field(version, field, plain);
                assert_eq!(sealed.value.len(), plain.len() + TAG_BYTES);
                assert_eq!(sealed.iv.is_some(), version == Version::V2);
                let opened = client
                    .open_field(version, field, &sealed.value, sealed.iv.as_ref())
                    .unwrap();
                assert_eq!(opened.as_slice(), plain);
                // Every bit of C, tag and IV is covered.
                for i in 0..sealed.value.len() {
                    let mut bad = sealed.value.clone();
                    bad[i] ^= 1;
                    assert_eq!(
                        client
                            .open_field(version, field, &bad, sealed.iv.as_ref())
                            .unwrap_err(),
                        DsappError::BadFieldTag(field.attribute())
                    );
                }
                if let Some(mut iv) = sealed.iv {
                    iv[3] ^= 0x80;
                    assert!(client
                        .open_field(version, field, &sealed.value, Some(&iv))
                        .is_err());
                }
            }
            assert!(server.verify_client_tag(&client.client_tag()));
            let mut wrong = client.client_tag();
            wrong[0] ^= 1;
            assert!(!server.verify_client_tag(&wrong));
            assert!(!server.verify_client_tag(&client.client_tag()[..15]));
            assert_ne!(client.client_tag(), client.server_tag());
            let code = client.derivation_code(&serial());
            assert_eq!(code.len(), 15);
            assert!(server.verify_derivation_code(&serial(), &code));
            assert!(
                !server.verify_derivation_code(&SerialNumber::parse("VDS0000002").unwrap(), &code)
            );
        }
    }

    #[test]
    fn a_field_under_another_label_does_not_open() {
        let (client, server) = exchange();
        let sealed = server.seal_field(Version::V2, Field::ActivationMessage, b"m");
        assert_eq!(
            client
                .open_field(
                    Version::V2,
                    Field::ActivationCode,
                    &sealed.value,
                    sealed.iv.as_ref()
                )
                .unwrap_err(),
            DsappError::BadFieldTag("PROVFLD_ACTIVATION_CODE")
        );
        assert_eq!(
            client
                .open_field(Version::V2, Field::ActivationMessage, &sealed.value, None)
                .unwrap_err(),
            DsappError::MissingIv("PROVFLD_ACTIVATION_MESSAGE_IV")
        );
        let v1 = server.seal_field(Version::V1, Field::ActivationCode, b"m");
        assert_eq!(
            client
                .open_field(
                    Version::V1,
                    Field::ActivationCode,
                    &v1.value,
                    Some(&[0; 16])
                )
                .unwrap_err(),
            DsappError::UnexpectedIv("PROVFLD_ACTIVATION_CODE_IV")
        );
    }

    #[test]
    fn wrong_password_gives_other_sessions_and_the_client_sees_it() {
        let hello = client_hello(ID, PW);
        let server = server_key_exchange(ID, "TB048AX3H", &hello.key_nonce, &hello.sid).unwrap();
        assert_eq!(
            hello
                .finish(&server.server_public_key, &server.adb, &server.server_tag)
                .unwrap_err(),
            DsappError::ServerProofFailed
        );
        // Another registration id is another channel: same failure.
        let hello = client_hello(ID, PW);
        let server = server_key_exchange("e3wfISG8", PW, &hello.key_nonce, &hello.sid).unwrap();
        assert_eq!(
            hello
                .finish(&server.server_public_key, &server.adb, &server.server_tag)
                .unwrap_err(),
            DsappError::ServerProofFailed
        );
    }

    #[test]
    fn tampered_server_answer_fails_the_client() {
        for what in 0..3 {
            let hello = client_hello(ID, PW);
            let mut server = server_key_exchange(ID, PW, &hello.key_nonce, &hello.sid).unwrap();
            match what {
                0 => server.adb[5] ^= 1,
                1 => server.server_tag[15] ^= 1,
                _ => {
                    // Another valid point: a fresh exchange's Yb.
                    let other = server_key_exchange(ID, PW, &hello.key_nonce, &hello.sid).unwrap();
                    server.server_public_key = other.server_public_key;
                }
            }
            assert_eq!(
                hello
                    .finish(&server.server_public_key, &server.adb, &server.server_tag)
                    .unwrap_err(),
                DsappError::ServerProofFailed
            );
        }
        let hello = client_hello(ID, PW);
        let mut server = server_key_exchange(ID, PW, &hello.key_nonce, &hello.sid).unwrap();
        server.server_public_key[40] ^= 1;
        assert_eq!(
            hello
                .finish(&server.server_public_key, &server.adb, &server.server_tag)
                .unwrap_err(),
            DsappError::BadServerKey
        );
    }

    #[test]
    fn invalid_client_points_and_lengths_are_refused() {
        let hello = client_hello(ID, PW);
        let mut off = hello.key_nonce;
        off[63] ^= 1;
        assert_eq!(
            server_key_exchange(ID, PW, &off, &hello.sid).unwrap_err(),
            DsappError::BadClientKey
        );
        assert_eq!(
            server_key_exchange(ID, PW, &[0u8; 68], &hello.sid).unwrap_err(),
            DsappError::BadClientKey
        );
        for len in [0, 67, 69, 136] {
            let e = server_key_exchange(ID, PW, &vec![0u8; len], &hello.sid).unwrap_err();
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
        assert_eq!(
            Session::from_bytes(&[0u8; 31]).unwrap_err(),
            DsappError::BadSession
        );
    }

    #[test]
    fn keys_are_one_per_purpose() {
        let (s, _) = exchange();
        let purposes = [
            Purpose::ConfirmServer,
            Purpose::ConfirmClient,
            Purpose::Derivation,
            Purpose::Enc(Field::ActivationCode),
            Purpose::Mac(Field::ActivationCode),
            Purpose::Enc(Field::EventReactivationCounter),
            Purpose::Mac(Field::EventReactivationCounter),
            Purpose::Enc(Field::ActivationMessage),
            Purpose::Mac(Field::ActivationMessage),
        ];
        let keys: std::collections::HashSet<[u8; 32]> =
            purposes.iter().map(|p| *s.key(*p)).collect();
        assert_eq!(keys.len(), purposes.len());
        assert_eq!(
            Purpose::Enc(Field::ActivationCode).info(),
            "DSAPP/v3 enc activation code"
        );
        assert_eq!(
            Purpose::Mac(Field::EventReactivationCounter).info(),
            "DSAPP/v3 mac event reactivation counter"
        );
        assert_eq!(Purpose::ConfirmServer.info(), "DSAPP/v3 confirm server");
    }

    #[test]
    fn session_bytes_round_trip_and_debug_is_redacted() {
        let (s, _) = exchange();
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), SESSION_BYTES);
        let back = Session::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes().as_slice(), bytes.as_slice());
        assert_eq!(format!("{s:?}"), "Session(..)");
    }

    #[test]
    fn xfad_round_trip_and_required_fields() {
        let key = [0xabu8; 32];
        let text = activation_code_plaintext(&serial(), &key, 4);
        let x = parse_activation_code(&text).unwrap();
        assert_eq!(x.serial, serial());
        assert_eq!(x.key.as_slice(), &key);
        assert_eq!((x.digits, x.step, x.counter), (6, 30, 4));
        let s = String::from_utf8(text.to_vec()).unwrap();
        assert!(parse_activation_code(format!("{s};future=1").as_bytes()).is_some());
        for field in ["serial", "key", "otp", "digits", "step", "counter"] {
            let without: Vec<&str> = s
                .split(';')
                .filter(|p| !p.starts_with(&format!("{field}=")))
                .collect();
            assert!(
                parse_activation_code(without.join(";").as_bytes()).is_none(),
                "{field}"
            );
        }
        assert!(parse_activation_code(s.replace("v3", "v1").as_bytes()).is_none());
    }

    #[test]
    fn versions() {
        assert_eq!(Version::from_number(1).unwrap(), Version::V1);
        assert_eq!(Version::from_number(2).unwrap(), Version::V2);
        for n in [0, 3, 42] {
            assert_eq!(
                Version::from_number(n).unwrap_err(),
                DsappError::UnsupportedVersion(n)
            );
        }
    }
}
