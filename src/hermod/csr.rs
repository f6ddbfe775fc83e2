//! PKCS#10 certification requests (RFC 2986), only as far as spec section 6.5 step 21
//! needs: split a DER request into its parts, read its public key, check its self-signature
//! with `ring`, and (for the reference client) build one with a new key over a dummy's
//! subject and attributes. A small hand-written DER reader; fuzzed with the JWS parser.

use super::jws::{PublicKey, Signer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CsrError(pub String);

fn err(s: &str) -> CsrError {
    CsrError(s.to_owned())
}

/// One DER TLV: its tag, its content and the whole encoding.
#[derive(Debug, Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// Reads one TLV from the front of `input`; returns it and the rest. Definite lengths only,
/// minimal length encodings, single-byte tags.
fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), CsrError> {
    let (&tag, rest) = input.split_first().ok_or_else(|| err("truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(err("multi-byte tags are not supported"));
    }
    let (&first, mut rest) = rest.split_first().ok_or_else(|| err("truncated"))?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 3 || rest.len() < n {
            return Err(err("bad length"));
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | b as usize;
        }
        if len < 0x80 || (n > 1 && rest[0] == 0) {
            return Err(err("non-minimal length"));
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(err("truncated"));
    }
    let header = input.len() - rest.len();
    Ok((
        Tlv {
            tag,
            content: &rest[..len],
            whole: &input[..header + len],
        },
        &rest[len..],
    ))
}

fn expect<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(Tlv<'a>, &'a [u8]), CsrError> {
    let (t, rest) = read_tlv(input)?;
    if t.tag != tag {
        return Err(CsrError(format!("{what}: unexpected tag {:#04x}", t.tag)));
    }
    Ok((t, rest))
}

const SEQ: u8 = 0x30;
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

/// The signature algorithms a returned CSR may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrAlg {
    Sha256Rsa,
    RsaPss,
    EcdsaSha256,
    Other,
}

/// A parsed request, borrowing from its DER.
#[derive(Debug, Clone)]
pub struct Csr<'a> {
    /// The whole `CertificationRequestInfo` TLV (what is signed).
    pub info: &'a [u8],
    /// The whole subject `Name` TLV.
    pub subject: &'a [u8],
    /// The whole `SubjectPublicKeyInfo` TLV.
    pub spki: &'a [u8],
    /// The attributes `[0]` TLV.
    pub attributes: &'a [u8],
    pub alg: CsrAlg,
    pub signature: &'a [u8],
}

impl<'a> Csr<'a> {
    pub fn parse(der: &'a [u8]) -> Result<Self, CsrError> {
        let (outer, rest) = expect(der, SEQ, "CertificationRequest")?;
        if !rest.is_empty() {
            return Err(err("trailing data"));
        }
        let (info, r) = expect(outer.content, SEQ, "CertificationRequestInfo")?;
        let (alg_id, r) = expect(r, SEQ, "signatureAlgorithm")?;
        let (sig, r) = expect(r, 0x03, "signature")?;
        if !r.is_empty() {
            return Err(err("trailing data in the request"));
        }
        let (version, r) = expect(info.content, 0x02, "version")?;
        if version.content != [0] {
            return Err(err("version must be 0"));
        }
        let (subject, r) = expect(r, SEQ, "subject")?;
        let (spki, r) = expect(r, SEQ, "subjectPKInfo")?;
        let (attributes, r) = expect(r, 0xa0, "attributes")?;
        if !r.is_empty() {
            return Err(err("trailing data in CertificationRequestInfo"));
        }
        let (oid, _) = expect(alg_id.content, 0x06, "algorithm")?;
        let alg = match oid.content {
            OID_SHA256_RSA => CsrAlg::Sha256Rsa,
            OID_RSA_PSS => CsrAlg::RsaPss,
            OID_ECDSA_SHA256 => CsrAlg::EcdsaSha256,
            _ => CsrAlg::Other,
        };
        let (&unused, signature) = sig
            .content
            .split_first()
            .ok_or_else(|| err("empty signature"))?;
        if unused != 0 {
            return Err(err("signature has unused bits"));
        }
        Ok(Csr {
            info: info.whole,
            subject: subject.whole,
            spki: spki.whole,
            attributes: attributes.whole,
            alg,
            signature,
        })
    }

    /// The public key of the request.
    pub fn public_key(&self) -> Result<PublicKey, CsrError> {
        spki_key(self.spki)
    }

    /// Checks the self-signature; SHA-1 and anything but SHA-256 RSA / RSA-PSS / ECDSA are
    /// refused.
    pub fn verify(&self) -> Result<(), CsrError> {
        use ring::signature as s;
        let key = self.public_key()?;
        let ok = match (&key, self.alg) {
            (PublicKey::Rsa { n, e }, CsrAlg::Sha256Rsa | CsrAlg::RsaPss) => {
                let params: &s::RsaParameters = if self.alg == CsrAlg::Sha256Rsa {
                    &s::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &s::RSA_PSS_2048_8192_SHA256
                };
                s::RsaPublicKeyComponents { n, e }
                    .verify(params, self.info, self.signature)
                    .is_ok()
            }
            (PublicKey::P256 { x, y }, CsrAlg::EcdsaSha256) => {
                let mut p = vec![4u8];
                p.extend_from_slice(x);
                p.extend_from_slice(y);
                s::UnparsedPublicKey::new(&s::ECDSA_P256_SHA256_ASN1, p)
                    .verify(self.info, self.signature)
                    .is_ok()
            }
            (_, CsrAlg::Other) => return Err(err("the signature algorithm is not accepted")),
            _ => return Err(err("the signature algorithm does not fit the key")),
        };
        if ok {
            Ok(())
        } else {
            Err(err("the self-signature does not verify"))
        }
    }
}

fn unsigned(int: &[u8]) -> Vec<u8> {
    int.iter().copied().skip_while(|b| *b == 0).collect()
}

/// The key of a DER `SubjectPublicKeyInfo` (RSA or P-256).
pub fn spki_key(spki: &[u8]) -> Result<PublicKey, CsrError> {
    let (seq, _) = expect(spki, SEQ, "SubjectPublicKeyInfo")?;
    let (alg, r) = expect(seq.content, SEQ, "algorithm")?;
    let (bits, _) = expect(r, 0x03, "subjectPublicKey")?;
    let (oid, params) = expect(alg.content, 0x06, "algorithm")?;
    let (&unused, key) = bits.content.split_first().ok_or_else(|| err("empty key"))?;
    if unused != 0 {
        return Err(err("key has unused bits"));
    }
    match oid.content {
        OID_RSA => {
            let (rsa, _) = expect(key, SEQ, "RSAPublicKey")?;
            let (n, r) = expect(rsa.content, 0x02, "modulus")?;
            let (e, _) = expect(r, 0x02, "exponent")?;
            Ok(PublicKey::Rsa {
                n: unsigned(n.content),
                e: unsigned(e.content),
            })
        }
        OID_EC => {
            let (curve, _) = expect(params, 0x06, "curve")?;
            if curve.content != OID_P256 || key.len() != 65 || key[0] != 4 {
                return Err(err("only uncompressed P-256 keys are accepted"));
            }
            let mut x = [0u8; 32];
            let mut y = [0u8; 32];
            x.copy_from_slice(&key[1..33]);
            y.copy_from_slice(&key[33..]);
            Ok(PublicKey::P256 { x, y })
        }
        _ => Err(err("unsupported key algorithm")),
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else if n < 0x10000 {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    } else {
        out.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn der_uint(v: &[u8]) -> Vec<u8> {
    let v = unsigned(v);
    let mut c = Vec::with_capacity(v.len() + 1);
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        c.push(0);
    }
    c.extend_from_slice(&v);
    tlv(0x02, &c)
}

/// The DER `SubjectPublicKeyInfo` of `key`.
pub fn spki_der(key: &PublicKey) -> Vec<u8> {
    match key {
        PublicKey::Rsa { n, e } => {
            let alg = tlv(SEQ, &[tlv(0x06, OID_RSA), vec![0x05, 0x00]].concat());
            let rsa = tlv(SEQ, &[der_uint(n), der_uint(e)].concat());
            let bits = tlv(0x03, &[&[0u8][..], &rsa].concat());
            tlv(SEQ, &[alg, bits].concat())
        }
        PublicKey::P256 { x, y } => {
            let alg = tlv(SEQ, &[tlv(0x06, OID_EC), tlv(0x06, OID_P256)].concat());
            let bits = tlv(0x03, &[&[0u8, 4][..], x, y].concat());
            tlv(SEQ, &[alg, bits].concat())
        }
    }
}

/// A new request over `subject` and `attributes` (whole TLVs, as taken from a dummy) for
/// `signer`'s key, signed with SHA-256 (RS256 or ES256).
pub fn build(subject: &[u8], attributes: &[u8], signer: &Signer) -> Result<Vec<u8>, CsrError> {
    let key = signer.public();
    let info = tlv(
        SEQ,
        &[
            &[0x02, 0x01, 0x00][..],
            subject,
            &spki_der(&key),
            attributes,
        ]
        .concat(),
    );
    let (alg_oid, null) = match key {
        PublicKey::Rsa { .. } => (OID_SHA256_RSA, true),
        PublicKey::P256 { .. } => (OID_ECDSA_SHA256, false),
    };
    let mut alg_content = tlv(0x06, alg_oid);
    if null {
        alg_content.extend_from_slice(&[0x05, 0x00]);
    }
    let raw = signer
        .sign(signer.default_alg(), &info)
        .map_err(|e| CsrError(e.to_string()))?;
    let signature = match key {
        PublicKey::Rsa { .. } => raw,
        // JWS ECDSA signatures are r||s; PKCS#10 wants the DER SEQUENCE.
        PublicKey::P256 { .. } => tlv(SEQ, &[der_uint(&raw[..32]), der_uint(&raw[32..])].concat()),
    };
    Ok(tlv(
        SEQ,
        &[
            info,
            tlv(SEQ, &alg_content),
            tlv(0x03, &[&[0u8][..], &signature].concat()),
        ]
        .concat(),
    ))
}

/// A dummy request as an integrator sends one: `CN=<cn>`, no attributes, signed by `signer`.
pub fn dummy(cn: &str, signer: &Signer) -> Result<Vec<u8>, CsrError> {
    // Name ::= SEQUENCE OF SET OF AttributeTypeAndValue { id-at-commonName, UTF8String }
    let atv = tlv(
        SEQ,
        &[tlv(0x06, &[0x55, 0x04, 0x03]), tlv(0x0c, cn.as_bytes())].concat(),
    );
    let subject = tlv(SEQ, &tlv(0x31, &atv));
    build(&subject, &[0xa0, 0x00], signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_requests_parse_verify_and_carry_their_key() {
        let (k, _) = Signer::generate_p256().unwrap();
        let der = dummy("john.doe", &k).unwrap();
        let csr = Csr::parse(&der).unwrap();
        assert_eq!(csr.alg, CsrAlg::EcdsaSha256);
        assert_eq!(csr.public_key().unwrap(), k.public());
        csr.verify().unwrap();
        // Rebuilt with another key over the same subject.
        let (k2, _) = Signer::generate_p256().unwrap();
        let der2 = build(csr.subject, csr.attributes, &k2).unwrap();
        let csr2 = Csr::parse(&der2).unwrap();
        assert_eq!(csr2.subject, csr.subject);
        csr2.verify().unwrap();
        assert_eq!(csr2.public_key().unwrap(), k2.public());
        // A flipped signature bit fails.
        let mut bad = der2.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(Csr::parse(&bad).unwrap().verify().is_err());
    }

    #[test]
    fn rsa_requests_round_trip() {
        let pem = include_str!("../../fixtures/hermod/keys/device_signer_rsa2048.pem");
        let k = Signer::rsa_pkcs8(&super::super::jws::pem_der(pem).unwrap()).unwrap();
        let der = dummy("x", &k).unwrap();
        let csr = Csr::parse(&der).unwrap();
        assert_eq!(csr.alg, CsrAlg::Sha256Rsa);
        assert_eq!(csr.public_key().unwrap(), k.public());
        csr.verify().unwrap();
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Csr::parse(&[]).is_err());
        assert!(Csr::parse(&[0x30, 0x81, 0x05]).is_err());
        assert!(Csr::parse(&[0x30, 0x00, 0x00]).is_err());
        assert!(read_tlv(&[0x30, 0x81, 0x10]).is_err(), "non-minimal");
        assert!(read_tlv(&[0x1f, 0x00]).is_err());
    }
}
