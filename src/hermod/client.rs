//! The reference app for the REST front (spec section 11): from the one-time URI it fetches
//! the message, shows it, and declines or generates the keys, proves possession of each,
//! signs the answer with the attestation key and posts it. Used by `provd client hermod` and
//! by the integration tests.
//!
//! Keys: EC P-256 keys are generated (ring); ring cannot generate RSA keys, so an RSA entry
//! is served only with a PKCS#8 key given by the caller (`rsa_keys`) of the requested size.

use std::collections::VecDeque;

use serde_json::{json, Map, Value};
use thiserror::Error;

use super::csr;
use super::jws::{jwk_members, Alg, Signer};
use super::service::uuid_v4;
use super::wire::{Answer, AnswerAccepted, BoxListing, ErrorBody, Message};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("the URI is not a Hermod provisioning link: {0}")]
    BadUri(String),
    #[error("HTTP {status} {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("transport: {0}")]
    Transport(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("signing: {0}")]
    Signing(String),
}

/// The box URL and token of an app-launch URI, either style (section 3.1).
pub fn parse_uri(uri: &str) -> Result<(String, String), ClientError> {
    let rest = uri
        .strip_prefix("com.nexusgroup.pluginout:///")
        .or_else(|| uri.strip_prefix("com.nexusgroup.plugout:///"))
        .ok_or_else(|| ClientError::BadUri("unknown scheme".into()))?;
    let rest = rest.strip_prefix('?').unwrap_or(rest);
    let mut url = None;
    let mut token = None;
    for part in rest.split('&') {
        if let Some(v) = part.strip_prefix("url=") {
            url = Some(percent_decode(v)?);
        } else if let Some(v) = part.strip_prefix("token=") {
            token = Some(percent_decode(v)?);
        }
    }
    let url = url.ok_or_else(|| ClientError::BadUri("no url".into()))?;
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ClientError::BadUri("no token".into()))?;
    let loopback = {
        let h = super::service::host_of(&url);
        h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|i| i.is_loopback())
    };
    let allowed = url.starts_with("https://") || (url.starts_with("http://") && loopback);
    if !allowed {
        return Err(ClientError::BadUri(
            "the box URL must be https (or loopback http)".into(),
        ));
    }
    Ok((url, token))
}

fn percent_decode(s: &str) -> Result<String, ClientError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ClientError::BadUri("bad percent-encoding".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ClientError::BadUri("not UTF-8".into()))
}

/// A generated device key: keyid, RFC 7638 thumbprint, PKCS#8 DER of the private key.
pub type DeviceKey = (String, String, Vec<u8>);

/// How to play.
#[derive(Default)]
pub struct Options {
    pub decline: bool,
    pub device_name: Option<String>,
    /// RSA device keys (PKCS#8 DER) to use for RSA entries, in order.
    pub rsa_keys: Vec<Vec<u8>>,
    /// Test switches: reproduce section 10's negative cases end to end.
    pub corrupt_pop: bool,
    pub wrong_nonce: bool,
    pub alg_none: bool,
}

/// What the app did.
#[derive(Debug)]
pub struct Played {
    pub message: Message,
    pub state: String,
    pub profile_id: Option<String>,
    /// (keyid, thumbprint, PKCS#8 DER of the private key)
    pub keys: Vec<DeviceKey>,
    /// The answer posted (for replay tests).
    pub data: Option<String>,
}

fn call(req: ureq::Request, body: Option<&Value>) -> Result<String, ClientError> {
    let r = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    match r {
        Ok(resp) => resp
            .into_string()
            .map_err(|e| ClientError::Transport(e.to_string())),
        Err(ureq::Error::Status(status, resp)) => {
            let text = resp.into_string().unwrap_or_default();
            let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
            Err(ClientError::Refused {
                status,
                code: body.as_ref().map(|b| b.error.clone()).unwrap_or_default(),
                message: body.map(|b| b.message).unwrap_or(text),
            })
        }
        Err(e) => Err(ClientError::Transport(e.to_string())),
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ClientError> {
    serde_json::from_str(text)
        .map_err(|e| ClientError::Transport(format!("unexpected answer: {e}")))
}

/// Fetches the message behind `uri` (list, then the first message).
pub fn fetch(agent: &ureq::Agent, uri: &str) -> Result<(Message, String, String), ClientError> {
    let (url, token) = parse_uri(uri)?;
    let listing: BoxListing = parse(&call(agent.get(&url).query("token", &token), None)?)?;
    let entry = listing
        .messages
        .first()
        .ok_or_else(|| ClientError::Unsupported("the box is empty".into()))?;
    let location = format!("{}/{}", url.trim_end_matches('/'), entry.mid);
    let message: Message = parse(&call(agent.get(&location).query("token", &token), None)?)?;
    Ok((message, location, token))
}

/// Builds the answer JWS for `message` (section 11 steps 4-5). Returns it and the keys.
pub fn answer(
    message: &Message,
    attestation: &Signer,
    opts: &Options,
) -> Result<(String, Vec<DeviceKey>), ClientError> {
    let pc = &message.prov_command;
    let nonce = if opts.wrong_nonce {
        format!("{}x", pc.nonce)
    } else {
        pc.nonce.clone()
    };
    let sign_err = |e: super::jws::JwsError| ClientError::Signing(e.to_string());
    let mut rsa: VecDeque<&Vec<u8>> = opts.rsa_keys.iter().collect();
    let mut signed = Vec::new();
    let mut keys = Vec::new();
    for req in &pc.profile.keygenrequests {
        if !req
            .storagepriors
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| x == "APP"))
        {
            return Err(ClientError::Unsupported(format!(
                "key {}: no supported storage (only APP)",
                req.keyid
            )));
        }
        let mut chosen = None;
        for p in &req.keytypepriors {
            let bits = p.keylength.value().unwrap_or(0);
            match (p.keytype.as_str(), bits, Alg::parse(&p.responsemechanism)) {
                ("EC", 256, Some(Alg::ES256)) => {
                    let (k, der) = Signer::generate_p256().map_err(sign_err)?;
                    chosen = Some((k, der, Alg::ES256));
                }
                ("RSA", _, Some(alg @ (Alg::RS256 | Alg::PS256))) => {
                    if let Some(pos) = rsa.iter().position(|der| {
                        Signer::rsa_pkcs8(der).is_ok_and(|k| i64::from(k.public().bits()) == bits)
                    }) {
                        let der = rsa.remove(pos).expect("present").clone();
                        chosen = Some((Signer::rsa_pkcs8(&der).map_err(sign_err)?, der, alg));
                    }
                }
                _ => {}
            }
            if chosen.is_some() {
                break;
            }
        }
        let (key, der, alg) = chosen.ok_or_else(|| {
            ClientError::Unsupported(format!(
                "key {}: no supported key type (EC 256, or RSA with --rsa-key)",
                req.keyid
            ))
        })?;
        let public = key.public();
        let mut jwk: Map<String, Value> = Map::new();
        jwk.insert("use".into(), req.usage.clone().into());
        jwk.insert("alg".into(), alg.as_str().into());
        for (k, v) in jwk_members(&public) {
            jwk.insert(k, v);
        }
        jwk.insert("kid".into(), req.keyid.clone().into());
        if matches!(public, super::jws::PublicKey::Rsa { .. }) {
            jwk.insert("n#len".into(), public.bits().to_string().into());
        }
        jwk.insert(
            "key_state".into(),
            req.keystate
                .clone()
                .unwrap_or_else(|| "ACTIVE".into())
                .into(),
        );
        if let Some(dummy_b64) = &req.certreq {
            use base64ct::Encoding;
            let clean: String = dummy_b64.chars().filter(|c| !c.is_whitespace()).collect();
            let dummy = base64ct::Base64::decode_vec(&clean)
                .map_err(|_| ClientError::Unsupported("certreq is not base64".into()))?;
            let parsed = csr::Csr::parse(&dummy).map_err(|e| ClientError::Unsupported(e.0))?;
            let built = csr::build(parsed.subject, parsed.attributes, &key)
                .map_err(|e| ClientError::Signing(e.0))?;
            jwk.insert(
                "certreq".into(),
                base64ct::Base64::encode_string(&built).into(),
            );
        }
        let header = json!({"alg": alg.as_str(), "kid": req.keyid, "nonce": nonce});
        let mut pop = key
            .compact(alg, &header, Value::Object(jwk).to_string().as_bytes())
            .map_err(sign_err)?;
        if opts.corrupt_pop {
            // Flip one bit of the signature's first character.
            let dot = pop.rfind('.').expect("three segments");
            let c = pop.as_bytes()[dot + 1];
            let flipped = if c == b'A' { 'B' } else { 'A' };
            pop.replace_range(dot + 1..dot + 2, &flipped.to_string());
        }
        keys.push((req.keyid.clone(), public.thumbprint(), der));
        signed.push(pop);
    }
    let payload = json!({
        "profile": {
            "id": uuid_v4(),
            "userid": pc.userid,
            "signedkeys": signed,
            "name": pc.profile.name,
            "servername": pc.profile.servername,
            "boxurl": message.boxurl,
        },
        "deviceinfo": {
            "operatingsystem": concat!("provd-reference-client ", env!("CARGO_PKG_VERSION")),
            "model": "provd",
            "apndevicetoken": "",
            "name": opts.device_name.clone().unwrap_or_else(|| "provd reference client".into()),
        }
    });
    let alg = attestation.default_alg();
    let mut jwk = jwk_members(&attestation.public());
    jwk.insert("use".into(), "sig".into());
    jwk.insert("kid".into(), "attestation".into());
    jwk.insert("alg".into(), alg.as_str().into());
    let header =
        json!({"kid": pc.responsesignaturekey, "nonce": nonce, "alg": alg.as_str(), "jwk": jwk});
    let data = if opts.alg_none {
        use super::jws::b64url;
        let mut h = header.clone();
        h["alg"] = "none".into();
        format!(
            "{}.{}.",
            b64url(h.to_string().as_bytes()),
            b64url(payload.to_string().as_bytes())
        )
    } else {
        attestation
            .compact(alg, &header, payload.to_string().as_bytes())
            .map_err(sign_err)?
    };
    Ok((data, keys))
}

/// Posts an answer to a message `location`.
pub fn post(
    agent: &ureq::Agent,
    location: &str,
    token: &str,
    answer: &Answer,
) -> Result<AnswerAccepted, ClientError> {
    let body = serde_json::to_value(answer).expect("serializable");
    parse(&call(
        agent.post(location).query("token", token),
        Some(&body),
    )?)
}

/// Plays the app end to end.
pub fn play(
    agent: &ureq::Agent,
    uri: &str,
    attestation: &Signer,
    opts: &Options,
) -> Result<Played, ClientError> {
    let (message, location, token) = fetch(agent, uri)?;
    if opts.decline {
        let done = post(
            agent,
            &location,
            &token,
            &Answer {
                status: 403,
                data: None,
            },
        )?;
        return Ok(Played {
            message,
            state: done.state,
            profile_id: None,
            keys: vec![],
            data: None,
        });
    }
    let (data, keys) = answer(&message, attestation, opts)?;
    let done = post(
        agent,
        &location,
        &token,
        &Answer {
            status: 200,
            data: Some(data.clone()),
        },
    )?;
    Ok(Played {
        message,
        state: done.state,
        profile_id: done.profile_id,
        keys,
        data: Some(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_uri_styles_parse() {
        let seed = "com.nexusgroup.pluginout:///url=https%3A%2F%2Fprovd.example.test%3A20400%2Fhermod%2Frest%2Fms%2F482a&token=c3c5";
        assert_eq!(
            parse_uri(seed).unwrap(),
            (
                "https://provd.example.test:20400/hermod/rest/ms/482a".into(),
                "c3c5".into()
            )
        );
        let public = "com.nexusgroup.plugout:///?url=http%3A%2F%2F127.0.0.1%3A8%2Fhermod%2Frest%2Fms%2Fb&token=t";
        assert_eq!(
            parse_uri(public).unwrap().0,
            "http://127.0.0.1:8/hermod/rest/ms/b"
        );
        assert!(
            parse_uri("com.nexusgroup.plugout:///?url=http%3A%2F%2Fevil.example%2F&token=t")
                .is_err()
        );
        assert!(parse_uri("https://x/").is_err());
        assert!(parse_uri("com.nexusgroup.plugout:///?url=https%3A%2F%2Fa%2F&token=").is_err());
    }
}
