//! The attestation trust store (spec sections 6.3 and 7.2): entries are added from a JWK or
//! a PEM public key, or loaded from a file in the format of `fixtures/hermod/trust_store.json`.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jws::{pem_der, Alg, PublicKey};
use crate::store::hermod::{AttestationKey, NewAttestationKey};
use crate::store::Store;

/// One entry to add.
pub struct Entry {
    pub kid: String,
    pub key: PublicKey,
    pub algs: Vec<Alg>,
    pub jwk_kid: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
}

/// The algorithms a key gets when none are given: RS256 and PS256 for RSA, ES256 for P-256.
pub fn default_algs(key: &PublicKey) -> Vec<Alg> {
    match key {
        PublicKey::Rsa { .. } => vec![Alg::RS256, Alg::PS256],
        PublicKey::P256 { .. } => vec![Alg::ES256],
    }
}

/// A public key from a JWK object.
pub fn key_from_jwk(jwk: &Value) -> Result<PublicKey> {
    let Value::Object(m) = jwk else {
        bail!("the JWK is not a JSON object");
    };
    Ok(PublicKey::from_jwk(m)?)
}

/// A public key from a PEM `PUBLIC KEY` (SPKI).
pub fn key_from_pem(pem: &str) -> Result<PublicKey> {
    let der = pem_der(pem).context("no PEM block")?;
    super::csr::spki_key(&der).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Adds (or updates, by thumbprint) an entry. Keys under 2048 bits and algorithms that do
/// not fit the key are refused.
pub fn add(store: &Store, e: &Entry, now: i64) -> Result<AttestationKey> {
    if matches!(e.key, PublicKey::Rsa { .. }) && e.key.bits() < 2048 {
        bail!(
            "attestation keys must be at least 2048 bits (this one has {})",
            e.key.bits()
        );
    }
    if e.algs.is_empty() {
        bail!("give at least one algorithm");
    }
    if let Some(a) = e.algs.iter().find(|a| a.kty() != e.key.kty()) {
        bail!("{a} does not fit a {} key", e.key.kty().as_str());
    }
    let algs: Vec<&str> = e.algs.iter().map(|a| a.as_str()).collect();
    let thumbprint = e.key.thumbprint();
    Ok(store.upsert_attestation_key(
        &NewAttestationKey {
            kid: &e.kid,
            thumbprint: &thumbprint,
            public_jwk: &e.key.canonical_json(),
            algs: &algs.join(" "),
            jwk_kid: e.jwk_kid.as_deref(),
            not_before: e.not_before,
            not_after: e.not_after,
        },
        now,
    )?)
}

#[derive(Deserialize)]
struct File {
    attestation_keys: Vec<FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    kid: String,
    thumbprint_s256: Option<String>,
    #[serde(default)]
    algs: Vec<String>,
    jwk: Map<String, Value>,
    jwk_kid: Option<String>,
    not_before: Option<i64>,
    not_after: Option<i64>,
}

/// Upserts every entry of a trust-store file; a stated thumbprint must match the key.
pub fn load_file(store: &Store, path: &std::path::Path, now: i64) -> Result<Vec<AttestationKey>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the trust store {}", path.display()))?;
    let file: File = serde_json::from_str(&text)
        .with_context(|| format!("the trust store {} is not valid", path.display()))?;
    let mut out = Vec::new();
    for f in file.attestation_keys {
        let key = PublicKey::from_jwk(&f.jwk).with_context(|| format!("entry {}", f.kid))?;
        if let Some(t) = &f.thumbprint_s256 {
            if *t != key.thumbprint() {
                bail!("entry {}: thumbprint_s256 does not match its jwk", f.kid);
            }
        }
        let algs = if f.algs.is_empty() {
            default_algs(&key)
        } else {
            f.algs
                .iter()
                .map(|a| Alg::parse(a).with_context(|| format!("entry {}: unknown alg {a}", f.kid)))
                .collect::<Result<_>>()?
        };
        out.push(add(
            store,
            &Entry {
                kid: f.kid,
                key,
                algs,
                jwk_kid: f.jwk_kid,
                not_before: f.not_before,
                not_after: f.not_after,
            },
            now,
        )?);
    }
    Ok(out)
}
