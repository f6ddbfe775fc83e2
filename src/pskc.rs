//! PSKC (RFC 6030) key containers: import of plaintext keys, of keys encrypted with a
//! pre-shared key (AES-128-CBC, MAC HMAC-SHA1 or HMAC-SHA256; section 6.1) and of keys
//! encrypted with a PBKDF2-derived key (section 6.2); export with a pre-shared key.
//!
//! The parser reads XML with quick-xml (no DTDs, no entity expansion beyond XML's own) and
//! keeps only the elements it needs, matched by local name. Every encrypted value must carry a
//! `ValueMAC` under a `MACMethod` (verified in constant time) before it is decrypted: an
//! unauthenticated CBC ciphertext is refused.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use zeroize::Zeroizing;

const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const HMAC_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#hmac-sha1";
const HMAC_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256";
const PBKDF2: &str = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2";
/// The largest document read (keys of about 100,000 authenticators).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
const MAX_ITERATIONS: u32 = 10_000_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PskcError {
    #[error("not a PSKC document: {0}")]
    Xml(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the document's keys are encrypted: {0}")]
    NeedKey(&'static str),
    #[error("key package {0}: the MAC does not verify (wrong key or altered document)")]
    BadMac(usize),
    #[error("key package {0}: cannot decrypt the secret (wrong key?)")]
    Decrypt(usize),
    #[error("cannot decrypt the MAC key: wrong pre-shared key or password")]
    WrongKey,
}

/// How the document's secrets are protected, as the operator says.
pub enum Protection {
    /// Plaintext only; an encrypted document is refused.
    None,
    /// A pre-shared AES-128 key (section 6.1).
    PreShared(Zeroizing<Vec<u8>>),
    /// A password for PBKDF2 (section 6.2).
    Password(Zeroizing<String>),
}

/// One key read from a container.
#[derive(Debug)]
pub struct PskcKey {
    /// `DeviceInfo/SerialNo`.
    pub serial_no: Option<String>,
    /// `Key@Id`.
    pub key_id: Option<String>,
    /// `Key@Algorithm`, e.g. `urn:ietf:params:xml:ns:keyprov:pskc:hotp`.
    pub algorithm: Option<String>,
    pub secret: Zeroizing<Vec<u8>>,
}

#[derive(Default)]
struct Package {
    serial_no: Option<String>,
    key_id: Option<String>,
    algorithm: Option<String>,
    plain: Option<String>,
    cipher: Option<String>,
    cipher_alg: Option<String>,
    mac: Option<String>,
}

#[derive(Default)]
struct Doc {
    key_name: Option<String>,
    derived: bool,
    kdf_alg: Option<String>,
    salt: Option<String>,
    iterations: Option<String>,
    key_length: Option<String>,
    prf: Option<String>,
    mac_alg: Option<String>,
    mac_key: Option<String>,
    mac_key_alg: Option<String>,
    packages: Vec<Package>,
}

fn local(name: &[u8]) -> String {
    let name = match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(name).into_owned()
}

fn attr(e: &BytesStart, name: &str) -> Result<Option<String>, PskcError> {
    for a in e.attributes() {
        let a = a.map_err(|e| PskcError::Xml(e.to_string()))?;
        if local(a.key.as_ref()) == name {
            let v = a
                .unescape_value()
                .map_err(|e| PskcError::Xml(e.to_string()))?;
            return Ok(Some(v.trim().to_owned()));
        }
    }
    Ok(None)
}

fn ends(path: &[String], tail: &[&str]) -> bool {
    path.len() >= tail.len()
        && path[path.len() - tail.len()..]
            .iter()
            .zip(tail)
            .all(|(a, b)| a == b)
}

fn read_doc(xml: &[u8]) -> Result<Doc, PskcError> {
    if xml.len() > MAX_BYTES {
        return Err(PskcError::Invalid(format!(
            "the document is larger than {MAX_BYTES} bytes"
        )));
    }
    let mut reader = Reader::from_reader(xml);
    let mut doc = Doc::default();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut buf = Vec::new();
    let mut root_seen = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| PskcError::Xml(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = local(e.name().as_ref());
                if path.is_empty() {
                    if root_seen || name != "KeyContainer" {
                        return Err(PskcError::Xml(format!(
                            "the root element is {name}, not KeyContainer"
                        )));
                    }
                    root_seen = true;
                }
                if path.len() > 32 {
                    return Err(PskcError::Xml("elements nested too deeply".into()));
                }
                path.push(name);
                text.clear();
                let p = &path;
                if ends(p, &["KeyContainer", "KeyPackage"]) {
                    doc.packages.push(Package::default());
                } else if ends(p, &["KeyPackage", "Key"]) {
                    if let Some(pkg) = doc.packages.last_mut() {
                        pkg.key_id = attr(e, "Id")?;
                        pkg.algorithm = attr(e, "Algorithm")?;
                    }
                } else if ends(p, &["Secret", "EncryptedValue", "EncryptionMethod"]) {
                    if let Some(pkg) = doc.packages.last_mut() {
                        pkg.cipher_alg = attr(e, "Algorithm")?;
                    }
                } else if ends(p, &["KeyContainer", "MACMethod"]) {
                    doc.mac_alg = attr(e, "Algorithm")?;
                } else if ends(p, &["MACMethod", "MACKey", "EncryptionMethod"]) {
                    doc.mac_key_alg = attr(e, "Algorithm")?;
                } else if ends(p, &["EncryptionKey", "DerivedKey"]) {
                    doc.derived = true;
                } else if ends(p, &["DerivedKey", "KeyDerivationMethod"]) {
                    doc.kdf_alg = attr(e, "Algorithm")?;
                } else if ends(p, &["PBKDF2-params", "PRF"]) {
                    doc.prf = attr(e, "Algorithm")?;
                }
                if empty {
                    path.pop();
                }
            }
            Event::Text(t) => {
                let t = t.unescape().map_err(|e| PskcError::Xml(e.to_string()))?;
                if text.len() + t.len() > MAX_BYTES {
                    return Err(PskcError::Xml("text too long".into()));
                }
                text.push_str(&t);
            }
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::End(_) => {
                let value = || Some(text.split_whitespace().collect::<String>());
                let p = &path;
                let pkg = doc.packages.last_mut();
                if ends(p, &["EncryptionKey", "KeyName"]) {
                    doc.key_name = Some(text.trim().to_owned());
                } else if ends(p, &["PBKDF2-params", "Salt", "Specified"]) {
                    doc.salt = value();
                } else if ends(p, &["PBKDF2-params", "IterationCount"]) {
                    doc.iterations = value();
                } else if ends(p, &["PBKDF2-params", "KeyLength"]) {
                    doc.key_length = value();
                } else if ends(p, &["MACMethod", "MACKey", "CipherData", "CipherValue"]) {
                    doc.mac_key = value();
                } else if let Some(pkg) = pkg {
                    if ends(p, &["DeviceInfo", "SerialNo"]) {
                        pkg.serial_no = Some(text.trim().to_owned());
                    } else if ends(p, &["Secret", "PlainValue"]) {
                        pkg.plain = value();
                    } else if ends(
                        p,
                        &["Secret", "EncryptedValue", "CipherData", "CipherValue"],
                    ) {
                        pkg.cipher = value();
                    } else if ends(p, &["Secret", "ValueMAC"]) {
                        pkg.mac = value();
                    }
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            Event::DocType(_) => return Err(PskcError::Xml("a DOCTYPE is not accepted".into())),
            _ => {}
        }
        buf.clear();
    }
    if !root_seen {
        return Err(PskcError::Xml("no KeyContainer element".into()));
    }
    Ok(doc)
}

fn b64(what: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, PskcError> {
    B64.decode(text)
        .map(Zeroizing::new)
        .map_err(|e| PskcError::Invalid(format!("{what}: not base64: {e}")))
}

/// PBKDF2 (RFC 8018) over HMAC-`D`.
fn pbkdf2<M: Mac + hmac::digest::KeyInit + Clone>(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    out: &mut [u8],
) {
    let prf = <M as hmac::digest::KeyInit>::new_from_slice(password).expect("HMAC takes any key");
    for (i, chunk) in out.chunks_mut(64).enumerate() {
        let mut m = prf.clone();
        m.update(salt);
        m.update(&(i as u32 + 1).to_be_bytes());
        let mut u = m.finalize().into_bytes();
        let mut t = u.clone();
        for _ in 1..iterations {
            let mut m = prf.clone();
            m.update(&u);
            u = m.finalize().into_bytes();
            t.iter_mut().zip(u.iter()).for_each(|(a, b)| *a ^= b);
        }
        let n = chunk.len().min(t.len());
        chunk[..n].copy_from_slice(&t[..n]);
    }
}

fn cbc_decrypt(key: &[u8], data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if data.len() < 32 || !data.len().is_multiple_of(16) {
        return None;
    }
    let (iv, ct) = data.split_at(16);
    cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .ok()
        .map(Zeroizing::new)
}

fn cbc_encrypt(key: &[u8], plain: &[u8]) -> Vec<u8> {
    let iv: [u8; 16] = crate::crypto::random_array();
    let ct = cbc::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
        .expect("a 16-byte key and IV")
        .encrypt_padded_vec_mut::<Pkcs7>(plain);
    [iv.to_vec(), ct].concat()
}

fn mac_ok(alg: &str, key: &[u8], data: &[u8], tag: &[u8]) -> Result<bool, PskcError> {
    Ok(match alg {
        HMAC_SHA1 => {
            let mut m = Hmac::<sha1::Sha1>::new_from_slice(key).expect("any key");
            m.update(data);
            m.verify_slice(tag).is_ok()
        }
        HMAC_SHA256 => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key");
            m.update(data);
            m.verify_slice(tag).is_ok()
        }
        other => {
            return Err(PskcError::Invalid(format!(
                "MACMethod {other:?} is not supported (hmac-sha1, hmac-sha256)"
            )))
        }
    })
}

/// The encryption key the document needs, from the operator's protection.
fn encryption_key(doc: &Doc, protection: &Protection) -> Result<Zeroizing<Vec<u8>>, PskcError> {
    if doc.derived {
        let Protection::Password(password) = protection else {
            return Err(PskcError::NeedKey(
                "with a password-derived key (PBKDF2): give the password (--password-stdin)",
            ));
        };
        if doc.kdf_alg.as_deref() != Some(PBKDF2) {
            return Err(PskcError::Invalid(format!(
                "KeyDerivationMethod {:?} is not supported (PBKDF2 only)",
                doc.kdf_alg
            )));
        }
        let salt = b64("PBKDF2 Salt", doc.salt.as_deref().unwrap_or_default())?;
        let iterations: u32 = doc
            .iterations
            .as_deref()
            .and_then(|s| s.parse().ok())
            .filter(|n| (1..=MAX_ITERATIONS).contains(n))
            .ok_or_else(|| {
                PskcError::Invalid(format!(
                    "PBKDF2 IterationCount must be 1 to {MAX_ITERATIONS}"
                ))
            })?;
        if let Some(len) = &doc.key_length {
            if len != "16" {
                return Err(PskcError::Invalid(format!(
                    "PBKDF2 KeyLength {len}: only 16 (AES-128) is supported"
                )));
            }
        }
        let mut key = Zeroizing::new(vec![0u8; 16]);
        match doc.prf.as_deref() {
            None | Some("") | Some(HMAC_SHA1) => {
                pbkdf2::<Hmac<sha1::Sha1>>(password.as_bytes(), &salt, iterations, &mut key)
            }
            Some(HMAC_SHA256) => {
                pbkdf2::<Hmac<sha2::Sha256>>(password.as_bytes(), &salt, iterations, &mut key)
            }
            Some(other) => {
                return Err(PskcError::Invalid(format!(
                    "PBKDF2 PRF {other:?} is not supported"
                )))
            }
        }
        return Ok(key);
    }
    match protection {
        Protection::PreShared(k) if k.len() == 16 => Ok(k.clone()),
        Protection::PreShared(_) => Err(PskcError::Invalid(
            "the pre-shared key must be 16 bytes (32 hex characters) for AES-128-CBC".into(),
        )),
        _ => Err(PskcError::NeedKey(
            "with a pre-shared key: give it (--key-file, 32 hex characters)",
        )),
    }
}

/// Reads every key of a PSKC document, decrypting with `protection` where needed.
pub fn parse(xml: &[u8], protection: &Protection) -> Result<Vec<PskcKey>, PskcError> {
    let doc = read_doc(xml)?;
    let encrypted = doc.packages.iter().any(|p| p.cipher.is_some());
    let key = if encrypted {
        Some(encryption_key(&doc, protection)?)
    } else {
        None
    };
    let mac_key = match (&key, &doc.mac_key) {
        (Some(k), Some(ct)) => {
            if doc.mac_key_alg.as_deref().is_some_and(|a| a != AES128_CBC) {
                return Err(PskcError::Invalid(format!(
                    "MACKey encryption {:?} is not supported (aes128-cbc)",
                    doc.mac_key_alg
                )));
            }
            Some(cbc_decrypt(k, &b64("MACKey", ct)?).ok_or(PskcError::WrongKey)?)
        }
        _ => None,
    };
    let mut out = Vec::with_capacity(doc.packages.len());
    for (i, p) in doc.packages.into_iter().enumerate() {
        let n = i + 1;
        let secret = match (&p.plain, &p.cipher) {
            (Some(plain), None) => b64(&format!("key package {n}: PlainValue"), plain)?,
            (None, Some(ct)) => {
                if p.cipher_alg.as_deref() != Some(AES128_CBC) {
                    return Err(PskcError::Invalid(format!(
                        "key package {n}: EncryptionMethod {:?} is not supported (aes128-cbc)",
                        p.cipher_alg
                    )));
                }
                let data = b64(&format!("key package {n}: CipherValue"), ct)?;
                let (Some(mac_key), Some(mac)) = (&mac_key, &p.mac) else {
                    return Err(PskcError::Invalid(format!(
                        "key package {n}: an encrypted secret needs a ValueMAC and a MACMethod \
                         with a MACKey"
                    )));
                };
                let alg = doc.mac_alg.as_deref().unwrap_or_default();
                let tag = b64(&format!("key package {n}: ValueMAC"), mac)?;
                if !mac_ok(alg, mac_key, &data, &tag)? {
                    return Err(PskcError::BadMac(n));
                }
                cbc_decrypt(key.as_deref().expect("encrypted"), &data)
                    .ok_or(PskcError::Decrypt(n))?
            }
            (Some(_), Some(_)) => {
                return Err(PskcError::Invalid(format!(
                    "key package {n}: both PlainValue and EncryptedValue"
                )))
            }
            (None, None) => {
                return Err(PskcError::Invalid(format!(
                    "key package {n}: no Secret value"
                )))
            }
        };
        out.push(PskcKey {
            serial_no: p.serial_no,
            key_id: p.key_id,
            algorithm: p.algorithm,
            secret,
        });
    }
    Ok(out)
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// A PSKC document holding `keys` (serial number, secret), each secret encrypted with the
/// pre-shared AES-128 key `key` (named `key_name`), MACed with HMAC-SHA256 under a fresh MAC
/// key (section 6.1).
pub fn write(keys: &[(String, Zeroizing<Vec<u8>>)], key: &[u8], key_name: &str) -> String {
    assert_eq!(key.len(), 16, "an AES-128 key");
    let mac_key = Zeroizing::new(crate::crypto::random_array::<32>());
    let mut x = String::new();
    x.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <KeyContainer Version=\"1.0\" xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\" \
         xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" \
         xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\">\n",
    );
    x.push_str(&format!(
        "  <EncryptionKey>\n    <ds:KeyName>{}</ds:KeyName>\n  </EncryptionKey>\n",
        escape(key_name)
    ));
    x.push_str(&format!(
        "  <MACMethod Algorithm=\"{HMAC_SHA256}\">\n    <MACKey>\n      \
         <xenc:EncryptionMethod Algorithm=\"{AES128_CBC}\"/>\n      <xenc:CipherData>\n        \
         <xenc:CipherValue>{}</xenc:CipherValue>\n      </xenc:CipherData>\n    </MACKey>\n  \
         </MACMethod>\n",
        B64.encode(cbc_encrypt(key, mac_key.as_ref()))
    ));
    for (serial, secret) in keys {
        let data = cbc_encrypt(key, secret);
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(mac_key.as_ref()).expect("any key");
        m.update(&data);
        let tag = m.finalize().into_bytes();
        x.push_str(&format!(
            "  <KeyPackage>\n    <DeviceInfo>\n      <SerialNo>{s}</SerialNo>\n    </DeviceInfo>\n    \
             <Key Id=\"{s}\">\n      <Data>\n        <Secret>\n          <EncryptedValue>\n            \
             <xenc:EncryptionMethod Algorithm=\"{AES128_CBC}\"/>\n            <xenc:CipherData>\n              \
             <xenc:CipherValue>{c}</xenc:CipherValue>\n            </xenc:CipherData>\n          \
             </EncryptedValue>\n          <ValueMAC>{t}</ValueMAC>\n        </Secret>\n      </Data>\n    \
             </Key>\n  </KeyPackage>\n",
            s = escape(serial),
            c = B64.encode(&data),
            t = B64.encode(tag),
        ));
    }
    x.push_str("</KeyContainer>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/fixtures/pskc/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6030_figures_2_and_3_plaintext() {
        let keys = parse(&fixture("rfc6030-figure2.pskcxml"), &Protection::None).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].serial_no, None);
        assert_eq!(keys[0].key_id.as_deref(), Some("12345678"));
        assert_eq!(keys[0].secret.as_slice(), b"1234");
        let keys = parse(&fixture("rfc6030-figure3.pskcxml"), &Protection::None).unwrap();
        assert_eq!(keys[0].serial_no.as_deref(), Some("987654321"));
        assert_eq!(
            keys[0].algorithm.as_deref(),
            Some("urn:ietf:params:xml:ns:keyprov:pskc:hotp")
        );
        assert_eq!(keys[0].secret.as_slice(), SECRET);
    }

    #[test]
    fn rfc6030_figure6_pre_shared_key() {
        let doc = fixture("rfc6030-figure6.pskcxml");
        let psk = Zeroizing::new(hex::decode("12345678901234567890123456789012").unwrap());
        let keys = parse(&doc, &Protection::PreShared(psk)).unwrap();
        assert_eq!(keys[0].secret.as_slice(), SECRET);
        assert!(matches!(
            parse(&doc, &Protection::None),
            Err(PskcError::NeedKey(_))
        ));
        let wrong = Zeroizing::new(vec![7u8; 16]);
        assert!(parse(&doc, &Protection::PreShared(wrong)).is_err());
        // An altered ciphertext fails the MAC before any decryption.
        let text = String::from_utf8(doc).unwrap();
        let altered = text.replace("AAECAwQFBgcICQoLDA0OD+cI", "AAECAwQFBgcICQoLDA0OD+cJ");
        let psk = Zeroizing::new(hex::decode("12345678901234567890123456789012").unwrap());
        assert_eq!(
            parse(altered.as_bytes(), &Protection::PreShared(psk)).unwrap_err(),
            PskcError::BadMac(1)
        );
    }

    #[test]
    fn rfc6030_figure7_pbkdf2() {
        let doc = fixture("rfc6030-figure7.pskcxml");
        let keys = parse(&doc, &Protection::Password(Zeroizing::new("qwerty".into()))).unwrap();
        assert_eq!(keys[0].serial_no.as_deref(), Some("987654321"));
        assert_eq!(keys[0].secret.as_slice(), SECRET);
        let e = parse(&doc, &Protection::Password(Zeroizing::new("qwertz".into()))).unwrap_err();
        assert!(
            matches!(e, PskcError::BadMac(1) | PskcError::WrongKey),
            "{e:?}"
        );
    }

    #[test]
    fn export_round_trips_and_bad_documents_are_refused() {
        let key = [9u8; 16];
        let keys = vec![
            ("VDS0000001".to_owned(), Zeroizing::new(vec![1u8; 32])),
            ("VDS0000002".to_owned(), Zeroizing::new(vec![2u8; 20])),
        ];
        let doc = write(&keys, &key, "provd <export>");
        let back = parse(
            doc.as_bytes(),
            &Protection::PreShared(Zeroizing::new(key.to_vec())),
        )
        .unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].serial_no.as_deref(), Some("VDS0000002"));
        assert_eq!(back[1].secret.as_slice(), &[2u8; 20]);
        for bad in [
            "",
            "<a/>",
            "<KeyContainer><KeyPackage><Key><Data><Secret/></Data></Key></KeyPackage></KeyContainer>",
            "<!DOCTYPE x [<!ENTITY a \"b\">]><KeyContainer/>",
            "<KeyContainer><KeyPackage><Key><Data><Secret><PlainValue>!!</PlainValue></Secret></Data></Key></KeyPackage></KeyContainer>",
        ] {
            assert!(parse(bad.as_bytes(), &Protection::None).is_err(), "{bad}");
        }
    }
}
