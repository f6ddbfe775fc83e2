//! Multi-device licensing (protocols.md section 5): the messages of an MDL activation and
//! their cryptography. Pure functions over typed values: no XML, no SQL, no clock.
//!
//! A serial number is one license of 1 to [`MAX_INSTANCES`] instances, each with a sequence
//! number 01-99. The fixed choices that fill section 5:
//!
//! * **Sizes.** License key 32 bytes, challenge 8 bytes (16 hex), device id a `u32`, device
//!   code tag 40 bits, AM2 nonce 16 bytes, instance key 32 bytes.
//! * **Activation Message 1** (server → device, protected by the user's password with the
//!   record protection of REGISTER's activation code, which the caller applies) is the ASCII text
//!   `DSAPP-MDL/v1 am1;serial=<serial>;license=<64 HEX>;challenge=<16 HEX>`. Decoding is
//!   strict: exactly this layout, uppercase hex only (the canonical form [`ActivationMessage1::encode`]
//!   writes), nothing before or after.
//! * **Device code** (device → server, `PROVFLD_DEVICE_CODE`). `tag` is the first 5 bytes,
//!   big-endian, of `HMAC-SHA256(license key, "DSAPP-MDL/v1 dc" | serial ASCII | challenge |
//!   type code byte | BE32(device id))`. The number `n = type · 2^72 + device id · 2^40 + tag`
//!   is written as 25 decimal digits, zero-padded, followed by one standard base-10 Luhn check
//!   digit over those 25 digits: 26 digits in all. Parsing wants exactly 26 ASCII digits, checks
//!   the Luhn digit (which catches every single-digit typo), and refuses a type code outside
//!   the `PROVFLD_DEVICE_TYPE` catalogue. The server verifies the tag in constant time.
//! * **Activation Message 2** (server → device, `PROVFLD_ACTIVATION_MESSAGE`). The server
//!   draws a 16-byte nonce and a 32-byte instance key and assigns the next free sequence
//!   number. Plaintext: ASCII `DSAPP-MDL/v1 am2;seq=<2 digits>;nonce=<32 HEX>;key=<64 HEX>`.
//!   Transport keys come from HKDF-SHA256 with salt `challenge | BE32(device id)` and input
//!   the license key: `enc = Expand("DSAPP-MDL/v1 am2 enc", 32)`,
//!   `mac = Expand("DSAPP-MDL/v1 am2 mac", 32)`. The plaintext is encrypted with
//!   AES-256-CBC/PKCS#7 under a random 16-byte IV and tagged with
//!   `HMAC-SHA256(mac, "DSAPP-MDL/v1 am2" | serial | IV | C)` (the serial is always 10
//!   characters, so no length prefix is needed). The tag is checked in constant time before
//!   anything is decrypted. Wire form: one byte string `IV(16) | C | TAG(32)`, hex-encoded by
//!   the caller.
//! * **Confirmation** (device → server). Either the 16-digit `PROVFLD_SIGNATURE`:
//!   `HMAC-SHA256(instance key, "DSAPP-MDL/v1 confirm" | nonce | serial ASCII | sequence
//!   byte)`, first 8 bytes as a big-endian `u64`, mod 10^16, zero-padded to 16 digits, compared
//!   in constant time; or a response-only OTP, which the caller checks with
//!   [`crate::protocol::otp::verify_totp`] keyed with the instance key (the device computes it
//!   with [`instance_otp`]). An instance has one application, so the "app-1 key" of section 5
//!   is the instance key.
//! * **Descriptions** (`PROVFLD_DESCRIPTION`): OneSpan replaces special characters with spaces.
//!   provd keeps letters and digits (any script), the space and `- _ . , ( ) @ '`, and turns
//!   every other character (controls, tabs, newlines, `< > & ; " / \ %`, ...) into one space,
//!   so the length in characters is unchanged. The 255-character limit is the wire layer's.
//!
//! Keys live in [`Zeroizing`] buffers, and the types holding them print redacted.

/// The command name bound into the protection of Activation Message 1.
pub const MDL_REGISTER: &str = "MDL_REGISTER";

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::crypto::{ct_eq, random_array, random_bytes};
use crate::protocol::otp;
use crate::types::SerialNumber;

type HmacSha256 = Hmac<Sha256>;

/// License key length in bytes.
pub const LICENSE_KEY_BYTES: usize = 32;
/// Challenge length in bytes (16 hex on the wire).
pub const CHALLENGE_BYTES: usize = 8;
/// Length of the device code tag in bits.
pub const TAG_BITS: u32 = 40;
/// Length of the AM2 nonce in bytes.
pub const NONCE_BYTES: usize = 16;
/// Length of an instance key in bytes.
pub const INSTANCE_KEY_BYTES: usize = 32;
/// Digits of a rendered device code (25 plus the Luhn digit).
pub const DEVICE_CODE_DIGITS: usize = 26;
/// Digits of a confirmation signature.
pub const SIGNATURE_DIGITS: usize = 16;
/// The largest license limit, and the largest sequence number.
pub const MAX_INSTANCES: u8 = 99;

const IV_BYTES: usize = 16;
const MAC_BYTES: usize = 32;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

const AM1_PREFIX: &str = "DSAPP-MDL/v1 am1;serial=";
const AM2_PREFIX: &str = "DSAPP-MDL/v1 am2;seq=";
const DC_LABEL: &[u8] = b"DSAPP-MDL/v1 dc";
const AM2_LABEL: &[u8] = b"DSAPP-MDL/v1 am2";
const CONFIRM_LABEL: &[u8] = b"DSAPP-MDL/v1 confirm";

/// Why an MDL value was refused. The messages name the attribute concerned and never carry a
/// key, a tag or a plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MdlError {
    #[error("PROVFLD_DEVICE_TYPE {given:?} is not a device type; allowed values: 0 (hardware), 1 (unknown software), 3 (iOS), 5 (jailbroken iOS), 7 (Android), 9 (rooted Android), 11 (Windows Phone), 13 (BlackBerry native), 15 (MIDP2 or BlackBerry Java), 17 (Windows), 19 (Linux), 21 (Mac), 23 (RFU)")]
    DeviceType { given: String },
    #[error("PROVFLD_DEVICE_CODE must be exactly 26 digits, got {0} characters")]
    DeviceCodeLength(usize),
    #[error("PROVFLD_DEVICE_CODE must contain only the digits 0-9")]
    DeviceCodeDigits,
    #[error("PROVFLD_DEVICE_CODE check digit does not match; the code was probably mistyped")]
    DeviceCodeCheckDigit,
    #[error("PROVFLD_DEVICE_CODE is out of range (its device type field does not fit)")]
    DeviceCodeRange,
    #[error("PROVFLD_DEVICE_CODE names device type {0}, which is not in the PROVFLD_DEVICE_TYPE catalogue")]
    DeviceCodeType(u8),
    #[error("PROVFLD_SIGNATURE must be exactly 16 digits")]
    SignatureFormat,
    #[error("PROVFLD_ACTIVATION_MESSAGE (activation message {message}) is malformed: {reason}")]
    Malformed { message: u8, reason: &'static str },
    #[error("PROVFLD_ACTIVATION_MESSAGE (activation message 2) does not verify")]
    Am2Mac,
    #[error("PROVFLD_ACTIVATION_MESSAGE (activation message 2) does not decrypt")]
    Am2Padding,
    #[error("sequence number {0} is outside 1-99")]
    Sequence(u8),
}

/// The `PROVFLD_DEVICE_TYPE` catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    Hardware = 0,
    UnknownSoftware = 1,
    Ios = 3,
    JailbrokenIos = 5,
    Android = 7,
    RootedAndroid = 9,
    WindowsPhone = 11,
    BlackBerryNative = 13,
    Midp2OrBlackBerryJava = 15,
    Windows = 17,
    Linux = 19,
    Mac = 21,
    Rfu = 23,
}

impl DeviceType {
    /// Every device type, in code order.
    pub const ALL: [DeviceType; 13] = [
        DeviceType::Hardware,
        DeviceType::UnknownSoftware,
        DeviceType::Ios,
        DeviceType::JailbrokenIos,
        DeviceType::Android,
        DeviceType::RootedAndroid,
        DeviceType::WindowsPhone,
        DeviceType::BlackBerryNative,
        DeviceType::Midp2OrBlackBerryJava,
        DeviceType::Windows,
        DeviceType::Linux,
        DeviceType::Mac,
        DeviceType::Rfu,
    ];

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    /// The decimal wire form (`"7"`; leading zeros are tolerated, signs and spaces are not).
    pub fn parse(raw: &str) -> Result<Self, MdlError> {
        let refuse = || MdlError::DeviceType {
            given: raw.chars().take(16).collect(),
        };
        if raw.is_empty() || raw.len() > 3 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse());
        }
        raw.parse::<u8>()
            .ok()
            .and_then(Self::from_code)
            .ok_or_else(refuse)
    }

    /// A display name.
    pub fn name(self) -> &'static str {
        match self {
            DeviceType::Hardware => "hardware device",
            DeviceType::UnknownSoftware => "unknown software platform",
            DeviceType::Ios => "iOS",
            DeviceType::JailbrokenIos => "jailbroken iOS",
            DeviceType::Android => "Android",
            DeviceType::RootedAndroid => "rooted Android",
            DeviceType::WindowsPhone => "Windows Phone",
            DeviceType::BlackBerryNative => "BlackBerry native",
            DeviceType::Midp2OrBlackBerryJava => "MIDP2 platform or BlackBerry Java",
            DeviceType::Windows => "Windows",
            DeviceType::Linux => "Linux",
            DeviceType::Mac => "Mac",
            DeviceType::Rfu => "RFU",
        }
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fresh 32-byte license key.
pub fn new_license_key() -> Zeroizing<Vec<u8>> {
    random_bytes(LICENSE_KEY_BYTES)
}

/// A fresh 8-byte challenge.
pub fn new_challenge() -> [u8; CHALLENGE_BYTES] {
    random_array()
}

/// Activation Message 1: what the device needs to compute its device code.
#[derive(Clone, PartialEq, Eq)]
pub struct ActivationMessage1 {
    pub serial: SerialNumber,
    pub license_key: Zeroizing<Vec<u8>>,
    pub challenge: [u8; CHALLENGE_BYTES],
}

impl fmt::Debug for ActivationMessage1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivationMessage1")
            .field("serial", &self.serial)
            .field("license_key", &"<redacted>")
            .field("challenge", &hex::encode_upper(self.challenge))
            .finish()
    }
}

impl ActivationMessage1 {
    /// `DSAPP-MDL/v1 am1;serial=<serial>;license=<HEX>;challenge=<HEX>`.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let license = Zeroizing::new(hex::encode_upper(self.license_key.as_slice()));
        let text = Zeroizing::new(format!(
            "{AM1_PREFIX}{};license={};challenge={}",
            self.serial.as_str(),
            license.as_str(),
            hex::encode_upper(self.challenge)
        ));
        Zeroizing::new(text.as_bytes().to_vec())
    }

    /// The strict inverse of [`ActivationMessage1::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, MdlError> {
        let bad = |reason| MdlError::Malformed { message: 1, reason };
        let rest = bytes
            .strip_prefix(AM1_PREFIX.as_bytes())
            .ok_or(bad("it does not start with the AM1 header"))?;
        if rest.len() < SerialNumber::LEN {
            return Err(bad("the serial number is cut short"));
        }
        let (serial, rest) = rest.split_at(SerialNumber::LEN);
        let serial = std::str::from_utf8(serial)
            .ok()
            .and_then(|s| SerialNumber::parse(s).ok())
            .ok_or(bad("the serial number is not valid"))?;
        let rest = rest
            .strip_prefix(b";license=")
            .ok_or(bad("the license field is missing"))?;
        if rest.len() < 2 * LICENSE_KEY_BYTES {
            return Err(bad("the license key is cut short"));
        }
        let (license, rest) = rest.split_at(2 * LICENSE_KEY_BYTES);
        let license_key = upper_hex(license).ok_or(bad("the license key is not uppercase hex"))?;
        let rest = rest
            .strip_prefix(b";challenge=")
            .ok_or(bad("the challenge field is missing"))?;
        if rest.len() != 2 * CHALLENGE_BYTES {
            return Err(bad("the challenge is not 16 hex digits"));
        }
        let challenge = upper_hex(rest)
            .ok_or(bad("the challenge is not uppercase hex"))?
            .as_slice()
            .try_into()
            .expect("8 bytes");
        Ok(ActivationMessage1 {
            serial,
            license_key,
            challenge,
        })
    }
}

/// Decodes canonical (uppercase) hex of even length.
fn upper_hex(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if !text
        .iter()
        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
    {
        return None;
    }
    hex::decode(text).ok().map(Zeroizing::new)
}

/// A device code: device type, device id and the 40-bit tag that binds them to the license.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCode {
    pub device_type: DeviceType,
    pub device_id: u32,
    /// Only the low 40 bits are meaningful; codes computed or parsed here never set more.
    pub tag: u64,
}

/// `HMAC-SHA256(license key, "DSAPP-MDL/v1 dc" | serial | challenge | type | BE32(id))`,
/// first 5 bytes.
fn device_tag(
    license_key: &[u8],
    serial: &SerialNumber,
    challenge: &[u8; CHALLENGE_BYTES],
    device_type: DeviceType,
    device_id: u32,
) -> [u8; 5] {
    let mut m = HmacSha256::new_from_slice(license_key).expect("HMAC takes any key length");
    m.update(DC_LABEL);
    m.update(serial.as_str().as_bytes());
    m.update(challenge);
    m.update(&[device_type.code()]);
    m.update(&device_id.to_be_bytes());
    let h = m.finalize().into_bytes();
    h[..5].try_into().expect("5 bytes")
}

/// The standard base-10 Luhn check digit for `payload` (ASCII digits).
fn luhn_digit(payload: &[u8]) -> u8 {
    super::luhn::check_char(super::luhn::DIGITS, payload).unwrap_or(b'0')
}

impl DeviceCode {
    /// What the device computes after reading Activation Message 1.
    pub fn compute(
        license_key: &[u8],
        serial: &SerialNumber,
        challenge: &[u8; CHALLENGE_BYTES],
        device_type: DeviceType,
        device_id: u32,
    ) -> DeviceCode {
        let t = device_tag(license_key, serial, challenge, device_type, device_id);
        let mut be = [0u8; 8];
        be[3..].copy_from_slice(&t);
        DeviceCode {
            device_type,
            device_id,
            tag: u64::from_be_bytes(be),
        }
    }

    fn number(&self) -> u128 {
        (u128::from(self.device_type.code()) << 72)
            | (u128::from(self.device_id) << 40)
            | u128::from(self.tag & TAG_MASK)
    }

    /// 25 zero-padded decimal digits and the Luhn digit.
    pub fn render(&self) -> String {
        let mut s = format!("{:025}", self.number());
        let check = luhn_digit(s.as_bytes());
        s.push(check as char);
        s
    }

    /// Reads a `PROVFLD_DEVICE_CODE`: exactly 26 ASCII digits whose last is the Luhn digit of
    /// the others, naming a catalogued device type.
    pub fn parse(raw: &str) -> Result<DeviceCode, MdlError> {
        if !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MdlError::DeviceCodeDigits);
        }
        if raw.len() != DEVICE_CODE_DIGITS {
            return Err(MdlError::DeviceCodeLength(raw.len()));
        }
        let (payload, check) = raw.as_bytes().split_at(DEVICE_CODE_DIGITS - 1);
        if luhn_digit(payload) != check[0] {
            return Err(MdlError::DeviceCodeCheckDigit);
        }
        let n: u128 = raw[..DEVICE_CODE_DIGITS - 1]
            .parse()
            .map_err(|_| MdlError::DeviceCodeRange)?;
        let code = u8::try_from(n >> 72).map_err(|_| MdlError::DeviceCodeRange)?;
        let device_type = DeviceType::from_code(code).ok_or(MdlError::DeviceCodeType(code))?;
        Ok(DeviceCode {
            device_type,
            device_id: ((n >> 40) & 0xFFFF_FFFF) as u32,
            tag: (n as u64) & TAG_MASK,
        })
    }

    /// Whether the tag is the one the license key gives for this serial, challenge, device
    /// type and device id (constant-time comparison).
    pub fn verify(
        &self,
        license_key: &[u8],
        serial: &SerialNumber,
        challenge: &[u8; CHALLENGE_BYTES],
    ) -> bool {
        let want = device_tag(
            license_key,
            serial,
            challenge,
            self.device_type,
            self.device_id,
        );
        ct_eq(&self.tag.to_be_bytes()[3..], &want) && self.tag <= TAG_MASK
    }
}

impl fmt::Display for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Activation Message 2: the instance's sequence number, nonce and key.
#[derive(Clone, PartialEq, Eq)]
pub struct ActivationMessage2 {
    /// 1 to 99.
    pub sequence: u8,
    pub nonce: [u8; NONCE_BYTES],
    pub instance_key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ActivationMessage2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivationMessage2")
            .field("sequence", &self.sequence)
            .field("nonce", &hex::encode_upper(self.nonce))
            .field("instance_key", &"<redacted>")
            .finish()
    }
}

impl ActivationMessage2 {
    /// A fresh message for `sequence`: random nonce and instance key.
    pub fn generate(sequence: u8) -> Result<Self, MdlError> {
        if !(1..=MAX_INSTANCES).contains(&sequence) {
            return Err(MdlError::Sequence(sequence));
        }
        Ok(ActivationMessage2 {
            sequence,
            nonce: random_array(),
            instance_key: random_bytes(INSTANCE_KEY_BYTES),
        })
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let key = Zeroizing::new(hex::encode_upper(self.instance_key.as_slice()));
        let text = Zeroizing::new(format!(
            "{AM2_PREFIX}{:02};nonce={};key={}",
            self.sequence,
            hex::encode_upper(self.nonce),
            key.as_str()
        ));
        Zeroizing::new(text.as_bytes().to_vec())
    }

    fn decode(bytes: &[u8]) -> Result<Self, MdlError> {
        let bad = |reason| MdlError::Malformed { message: 2, reason };
        let rest = bytes
            .strip_prefix(AM2_PREFIX.as_bytes())
            .ok_or(bad("it does not start with the AM2 header"))?;
        if rest.len() < 2 {
            return Err(bad("the sequence number is cut short"));
        }
        let (seq, rest) = rest.split_at(2);
        if !seq.iter().all(u8::is_ascii_digit) {
            return Err(bad("the sequence number is not two digits"));
        }
        let sequence = (seq[0] - b'0') * 10 + (seq[1] - b'0');
        if sequence == 0 {
            return Err(bad("the sequence number is 00"));
        }
        let rest = rest
            .strip_prefix(b";nonce=")
            .ok_or(bad("the nonce field is missing"))?;
        if rest.len() < 2 * NONCE_BYTES {
            return Err(bad("the nonce is cut short"));
        }
        let (nonce, rest) = rest.split_at(2 * NONCE_BYTES);
        let nonce = upper_hex(nonce)
            .ok_or(bad("the nonce is not uppercase hex"))?
            .as_slice()
            .try_into()
            .expect("16 bytes");
        let rest = rest
            .strip_prefix(b";key=")
            .ok_or(bad("the key field is missing"))?;
        if rest.len() != 2 * INSTANCE_KEY_BYTES {
            return Err(bad("the instance key is not 64 hex digits"));
        }
        let instance_key = upper_hex(rest).ok_or(bad("the instance key is not uppercase hex"))?;
        Ok(ActivationMessage2 {
            sequence,
            nonce,
            instance_key,
        })
    }
}

/// The AM2 transport keys of one license key, challenge and device id:
/// `HKDF(salt = challenge | BE32(id), IKM = license key, "DSAPP-MDL/v1 am2 enc" / "... mac")`.
fn am2_keys(
    license_key: &[u8],
    challenge: &[u8; CHALLENGE_BYTES],
    device_id: u32,
) -> crate::protocol::record::RecordKeys {
    let mut salt = [0u8; CHALLENGE_BYTES + 4];
    salt[..CHALLENGE_BYTES].copy_from_slice(challenge);
    salt[CHALLENGE_BYTES..].copy_from_slice(&device_id.to_be_bytes());
    crate::protocol::record::RecordKeys::derive(
        &salt,
        license_key,
        b"DSAPP-MDL/v1 am2 enc",
        b"DSAPP-MDL/v1 am2 mac",
    )
}

/// Encrypts and tags Activation Message 2 under a fresh random IV: `IV | C | TAG`.
pub fn seal_am2(
    license_key: &[u8],
    challenge: &[u8; CHALLENGE_BYTES],
    device_id: u32,
    serial: &SerialNumber,
    am2: &ActivationMessage2,
) -> Vec<u8> {
    seal_am2_with_iv(
        license_key,
        challenge,
        device_id,
        serial,
        am2,
        random_array(),
    )
}

fn seal_am2_with_iv(
    license_key: &[u8],
    challenge: &[u8; CHALLENGE_BYTES],
    device_id: u32,
    serial: &SerialNumber,
    am2: &ActivationMessage2,
    iv: [u8; IV_BYTES],
) -> Vec<u8> {
    let keys = am2_keys(license_key, challenge, device_id);
    let plaintext = am2.encode();
    let sealed = keys.seal_cbc(&[AM2_LABEL, serial.as_str().as_bytes()], iv, &plaintext);
    let mut out = Vec::with_capacity(IV_BYTES + sealed.ciphertext.len() + MAC_BYTES);
    out.extend_from_slice(&sealed.iv);
    out.extend_from_slice(&sealed.ciphertext);
    out.extend_from_slice(&sealed.mac);
    out
}

/// The device's side: checks the tag in constant time, then decrypts and decodes.
pub fn open_am2(
    license_key: &[u8],
    challenge: &[u8; CHALLENGE_BYTES],
    device_id: u32,
    serial: &SerialNumber,
    bytes: &[u8],
) -> Result<ActivationMessage2, MdlError> {
    let body_len = bytes.len().saturating_sub(IV_BYTES + MAC_BYTES);
    if bytes.len() < IV_BYTES + 16 + MAC_BYTES || !body_len.is_multiple_of(16) {
        return Err(MdlError::Malformed {
            message: 2,
            reason: "its length is not IV, whole cipher blocks and a 32-byte tag",
        });
    }
    let (iv, rest) = bytes.split_at(IV_BYTES);
    let (ciphertext, tag) = rest.split_at(body_len);
    let sealed = crate::protocol::record::Sealed {
        iv: iv.try_into().expect("16 bytes"),
        ciphertext: ciphertext.to_vec(),
        mac: tag.try_into().expect("32 bytes"),
    };
    let plaintext = am2_keys(license_key, challenge, device_id)
        .open_cbc(&[AM2_LABEL, serial.as_str().as_bytes()], &sealed)
        .map_err(|e| match e {
            crate::protocol::record::RecordError::BadMac => MdlError::Am2Mac,
            crate::protocol::record::RecordError::BadPadding => MdlError::Am2Padding,
        })?;
    ActivationMessage2::decode(&plaintext)
}

/// The 16-digit confirmation signature the device returns after Activation Message 2.
pub fn signature(
    instance_key: &[u8],
    am2_nonce: &[u8; NONCE_BYTES],
    serial: &SerialNumber,
    sequence: u8,
) -> String {
    let mut m = HmacSha256::new_from_slice(instance_key).expect("HMAC takes any key length");
    m.update(CONFIRM_LABEL);
    m.update(am2_nonce);
    m.update(serial.as_str().as_bytes());
    m.update(&[sequence]);
    let h = m.finalize().into_bytes();
    let v = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    format!("{:016}", v % 10_000_000_000_000_000)
}

/// Whether `given` is exactly 16 ASCII digits (the `PROVFLD_SIGNATURE` shape).
pub fn check_signature_format(given: &str) -> Result<(), MdlError> {
    if given.len() == SIGNATURE_DIGITS && given.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(MdlError::SignatureFormat)
    }
}

/// Whether `given` is the confirmation signature (constant-time comparison; a value of the
/// wrong shape is simply false).
pub fn verify_signature(
    instance_key: &[u8],
    am2_nonce: &[u8; NONCE_BYTES],
    serial: &SerialNumber,
    sequence: u8,
    given: &str,
) -> bool {
    if check_signature_format(given).is_err() {
        return false;
    }
    let want = signature(instance_key, am2_nonce, serial, sequence);
    ct_eq(want.as_bytes(), given.as_bytes())
}

/// The device's response-only OTP for the instance (6-digit TOTP keyed with the instance
/// key); the server checks it with [`otp::verify_totp`].
pub fn instance_otp(instance_key: &[u8], unix: i64) -> String {
    otp::totp(instance_key, unix, otp::DIGITS)
}

/// The smallest sequence number in 1..=99 not in `used`, or `None` when all 99 are taken.
pub fn next_free_sequence(used: &[u8]) -> Option<u8> {
    (1..=MAX_INSTANCES).find(|s| !used.contains(s))
}

fn description_char_allowed(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | ',' | '(' | ')' | '@' | '\'')
}

/// A `PROVFLD_DESCRIPTION` with every character outside letters, digits, space and
/// `- _ . , ( ) @ '` replaced by a space (one for one, so the length in characters stays).
pub fn sanitize_description(raw: &str) -> String {
    raw.chars()
        .map(|c| if description_char_allowed(c) { c } else { ' ' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial() -> SerialNumber {
        SerialNumber::parse("VDS0000001").unwrap()
    }

    fn license() -> Vec<u8> {
        (0u8..32).collect()
    }

    const CHALLENGE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
    const DEVICE_ID: u32 = 0x1234_5678;

    fn am2() -> ActivationMessage2 {
        ActivationMessage2 {
            sequence: 3,
            nonce: core::array::from_fn(|i| 0xA0 + i as u8),
            instance_key: Zeroizing::new((0x20u8..0x40).collect()),
        }
    }

    /// Cross-checked with Python's hmac/hashlib and `cryptography` (HKDF, AES-CBC):
    /// license key 00..1F, serial VDS0000001, challenge 0102030405060708, Android (7),
    /// device id 0x12345678; instance key 20..3F, nonce A0..AF, sequence 3, IV 40..4F.
    #[test]
    fn known_answer_vectors() {
        let dc = DeviceCode::compute(
            &license(),
            &serial(),
            &CHALLENGE,
            DeviceType::Android,
            DEVICE_ID,
        );
        assert_eq!(dc.tag, 0x03_390C_7CC0);
        assert_eq!(dc.render(), "00333923781071074951487365");
        let m = am2();
        assert_eq!(
            signature(&m.instance_key, &m.nonce, &serial(), m.sequence),
            "6593796219492881"
        );
        let iv = core::array::from_fn(|i| 0x40 + i as u8);
        let sealed = seal_am2_with_iv(&license(), &CHALLENGE, DEVICE_ID, &serial(), &m, iv);
        assert_eq!(
            hex::encode_upper(&sealed),
            "404142434445464748494A4B4C4D4E4F7F99D010F52FFF64E7A425433E5A7D216092AEE4E793773C\
             7320815E92D63B094721FB9CD8EF38029BF92CB11E1C9EC471E0DEA8A6312F8EC5690365AE68C5E9\
             D6B23BB7B6EFFB84DC76EB215575FE822819BC2E96D1F5C9F43BE72D77767063DC1BADC93D19112B\
             FFEA1D26CA9F753A83D4AF56C010CD35E1D6FC2D08783EDE33CA0E780975BB9B22DD4FC2BC8B6AFB\
             353765F5A8E014C309AB79F65C8A328B15F57E00683794B0D31766634AF2DE03"
        );
    }

    #[test]
    fn device_types() {
        for t in DeviceType::ALL {
            assert_eq!(DeviceType::from_code(t.code()), Some(t));
            assert_eq!(DeviceType::parse(&t.code().to_string()), Ok(t));
        }
        assert_eq!(DeviceType::parse("7"), Ok(DeviceType::Android));
        assert_eq!(DeviceType::from_code(2), None);
        for bad in ["2", "24", "", " 7", "+7", "-1", "x", "1000", "255"] {
            let e = DeviceType::parse(bad).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("PROVFLD_DEVICE_TYPE"), "{msg}");
            assert!(msg.contains("23 (RFU)"), "{msg}");
        }
    }

    #[test]
    fn am1_round_trip_and_strictness() {
        let m = ActivationMessage1 {
            serial: serial(),
            license_key: Zeroizing::new(license()),
            challenge: CHALLENGE,
        };
        let enc = m.encode();
        assert_eq!(
            std::str::from_utf8(&enc).unwrap(),
            "DSAPP-MDL/v1 am1;serial=VDS0000001;license=000102030405060708090A0B0C0D0E0F\
             101112131415161718191A1B1C1D1E1F;challenge=0102030405060708"
        );
        assert_eq!(ActivationMessage1::decode(&enc).unwrap(), m);
        let text = std::str::from_utf8(&enc).unwrap().to_owned();
        for bad in [
            format!("{text};"),
            format!(" {text}"),
            text.replace("0A0B", "0a0b"),
            text.replace("challenge=0102030405060708", "challenge=01020304050607"),
            text.replace("license=00", "license="),
            text.replace("VDS0000001", "VDS000000!"),
            text.replace(";challenge", ",challenge"),
            String::new(),
        ] {
            let e = ActivationMessage1::decode(bad.as_bytes()).unwrap_err();
            assert!(matches!(e, MdlError::Malformed { message: 1, .. }), "{e}");
        }
        let dbg = format!("{m:?}");
        assert!(dbg.contains("redacted") && !dbg.contains("1F"), "{dbg}");
    }

    #[test]
    fn device_code_round_trip_and_verify() {
        let lk = new_license_key();
        let ch = new_challenge();
        for (t, id) in [
            (DeviceType::Hardware, 0),
            (DeviceType::Ios, 1),
            (DeviceType::Rfu, u32::MAX),
            (DeviceType::Android, DEVICE_ID),
        ] {
            let dc = DeviceCode::compute(&lk, &serial(), &ch, t, id);
            assert!(dc.tag <= TAG_MASK);
            let text = dc.render();
            assert_eq!(text.len(), 26);
            assert!(text.bytes().all(|b| b.is_ascii_digit()));
            let back = DeviceCode::parse(&text).unwrap();
            assert_eq!(back, dc);
            assert!(back.verify(&lk, &serial(), &ch));
            // Another challenge, license key or serial does not verify.
            let mut ch2 = ch;
            ch2[0] ^= 1;
            assert!(!back.verify(&lk, &serial(), &ch2));
            assert!(!back.verify(&new_license_key(), &serial(), &ch));
            assert!(!back.verify(&lk, &SerialNumber::parse("VDS0000002").unwrap(), &ch));
            // Another claimed type or device id does not verify either.
            let other = DeviceCode {
                device_id: id.wrapping_add(1),
                ..back
            };
            assert!(!other.verify(&lk, &serial(), &ch));
        }
    }

    #[test]
    fn luhn_catches_every_single_digit_substitution() {
        let code = "00333923781071074951487365";
        assert!(DeviceCode::parse(code).is_ok());
        for i in 0..code.len() {
            for d in b'0'..=b'9' {
                let mut b = code.as_bytes().to_vec();
                if b[i] == d {
                    continue;
                }
                b[i] = d;
                let typo = String::from_utf8(b).unwrap();
                assert!(DeviceCode::parse(&typo).is_err(), "{typo} was accepted");
            }
        }
        let mut b = code.as_bytes().to_vec();
        b[25] = if b[25] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            DeviceCode::parse(std::str::from_utf8(&b).unwrap()),
            Err(MdlError::DeviceCodeCheckDigit)
        );
    }

    fn with_check(payload: &str) -> String {
        let c = luhn_digit(payload.as_bytes()) as char;
        format!("{payload}{c}")
    }

    #[test]
    fn device_code_shape_and_range() {
        assert_eq!(
            DeviceCode::parse("0033392378107107495148736"),
            Err(MdlError::DeviceCodeLength(25))
        );
        assert_eq!(
            DeviceCode::parse("003339237810710749514873650"),
            Err(MdlError::DeviceCodeLength(27))
        );
        assert_eq!(
            DeviceCode::parse("0033392378107107495148736a"),
            Err(MdlError::DeviceCodeDigits)
        );
        assert_eq!(
            DeviceCode::parse("0033392378107107 495148736"),
            Err(MdlError::DeviceCodeDigits)
        );
        // Type code 2 is not in the catalogue.
        let two = with_check(&format!("{:025}", 2u128 << 72));
        let e = DeviceCode::parse(&two).unwrap_err();
        assert_eq!(e, MdlError::DeviceCodeType(2));
        assert!(e.to_string().contains("device type 2"), "{e}");
        // A type field above 255 does not fit.
        let big = with_check("9999999999999999999999999");
        assert_eq!(DeviceCode::parse(&big), Err(MdlError::DeviceCodeRange));
    }

    #[test]
    fn am2_round_trip() {
        let lk = new_license_key();
        let ch = new_challenge();
        let m = ActivationMessage2::generate(42).unwrap();
        let sealed = seal_am2(&lk, &ch, DEVICE_ID, &serial(), &m);
        let back = open_am2(&lk, &ch, DEVICE_ID, &serial(), &sealed).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.sequence, 42);
        // A fresh IV each time.
        assert_ne!(seal_am2(&lk, &ch, DEVICE_ID, &serial(), &m), sealed);
        let dbg = format!("{m:?}");
        assert!(dbg.contains("redacted"), "{dbg}");
        assert_eq!(
            ActivationMessage2::generate(0).unwrap_err(),
            MdlError::Sequence(0)
        );
        assert_eq!(
            ActivationMessage2::generate(100).unwrap_err(),
            MdlError::Sequence(100)
        );
        assert_eq!(ActivationMessage2::generate(99).unwrap().sequence, 99);
    }

    #[test]
    fn am2_tampering_and_wrong_keys_are_refused() {
        let lk = license();
        let m = am2();
        let sealed = seal_am2(&lk, &CHALLENGE, DEVICE_ID, &serial(), &m);
        let open = |b: &[u8]| open_am2(&lk, &CHALLENGE, DEVICE_ID, &serial(), b);
        for (what, at) in [
            ("IV", 0),
            ("ciphertext", 16),
            ("last block", sealed.len() - 33),
            ("tag", sealed.len() - 1),
        ] {
            let mut t = sealed.clone();
            t[at] ^= 0x80;
            assert_eq!(open(&t).unwrap_err(), MdlError::Am2Mac, "{what}");
        }
        assert_eq!(
            open_am2(&lk, &CHALLENGE, DEVICE_ID + 1, &serial(), &sealed).unwrap_err(),
            MdlError::Am2Mac
        );
        assert_eq!(
            open_am2(&lk, &[0; 8], DEVICE_ID, &serial(), &sealed).unwrap_err(),
            MdlError::Am2Mac
        );
        assert_eq!(
            open_am2(&[7; 32], &CHALLENGE, DEVICE_ID, &serial(), &sealed).unwrap_err(),
            MdlError::Am2Mac
        );
        let other = SerialNumber::parse("VDS0000002").unwrap();
        assert_eq!(
            open_am2(&lk, &CHALLENGE, DEVICE_ID, &other, &sealed).unwrap_err(),
            MdlError::Am2Mac
        );
        for cut in [&sealed[..0], &sealed[..63], &sealed[..sealed.len() - 1]] {
            let e = open(cut).unwrap_err();
            assert!(matches!(e, MdlError::Malformed { message: 2, .. }), "{e}");
            assert!(e.to_string().contains("PROVFLD_ACTIVATION_MESSAGE"));
        }
    }

    #[test]
    fn am2_plaintext_is_strict() {
        let text = std::str::from_utf8(&am2().encode()).unwrap().to_owned();
        assert!(text.starts_with("DSAPP-MDL/v1 am2;seq=03;nonce=A0A1"));
        assert_eq!(ActivationMessage2::decode(text.as_bytes()).unwrap(), am2());
        for bad in [
            text.replace("seq=03", "seq=00"),
            text.replace("seq=03", "seq=3"),
            text.replace("nonce=A0", "nonce=a0"),
            format!("{text}00"),
        ] {
            assert!(ActivationMessage2::decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn signature_verifies_and_a_wrong_digit_fails() {
        let m = am2();
        let sig = signature(&m.instance_key, &m.nonce, &serial(), m.sequence);
        assert_eq!(sig.len(), 16);
        assert!(check_signature_format(&sig).is_ok());
        assert!(verify_signature(
            &m.instance_key,
            &m.nonce,
            &serial(),
            m.sequence,
            &sig
        ));
        for i in 0..16 {
            let mut b = sig.clone().into_bytes();
            b[i] = if b[i] == b'9' { b'0' } else { b[i] + 1 };
            let wrong = String::from_utf8(b).unwrap();
            assert!(!verify_signature(
                &m.instance_key,
                &m.nonce,
                &serial(),
                m.sequence,
                &wrong
            ));
        }
        assert!(!verify_signature(
            &m.instance_key,
            &m.nonce,
            &serial(),
            m.sequence + 1,
            &sig
        ));
        for bad in [&sig[..15], "659379621949288a", "", "65937962194928810"] {
            assert!(!verify_signature(
                &m.instance_key,
                &m.nonce,
                &serial(),
                m.sequence,
                bad
            ));
            assert_eq!(check_signature_format(bad), Err(MdlError::SignatureFormat));
        }
    }

    #[test]
    fn instance_otp_verifies_with_the_instance_key() {
        let m = am2();
        let t = 1_800_000_000;
        let code = instance_otp(&m.instance_key, t);
        assert_eq!(code.len(), 6);
        assert!(otp::verify_totp(&m.instance_key, &code, t).is_some());
        assert!(otp::verify_totp(&[0; 32], &code, t).is_none());
    }

    #[test]
    fn next_free_sequence_edges() {
        assert_eq!(next_free_sequence(&[]), Some(1));
        assert_eq!(next_free_sequence(&[1, 2, 4]), Some(3));
        assert_eq!(next_free_sequence(&[2, 3]), Some(1));
        assert_eq!(next_free_sequence(&[3, 1, 2]), Some(4));
        let all: Vec<u8> = (1..=99).collect();
        assert_eq!(next_free_sequence(&all), None);
        let but_last: Vec<u8> = (1..=98).collect();
        assert_eq!(next_free_sequence(&but_last), Some(99));
        // Values outside 1-99 do not take a slot.
        let with_junk: Vec<u8> = (1..=98).chain([0, 100, 255]).collect();
        assert_eq!(next_free_sequence(&with_junk), Some(99));
    }

    #[test]
    fn descriptions_are_sanitized() {
        assert_eq!(
            sanitize_description("Zoë's iPhone (work) - v2.1, a_b@c"),
            "Zoë's iPhone (work) - v2.1, a_b@c"
        );
        assert_eq!(
            sanitize_description("<b>x</b>&y;\"z\"\t\n\u{0}%/\\"),
            format!(" b x  b  y  z{}", " ".repeat(7))
        );
        let s = "a<\u{7f}b";
        assert_eq!(sanitize_description(s).chars().count(), s.chars().count());
        assert_eq!(sanitize_description(""), "");
    }

    #[test]
    fn error_messages_carry_no_secret() {
        let lk = license();
        let sealed = seal_am2(&lk, &CHALLENGE, DEVICE_ID, &serial(), &am2());
        let mut t = sealed.clone();
        t[20] ^= 1;
        let msg = open_am2(&lk, &CHALLENGE, DEVICE_ID, &serial(), &t)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("PROVFLD_ACTIVATION_MESSAGE"), "{msg}");
        assert!(!msg.contains("2021222324"), "{msg}");
    }
}
