//! JWS compact serialization (RFC 7515) as the Hermod app produces it, and the public JWKs
//! (RFC 7517/7518) it carries: parsing with the seed's padding tolerated (spec section 6.2),
//! RFC 7638 thumbprints, and signature verification with `ring`. Nothing here sees HTTP or
//! the store; [`super::verify`] applies the rules of section 6 on top.
//!
//! Signing lives here too (for the reference client and the tests): RSA with a given PKCS#8
//! key, ECDSA P-256 with a given or generated key. ring cannot generate RSA keys.

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::signature::{self as sig, KeyPair};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Header objects above this size are refused.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Deepest nesting of a header object (the header itself is depth 1).
pub const MAX_HEADER_DEPTH: usize = 4;

/// The algorithms provd knows. Everything else (`none`, `HS*`, `RS1`, ...) has no variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Alg {
    RS256,
    PS256,
    ES256,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::RS256, Alg::PS256, Alg::ES256];

    pub fn parse(s: &str) -> Option<Alg> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
        }
    }

    /// The key type this algorithm needs.
    pub fn kty(self) -> Kty {
        match self {
            Alg::RS256 | Alg::PS256 => Kty::Rsa,
            Alg::ES256 => Kty::Ec,
        }
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Kty {
    #[serde(rename = "RSA")]
    Rsa,
    #[serde(rename = "EC")]
    Ec,
}

impl Kty {
    pub fn as_str(self) -> &'static str {
        match self {
            Kty::Rsa => "RSA",
            Kty::Ec => "EC",
        }
    }
}

/// Why a JWS or JWK was refused; [`super::verify`] maps each to the spec's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("malformed JWS: {0}")]
    Malformed(String),
    #[error("algorithm not allowed: {0}")]
    AlgNotAllowed(String),
    #[error("malformed JWK: {0}")]
    BadKey(String),
    #[error("the JWK carries private key material ({0})")]
    PrivateKeyMaterial(String),
    #[error("key size: {0}")]
    KeySize(String),
    #[error("the signature does not verify")]
    BadSignature,
}

fn malformed(s: impl Into<String>) -> JwsError {
    JwsError::Malformed(s.into())
}

/// Decodes one base64url segment. The seed's producer pads: a segment may end with exactly
/// the canonical number of `=` for its length; nothing else outside the base64url alphabet is
/// accepted, and non-canonical trailing bits are refused (base64ct is strict).
pub fn b64url_decode(segment: &str) -> Result<Vec<u8>, JwsError> {
    let bare = segment.trim_end_matches('=');
    let pads = segment.len() - bare.len();
    let canonical = match bare.len() % 4 {
        0 => 0,
        2 => 2,
        3 => 1,
        _ => return Err(malformed("a segment has an impossible base64url length")),
    };
    if pads != 0 && pads != canonical {
        return Err(malformed("a segment has non-canonical padding"));
    }
    Base64UrlUnpadded::decode_vec(bare).map_err(|_| malformed("a segment is not base64url"))
}

pub fn b64url(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// A JSON value with duplicate member names refused (serde_json keeps the last silently).
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Strict;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
                Ok(Strict(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
                Ok(Strict(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
                Ok(Strict(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
                Ok(Strict(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
                Ok(Strict(Value::String(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Strict, E> {
                Ok(Strict(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<Strict, E> {
                Ok(Strict(Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
                let mut v = Vec::new();
                while let Some(Strict(x)) = a.next_element()? {
                    v.push(x);
                }
                Ok(Strict(Value::Array(v)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
                let mut m = Map::new();
                while let Some(k) = a.next_key::<String>()? {
                    let Strict(v) = a.next_value()?;
                    if m.insert(k.clone(), v).is_some() {
                        return Err(serde::de::Error::custom(format!("duplicate member {k:?}")));
                    }
                }
                Ok(Strict(Value::Object(m)))
            }
        }
        d.deserialize_any(V)
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Parses a UTF-8 JSON object, refusing duplicate member names and nesting deeper than
/// `max_depth`.
pub fn strict_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let Strict(v) = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if depth(&v) > max_depth {
        return Err(format!("nested deeper than {max_depth}"));
    }
    match v {
        Value::Object(m) => Ok(m),
        _ => Err("not a JSON object".into()),
    }
}

/// A compact JWS split and its header decoded; the signature is decoded only on request,
/// after the caller has checked the algorithm.
#[derive(Debug, Clone)]
pub struct Compact<'a> {
    /// `seg0 + "." + seg1` exactly as received (padding included).
    pub signing_input: &'a str,
    pub header: Map<String, Value>,
    pub alg: Result<Alg, String>,
    pub payload: Vec<u8>,
    signature_segment: &'a str,
}

/// Header members refused outright (section 6.2.3).
const FORBIDDEN_HEADER: [&str; 8] = ["crit", "b64", "jku", "x5u", "zip", "enc", "x5c", "x5t"];

/// Splits a compact JWS and decodes header and payload (section 6.2, steps 1-3). The header
/// must be a JSON object with a string `alg` and none of the forbidden members; whether the
/// algorithm is allowed is the caller's decision ([`Compact::alg`]), taken before
/// [`Compact::signature`] looks at the third segment.
pub fn parse_compact(input: &str) -> Result<Compact<'_>, JwsError> {
    let mut parts = input.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a compact JWS has exactly three segments"));
    };
    if h.is_empty() || p.is_empty() {
        return Err(malformed("empty header or payload segment"));
    }
    let header_bytes = b64url_decode(h)?;
    if header_bytes.len() > MAX_HEADER_BYTES {
        return Err(malformed("the header is larger than 8 KiB"));
    }
    let header = strict_object(&header_bytes, MAX_HEADER_DEPTH)
        .map_err(|e| malformed(format!("header: {e}")))?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => Alg::parse(a).ok_or_else(|| a.clone()),
        _ => return Err(malformed("the header has no string alg")),
    };
    if let Some(bad) = FORBIDDEN_HEADER.iter().find(|m| header.contains_key(**m)) {
        return Err(malformed(format!("header member {bad} is not accepted")));
    }
    let payload = b64url_decode(p)?;
    Ok(Compact {
        signing_input: &input[..h.len() + 1 + p.len()],
        header,
        alg,
        payload,
        signature_segment: s,
    })
}

impl Compact<'_> {
    /// The allowed algorithm of the header, or `AlgNotAllowed`.
    pub fn allowed_alg(&self, allowed: &[Alg]) -> Result<Alg, JwsError> {
        match &self.alg {
            Ok(a) if allowed.contains(a) => Ok(*a),
            Ok(a) => Err(JwsError::AlgNotAllowed(a.as_str().into())),
            Err(name) => Err(JwsError::AlgNotAllowed(name.clone())),
        }
    }

    /// The decoded signature; an empty one is malformed.
    pub fn signature(&self) -> Result<Vec<u8>, JwsError> {
        if self.signature_segment.is_empty() {
            return Err(malformed("empty signature segment"));
        }
        b64url_decode(self.signature_segment)
    }

    /// A string member of the header.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }
}

/// A public key from a JWK, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Modulus without leading zero octets; exponent as given (must be 65537).
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// P-256 affine coordinates.
    P256 { x: [u8; 32], y: [u8; 32] },
}

/// JWK members that only a private key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, JwsError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JwsError::BadKey(format!("member {name} missing or not a string")))
}

impl PublicKey {
    /// Reads the public parameters of a JWK object (section 6.2 steps 4-5). Private members
    /// are refused; one leading zero octet of `n` is tolerated and stripped.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<Self, JwsError> {
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
            return Err(JwsError::PrivateKeyMaterial((*m).to_owned()));
        }
        let decode = |name: &str| {
            b64url_decode(member(jwk, name)?)
                .map_err(|_| JwsError::BadKey(format!("member {name} is not base64url")))
        };
        match member(jwk, "kty")? {
            "RSA" => {
                let mut n = decode("n")?;
                if n.len() > 1 && n[0] == 0 {
                    n.remove(0);
                }
                if n.first() == Some(&0) || n.is_empty() {
                    return Err(JwsError::BadKey("n has more than one leading zero".into()));
                }
                let e = decode("e")?;
                if e != [1, 0, 1] {
                    return Err(JwsError::KeySize("the RSA exponent must be 65537".into()));
                }
                Ok(PublicKey::Rsa { n, e })
            }
            "EC" => {
                if member(jwk, "crv")? != "P-256" {
                    return Err(JwsError::KeySize("the only curve accepted is P-256".into()));
                }
                let x: [u8; 32] = decode("x")?
                    .try_into()
                    .map_err(|_| JwsError::KeySize("x is not 32 octets".into()))?;
                let y: [u8; 32] = decode("y")?
                    .try_into()
                    .map_err(|_| JwsError::KeySize("y is not 32 octets".into()))?;
                Ok(PublicKey::P256 { x, y })
            }
            other => Err(JwsError::BadKey(format!("unsupported kty {other}"))),
        }
    }

    pub fn kty(&self) -> Kty {
        match self {
            PublicKey::Rsa { .. } => Kty::Rsa,
            PublicKey::P256 { .. } => Kty::Ec,
        }
    }

    /// Modulus bits for RSA, 256 for P-256.
    pub fn bits(&self) -> u32 {
        match self {
            PublicKey::Rsa { n, .. } => {
                (n.len() as u32) * 8 - n.first().map_or(0, |b| b.leading_zeros())
            }
            PublicKey::P256 { .. } => 256,
        }
    }

    /// The canonical public JWK (RFC 7638 member set, lexicographic order).
    pub fn canonical_json(&self) -> String {
        match self {
            PublicKey::Rsa { n, e } => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64url(e), b64url(n))
            }
            PublicKey::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64url(x),
                b64url(y)
            ),
        }
    }

    /// RFC 7638 SHA-256 thumbprint, base64url.
    pub fn thumbprint(&self) -> String {
        b64url(&Sha256::digest(self.canonical_json().as_bytes()))
    }

    /// Verifies `signature` over `message` with `alg`. The algorithm must fit the key type;
    /// RSA keys must be 2048 to 8192 bits (ring enforces it).
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> Result<(), JwsError> {
        let ok = match (self, alg) {
            (PublicKey::Rsa { n, e }, Alg::RS256 | Alg::PS256) => {
                let params: &sig::RsaParameters = if alg == Alg::RS256 {
                    &sig::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &sig::RSA_PSS_2048_8192_SHA256
                };
                sig::RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            (PublicKey::P256 { x, y }, Alg::ES256) => {
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => {
                return Err(JwsError::AlgNotAllowed(format!(
                    "{alg} does not fit a {} key",
                    self.kty().as_str()
                )))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(JwsError::BadSignature)
        }
    }
}

/// A private key that signs JWS (reference client and tests).
pub enum Signer {
    Rsa(sig::RsaKeyPair),
    P256(sig::EcdsaKeyPair),
}

impl Signer {
    /// An RSA key from PKCS#8 DER.
    pub fn rsa_pkcs8(der: &[u8]) -> Result<Self, JwsError> {
        sig::RsaKeyPair::from_pkcs8(der)
            .map(Signer::Rsa)
            .map_err(|e| JwsError::BadKey(format!("RSA PKCS#8: {e}")))
    }

    /// A P-256 key from PKCS#8 DER.
    pub fn p256_pkcs8(der: &[u8]) -> Result<Self, JwsError> {
        let rng = ring::rand::SystemRandom::new();
        sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map(Signer::P256)
            .map_err(|e| JwsError::BadKey(format!("P-256 PKCS#8: {e}")))
    }

    /// A fresh P-256 key and its PKCS#8 DER.
    pub fn generate_p256() -> Result<(Self, Vec<u8>), JwsError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| JwsError::BadKey("generating a P-256 key failed".into()))?;
        let der = doc.as_ref().to_vec();
        Ok((Self::p256_pkcs8(&der)?, der))
    }

    pub fn public(&self) -> PublicKey {
        match self {
            Signer::Rsa(k) => {
                let c = k.public().clone();
                let comps: sig::RsaPublicKeyComponents<Vec<u8>> = (&c).into();
                PublicKey::Rsa {
                    n: comps.n.into_iter().skip_while(|b| *b == 0).collect(),
                    e: comps.e,
                }
            }
            Signer::P256(k) => {
                let p = k.public_key().as_ref();
                let mut x = [0u8; 32];
                let mut y = [0u8; 32];
                x.copy_from_slice(&p[1..33]);
                y.copy_from_slice(&p[33..65]);
                PublicKey::P256 { x, y }
            }
        }
    }

    pub fn default_alg(&self) -> Alg {
        match self {
            Signer::Rsa(_) => Alg::RS256,
            Signer::P256(_) => Alg::ES256,
        }
    }

    /// Signs `message` with `alg` (which must fit the key).
    pub fn sign(&self, alg: Alg, message: &[u8]) -> Result<Vec<u8>, JwsError> {
        let rng = ring::rand::SystemRandom::new();
        match (self, alg) {
            (Signer::Rsa(k), Alg::RS256 | Alg::PS256) => {
                let pad: &'static dyn sig::RsaEncoding = if alg == Alg::RS256 {
                    &sig::RSA_PKCS1_SHA256
                } else {
                    &sig::RSA_PSS_SHA256
                };
                let mut out = vec![0u8; k.public().modulus_len()];
                k.sign(pad, &rng, message, &mut out)
                    .map_err(|_| JwsError::BadKey("RSA signing failed".into()))?;
                Ok(out)
            }
            (Signer::P256(k), Alg::ES256) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JwsError::BadKey("ECDSA signing failed".into())),
            _ => Err(JwsError::AlgNotAllowed(alg.as_str().into())),
        }
    }

    /// A compact JWS of `header` (an object; serialized as given) over `payload`.
    pub fn compact(&self, alg: Alg, header: &Value, payload: &[u8]) -> Result<String, JwsError> {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(payload)
        );
        let s = self.sign(alg, input.as_bytes())?;
        Ok(format!("{input}.{}", b64url(&s)))
    }
}

/// The public JWK members of `key` as a JSON object (`kty`, `n`/`e` or `crv`/`x`/`y`).
pub fn jwk_members(key: &PublicKey) -> Map<String, Value> {
    match serde_json::from_str::<Value>(&key.canonical_json()) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The DER bytes of the first PEM block of `pem`.
pub fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN ")?;
    let body_start = pem[start..].find('\n')? + start + 1;
    let end = pem[body_start..].find("-----END ")? + body_start;
    let b64: String = pem[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64ct::Base64::decode_vec(&b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hermod");

    fn read(path: &str) -> String {
        std::fs::read_to_string(format!("{VECTORS}/{path}")).unwrap()
    }

    fn jwk_file(path: &str) -> Map<String, Value> {
        match serde_json::from_str(&read(path)).unwrap() {
            Value::Object(m) => m,
            _ => panic!(),
        }
    }

    #[test]
    fn thumbprints_match_the_vectors() {
        let att = PublicKey::from_jwk(&jwk_file("keys/attestation_rsa2048.pub.jwk.json")).unwrap();
        assert_eq!(
            att.thumbprint(),
            "iPsG27fJJNt4V_K77oNTYJP41x-1IGnrJQd6n7HPl6s"
        );
        assert_eq!(att.bits(), 2048);
        let dev =
            PublicKey::from_jwk(&jwk_file("keys/device_signer_rsa2048.pub.jwk.json")).unwrap();
        assert_eq!(
            dev.thumbprint(),
            "I_9yy7n0NdTzfwfI8oI8PRO6EhY5DwJU_Pd0ss1ij9I"
        );
    }

    #[test]
    fn the_valid_vector_verifies_and_a_flipped_bit_does_not() {
        let jws = read("valid/data.jws");
        let c = parse_compact(jws.trim()).unwrap();
        assert_eq!(c.allowed_alg(&Alg::ALL).unwrap(), Alg::RS256);
        let att = PublicKey::from_jwk(&jwk_file("keys/attestation_rsa2048.pub.jwk.json")).unwrap();
        let s = c.signature().unwrap();
        att.verify(Alg::RS256, c.signing_input.as_bytes(), &s)
            .unwrap();
        let mut bad = s.clone();
        bad[10] ^= 1;
        assert_eq!(
            att.verify(Alg::RS256, c.signing_input.as_bytes(), &bad),
            Err(JwsError::BadSignature)
        );
        // The PoP inside.
        let pop = read("valid/signedkey0.jws");
        let p = parse_compact(pop.trim()).unwrap();
        let dev = PublicKey::from_jwk(&strict_object(&p.payload, 4).unwrap()).unwrap();
        dev.verify(
            Alg::RS256,
            p.signing_input.as_bytes(),
            &p.signature().unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn padding_is_tolerated_only_when_canonical() {
        assert_eq!(b64url_decode("YQ").unwrap(), b"a");
        assert_eq!(b64url_decode("YQ==").unwrap(), b"a");
        assert!(b64url_decode("YQ=").is_err());
        assert!(b64url_decode("YQ===").is_err());
        assert_eq!(b64url_decode("YWI=").unwrap(), b"ab");
        assert!(b64url_decode("YWI==").is_err());
        assert!(b64url_decode("YWJj=").is_err());
        assert!(b64url_decode("Y").is_err());
        assert!(b64url_decode("YR").is_err(), "non-canonical trailing bits");
        assert!(b64url_decode("a+b/").is_err());
        assert!(b64url_decode("YW I").is_err());
    }

    #[test]
    fn a_padded_jws_keeps_its_padded_signing_input() {
        let (k, _) = Signer::generate_p256().unwrap();
        let header = b64url(br#"{"alg":"ES256"}"#); // 15 bytes: 20 chars, no padding needed
        let payload = "YQ=="; // padded "a"
        let input = format!("{header}.{payload}");
        let s = k.sign(Alg::ES256, input.as_bytes()).unwrap();
        let jws = format!("{input}.{}", b64url(&s));
        let c = parse_compact(&jws).unwrap();
        assert_eq!(c.signing_input, input);
        assert_eq!(c.payload, b"a");
        k.public()
            .verify(
                Alg::ES256,
                c.signing_input.as_bytes(),
                &c.signature().unwrap(),
            )
            .unwrap();
    }

    #[test]
    fn compact_form_is_strict() {
        let h = b64url(br#"{"alg":"RS256"}"#);
        assert!(matches!(parse_compact("a.b"), Err(JwsError::Malformed(_))));
        assert!(matches!(
            parse_compact(&format!("{h}.YQ.c.d.e")),
            Err(JwsError::Malformed(_))
        ));
        assert!(matches!(
            parse_compact(&format!("{h}..c")),
            Err(JwsError::Malformed(_))
        ));
        assert!(matches!(
            parse_compact(".YQ.c"),
            Err(JwsError::Malformed(_))
        ));
        let dup = b64url(br#"{"alg":"RS256","alg":"none"}"#);
        assert!(matches!(
            parse_compact(&format!("{dup}.YQ.c")),
            Err(JwsError::Malformed(_))
        ));
        let deep = b64url(br#"{"alg":"RS256","x":{"a":{"b":{"c":{}}}}}"#);
        assert!(matches!(
            parse_compact(&format!("{deep}.YQ.c")),
            Err(JwsError::Malformed(_))
        ));
        for m in FORBIDDEN_HEADER {
            let h = b64url(format!(r#"{{"alg":"RS256","{m}":1}}"#).as_bytes());
            assert!(
                matches!(
                    parse_compact(&format!("{h}.YQ.c")),
                    Err(JwsError::Malformed(_))
                ),
                "{m}"
            );
        }
        // alg none with an empty signature: the algorithm is refused first.
        let none = b64url(br#"{"alg":"none"}"#);
        let s1 = format!("{none}.YQ.");
        let c = parse_compact(&s1).unwrap();
        assert_eq!(
            c.allowed_alg(&Alg::ALL),
            Err(JwsError::AlgNotAllowed("none".into()))
        );
        // an allowed alg with an empty signature is malformed.
        let s2 = format!("{h}.YQ.");
        let c = parse_compact(&s2).unwrap();
        assert!(matches!(c.signature(), Err(JwsError::Malformed(_))));
        let hs = b64url(br#"{"alg":"HS256"}"#);
        let s3 = format!("{hs}.YQ.c");
        let c = parse_compact(&s3).unwrap();
        assert_eq!(
            c.allowed_alg(&Alg::ALL),
            Err(JwsError::AlgNotAllowed("HS256".into()))
        );
    }

    #[test]
    fn jwks_are_checked() {
        let mut m = jwk_file("keys/device_signer_rsa2048.pub.jwk.json");
        m.insert("d".into(), Value::String("AQAB".into()));
        assert_eq!(
            PublicKey::from_jwk(&m),
            Err(JwsError::PrivateKeyMaterial("d".into()))
        );
        let mut m = jwk_file("keys/device_signer_rsa2048.pub.jwk.json");
        m.insert("e".into(), Value::String("Aw".into()));
        assert!(matches!(PublicKey::from_jwk(&m), Err(JwsError::KeySize(_))));
        // One leading zero octet is tolerated and does not change the thumbprint.
        let m = jwk_file("keys/device_signer_rsa2048.pub.jwk.json");
        let n = b64url_decode(m["n"].as_str().unwrap()).unwrap();
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n);
        let mut m2 = m.clone();
        m2.insert("n".into(), Value::String(b64url(&padded)));
        assert_eq!(
            PublicKey::from_jwk(&m2).unwrap().thumbprint(),
            PublicKey::from_jwk(&m).unwrap().thumbprint()
        );
        let (k, _) = Signer::generate_p256().unwrap();
        let p = PublicKey::from_jwk(&jwk_members(&k.public())).unwrap();
        assert_eq!(p, k.public());
        assert_eq!(p.bits(), 256);
        // An algorithm that does not fit the key is refused, not tried.
        assert!(matches!(
            p.verify(Alg::RS256, b"x", b"y"),
            Err(JwsError::AlgNotAllowed(_))
        ));
    }

    #[test]
    fn rsa_signing_round_trips() {
        let der = pem_der(&read("keys/device_signer_rsa2048.pem")).unwrap();
        let k = Signer::rsa_pkcs8(&der).unwrap();
        assert_eq!(
            k.public().thumbprint(),
            "I_9yy7n0NdTzfwfI8oI8PRO6EhY5DwJU_Pd0ss1ij9I"
        );
        for alg in [Alg::RS256, Alg::PS256] {
            let jws = k
                .compact(alg, &serde_json::json!({"alg": alg.as_str()}), b"{}")
                .unwrap();
            let c = parse_compact(&jws).unwrap();
            k.public()
                .verify(alg, c.signing_input.as_bytes(), &c.signature().unwrap())
                .unwrap();
        }
    }
}
