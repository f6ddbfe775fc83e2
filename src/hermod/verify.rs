//! Verification of the device's answer (spec section 6), every rule in the spec's order, so
//! that each failure names one step. Inputs are the posted compact JWS (a string), what the
//! command expects (typed), and three lookups the caller answers from the store; nothing is
//! written here. Cryptography is [`super::jws`] (ring).

use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::csr::{Csr, CsrAlg};
use super::jws::{parse_compact, strict_object, Alg, JwsError, Kty, PublicKey};
use super::model::{KeySpec, KeyState, KeyType, Usage};

/// Payloads above this size are refused.
pub const MAX_PAYLOAD_BYTES: usize = 40 * 1024;
/// `deviceinfo` above this size (as JSON) is refused.
pub const MAX_DEVICEINFO_BYTES: usize = 4 * 1024;

/// The error codes of section 6 (and 9, mailbox 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    MalformedJws,
    AlgNotAllowed,
    AlgMismatch,
    AttestationKidMismatch,
    AttestationKeyUntrusted,
    AttestationSignatureInvalid,
    NonceMismatch,
    ProfileMismatch,
    ProfileIdInvalid,
    ProfileExists,
    MissingKey,
    UnexpectedKey,
    KeyidMismatch,
    KeySizeMismatch,
    UsageMismatch,
    KeystateMismatch,
    PrivateKeyMaterial,
    PopSignatureInvalid,
    KeyReuse,
    CertreqInvalid,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MalformedJws => "malformed_jws",
            Code::AlgNotAllowed => "alg_not_allowed",
            Code::AlgMismatch => "alg_mismatch",
            Code::AttestationKidMismatch => "attestation_kid_mismatch",
            Code::AttestationKeyUntrusted => "attestation_key_untrusted",
            Code::AttestationSignatureInvalid => "attestation_signature_invalid",
            Code::NonceMismatch => "nonce_mismatch",
            Code::ProfileMismatch => "profile_mismatch",
            Code::ProfileIdInvalid => "profile_id_invalid",
            Code::ProfileExists => "profile_exists",
            Code::MissingKey => "missing_key",
            Code::UnexpectedKey => "unexpected_key",
            Code::KeyidMismatch => "keyid_mismatch",
            Code::KeySizeMismatch => "key_size_mismatch",
            Code::UsageMismatch => "usage_mismatch",
            Code::KeystateMismatch => "keystate_mismatch",
            Code::PrivateKeyMaterial => "private_key_material",
            Code::PopSignatureInvalid => "pop_signature_invalid",
            Code::KeyReuse => "key_reuse",
            Code::CertreqInvalid => "certreq_invalid",
        }
    }
}

/// A refused answer: the code, a human detail (never key material or the JWS) and, when one
/// member of the payload is to blame, its path (section 3.5 `field`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: Code,
    pub detail: String,
    pub field: Option<String>,
}

fn reject(code: Code, detail: impl Into<String>) -> Rejection {
    Rejection {
        code,
        detail: detail.into(),
        field: None,
    }
}

/// Maps parsing failures of a JWS or JWK.
fn jws_rejection(e: JwsError, what: &str) -> Rejection {
    let code = match &e {
        JwsError::Malformed(_) | JwsError::BadKey(_) => Code::MalformedJws,
        JwsError::AlgNotAllowed(_) => Code::AlgNotAllowed,
        JwsError::PrivateKeyMaterial(_) => Code::PrivateKeyMaterial,
        JwsError::KeySize(_) => Code::KeySizeMismatch,
        JwsError::BadSignature => Code::MalformedJws,
    };
    reject(code, format!("{what}: {e}"))
}

/// A trust-store entry usable now.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub id: i64,
    pub key: PublicKey,
    pub algs: Vec<Alg>,
    pub jwk_kid: Option<String>,
}

/// What the verifier asks of the store.
pub trait Lookups {
    type Error;
    /// The enabled, unrevoked entry inside its validity window with this RFC 7638 thumbprint.
    fn trusted_key(&self, thumbprint: &str) -> Result<Option<TrustedKey>, Self::Error>;
    fn profile_exists(&self, profile_id: &str) -> Result<bool, Self::Error>;
    /// Whether any of these thumbprints is a stored device key.
    fn key_stored(&self, thumbprints: &[String]) -> Result<bool, Self::Error>;
}

/// What the command expects of the answer.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub nonce: &'a str,
    pub responsesignaturekey: &'a str,
    pub userid: &'a str,
    pub name: &'a str,
    pub servername: &'a str,
    pub boxurl: &'a str,
    pub keys: &'a [KeySpec],
    /// `hermod.attestation_algs`.
    pub attestation_algs: &'a [Alg],
}

/// One verified device key, ready to store.
#[derive(Debug, Clone)]
pub struct VerifiedKey {
    pub keyid: String,
    pub usage: Usage,
    pub kty: Kty,
    pub alg: Alg,
    pub bits: u32,
    /// Canonical public JWK.
    pub public_jwk: String,
    pub thumbprint: String,
    pub key_state: KeyState,
    pub certreq: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Verified {
    pub attestation_key_id: i64,
    pub attestation_thumbprint: String,
    pub profile_id: String,
    pub deviceinfo: Option<String>,
    pub keys: Vec<VerifiedKey>,
}

#[derive(Debug)]
pub enum VerifyError<E> {
    Rejected(Rejection),
    Lookup(E),
}

impl<E> From<Rejection> for VerifyError<E> {
    fn from(r: Rejection) -> Self {
        VerifyError::Rejected(r)
    }
}

fn ct_str_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Verifies `jws` against `exp` (section 6, steps 1-21).
pub fn verify<L: Lookups>(
    jws: &str,
    exp: &Expected<'_>,
    lookups: &L,
) -> Result<Verified, VerifyError<L::Error>> {
    // 6.2 steps 1-3: compact form, header, alg allow-list before the signature segment.
    let outer = parse_compact(jws).map_err(|e| jws_rejection(e, "attestation JWS"))?;
    let alg = outer
        .allowed_alg(exp.attestation_algs)
        .map_err(|e| jws_rejection(e, "attestation JWS"))?;
    let signature = outer
        .signature()
        .map_err(|e| jws_rejection(e, "attestation JWS"))?;
    // Step 4: private key material in the embedded key.
    let jwk = match outer.header.get("jwk") {
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            return Err(reject(
                Code::MalformedJws,
                "attestation header: jwk is not an object",
            )
            .into())
        }
        None => None,
    };
    if let Some(m) = jwk {
        if let Some(p) = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
            .iter()
            .find(|p| m.contains_key(**p))
        {
            return Err(reject(
                Code::PrivateKeyMaterial,
                format!("attestation header jwk carries {p}"),
            )
            .into());
        }
    }
    // 6.3 step 6: the kid names the role.
    if outer.header_str("kid") != Some(exp.responsesignaturekey) {
        return Err(reject(
            Code::AttestationKidMismatch,
            format!(
                "attestation header kid must be {}",
                exp.responsesignaturekey
            ),
        )
        .into());
    }
    // Step 7: an embedded key of the algorithm's type.
    let jwk = jwk.ok_or_else(|| reject(Code::MalformedJws, "attestation header has no jwk"))?;
    let embedded = PublicKey::from_jwk(jwk).map_err(|e| match e {
        // A key that cannot be in the trust store (weak, odd exponent) is untrusted.
        JwsError::KeySize(d) => reject(
            Code::AttestationKeyUntrusted,
            format!("attestation key: {d}"),
        ),
        other => jws_rejection(other, "attestation header jwk"),
    })?;
    if embedded.kty() != alg.kty() {
        return Err(reject(
            Code::AlgMismatch,
            format!(
                "attestation alg {alg} does not fit a {} key",
                embedded.kty().as_str()
            ),
        )
        .into());
    }
    // Step 8: trust by thumbprint; the stored key verifies.
    let thumbprint = embedded.thumbprint();
    let trusted = lookups
        .trusted_key(&thumbprint)
        .map_err(VerifyError::Lookup)?
        .ok_or_else(|| {
            reject(
                Code::AttestationKeyUntrusted,
                "the attestation key is not in the trust store (or is revoked or expired)",
            )
        })?;
    if !trusted.algs.contains(&alg) {
        return Err(reject(
            Code::AlgNotAllowed,
            format!("the trust-store entry does not allow {alg}"),
        )
        .into());
    }
    if let Some(pinned) = &trusted.jwk_kid {
        if jwk.get("kid").and_then(Value::as_str) != Some(pinned.as_str()) {
            return Err(reject(
                Code::AttestationKeyUntrusted,
                "the embedded jwk's kid is not the one pinned in the trust store",
            )
            .into());
        }
    }
    // Step 9.
    trusted
        .key
        .verify(alg, outer.signing_input.as_bytes(), &signature)
        .map_err(|_| {
            reject(
                Code::AttestationSignatureInvalid,
                "the attestation signature does not verify",
            )
        })?;
    // Step 10.
    if !outer
        .header_str("nonce")
        .is_some_and(|n| ct_str_eq(n, exp.nonce))
    {
        return Err(reject(Code::NonceMismatch, "attestation header nonce").into());
    }
    // 6.4 step 11: payload.
    if outer.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(reject(Code::MalformedJws, "the payload is larger than 40 KiB").into());
    }
    let payload = strict_object(&outer.payload, 8)
        .map_err(|e| reject(Code::MalformedJws, format!("payload: {e}")))?;
    let profile = match payload.get("profile") {
        Some(Value::Object(p)) => p,
        _ => return Err(reject(Code::MalformedJws, "payload: profile object missing").into()),
    };
    let deviceinfo = payload
        .get("deviceinfo")
        .or_else(|| profile.get("deviceinfo"))
        .map(Value::to_string);
    if deviceinfo
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DEVICEINFO_BYTES)
    {
        return Err(reject(Code::MalformedJws, "deviceinfo is larger than 4 KiB").into());
    }
    // Step 12.
    for (field, want) in [
        ("userid", exp.userid),
        ("name", exp.name),
        ("servername", exp.servername),
        ("boxurl", exp.boxurl),
    ] {
        if profile.get(field).and_then(Value::as_str) != Some(want) {
            let path = format!("profile.{field}");
            return Err(Rejection {
                field: Some(path.clone()),
                ..reject(Code::ProfileMismatch, path)
            }
            .into());
        }
    }
    // Step 13.
    let profile_id = match profile.get("id").and_then(Value::as_str) {
        Some(id) if is_uuid(id) => id.to_ascii_lowercase(),
        _ => return Err(reject(Code::ProfileIdInvalid, "profile.id is not a UUID").into()),
    };
    if lookups
        .profile_exists(&profile_id)
        .map_err(VerifyError::Lookup)?
    {
        return Err(reject(Code::ProfileExists, "profile.id is already registered").into());
    }
    // Step 14.
    let signed: Vec<&str> = match profile.get("signedkeys") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    reject(Code::MalformedJws, "profile.signedkeys holds a non-string")
                })
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(reject(Code::MalformedJws, "profile.signedkeys is not an array").into()),
    };
    if signed.len() < exp.keys.len() {
        return Err(reject(Code::MissingKey, "fewer signed keys than requested").into());
    }
    if signed.len() > exp.keys.len() {
        return Err(reject(Code::UnexpectedKey, "more signed keys than requested").into());
    }
    // 6.5: every signed key.
    let mut keys: Vec<VerifiedKey> = Vec::with_capacity(signed.len());
    for (i, element) in signed.iter().enumerate() {
        let key = verify_key(element, i, exp, &keys)?;
        // Step 20 (within the response and against the attestation key).
        if key.thumbprint == thumbprint || keys.iter().any(|k| k.thumbprint == key.thumbprint) {
            return Err(reject(Code::KeyReuse, format!("signedkeys[{i}] reuses a key")).into());
        }
        keys.push(key);
    }
    // Step 20 (against stored keys).
    let prints: Vec<String> = keys.iter().map(|k| k.thumbprint.clone()).collect();
    if lookups.key_stored(&prints).map_err(VerifyError::Lookup)? {
        return Err(reject(Code::KeyReuse, "a signed key is already registered").into());
    }
    Ok(Verified {
        attestation_key_id: trusted.id,
        attestation_thumbprint: thumbprint,
        profile_id,
        deviceinfo,
        keys,
    })
}

/// Steps 15-19 and 21 for one element of `signedkeys`.
fn verify_key(
    element: &str,
    i: usize,
    exp: &Expected<'_>,
    seen: &[VerifiedKey],
) -> Result<VerifiedKey, Rejection> {
    let what = format!("signedkeys[{i}]");
    // Step 15.
    let pop = parse_compact(element).map_err(|e| jws_rejection(e, &what))?;
    let alg = pop
        .allowed_alg(&Alg::ALL)
        .map_err(|e| jws_rejection(e, &what))?;
    let signature = pop.signature().map_err(|e| jws_rejection(e, &what))?;
    let (Some(kid), Some(nonce)) = (pop.header_str("kid"), pop.header_str("nonce")) else {
        return Err(reject(
            Code::MalformedJws,
            format!("{what}: header needs kid and nonce"),
        ));
    };
    if pop.header.contains_key("jwk") {
        return Err(reject(
            Code::MalformedJws,
            format!("{what}: header must not carry jwk"),
        ));
    }
    let payload = strict_object(&pop.payload, 4)
        .map_err(|e| reject(Code::MalformedJws, format!("{what} payload: {e}")))?;
    // Step 16.
    let spec = exp.keys.iter().find(|k| k.keyid == kid).ok_or_else(|| {
        reject(
            Code::KeyidMismatch,
            format!("{what}: kid {kid:?} was not requested"),
        )
    })?;
    if seen.iter().any(|k| k.keyid == kid) {
        return Err(reject(
            Code::KeyidMismatch,
            format!("{what}: kid {kid:?} appears twice"),
        ));
    }
    if payload.get("kid").and_then(Value::as_str) != Some(kid) {
        return Err(reject(
            Code::KeyidMismatch,
            format!("{what}: payload kid differs from header kid"),
        ));
    }
    // Step 17.
    if !ct_str_eq(nonce, exp.nonce) {
        return Err(reject(Code::NonceMismatch, format!("{what} header nonce")));
    }
    // Step 18: the key, sizes before any signature (14.8).
    let key = PublicKey::from_jwk(&payload).map_err(|e| jws_rejection(e, &what))?;
    let bits = key.bits();
    // The entry the key satisfies: of its type and size, and (when the request lists one
    // size with several mechanisms) with the header's algorithm, else the first of them.
    let sized = |p: &&KeyType| p.kty == key.kty() && p.bits == bits;
    let prior = spec
        .priors
        .iter()
        .filter(sized)
        .find(|p| p.alg == alg)
        .or_else(|| spec.priors.iter().find(sized))
        .ok_or_else(|| {
            reject(
                Code::KeySizeMismatch,
                format!(
                    "{what}: a {} key of {bits} bits was not requested",
                    key.kty().as_str()
                ),
            )
        })?;
    if key.kty() == Kty::Rsa && bits < 2048 {
        return Err(reject(
            Code::KeySizeMismatch,
            format!("{what}: RSA below 2048 bits"),
        ));
    }
    if let Some(len) = payload.get("n#len") {
        let stated = match len {
            Value::String(s) => s.parse::<u32>().ok(),
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        };
        if stated != Some(bits) {
            return Err(reject(
                Code::KeySizeMismatch,
                format!("{what}: n#len is not the key's size"),
            ));
        }
    }
    if payload.get("alg").and_then(Value::as_str) != Some(alg.as_str()) || alg != prior.alg {
        return Err(reject(
            Code::AlgMismatch,
            format!("{what}: alg must be {} in header and payload", prior.alg),
        ));
    }
    let usage = payload.get("use").and_then(Value::as_str).unwrap_or("");
    if !usage.eq_ignore_ascii_case(spec.usage.as_str()) {
        return Err(reject(
            Code::UsageMismatch,
            format!("{what}: use must be {}", spec.usage.as_str()),
        ));
    }
    if let Some(state) = payload.get("key_state") {
        if state.as_str() != Some(spec.keystate.as_str()) {
            return Err(reject(
                Code::KeystateMismatch,
                format!("{what}: key_state must be {}", spec.keystate.as_str()),
            ));
        }
    }
    // Step 19.
    key.verify(alg, pop.signing_input.as_bytes(), &signature)
        .map_err(|_| {
            reject(
                Code::PopSignatureInvalid,
                format!("{what}: proof of possession (keyid {kid})"),
            )
        })?;
    // Step 21.
    let certreq = match &spec.certreq {
        None => None,
        Some(dummy) => Some(check_certreq(&payload, dummy, &key, &what)?),
    };
    Ok(VerifiedKey {
        keyid: kid.to_owned(),
        usage: spec.usage,
        kty: key.kty(),
        alg,
        bits,
        public_jwk: key.canonical_json(),
        thumbprint: key.thumbprint(),
        key_state: spec.keystate,
        certreq,
    })
}

fn check_certreq(
    payload: &Map<String, Value>,
    dummy: &[u8],
    key: &PublicKey,
    what: &str,
) -> Result<Vec<u8>, Rejection> {
    let bad = |d: &str| reject(Code::CertreqInvalid, format!("{what}: {d}"));
    let b64 = payload
        .get("certreq")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("certreq missing from the key"))?;
    let der = super::model::decode_certreq(b64, "certreq").map_err(|e| bad(&e.message))?;
    let csr = Csr::parse(&der).map_err(|e| bad(&e.0))?;
    let want = Csr::parse(dummy).map_err(|e| bad(&e.0))?;
    if csr.public_key().map_err(|e| bad(&e.0))? != *key {
        return Err(bad("the certreq's key is not the signed key"));
    }
    if csr.subject != want.subject {
        return Err(bad("the certreq's subject differs from the requested one"));
    }
    if csr.alg == CsrAlg::Other {
        return Err(bad("the certreq's signature algorithm is not accepted"));
    }
    csr.verify().map_err(|e| bad(&e.0))?;
    Ok(der)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::hermod::jws::{b64url, Signer};
    use crate::hermod::model;
    use std::cell::RefCell;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hermod");

    fn read(path: &str) -> String {
        std::fs::read_to_string(format!("{DIR}/{path}")).unwrap()
    }

    pub(crate) struct Fake {
        pub trusted: Vec<(String, TrustedKey)>,
        pub profiles: RefCell<Vec<String>>,
        pub keys: Vec<String>,
    }

    impl Lookups for Fake {
        type Error = ();
        fn trusted_key(&self, t: &str) -> Result<Option<TrustedKey>, ()> {
            Ok(self
                .trusted
                .iter()
                .find(|(p, _)| p == t)
                .map(|(_, k)| k.clone()))
        }
        fn profile_exists(&self, id: &str) -> Result<bool, ()> {
            Ok(self.profiles.borrow().iter().any(|p| p == id))
        }
        fn key_stored(&self, t: &[String]) -> Result<bool, ()> {
            Ok(t.iter().any(|x| self.keys.contains(x)))
        }
    }

    fn att_signer() -> Signer {
        Signer::rsa_pkcs8(
            &crate::hermod::jws::pem_der(&read("keys/attestation_rsa2048.pem")).unwrap(),
        )
        .unwrap()
    }

    fn dev_signer() -> Signer {
        Signer::rsa_pkcs8(
            &crate::hermod::jws::pem_der(&read("keys/device_signer_rsa2048.pem")).unwrap(),
        )
        .unwrap()
    }

    fn fake() -> Fake {
        let key = att_signer().public();
        Fake {
            trusted: vec![(
                key.thumbprint(),
                TrustedKey {
                    id: 7,
                    key,
                    algs: vec![Alg::RS256],
                    jwk_kid: None,
                },
            )],
            profiles: RefCell::new(vec![]),
            keys: vec![],
        }
    }

    fn spec() -> model::ProvisionSpec {
        model::check(serde_json::from_str(&read("command/provision_request.json")).unwrap())
            .unwrap()
    }

    const BOXURL: &str =
        "https://provd.example.test:20400/hermod/rest/ms/38b00af8-7b60-44c1-8af1-9d3741cf0a31";

    fn expected(s: &model::ProvisionSpec) -> Expected<'_> {
        Expected {
            nonce: &s.nonce,
            responsesignaturekey: &s.responsesignaturekey,
            userid: &s.userid,
            name: &s.name,
            servername: &s.servername,
            boxurl: BOXURL,
            keys: &s.keys,
            attestation_algs: &Alg::ALL,
        }
    }

    fn code_of(r: Result<Verified, VerifyError<()>>) -> Code {
        match r {
            Err(VerifyError::Rejected(r)) => r.code,
            Ok(_) => panic!("accepted"),
            Err(VerifyError::Lookup(())) => panic!("lookup"),
        }
    }

    #[test]
    fn the_shared_vectors_get_their_verdicts() {
        let s = spec();
        let v = verify(read("valid/data.jws").trim(), &expected(&s), &fake()).unwrap();
        assert_eq!(v.profile_id, "4b470ec8-0033-4fae-b3d8-5e248d9e7bc3");
        assert_eq!(
            v.attestation_thumbprint,
            "iPsG27fJJNt4V_K77oNTYJP41x-1IGnrJQd6n7HPl6s"
        );
        assert_eq!(v.keys.len(), 1);
        assert_eq!(
            v.keys[0].thumbprint,
            "I_9yy7n0NdTzfwfI8oI8PRO6EhY5DwJU_Pd0ss1ij9I"
        );
        assert_eq!(v.keys[0].bits, 2048);
        assert_eq!(v.keys[0].keyid, "signer");
        let bad = read("invalid_bad_pop/data.jws");
        assert_eq!(
            code_of(verify(bad.trim(), &expected(&s), &fake())),
            Code::PopSignatureInvalid
        );
        let nonce = read("invalid_wrong_nonce/data.jws");
        assert_eq!(
            code_of(verify(nonce.trim(), &expected(&s), &fake())),
            Code::NonceMismatch
        );
    }

    /// Builds answers with every part adjustable, for one negative case per rule.
    pub(crate) struct Build {
        pub outer_alg: String,
        pub outer_header: Value,
        pub profile: Value,
        pub deviceinfo: Value,
        pub pops: Vec<String>,
    }

    pub(crate) fn pop(dev: &Signer, alg: Alg, header: Value, payload: Value) -> String {
        dev.compact(alg, &header, payload.to_string().as_bytes())
            .unwrap()
    }

    pub(crate) fn device_jwk(dev: &Signer, alg: &str, kid: &str) -> Value {
        let mut m = crate::hermod::jws::jwk_members(&dev.public());
        m.insert("use".into(), "SIG".into());
        m.insert("alg".into(), alg.into());
        m.insert("kid".into(), kid.into());
        m.insert("n#len".into(), dev.public().bits().to_string().into());
        m.insert("key_state".into(), "ACTIVE".into());
        Value::Object(m)
    }

    impl Build {
        fn new() -> Self {
            let dev = dev_signer();
            let p = pop(
                &dev,
                Alg::RS256,
                serde_json::json!({"alg":"RS256","kid":"signer","nonce":"123456789"}),
                device_jwk(&dev, "RS256", "signer"),
            );
            let mut jwk = crate::hermod::jws::jwk_members(&att_signer().public());
            jwk.insert("kid".into(), "attestation".into());
            Build {
                outer_alg: "RS256".into(),
                outer_header: serde_json::json!({"kid":"ATTESTATION","nonce":"123456789","alg":"RS256","jwk":jwk}),
                profile: serde_json::json!({"id":"0f9c3b4e-8d6a-4c1e-9a57-2f1e0d3c4b5a","userid":"john.doe@nexusgroup.com",
                    "name":"TestProfile","servername":"nexus-hermod1","boxurl":BOXURL}),
                deviceinfo: serde_json::json!({"operatingsystem":"test"}),
                pops: vec![p],
            }
        }

        fn sign_with(&self, signer: &Signer) -> String {
            let mut profile = self.profile.clone();
            profile["signedkeys"] = serde_json::json!(self.pops);
            let payload = serde_json::json!({"profile": profile, "deviceinfo": self.deviceinfo});
            let alg = Alg::parse(&self.outer_alg).unwrap_or(Alg::RS256);
            signer
                .compact(alg, &self.outer_header, payload.to_string().as_bytes())
                .unwrap()
        }

        fn sign(&self) -> String {
            self.sign_with(&att_signer())
        }
    }

    fn check(b: &Build) -> Result<Verified, VerifyError<()>> {
        let s = spec();
        verify(&b.sign(), &expected(&s), &fake())
    }

    #[test]
    fn a_built_answer_is_accepted() {
        check(&Build::new()).unwrap();
    }

    #[test]
    fn every_rule_has_its_code() {
        let dev = dev_signer();
        let s = spec();
        // 1: compact form.
        assert_eq!(
            code_of(verify("a.b", &expected(&s), &fake())),
            Code::MalformedJws
        );
        // 1/6.1: alg none with an empty signature.
        let none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","kid":"ATTESTATION"}"#),
            b64url(b"{}")
        );
        assert_eq!(
            code_of(verify(&none, &expected(&s), &fake())),
            Code::AlgNotAllowed
        );
        let hs = format!("{}.{}.c2ln", b64url(br#"{"alg":"HS256"}"#), b64url(b"{}"));
        assert_eq!(
            code_of(verify(&hs, &expected(&s), &fake())),
            Code::AlgNotAllowed
        );
        // 3: forbidden header member.
        let mut b = Build::new();
        b.outer_header["jku"] = "https://evil.example/".into();
        assert_eq!(code_of(check(&b)), Code::MalformedJws);
        let mut b = Build::new();
        b.outer_header["crit"] = serde_json::json!(["exp"]);
        assert_eq!(code_of(check(&b)), Code::MalformedJws);
        // 4: private key material.
        let mut b = Build::new();
        b.outer_header["jwk"]["d"] = "AQAB".into();
        assert_eq!(code_of(check(&b)), Code::PrivateKeyMaterial);
        // 6: attestation kid.
        let mut b = Build::new();
        b.outer_header["kid"] = "attestation".into();
        assert_eq!(code_of(check(&b)), Code::AttestationKidMismatch);
        // 7: no jwk.
        let mut b = Build::new();
        b.outer_header.as_object_mut().unwrap().remove("jwk");
        assert_eq!(code_of(check(&b)), Code::MalformedJws);
        // 8: an untrusted key, self-made attestation.
        let (rogue, _) = Signer::generate_p256().unwrap();
        let mut b = Build::new();
        b.outer_alg = "ES256".into();
        b.outer_header["alg"] = "ES256".into();
        b.outer_header["jwk"] = Value::Object(crate::hermod::jws::jwk_members(&rogue.public()));
        assert_eq!(
            code_of(verify(&b.sign_with(&rogue), &expected(&s), &fake())),
            Code::AttestationKeyUntrusted
        );
        // 8: alg not pinned on the entry (PS256 with the trusted key).
        let mut b = Build::new();
        b.outer_alg = "PS256".into();
        b.outer_header["alg"] = "PS256".into();
        assert_eq!(code_of(check(&b)), Code::AlgNotAllowed);
        // 8: a pinned jwk kid.
        let mut f = fake();
        f.trusted[0].1.jwk_kid = Some("other".into());
        assert_eq!(
            code_of(verify(&Build::new().sign(), &expected(&s), &f)),
            Code::AttestationKeyUntrusted
        );
        // 9: trusted key embedded, signed by another key.
        let b = Build::new();
        assert_eq!(
            code_of(verify(&b.sign_with(&dev), &expected(&s), &fake())),
            Code::AttestationSignatureInvalid
        );
        // 10: nonce.
        let mut b = Build::new();
        b.outer_header["nonce"] = "1".into();
        assert_eq!(code_of(check(&b)), Code::NonceMismatch);
        // 12: profile fields.
        for f in ["userid", "name", "servername", "boxurl"] {
            let mut b = Build::new();
            b.profile[f] = "x".into();
            assert_eq!(code_of(check(&b)), Code::ProfileMismatch, "{f}");
        }
        // 13: profile id.
        let mut b = Build::new();
        b.profile["id"] = "not-a-uuid".into();
        assert_eq!(code_of(check(&b)), Code::ProfileIdInvalid);
        let f = fake();
        f.profiles
            .borrow_mut()
            .push("0f9c3b4e-8d6a-4c1e-9a57-2f1e0d3c4b5a".into());
        assert_eq!(
            code_of(verify(&Build::new().sign(), &expected(&s), &f)),
            Code::ProfileExists
        );
        // 14: missing / unexpected keys.
        let mut b = Build::new();
        b.pops.clear();
        assert_eq!(code_of(check(&b)), Code::MissingKey);
        let mut b = Build::new();
        b.pops.push(b.pops[0].clone());
        assert_eq!(code_of(check(&b)), Code::UnexpectedKey);
        let jwk = device_jwk(&dev, "RS256", "signer");
        let header = serde_json::json!({"alg":"RS256","kid":"signer","nonce":"123456789"});
        let with = |h: Value, p: Value| {
            let mut b = Build::new();
            b.pops = vec![pop(&dev, Alg::RS256, h, p)];
            code_of(check(&b))
        };
        // 15: PoP header carries a jwk; lacks a nonce; alg none.
        let mut h = header.clone();
        h["jwk"] = jwk.clone();
        assert_eq!(with(h, jwk.clone()), Code::MalformedJws);
        let mut h = header.clone();
        h.as_object_mut().unwrap().remove("nonce");
        assert_eq!(with(h, jwk.clone()), Code::MalformedJws);
        let mut b = Build::new();
        b.pops = vec![format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","kid":"signer","nonce":"123456789"}"#),
            b64url(jwk.to_string().as_bytes())
        )];
        assert_eq!(code_of(check(&b)), Code::AlgNotAllowed);
        // 16: a keyid that was not requested; payload kid differs.
        let mut h = header.clone();
        h["kid"] = "other".into();
        assert_eq!(
            with(h, device_jwk(&dev, "RS256", "other")),
            Code::KeyidMismatch
        );
        assert_eq!(
            with(header.clone(), device_jwk(&dev, "RS256", "other")),
            Code::KeyidMismatch
        );
        // 17: PoP nonce.
        let mut h = header.clone();
        h["nonce"] = "987654321".into();
        assert_eq!(with(h, jwk.clone()), Code::NonceMismatch);
        // 18: n#len, alg, use, key_state, private members, a weak key.
        let mut p = jwk.clone();
        p["n#len"] = "4096".into();
        assert_eq!(with(header.clone(), p), Code::KeySizeMismatch);
        let mut p = jwk.clone();
        p["alg"] = "PS256".into();
        assert_eq!(with(header.clone(), p), Code::AlgMismatch);
        let mut b = Build::new();
        b.pops = vec![pop(
            &dev,
            Alg::PS256,
            serde_json::json!({"alg":"PS256","kid":"signer","nonce":"123456789"}),
            device_jwk(&dev, "PS256", "signer"),
        )];
        assert_eq!(code_of(check(&b)), Code::AlgMismatch);
        let mut p = jwk.clone();
        p["use"] = "ENC".into();
        assert_eq!(with(header.clone(), p), Code::UsageMismatch);
        let mut p = jwk.clone();
        p["key_state"] = "INACTIVE".into();
        assert_eq!(with(header.clone(), p), Code::KeystateMismatch);
        let mut p = jwk.clone();
        p["d"] = "AQAB".into();
        assert_eq!(with(header.clone(), p), Code::PrivateKeyMaterial);
        let (ec, _) = Signer::generate_p256().unwrap();
        let mut b = Build::new();
        let mut ej = device_jwk(&ec, "ES256", "signer");
        ej.as_object_mut().unwrap().remove("n#len");
        b.pops = vec![pop(
            &ec,
            Alg::ES256,
            serde_json::json!({"alg":"ES256","kid":"signer","nonce":"123456789"}),
            ej,
        )];
        assert_eq!(
            code_of(check(&b)),
            Code::KeySizeMismatch,
            "EC key where RSA 2048 was asked"
        );
        // A 1024-bit key: its n, cut to 128 octets, is a size mismatch before any signature.
        let mut p = jwk.clone();
        let n = crate::hermod::jws::b64url_decode(p["n"].as_str().unwrap()).unwrap();
        p["n"] = b64url(&n[..128]).into();
        p["n#len"] = "1024".into();
        assert_eq!(with(header.clone(), p), Code::KeySizeMismatch);
        // 19: a PoP signed by another key.
        let mut b = Build::new();
        b.pops = vec![pop(&ec, Alg::ES256, header.clone(), jwk.clone())];
        // (header says RS256, signature is garbage for RS256)
        assert_eq!(code_of(check(&b)), Code::PopSignatureInvalid);
        // 20: key reuse: a stored key, and the attestation key as device key.
        let mut f = fake();
        f.keys.push(dev.public().thumbprint());
        assert_eq!(
            code_of(verify(&Build::new().sign(), &expected(&s), &f)),
            Code::KeyReuse
        );
        let att = att_signer();
        let mut b = Build::new();
        b.pops = vec![pop(
            &att,
            Alg::RS256,
            header.clone(),
            device_jwk(&att, "RS256", "signer"),
        )];
        assert_eq!(code_of(check(&b)), Code::KeyReuse);
    }

    #[test]
    fn a_key_may_satisfy_a_later_entry_of_its_size() {
        let dev = dev_signer();
        let mut s = spec();
        s.keys[0].priors.push(model::KeyType {
            kty: Kty::Rsa,
            bits: 2048,
            alg: Alg::PS256,
        });
        let mut b = Build::new();
        b.pops = vec![pop(
            &dev,
            Alg::PS256,
            serde_json::json!({"alg":"PS256","kid":"signer","nonce":"123456789"}),
            device_jwk(&dev, "PS256", "signer"),
        )];
        let v = verify(&b.sign(), &expected(&s), &fake()).unwrap();
        assert_eq!(v.keys[0].alg, Alg::PS256);
        // A mechanism the request does not list for that size is still refused.
        s.keys[0].priors.pop();
        assert_eq!(
            code_of(verify(&b.sign(), &expected(&s), &fake())),
            Code::AlgMismatch
        );
    }

    #[test]
    fn certreqs_are_checked() {
        let dev = dev_signer();
        let (other, _) = Signer::generate_p256().unwrap();
        let dummy = crate::hermod::csr::dummy("john.doe", &other).unwrap();
        let mut s = spec();
        s.keys[0].certreq = Some(dummy.clone());
        let header = serde_json::json!({"alg":"RS256","kid":"signer","nonce":"123456789"});
        let b64 = |d: &[u8]| <base64ct::Base64 as base64ct::Encoding>::encode_string(d);
        let run = |certreq: Option<String>| {
            let mut b = Build::new();
            let mut p = device_jwk(&dev, "RS256", "signer");
            if let Some(c) = certreq {
                p["certreq"] = c.into();
            }
            b.pops = vec![pop(&dev, Alg::RS256, header.clone(), p)];
            verify(&b.sign(), &expected(&s), &fake())
        };
        let csr = crate::hermod::csr::Csr::parse(&dummy).unwrap();
        let good = crate::hermod::csr::build(csr.subject, csr.attributes, &dev).unwrap();
        let v = run(Some(b64(&good))).unwrap();
        assert_eq!(v.keys[0].certreq.as_deref(), Some(&good[..]));
        assert_eq!(code_of(run(None)), Code::CertreqInvalid);
        // The dummy itself carries another key.
        assert_eq!(code_of(run(Some(b64(&dummy)))), Code::CertreqInvalid);
        // Another subject.
        let other_subject = crate::hermod::csr::dummy("mallory", &dev).unwrap();
        assert_eq!(
            code_of(run(Some(b64(&other_subject)))),
            Code::CertreqInvalid
        );
    }
}
