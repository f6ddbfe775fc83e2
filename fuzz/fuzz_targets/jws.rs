//! The hand-written parsers of the Hermod front must never panic: the compact JWS parser (and
//! the JWK reader behind it) on any string, and the PKCS#10 reader on any bytes. A parsed JWS
//! is also run through the whole verifier with an empty trust store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provd::hermod::csr::Csr;
use provd::hermod::jws::{parse_compact, strict_object, Alg, PublicKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = Csr::parse(data) {
        let _ = csr.public_key();
        let _ = csr.verify();
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = parse_compact(text) {
        let _ = c.allowed_alg(&Alg::ALL);
        let _ = c.signature();
        if let Some(serde_json::Value::Object(jwk)) = c.header.get("jwk") {
            if let Ok(k) = PublicKey::from_jwk(jwk) {
                let _ = k.thumbprint();
                let _ = k.bits();
            }
        }
        if let Ok(p) = strict_object(&c.payload, 8) {
            let _ = PublicKey::from_jwk(&p);
        }
    }
});
