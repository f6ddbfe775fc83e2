//! Domain newtypes shared by every layer. Each constructor parses, so a value of one of these
//! types is valid by construction.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a raw string was not accepted as one of the newtypes below.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("must be exactly {expected} characters, got {got}")]
    Length { expected: usize, got: usize },
    #[error("must be at most {max} characters, got {got}")]
    TooLong { max: usize, got: usize },
    #[error("must not be empty")]
    Empty,
    #[error("{0}")]
    Format(&'static str),
}

/// An authenticator serial number: exactly 10 characters, a 3-character prefix and 7 digits
/// for the authenticators provd generates; imported ones only need 10 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SerialNumber(String);

impl SerialNumber {
    pub const LEN: usize = 10;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let got = raw.chars().count();
        if got != Self::LEN {
            return Err(ParseError::Length {
                expected: Self::LEN,
                got,
            });
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ParseError::Format("must be ASCII letters and digits"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A serial number from a 3-character prefix and a number below 10^7.
    pub fn from_prefix(prefix: &Prefix, number: u32) -> Self {
        Self(format!("{}{:07}", prefix.0, number % 10_000_000))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 3-character prefix of generated serial numbers (for example `VDS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.chars().count() != 3 {
            return Err(ParseError::Length {
                expected: 3,
                got: raw.chars().count(),
            });
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ParseError::Format("must be ASCII letters and digits"));
        }
        Ok(Self(raw.to_ascii_uppercase()))
    }
}

impl std::str::FromStr for Prefix {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A registration identifier: 8 mixed-case ASCII alphanumerics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegistrationId(String);

impl RegistrationId {
    pub const LEN: usize = 8;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let got = raw.chars().count();
        if got != Self::LEN {
            return Err(ParseError::Length {
                expected: Self::LEN,
                got,
            });
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ParseError::Format("must be ASCII letters and digits"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user identifier as the calling application sends it: 1 to 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

/// A domain name: 1 to 255 characters, compared case-insensitively (stored lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

/// An organizational unit: up to 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgUnit(String);

fn bounded(raw: &str, max: usize) -> Result<(), ParseError> {
    let got = raw.chars().count();
    if got == 0 {
        return Err(ParseError::Empty);
    }
    if got > max {
        return Err(ParseError::TooLong { max, got });
    }
    if raw.chars().any(char::is_control) {
        return Err(ParseError::Format("must not contain control characters"));
    }
    Ok(())
}

impl UserId {
    pub const MAX: usize = 255;
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded(raw, Self::MAX)?;
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Domain {
    pub const MAX: usize = 255;
    /// The domain a user lands in when none is given, as on OneSpan Authentication Server.
    pub const DEFAULT: &'static str = "master";

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded(raw, Self::MAX)?;
        Ok(Self(raw.to_lowercase()))
    }
    pub fn master() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl OrgUnit {
    pub const MAX: usize = 255;
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded(raw, Self::MAX)?;
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address to deliver to: `local@domain`, at most 254 characters, no spaces or
/// control characters. The SMTP library checks the rest when the message is built.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX: usize = 254;
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded(raw, Self::MAX)?;
        let (local, domain) = raw
            .rsplit_once('@')
            .ok_or(ParseError::Format("an e-mail address needs an @"))?;
        if local.is_empty()
            || domain.is_empty()
            || !domain.contains('.') && domain != "localhost"
            || raw
                .chars()
                .any(|c| c.is_whitespace() || "<>,;\"\\".contains(c))
        {
            return Err(ParseError::Format("not an e-mail address (local@domain)"));
        }
        // What the mailer will accept when the message is built.
        raw.parse::<lettre::Address>()
            .map_err(|_| ParseError::Format("not an e-mail address (local@domain)"))?;
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The part after the @, what logs may show.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// Binary data that travels as hex: accepts either case, emits uppercase.
#[derive(Clone, PartialEq, Eq)]
pub struct HexValue(Vec<u8>);

impl HexValue {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if !raw.len().is_multiple_of(2) {
            return Err(ParseError::Format("hex value must have an even length"));
        }
        hex::decode(raw).map(Self).map_err(|_| {
            ParseError::Format("hex value must contain only 0-9 and A-F (either case)")
        })
    }
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Display for HexValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(&self.0))
    }
}

impl fmt::Debug for HexValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexValue({} bytes)", self.0.len())
    }
}

macro_rules! string_newtype_impls {
    ($($t:ident),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $t {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }
        impl std::str::FromStr for $t {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    )*};
}

string_newtype_impls!(
    SerialNumber,
    RegistrationId,
    UserId,
    Domain,
    OrgUnit,
    EmailAddress
);

/// Unix seconds as RFC 3339 UTC, e.g. `2026-11-25T10:52:55Z`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_number_is_exactly_ten_alphanumerics() {
        assert!(SerialNumber::parse("VDS0000001").is_ok());
        assert_eq!(
            SerialNumber::parse("VDS01"),
            Err(ParseError::Length {
                expected: 10,
                got: 5
            })
        );
        assert!(SerialNumber::parse("VDS000000-").is_err());
    }

    #[test]
    fn generated_serials_pad_to_seven_digits() {
        let p = Prefix::parse("vds").unwrap();
        assert_eq!(SerialNumber::from_prefix(&p, 42).as_str(), "VDS0000042");
    }

    #[test]
    fn hex_accepts_either_case_and_emits_upper() {
        let h = HexValue::parse("0aFf").unwrap();
        assert_eq!(h.as_bytes(), &[0x0a, 0xff]);
        assert_eq!(h.to_string(), "0AFF");
        assert!(HexValue::parse("abc").is_err());
        assert!(HexValue::parse("zz").is_err());
    }

    #[test]
    fn domain_is_lowercased_and_bounded() {
        assert_eq!(Domain::parse("Master").unwrap().as_str(), "master");
        assert!(Domain::parse("").is_err());
        assert!(Domain::parse(&"d".repeat(256)).is_err());
    }

    #[test]
    fn registration_id_is_eight_alphanumerics() {
        assert!(RegistrationId::parse("e3wfISG9").is_ok());
        assert!(RegistrationId::parse("e3wfISG").is_err());
        assert!(RegistrationId::parse("e3wf-SG9").is_err());
    }
}
