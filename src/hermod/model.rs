//! The typed provision command: the wire request checked against the rules of spec section
//! 3.1 and normalised (seed spellings, profile-level defaults pushed into every key). Parse,
//! don't validate: everything past this module holds a [`ProvisionSpec`].

use base64ct::Encoding;

use super::error::ApiError;
use super::jws::{Alg, Kty};
use super::wire::{CommandHeader, KeyGenRequest, KeyTypePrior, ProvCommand, ProvisionRequest};
/// A key's `usage` and `keystate` are stored with it (`device_keys`), so the store defines them.
pub use crate::store::hermod::{KeyState, Usage};

pub const MAX_SECONDS: i64 = 604_800;
pub const DEFAULT_SECONDS: i64 = 300;
pub const MAX_CSR_BYTES: usize = 8 * 1024;

/// One allowed `(keytype, keylength, responsemechanism)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyType {
    pub kty: Kty,
    pub bits: u32,
    pub alg: Alg,
}

impl KeyType {
    fn parse(p: &KeyTypePrior, field: &str) -> Result<Self, ApiError> {
        let bits = p.keylength.value().ok_or_else(|| {
            ApiError::invalid(
                &format!("{field}.keylength"),
                "keylength is not a decimal number",
            )
        })?;
        let alg = Alg::parse(&p.responsemechanism).ok_or_else(|| {
            ApiError::unsupported(
                &format!("{field}.responsemechanism"),
                "responsemechanism must be RS256, PS256 or ES256",
            )
        })?;
        let ok = match (p.keytype.as_str(), bits, alg) {
            ("RSA", 2048 | 3072 | 4096, Alg::RS256 | Alg::PS256) => Some(Kty::Rsa),
            ("EC", 256, Alg::ES256) => Some(Kty::Ec),
            _ => None,
        };
        let kty = ok.ok_or_else(|| {
            ApiError::unsupported(
                field,
                "supported key types: RSA 2048/3072/4096 with RS256 or PS256, EC 256 with ES256",
            )
        })?;
        Ok(KeyType {
            kty,
            bits: bits as u32,
            alg,
        })
    }
}

/// One requested key.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub keyid: String,
    pub usage: Usage,
    pub priors: Vec<KeyType>,
    pub storage: Vec<String>,
    pub keystate: KeyState,
    /// The dummy PKCS#10, DER.
    pub certreq: Option<Vec<u8>>,
}

/// A checked provision command.
#[derive(Debug, Clone)]
pub struct ProvisionSpec {
    pub lifespan: i64,
    pub timeout: i64,
    pub external_id: Option<String>,
    pub nonce: String,
    pub userid: String,
    pub responsesignaturekey: String,
    pub name: String,
    pub servername: String,
    pub keys: Vec<KeySpec>,
    /// The normalised `provCommand`, as stored and as the app receives it.
    pub normalized: ProvCommand,
}

fn seconds(v: &Option<super::wire::IntOrString>, field: &str) -> Result<i64, ApiError> {
    match v {
        None => Ok(DEFAULT_SECONDS),
        Some(x) => match x.value() {
            Some(n) if (1..=MAX_SECONDS).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                field,
                format!("{field} must be whole seconds from 1 to {MAX_SECONDS}"),
            )),
        },
    }
}

fn is_keyid(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_storage(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=32).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// The DER of a `certreq` (standard base64, line breaks tolerated).
pub fn decode_certreq(b64: &str, field: &str) -> Result<Vec<u8>, ApiError> {
    let clean: String = b64.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let der = base64ct::Base64::decode_vec(&clean)
        .map_err(|_| ApiError::invalid(field, "certreq is not standard base64"))?;
    if der.len() > MAX_CSR_BYTES {
        return Err(ApiError::invalid(field, "certreq is larger than 8 KiB"));
    }
    super::csr::Csr::parse(&der)
        .map_err(|e| ApiError::invalid(field, format!("certreq is not a PKCS#10 request: {e}")))?;
    Ok(der)
}

fn header_checks(h: &CommandHeader) -> Result<(i64, i64), ApiError> {
    let lifespan = seconds(&h.lifespan, "commandHeader.lifespan")?;
    let timeout = seconds(&h.timeout, "commandHeader.timeout")?;
    if timeout > lifespan {
        return Err(ApiError::invalid(
            "commandHeader.timeout",
            "timeout must not exceed lifespan",
        ));
    }
    if let Some(to) = &h.to {
        if to.iter().any(|t| t != "@tmp") || to.is_empty() {
            return Err(ApiError::unsupported(
                "commandHeader.to",
                "only [\"@tmp\"] is accepted",
            ));
        }
    }
    if let Some(e) = &h.external_id {
        if e.len() > 256 || e.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "commandHeader.externalId",
                "externalId is at most 256 printable characters",
            ));
        }
    }
    if !h.other.is_empty() {
        let names: Vec<&String> = h.other.keys().collect();
        tracing::info!(members = ?names, "hermod: unknown commandHeader members ignored");
    }
    Ok((lifespan, timeout))
}

/// Checks and normalises a provision request.
pub fn check(req: ProvisionRequest) -> Result<ProvisionSpec, ApiError> {
    let (lifespan, timeout) = header_checks(&req.command_header)?;
    let mut spec = check_command(req.prov_command)?;
    spec.lifespan = lifespan;
    spec.timeout = timeout;
    spec.external_id = req.command_header.external_id;
    Ok(spec)
}

/// Checks and normalises a `provCommand` (also used on the stored, already normalised one).
pub fn check_command(mut pc: ProvCommand) -> Result<ProvisionSpec, ApiError> {
    let nonce_ok =
        (1..=128).contains(&pc.nonce.len()) && pc.nonce.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if !nonce_ok {
        return Err(ApiError::invalid(
            "provCommand.nonce",
            "nonce is 1 to 128 printable ASCII characters without spaces",
        ));
    }
    if pc.userid.is_empty() || pc.userid.len() > 255 {
        return Err(ApiError::invalid(
            "provCommand.userid",
            "userid is empty or too long",
        ));
    }
    if pc.responsesignaturekey != "ATTESTATION" {
        return Err(ApiError::unsupported(
            "provCommand.responsesignaturekey",
            "responsesignaturekey must be ATTESTATION",
        ));
    }
    if pc.responseformat != "jws" {
        return Err(ApiError::unsupported(
            "provCommand.responseformat",
            "responseformat must be jws",
        ));
    }
    let p = &mut pc.profile;
    for (v, f) in [(&p.name, "name"), (&p.servername, "servername")] {
        if v.is_empty() || v.len() > 255 {
            return Err(ApiError::invalid(
                &format!("provCommand.profile.{f}"),
                format!("{f} is empty or longer than 255 characters"),
            ));
        }
    }
    if !(1..=8).contains(&p.keygenrequests.len()) {
        return Err(ApiError::invalid(
            "provCommand.profile.keygenrequests",
            "keygenrequests has 1 to 8 entries",
        ));
    }
    let default_storage = p.storagepriors.take();
    let default_state = p.keystate.take();
    let default_csr = p.certreq.take();
    let mut keys = Vec::with_capacity(p.keygenrequests.len());
    for (i, k) in p.keygenrequests.iter_mut().enumerate() {
        let field = format!("provCommand.profile.keygenrequests[{i}]");
        keys.push(check_key(
            k,
            i,
            &field,
            &default_storage,
            &default_state,
            &default_csr,
        )?);
    }
    let mut ids: Vec<&str> = keys.iter().map(|k| k.keyid.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::invalid(
            "provCommand.profile.keygenrequests",
            "keyids must be unique",
        ));
    }
    Ok(ProvisionSpec {
        lifespan: DEFAULT_SECONDS,
        timeout: DEFAULT_SECONDS,
        external_id: None,
        nonce: pc.nonce.clone(),
        userid: pc.userid.clone(),
        responsesignaturekey: pc.responsesignaturekey.clone(),
        name: pc.profile.name.clone(),
        servername: pc.profile.servername.clone(),
        keys,
        normalized: pc,
    })
}

fn check_key(
    k: &mut KeyGenRequest,
    _index: usize,
    field: &str,
    default_storage: &Option<Vec<String>>,
    default_state: &Option<String>,
    default_csr: &Option<String>,
) -> Result<KeySpec, ApiError> {
    if !is_keyid(&k.keyid) {
        return Err(ApiError::invalid(
            &format!("{field}.keyid"),
            "keyid is 1 to 64 of A-Z a-z 0-9 . _ -",
        ));
    }
    let usage = Usage::parse(&k.usage).ok_or_else(|| {
        ApiError::unsupported(&format!("{field}.usage"), "usage must be SIG, AUTH or ENC")
    })?;
    if !(1..=4).contains(&k.keytypepriors.len()) {
        return Err(ApiError::invalid(
            &format!("{field}.keytypepriors"),
            "keytypepriors has 1 to 4 entries",
        ));
    }
    let priors = k
        .keytypepriors
        .iter()
        .enumerate()
        .map(|(j, p)| KeyType::parse(p, &format!("{field}.keytypepriors[{j}]")))
        .collect::<Result<Vec<_>, _>>()?;
    if k.storagepriors.is_none() {
        k.storagepriors = default_storage.clone();
    }
    let storage = k
        .storagepriors
        .get_or_insert_with(|| vec!["APP".into()])
        .clone();
    if !(1..=4).contains(&storage.len()) || !storage.iter().all(|s| is_storage(s)) {
        return Err(ApiError::invalid(
            &format!("{field}.storagepriors"),
            "storagepriors has 1 to 4 names of A-Z 0-9 _",
        ));
    }
    if k.keystate.is_none() {
        k.keystate = default_state.clone();
    }
    let state_text = k.keystate.get_or_insert_with(|| "ACTIVE".into()).clone();
    let keystate = KeyState::parse(&state_text).ok_or_else(|| {
        ApiError::unsupported(
            &format!("{field}.keystate"),
            "keystate must be ACTIVE or INACTIVE",
        )
    })?;
    if k.certreq.is_none() {
        k.certreq = default_csr.clone();
    }
    let certreq = match &k.certreq {
        Some(b64) => Some(decode_certreq(b64, &format!("{field}.certreq"))?),
        None => None,
    };
    Ok(KeySpec {
        keyid: k.keyid.clone(),
        usage,
        priors,
        storage,
        keystate,
        certreq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> Result<ProvisionSpec, ApiError> {
        check(serde_json::from_str(json).unwrap())
    }

    const VECTOR: &str = include_str!("../../fixtures/hermod/command/provision_request.json");

    #[test]
    fn the_vector_request_checks() {
        let s = request(VECTOR).unwrap();
        assert_eq!((s.lifespan, s.timeout), (1500, 1500));
        assert_eq!(
            s.keys[0].priors[0],
            KeyType {
                kty: Kty::Rsa,
                bits: 2048,
                alg: Alg::RS256
            }
        );
        assert_eq!(s.keys[0].storage, vec!["APP".to_owned()]);
    }

    #[test]
    fn profile_level_values_are_defaults() {
        let seed = VECTOR
            .replace(r#""storagepriors": ["#, r#""storageprios": ["#)
            .replace(r#""keystate": "ACTIVE""#, r#""keystate": "INACTIVE""#);
        let s = request(&seed).unwrap();
        assert_eq!(s.keys[0].keystate, KeyState::Inactive);
        // Moved to profile level: the key gets them.
        let v: serde_json::Value = serde_json::from_str(VECTOR).unwrap();
        let mut v = v;
        let k = v["provCommand"]["profile"]["keygenrequests"][0]
            .as_object_mut()
            .unwrap();
        k.remove("storagepriors");
        k.remove("keystate");
        v["provCommand"]["profile"]["storagepriors"] = serde_json::json!(["SE"]);
        v["provCommand"]["profile"]["keystate"] = serde_json::json!("INACTIVE");
        let s = request(&v.to_string()).unwrap();
        assert_eq!(s.keys[0].storage, vec!["SE".to_owned()]);
        assert_eq!(s.keys[0].keystate, KeyState::Inactive);
        let norm = serde_json::to_value(&s.normalized).unwrap();
        assert!(norm["profile"].get("storagepriors").is_none());
        assert_eq!(
            norm["profile"]["keygenrequests"][0]["storagepriors"][0],
            "SE"
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                r#""timeout": 1500"#,
                r#""timeout": 1501"#,
                "commandHeader.timeout",
            ),
            (
                r#""lifespan": 1500"#,
                r#""lifespan": 0"#,
                "commandHeader.lifespan",
            ),
            (
                r#""keylength": "2048""#,
                r#""keylength": "1024""#,
                "provCommand.profile.keygenrequests[0].keytypepriors[0]",
            ),
            (
                r#""responsemechanism": "RS256""#,
                r#""responsemechanism": "HS256""#,
                "provCommand.profile.keygenrequests[0].keytypepriors[0].responsemechanism",
            ),
            (
                r#""usage": "SIG""#,
                r#""usage": "sig""#,
                "provCommand.profile.keygenrequests[0].usage",
            ),
            (
                r#""keyid": "signer""#,
                r#""keyid": "a b""#,
                "provCommand.profile.keygenrequests[0].keyid",
            ),
            (
                r#""nonce": "123456789""#,
                r#""nonce": "1 2""#,
                "provCommand.nonce",
            ),
            (
                r#""responseformat": "jws""#,
                r#""responseformat": "jwt""#,
                "provCommand.responseformat",
            ),
        ];
        for (from, to, field) in cases {
            let e = request(&VECTOR.replace(from, to)).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{to}: {e}");
            assert_eq!(e.status, 400);
        }
    }
}
