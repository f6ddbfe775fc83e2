//! Every rule of spec section 6 through real HTTP, on SQLite and PostgreSQL: one refused
//! answer per rule (and per variant of a rule), each `422` with exactly the spec's code, the
//! command still `IN_PROGRESS`, every refusal counted as an attempt, and nothing stored; the
//! tolerances of the spec (the seed's padding, one leading zero octet of `n`, `use` in any
//! case, `n#len` as a number, `typ`/`cty`, `deviceinfo` inside `profile`, no `key_state`) in
//! answers that are accepted.
//!
//! The answers are built here, key by key, with the fixtures' RSA keys and fresh P-256 keys;
//! the request is `fixtures/hermod/command/rules_request.json` (an RSA-2048/RS256 key
//! `signer` and an EC/ES256 key `auth`, state INACTIVE) unless a case needs another. The
//! servers run with `hermod.max_attempts` raised so that one command takes every refusal.

use super::{attestation, ec_request, http, read, start, Front, USER};
use crate::common::{backends, cli, cli_result};

use provd::hermod::client;
use provd::hermod::jws::{b64url, b64url_decode, jwk_members, pem_der, Alg, PublicKey, Signer};
use provd::hermod::service::uuid_v4;
use serde_json::{json, Value};

const MANY_ATTEMPTS: (&str, &str) = ("PROVD_HERMOD__MAX_ATTEMPTS", "1000");

fn device_rsa() -> Signer {
    Signer::rsa_pkcs8(&pem_der(&read("keys/device_signer_rsa2048.pem")).unwrap()).unwrap()
}

fn p256() -> Signer {
    Signer::generate_p256().unwrap().0
}

/// The rules request with its own nonce.
fn rules_request(nonce: &str) -> Value {
    let mut v: Value = serde_json::from_str(&read("command/rules_request.json")).unwrap();
    v["provCommand"]["nonce"] = nonce.into();
    v
}

/// A compact JWS over the given header text and payload bytes, padded with `=` like the
/// seed's producer when `pad`; the signing input is the text sent.
fn compact(key: &Signer, alg: Alg, header: &str, payload: &[u8], pad: bool) -> String {
    let enc = |b: &[u8]| {
        let mut s = b64url(b);
        while pad && !s.len().is_multiple_of(4) {
            s.push('=');
        }
        s
    };
    let input = format!("{}.{}", enc(header.as_bytes()), enc(payload));
    let sig = key.sign(alg, input.as_bytes()).unwrap();
    format!("{input}.{}", enc(&sig))
}

/// A proof of possession: `header` over the JWK `jwk`, signed by `key` with `alg`.
fn pop(key: &Signer, alg: Alg, header: &Value, jwk: &Value) -> String {
    compact(
        key,
        alg,
        &header.to_string(),
        jwk.to_string().as_bytes(),
        false,
    )
}

/// The JWK of a device key as the seed shows it.
fn key_jwk(key: &Signer, alg: &str, kid: &str, usage: &str, state: Option<&str>) -> Value {
    let public = key.public();
    let mut m = jwk_members(&public);
    m.insert("use".into(), usage.into());
    m.insert("alg".into(), alg.into());
    m.insert("kid".into(), kid.into());
    if matches!(public, PublicKey::Rsa { .. }) {
        m.insert("n#len".into(), public.bits().to_string().into());
    }
    if let Some(s) = state {
        m.insert("key_state".into(), s.into());
    }
    Value::Object(m)
}

/// The embedded JWK of an attestation key (as the reference client sends it).
fn att_jwk(key: &Signer) -> Value {
    let mut m = jwk_members(&key.public());
    m.insert("use".into(), "sig".into());
    m.insert("kid".into(), "attestation".into());
    m.insert("alg".into(), key.default_alg().as_str().into());
    Value::Object(m)
}

/// A command as the app sees it, and how many answers it has refused.
struct Cmd {
    id: String,
    path: String,
    nonce: String,
    boxurl: String,
    refused: usize,
}

impl Cmd {
    fn open(f: &Front, request: &Value) -> Cmd {
        let r = f.provision(&request.to_string());
        assert_eq!(r.status, 200, "{:?}", r.body);
        let uri = r.body["destinations"][0]["uri"].as_str().unwrap();
        let agent = ureq::AgentBuilder::new().build();
        let (message, location, token) = client::fetch(&agent, uri).unwrap();
        Cmd {
            id: r.body["commandId"].as_str().unwrap().to_owned(),
            path: format!(
                "hermod/{}?token={token}",
                location.split_once("/hermod/").unwrap().1
            ),
            nonce: message.prov_command.nonce.clone(),
            boxurl: message.boxurl.clone(),
            refused: 0,
        }
    }

    fn post(&self, f: &Front, body: &str) -> super::Resp {
        http(&f.server.base, "POST", &self.path, &[], Some(body))
    }

    fn answer(&self, f: &Front, data: &str) -> super::Resp {
        self.post(f, &json!({"status": 200, "data": data}).to_string())
    }

    /// Posts `data`: refused with `422 code`, the command still in progress.
    fn refuse(&mut self, f: &Front, data: &str, code: &str, case: &str) -> Value {
        let r = self.answer(f, data);
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (422, Some(code)),
            "{case}: {:?}",
            r.body
        );
        self.refused += 1;
        assert_eq!(f.status(&self.id)["state"], "IN_PROGRESS", "{case}");
        r.body
    }

    /// Posts `data`: accepted.
    fn accept(&self, f: &Front, data: &str, case: &str) -> String {
        let r = self.answer(f, data);
        assert_eq!(r.status, 200, "{case}: {:?}", r.body);
        assert_eq!(r.body["state"], "COMPLETED", "{case}");
        assert_eq!(f.status(&self.id)["state"], "COMPLETED");
        r.body["profileId"].as_str().unwrap().to_owned()
    }

    /// Every refusal was counted as one attempt, the command is in progress, and the store
    /// holds exactly `profiles` profiles.
    fn nothing_stored(&self, f: &Front, profiles: usize) {
        let shown: Value = serde_json::from_str(&cli(
            &f.server.db,
            &["--json", "hermod", "command", "show", &self.id],
            None,
        ))
        .unwrap();
        assert_eq!(shown["state"], "IN_PROGRESS");
        assert_eq!(shown["attempts"], self.refused as u64, "{shown}");
        assert!(shown["profile_id"].is_null());
        assert_eq!(profile_count(f), profiles, "nothing stored");
    }
}

fn profile_count(f: &Front) -> usize {
    let listed: Value = serde_json::from_str(&cli(
        &f.server.db,
        &["--json", "hermod", "profile", "list"],
        None,
    ))
    .unwrap();
    listed.as_array().unwrap().len()
}

/// An answer with every part adjustable; `sign` makes the compact JWS.
#[derive(Clone)]
struct Answer {
    alg: Alg,
    header: Value,
    /// Without `signedkeys`.
    profile: Value,
    /// `Null`: left out.
    deviceinfo: Value,
    signedkeys: Value,
    pad: bool,
}

impl Answer {
    /// A valid answer attested by `att` (with `alg`) for `c`, carrying `signedkeys`.
    fn new(c: &Cmd, att: &Signer, signedkeys: Vec<String>) -> Answer {
        let alg = att.default_alg();
        Answer {
            alg,
            header: json!({"kid": "ATTESTATION", "nonce": c.nonce, "alg": alg.as_str(),
                           "jwk": att_jwk(att)}),
            profile: json!({"id": uuid_v4(), "userid": USER, "name": "TestProfile",
                            "servername": "nexus-hermod1", "boxurl": c.boxurl}),
            deviceinfo: json!({"operatingsystem": "rules", "model": "test"}),
            signedkeys: json!(signedkeys),
            pad: false,
        }
    }

    fn payload(&self) -> String {
        let mut profile = self.profile.clone();
        profile["signedkeys"] = self.signedkeys.clone();
        let mut p = json!({ "profile": profile });
        if !self.deviceinfo.is_null() {
            p["deviceinfo"] = self.deviceinfo.clone();
        }
        p.to_string()
    }

    fn sign(&self, key: &Signer) -> String {
        compact(
            key,
            self.alg,
            &self.header.to_string(),
            self.payload().as_bytes(),
            self.pad,
        )
    }
}

/// The device keys of the rules request and their proofs of possession.
struct Device {
    rsa: Signer,
    ec: Signer,
}

impl Device {
    fn new() -> Device {
        Device {
            rsa: device_rsa(),
            ec: p256(),
        }
    }

    /// The PoP of `signer` or `auth` for `c`, after `edit` changed its header and JWK.
    fn pop_with(&self, c: &Cmd, keyid: &str, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (key, alg, usage, state) = match keyid {
            "signer" => (&self.rsa, Alg::RS256, "SIG", "ACTIVE"),
            _ => (&self.ec, Alg::ES256, "AUTH", "INACTIVE"),
        };
        let mut header = json!({"alg": alg.as_str(), "kid": keyid, "nonce": c.nonce});
        let mut jwk = key_jwk(key, alg.as_str(), keyid, usage, Some(state));
        edit(&mut header, &mut jwk);
        pop(key, alg, &header, &jwk)
    }

    fn pop(&self, c: &Cmd, keyid: &str) -> String {
        self.pop_with(c, keyid, |_, _| {})
    }

    /// Both PoPs, valid.
    fn pops(&self, c: &Cmd) -> Vec<String> {
        vec![self.pop(c, "signer"), self.pop(c, "auth")]
    }
}

/// Splits a compact JWS into its three segments.
fn segments(jws: &str) -> (String, String, String) {
    let mut p = jws.split('.').map(str::to_owned);
    (p.next().unwrap(), p.next().unwrap(), p.next().unwrap())
}

/// `n` of an RSA JWK cut to `octets` (a smaller key; its signatures cannot verify, which the
/// size checks must not reach).
fn cut_n(jwk: &mut Value, octets: usize) {
    let n = b64url_decode(jwk["n"].as_str().unwrap()).unwrap();
    jwk["n"] = b64url(&n[..octets]).into();
}

/// A trust-store entry for `key` from the CLI, with extra arguments.
fn trust(f: &Front, kid: &str, key: &Signer, extra: &[&str]) {
    let path = f.server.db.dir().join(format!("{kid}.jwk.json"));
    std::fs::write(&path, Value::Object(jwk_members(&key.public())).to_string()).unwrap();
    let mut args = vec![
        "hermod",
        "attestation",
        "add",
        "--kid",
        kid,
        "--jwk-file",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, _, err) = cli_result(&f.server.db, &args, None);
    assert!(ok, "{err}");
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// -------------------------------------------------------------------------------------------

/// Sections 6.1 (attestation algorithms), 6.2 (compact form and headers), 6.3 (attestation)
/// and 6.4 (payload binding), and the body-level problems that are not attempts.
#[test]
fn every_rule_of_the_envelope_has_its_code() {
    for backend in backends() {
        let f = start(backend, vec![], &[MANY_ATTEMPTS]);
        let att = attestation();
        let dev = Device::new();
        let mut c = Cmd::open(&f, &rules_request("rules-envelope"));
        let good = Answer::new(&c, &att, dev.pops(&c));
        let valid = good.sign(&att);

        // Body-level problems: 400/413, not attempts.
        for (body, status, code) in [
            ("not json".to_owned(), 400, "malformed_body"),
            (json!({"status": 200}).to_string(), 400, "malformed_body"),
            (
                json!({"status": 200, "data": 7}).to_string(),
                400,
                "malformed_body",
            ),
            (
                json!({"status": 200, "data": "a".repeat(49 * 1024)}).to_string(),
                413,
                "too_large",
            ),
        ] {
            let r = c.post(&f, &body);
            assert_eq!(
                (r.status, r.body["error"].as_str()),
                (status, Some(code)),
                "{backend:?} {body:.40}"
            );
        }
        c.nothing_stored(&f, 0);

        // 6.1 / 6.2.1: algorithms outside the allow-list, decided before the signature.
        for bad in ["none", "HS256", "RS1", "rs256", "ES384", "EdDSA"] {
            let mut a = good.clone();
            a.header["alg"] = bad.into();
            let (h, p, _) = segments(&a.sign(&att));
            let sig = if bad == "none" { "" } else { "c2lnbmF0dXJl" };
            c.refuse(
                &f,
                &format!("{h}.{p}.{sig}"),
                "alg_not_allowed",
                &format!("alg {bad}"),
            );
        }
        // The entry pins RS256 only: PS256 with the trusted key.
        let mut a = good.clone();
        a.alg = Alg::PS256;
        a.header["alg"] = "PS256".into();
        c.refuse(&f, &a.sign(&att), "alg_not_allowed", "alg not pinned");

        // 6.2.1: compact form.
        let (h, p, s) = segments(&valid);
        let jws_json = json!({"protected": h, "payload": p, "signature": s}).to_string();
        for (data, case) in [
            (format!("{h}.{p}"), "two segments"),
            (format!("{h}.{p}.{s}.{s}"), "four segments"),
            (format!("{h}.{p}.{s}.{s}.{s}"), "five segments (JWE)"),
            (jws_json, "JSON serialization"),
            (format!("{h}..{s}"), "detached (empty) payload"),
            (format!(".{p}.{s}"), "empty header"),
            (format!("{h}.{p}."), "empty signature, allowed alg"),
            (String::new(), "empty"),
        ] {
            c.refuse(&f, &data, "malformed_jws", case);
        }
        // 6.2.2: the alphabet and padding.
        let std_alphabet = s.replace('-', "+").replace('_', "/");
        assert_ne!(std_alphabet, s);
        let inner_ws = format!("{}\n{}", &p[..10], &p[10..]);
        for (data, case) in [
            (format!("{h}.{p}.{std_alphabet}"), "+ and / in a segment"),
            (format!("{h}.{inner_ws}.{s}"), "whitespace in a segment"),
            (format!(" {valid}"), "leading space"),
            (format!("{h}===.{p}.{s}"), "padding that is not canonical"),
            (
                format!("{h}.{}={}.{s}", &p[..8], &p[8..]),
                "= inside a segment",
            ),
        ] {
            c.refuse(&f, &data, "malformed_jws", case);
        }
        // Non-canonical trailing bits: a header whose encoding ends in 2 significant
        // characters, its last one changed so that unused bits are set.
        let mut a = good.clone();
        let mut filler = String::new();
        a.header["typ"] = "".into();
        while a.header.to_string().len() % 3 != 1 {
            filler.push('x');
            a.header["typ"] = filler.clone().into();
        }
        let (h2, p2, s2) = segments(&a.sign(&att));
        let last = h2.chars().last().unwrap();
        assert!("AQgw".contains(last), "{h2}");
        let bumped = format!("{}{}", &h2[..h2.len() - 1], (last as u8 + 1) as char);
        c.refuse(
            &f,
            &format!("{bumped}.{p2}.{s2}"),
            "malformed_jws",
            "non-canonical trailing bits",
        );

        // 6.2.3: the header object.
        let header_text = good.header.to_string();
        let dup = header_text.replacen('{', r#"{"alg":"RS256","#, 1);
        let not_object = "[1]".to_owned();
        for (text, case) in [
            (dup, "duplicate member"),
            (not_object, "not an object"),
            (r#"{"kid":"ATTESTATION"}"#.to_owned(), "no alg"),
        ] {
            let data = compact(&att, Alg::RS256, &text, good.payload().as_bytes(), false);
            c.refuse(&f, &data, "malformed_jws", case);
        }
        let mut a = good.clone();
        a.header["x"] = json!({"a": {"b": {"c": {}}}});
        c.refuse(&f, &a.sign(&att), "malformed_jws", "nested deeper than 4");
        let mut a = good.clone();
        a.header["typ"] = "x".repeat(8 * 1024).into();
        c.refuse(&f, &a.sign(&att), "malformed_jws", "header over 8 KiB");
        for member in ["crit", "b64", "jku", "x5u", "zip", "enc", "x5c", "x5t"] {
            let mut a = good.clone();
            a.header[member] = match member {
                "crit" => json!(["exp"]),
                "b64" => json!(false),
                "jku" | "x5u" => json!("https://attacker.example/keys"),
                "x5c" => json!(["MIIB"]),
                _ => json!("DEF"),
            };
            c.refuse(&f, &a.sign(&att), "malformed_jws", member);
        }
        // 6.2.4: private key material in the embedded key.
        for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            let mut a = good.clone();
            a.header["jwk"][member] = "AQAB".into();
            c.refuse(&f, &a.sign(&att), "private_key_material", member);
        }
        // 6.2.5: two leading zero octets of n are not tolerated.
        let mut a = good.clone();
        let n = b64url_decode(a.header["jwk"]["n"].as_str().unwrap()).unwrap();
        a.header["jwk"]["n"] = b64url(&[&[0u8, 0][..], &n].concat()).into();
        c.refuse(&f, &a.sign(&att), "malformed_jws", "n with two zero octets");

        // 6.3.6: the kid names the role.
        for kid in [json!("attestation"), json!("ATTESTATION "), Value::Null] {
            let mut a = good.clone();
            if kid.is_null() {
                a.header.as_object_mut().unwrap().remove("kid");
            } else {
                a.header["kid"] = kid.clone();
            }
            c.refuse(
                &f,
                &a.sign(&att),
                "attestation_kid_mismatch",
                &format!("kid {kid}"),
            );
        }
        // 6.3.7: an embedded key of the algorithm's type.
        let mut a = good.clone();
        a.header.as_object_mut().unwrap().remove("jwk");
        c.refuse(&f, &a.sign(&att), "malformed_jws", "no jwk");
        let mut a = good.clone();
        a.header["jwk"] = "AQAB".into();
        c.refuse(&f, &a.sign(&att), "malformed_jws", "jwk not an object");
        let rogue = p256();
        let mut a = good.clone();
        a.header["jwk"] = att_jwk(&rogue);
        c.refuse(&f, &a.sign(&att), "alg_mismatch", "EC jwk with RS256");

        // 6.3.8: trust by RFC 7638 thumbprint.
        let untrusted_rsa = device_rsa();
        let mut a = good.clone();
        a.header["jwk"] = att_jwk(&untrusted_rsa);
        c.refuse(
            &f,
            &a.sign(&untrusted_rsa),
            "attestation_key_untrusted",
            "an RSA key not in the store, self-signed",
        );
        let mut a = good.clone();
        let mut n = b64url_decode(a.header["jwk"]["n"].as_str().unwrap()).unwrap();
        n[100] ^= 1;
        a.header["jwk"]["n"] = b64url(&n).into();
        c.refuse(
            &f,
            &a.sign(&att),
            "attestation_key_untrusted",
            "the trusted key with one bit of n changed",
        );
        let mut a = good.clone();
        cut_n(&mut a.header["jwk"], 128);
        c.refuse(
            &f,
            &a.sign(&att),
            "attestation_key_untrusted",
            "a 1024-bit key",
        );
        let mut a = good.clone();
        a.header["jwk"]["e"] = "Aw".into();
        c.refuse(&f, &a.sign(&att), "attestation_key_untrusted", "e = 3");
        // Entries that exist but are not usable now, and a pinned jwk kid.
        let now = unix_now();
        let (expired, revoked, early, pinned) = (p256(), p256(), p256(), p256());
        trust(
            &f,
            "expired",
            &expired,
            &["--not-after", &(now - 60).to_string()],
        );
        trust(&f, "revoked", &revoked, &[]);
        cli(
            &f.server.db,
            &["hermod", "attestation", "revoke", "revoked"],
            None,
        );
        trust(
            &f,
            "early",
            &early,
            &["--not-before", &(now + 3600).to_string()],
        );
        trust(&f, "pinned", &pinned, &["--jwk-kid", "vendor-2026"]);
        for (key, case) in [
            (&expired, "past not_after"),
            (&revoked, "revoked"),
            (&early, "before not_before"),
            (&pinned, "jwk kid not the pinned one"),
        ] {
            let mut a = good.clone();
            a.alg = Alg::ES256;
            a.header["alg"] = "ES256".into();
            a.header["jwk"] = att_jwk(key);
            c.refuse(&f, &a.sign(key), "attestation_key_untrusted", case);
        }
        let mut a = good.clone();
        a.alg = Alg::ES256;
        a.header["alg"] = "ES256".into();
        a.header["jwk"] = att_jwk(&pinned);
        a.header["jwk"].as_object_mut().unwrap().remove("kid");
        c.refuse(
            &f,
            &a.sign(&pinned),
            "attestation_key_untrusted",
            "no jwk kid where one is pinned",
        );
        // 6.3.9: the stored key verifies.
        c.refuse(
            &f,
            &good.sign(&device_rsa()),
            "attestation_signature_invalid",
            "the trusted key embedded, signed by another",
        );
        let (h, p, s) = segments(&valid);
        let mut swapped = good.clone();
        swapped.signedkeys = json!(dev.pops(&c));
        let (_, p_swapped, _) = segments(&swapped.sign(&att));
        assert_ne!(p, p_swapped);
        c.refuse(
            &f,
            &format!("{h}.{p_swapped}.{s}"),
            "attestation_signature_invalid",
            "the signed keys swapped under a valid envelope",
        );
        let mut flipped = b64url_decode(&s).unwrap();
        flipped[0] ^= 0x80;
        c.refuse(
            &f,
            &format!("{h}.{p}.{}", b64url(&flipped)),
            "attestation_signature_invalid",
            "one bit of the signature",
        );
        // 6.3.10: the nonce (the PoPs carry the right one).
        for nonce in [
            json!("987654321"),
            json!(c.nonce.to_uppercase() + " "),
            Value::Null,
        ] {
            let mut a = good.clone();
            if nonce.is_null() {
                a.header.as_object_mut().unwrap().remove("nonce");
            } else {
                a.header["nonce"] = nonce.clone();
            }
            c.refuse(
                &f,
                &a.sign(&att),
                "nonce_mismatch",
                &format!("nonce {nonce}"),
            );
        }

        // 6.4.11: the payload.
        let header_text = good.header.to_string();
        for (payload, case) in [
            ("not json".to_owned(), "payload not JSON"),
            ("[1]".to_owned(), "payload an array"),
            (
                json!({"deviceinfo": {}}).to_string(),
                "payload without profile",
            ),
            (json!({"profile": "x"}).to_string(), "profile not an object"),
            (
                good.payload().replacen('{', r#"{"profile":{},"#, 1),
                "duplicate member in the payload",
            ),
        ] {
            let data = compact(&att, Alg::RS256, &header_text, payload.as_bytes(), false);
            c.refuse(&f, &data, "malformed_jws", case);
        }
        let mut a = good.clone();
        a.deviceinfo = json!({"name": "x".repeat(4 * 1024)});
        c.refuse(&f, &a.sign(&att), "malformed_jws", "deviceinfo over 4 KiB");
        // 6.4.12: binding to the command, the field named.
        for field in ["userid", "name", "servername", "boxurl"] {
            for value in [json!("x"), Value::Null] {
                let mut a = good.clone();
                if value.is_null() {
                    a.profile.as_object_mut().unwrap().remove(field);
                } else {
                    a.profile[field] = value.clone();
                }
                let body = c.refuse(
                    &f,
                    &a.sign(&att),
                    "profile_mismatch",
                    &format!("profile.{field} = {value}"),
                );
                assert_eq!(body["field"], format!("profile.{field}"));
            }
        }
        // 6.4.13: the profile id.
        for id in [json!("not-a-uuid"), json!(12), Value::Null] {
            let mut a = good.clone();
            if id.is_null() {
                a.profile.as_object_mut().unwrap().remove("id");
            } else {
                a.profile["id"] = id.clone();
            }
            c.refuse(
                &f,
                &a.sign(&att),
                "profile_id_invalid",
                &format!("profile.id {id}"),
            );
        }
        // 6.4.14: one signed key per request.
        let pops = dev.pops(&c);
        for (keys, code, case) in [
            (json!([]), "missing_key", "no signed key"),
            (json!([pops[0]]), "missing_key", "one of two"),
            (
                json!([pops[0], pops[1], pops[1]]),
                "unexpected_key",
                "three for two",
            ),
            (json!("x"), "malformed_jws", "signedkeys not an array"),
            (json!([pops[0], 1]), "malformed_jws", "a non-string element"),
            (Value::Null, "malformed_jws", "signedkeys null"),
        ] {
            let mut a = good.clone();
            a.signedkeys = keys;
            c.refuse(&f, &a.sign(&att), code, case);
        }
        c.nothing_stored(&f, 0);

        // The tolerances, in the answer that completes the command: padded segments (the
        // seed's producer), one leading zero octet of n, typ and cty, deviceinfo inside the
        // profile, n#len as a number, use in lower case, no key_state. The keys of the
        // refused answers are free: none was stored.
        let mut a = good.clone();
        a.pad = true;
        a.header["typ"] = "JOSE".into();
        a.header["cty"] = "json".into();
        let n = b64url_decode(a.header["jwk"]["n"].as_str().unwrap()).unwrap();
        a.header["jwk"]["n"] = b64url(&[&[0u8][..], &n].concat()).into();
        a.profile["deviceinfo"] = a.deviceinfo.clone();
        a.deviceinfo = Value::Null;
        a.signedkeys = json!([
            dev.pop_with(&c, "signer", |_, j| {
                j["n#len"] = json!(2048);
                j["use"] = "sig".into();
            }),
            dev.pop_with(&c, "auth", |_, j| {
                j.as_object_mut().unwrap().remove("key_state");
            }),
        ]);
        let data = a.sign(&att);
        assert!(data.contains('='), "padded");
        let profile_id = c.accept(&f, &data, "tolerances");
        assert_eq!(profile_count(&f), 1);
        let listed: Value = serde_json::from_str(&cli(
            &f.server.db,
            &["--json", "hermod", "profile", "list"],
            None,
        ))
        .unwrap();
        assert_eq!(listed[0]["profile_id"], profile_id.as_str());
        assert_eq!(listed[0]["keys"].as_array().unwrap().len(), 2);

        // 6.4.13 and 6.5.20 against the store: a profile id and a key that are registered.
        let mut c2 = Cmd::open(
            &f,
            &serde_json::from_str(&ec_request("rules-store", &["signer"])).unwrap(),
        );
        let fresh = p256();
        let ec_pop = |c: &Cmd, key: &Signer| {
            pop(
                key,
                Alg::ES256,
                &json!({"alg": "ES256", "kid": "signer", "nonce": c.nonce}),
                &key_jwk(key, "ES256", "signer", "SIG", Some("ACTIVE")),
            )
        };
        let mut a = Answer::new(&c2, &att, vec![ec_pop(&c2, &fresh)]);
        a.profile["id"] = profile_id.to_uppercase().into();
        c2.refuse(
            &f,
            &a.sign(&att),
            "profile_exists",
            "a registered profile id",
        );
        let a = Answer::new(&c2, &att, vec![ec_pop(&c2, &dev.ec)]);
        c2.refuse(&f, &a.sign(&att), "key_reuse", "a registered device key");
        c2.nothing_stored(&f, 1);
        // An EC attestation key whose entry pins the embedded jwk's kid: accepted with it.
        let mut a = Answer::new(&c2, &pinned, vec![ec_pop(&c2, &fresh)]);
        a.header["jwk"]["kid"] = "vendor-2026".into();
        c2.accept(&f, &a.sign(&pinned), "pinned jwk kid");
        assert_eq!(profile_count(&f), 2);
        assert_eq!(f.callbacks().len(), 2, "refusals queue no callback");
    }
}

/// A DER TLV (short or two-octet lengths).
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// Section 6.5: proof of possession, for every signed key (steps 15-21).
#[test]
fn every_rule_of_the_signed_keys_has_its_code() {
    for backend in backends() {
        let f = start(backend, vec![], &[MANY_ATTEMPTS]);
        let att = attestation();
        let dev = Device::new();
        let mut c = Cmd::open(&f, &rules_request("rules-keys"));
        let good = Answer::new(&c, &att, dev.pops(&c));
        // The answer with the PoP of `keyid` replaced.
        let with = |c: &Cmd, keyid: &str, pop: String| {
            let mut a = good.clone();
            a.signedkeys[if keyid == "signer" { 0 } else { 1 }] = pop.into();
            a.header["nonce"] = c.nonce.clone().into();
            a.sign(&att)
        };
        let jwk_of = |keyid: &str| match keyid {
            "signer" => key_jwk(&dev.rsa, "RS256", "signer", "SIG", Some("ACTIVE")),
            _ => key_jwk(&dev.ec, "ES256", "auth", "AUTH", Some("INACTIVE")),
        };

        // 15: the PoP's own compact form, algorithm and header.
        for (keyid, bad) in [("auth", "none"), ("signer", "HS256"), ("signer", "RS1")] {
            let header = json!({"alg": bad, "kid": keyid, "nonce": c.nonce});
            let sig = if bad == "none" { "" } else { "c2lnbmF0dXJl" };
            let p = format!(
                "{}.{}.{sig}",
                b64url(header.to_string().as_bytes()),
                b64url(jwk_of(keyid).to_string().as_bytes())
            );
            c.refuse(
                &f,
                &with(&c, keyid, p),
                "alg_not_allowed",
                &format!("PoP alg {bad}"),
            );
        }
        let (ph, pp, ps) = segments(&dev.pop(&c, "auth"));
        for (p, case) in [
            (format!("{ph}.{pp}"), "PoP with two segments"),
            (format!("{ph}.{pp}."), "PoP with an empty signature"),
            (format!("{ph}..{ps}"), "PoP with an empty payload"),
            (
                format!("{ph}.{pp}.{ps}==="),
                "PoP with non-canonical padding",
            ),
        ] {
            c.refuse(&f, &with(&c, "auth", p), "malformed_jws", case);
        }
        for member in ["kid", "nonce"] {
            let p = dev.pop_with(&c, "signer", |h, _| {
                h.as_object_mut().unwrap().remove(member);
            });
            c.refuse(
                &f,
                &with(&c, "signer", p),
                "malformed_jws",
                &format!("PoP header without {member}"),
            );
        }
        for member in ["jwk", "jku", "x5u", "x5c", "crit"] {
            let p = dev.pop_with(&c, "auth", |h, j| {
                h[member] = match member {
                    "jwk" => j.clone(),
                    "x5c" => json!(["MIIB"]),
                    "crit" => json!(["exp"]),
                    _ => json!("https://attacker.example/keys"),
                };
            });
            c.refuse(
                &f,
                &with(&c, "auth", p),
                "malformed_jws",
                &format!("PoP header with {member}"),
            );
        }
        let p = compact(
            &dev.ec,
            Alg::ES256,
            &json!({"alg": "ES256", "kid": "auth", "nonce": c.nonce}).to_string(),
            b"not json",
            false,
        );
        c.refuse(
            &f,
            &with(&c, "auth", p),
            "malformed_jws",
            "PoP payload not JSON",
        );

        // 16: key ids.
        let p = dev.pop_with(&c, "auth", |h, j| {
            h["kid"] = "other".into();
            j["kid"] = "other".into();
        });
        c.refuse(
            &f,
            &with(&c, "auth", p),
            "keyid_mismatch",
            "a key id not requested",
        );
        let p = dev.pop_with(&c, "auth", |_, j| j["kid"] = "signer".into());
        c.refuse(
            &f,
            &with(&c, "auth", p),
            "keyid_mismatch",
            "payload kid differs",
        );
        let p = dev.pop_with(&c, "auth", |_, j| {
            j.as_object_mut().unwrap().remove("kid");
        });
        c.refuse(
            &f,
            &with(&c, "auth", p),
            "keyid_mismatch",
            "payload without kid",
        );
        let mut a = good.clone();
        a.signedkeys = json!([dev.pop(&c, "signer"), dev.pop(&c, "signer")]);
        c.refuse(&f, &a.sign(&att), "keyid_mismatch", "one key id twice");

        // 17: every PoP's nonce (the envelope's is right).
        for keyid in ["signer", "auth"] {
            let p = dev.pop_with(&c, keyid, |h, _| h["nonce"] = "987654321".into());
            c.refuse(
                &f,
                &with(&c, keyid, p),
                "nonce_mismatch",
                &format!("{keyid} PoP nonce"),
            );
        }

        // 18: type and size (before any signature), n#len, alg, use, key_state, private
        // members.
        let rsa_as_auth = pop(
            &dev.rsa,
            Alg::RS256,
            &json!({"alg": "RS256", "kid": "auth", "nonce": c.nonce}),
            &key_jwk(&dev.rsa, "RS256", "auth", "AUTH", Some("INACTIVE")),
        );
        c.refuse(
            &f,
            &with(&c, "auth", rsa_as_auth),
            "key_size_mismatch",
            "an RSA key where EC was requested",
        );
        let ec_as_signer = pop(
            &dev.ec,
            Alg::ES256,
            &json!({"alg": "ES256", "kid": "signer", "nonce": c.nonce}),
            &key_jwk(&dev.ec, "ES256", "signer", "SIG", Some("ACTIVE")),
        );
        c.refuse(
            &f,
            &with(&c, "signer", ec_as_signer),
            "key_size_mismatch",
            "an EC key where RSA was requested",
        );
        for (edit, case) in [
            (
                Box::new(|j: &mut Value| {
                    cut_n(j, 128);
                    j["n#len"] = "1024".into();
                }) as Box<dyn Fn(&mut Value)>,
                "a 1024-bit key",
            ),
            (
                Box::new(|j: &mut Value| {
                    cut_n(j, 128);
                    j.as_object_mut().unwrap().remove("n#len");
                }),
                "a 1024-bit key without n#len",
            ),
            (
                Box::new(|j: &mut Value| j["n#len"] = "4096".into()),
                "n#len 4096 on a 2048-bit key",
            ),
            (
                Box::new(|j: &mut Value| j["n#len"] = json!(2047)),
                "n#len 2047 as a number",
            ),
            (
                Box::new(|j: &mut Value| j["n#len"] = "two thousand".into()),
                "n#len not a number",
            ),
            (Box::new(|j: &mut Value| j["e"] = "Aw".into()), "exponent 3"),
        ] {
            let p = dev.pop_with(&c, "signer", |_, j| edit(j));
            c.refuse(&f, &with(&c, "signer", p), "key_size_mismatch", case);
        }
        for (edit, case) in [
            (
                Box::new(|j: &mut Value| j["crv"] = "P-384".into()) as Box<dyn Fn(&mut Value)>,
                "curve P-384",
            ),
            (
                Box::new(|j: &mut Value| {
                    let x = b64url_decode(j["x"].as_str().unwrap()).unwrap();
                    j["x"] = b64url(&x[1..]).into();
                }),
                "x of 31 octets",
            ),
        ] {
            let p = dev.pop_with(&c, "auth", |_, j| edit(j));
            c.refuse(&f, &with(&c, "auth", p), "key_size_mismatch", case);
        }
        let p = dev.pop_with(&c, "signer", |_, j| j["alg"] = "PS256".into());
        c.refuse(
            &f,
            &with(&c, "signer", p),
            "alg_mismatch",
            "payload alg differs",
        );
        let p = dev.pop_with(&c, "signer", |_, j| {
            j.as_object_mut().unwrap().remove("alg");
        });
        c.refuse(
            &f,
            &with(&c, "signer", p),
            "alg_mismatch",
            "payload without alg",
        );
        let ps = pop(
            &dev.rsa,
            Alg::PS256,
            &json!({"alg": "PS256", "kid": "signer", "nonce": c.nonce}),
            &key_jwk(&dev.rsa, "PS256", "signer", "SIG", Some("ACTIVE")),
        );
        c.refuse(
            &f,
            &with(&c, "signer", ps),
            "alg_mismatch",
            "PS256 where RS256 was requested",
        );
        for (keyid, usage) in [
            ("signer", json!("ENC")),
            ("auth", json!("SIG")),
            ("auth", Value::Null),
        ] {
            let p = dev.pop_with(&c, keyid, |_, j| {
                if usage.is_null() {
                    j.as_object_mut().unwrap().remove("use");
                } else {
                    j["use"] = usage.clone();
                }
            });
            c.refuse(
                &f,
                &with(&c, keyid, p),
                "usage_mismatch",
                &format!("{keyid} use {usage}"),
            );
        }
        for (keyid, state) in [
            ("auth", "ACTIVE"),
            ("signer", "active"),
            ("signer", "INACTIVE"),
        ] {
            let p = dev.pop_with(&c, keyid, |_, j| j["key_state"] = state.into());
            c.refuse(
                &f,
                &with(&c, keyid, p),
                "keystate_mismatch",
                &format!("{keyid} key_state {state}"),
            );
        }
        for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            let keyid = if member == "d" { "auth" } else { "signer" };
            let p = dev.pop_with(&c, keyid, |_, j| j[member] = "AQAB".into());
            c.refuse(
                &f,
                &with(&c, keyid, p),
                "private_key_material",
                &format!("{keyid} PoP payload with {member}"),
            );
        }

        // 19: the PoP signature, with the key in its own payload.
        let by_att = pop(
            &att,
            Alg::RS256,
            &json!({"alg": "RS256", "kid": "signer", "nonce": c.nonce}),
            &jwk_of("signer"),
        );
        c.refuse(
            &f,
            &with(&c, "signer", by_att),
            "pop_signature_invalid",
            "signer's JWK signed by another RSA key",
        );
        let other = p256();
        let by_other = pop(
            &other,
            Alg::ES256,
            &json!({"alg": "ES256", "kid": "auth", "nonce": c.nonce}),
            &jwk_of("auth"),
        );
        c.refuse(
            &f,
            &with(&c, "auth", by_other),
            "pop_signature_invalid",
            "auth's JWK signed by another EC key",
        );
        let (ph, pp, ps) = segments(&dev.pop(&c, "auth"));
        let mut sig = b64url_decode(&ps).unwrap();
        sig[40] ^= 1;
        c.refuse(
            &f,
            &with(&c, "auth", format!("{ph}.{pp}.{}", b64url(&sig))),
            "pop_signature_invalid",
            "one bit of auth's PoP signature",
        );

        // 20: the attestation key as a device key.
        let att_as_signer = pop(
            &att,
            Alg::RS256,
            &json!({"alg": "RS256", "kid": "signer", "nonce": c.nonce}),
            &key_jwk(&att, "RS256", "signer", "SIG", Some("ACTIVE")),
        );
        c.refuse(
            &f,
            &with(&c, "signer", att_as_signer),
            "key_reuse",
            "the attestation key as a device key",
        );
        c.nothing_stored(&f, 0);
        c.accept(&f, &good.sign(&att), "the same keys, valid");

        // 20: one key for two requested keys.
        let mut c2 = Cmd::open(
            &f,
            &serde_json::from_str(&ec_request("rules-twice", &["signer", "auth"])).unwrap(),
        );
        let twice = p256();
        let ec_pop = |c: &Cmd, key: &Signer, keyid: &str| {
            pop(
                key,
                Alg::ES256,
                &json!({"alg": "ES256", "kid": keyid, "nonce": c.nonce}),
                &key_jwk(key, "ES256", keyid, "SIG", Some("ACTIVE")),
            )
        };
        let a = Answer::new(
            &c2,
            &att,
            vec![ec_pop(&c2, &twice, "signer"), ec_pop(&c2, &twice, "auth")],
        );
        c2.refuse(&f, &a.sign(&att), "key_reuse", "one key for two key ids");
        c2.nothing_stored(&f, 1);

        // 18: an RSA key of another size than requested (a real 3072-bit key, valid PoP),
        // and a request that lists RS256 and PS256 for one size: PS256 satisfies its second
        // entry.
        let rsa3072 =
            Signer::rsa_pkcs8(&pem_der(&read("keys/device_rsa3072.pem")).unwrap()).unwrap();
        assert_eq!(rsa3072.public().bits(), 3072);
        let rsa_request = |nonce: &str, priors: Value| {
            let mut r = rules_request(nonce);
            r["provCommand"]["profile"]["keygenrequests"] = json!([{
                "keyid": "signer", "usage": "SIG", "keytypepriors": priors}]);
            r
        };
        let rsa_pop = |c: &Cmd, alg: Alg| {
            pop(
                &rsa3072,
                alg,
                &json!({"alg": alg.as_str(), "kid": "signer", "nonce": c.nonce}),
                &key_jwk(&rsa3072, alg.as_str(), "signer", "SIG", None),
            )
        };
        let prior = |bits: u32, alg: &str| json!({"keytype": "RSA", "keylength": bits.to_string(), "responsemechanism": alg});
        let mut c3 = Cmd::open(
            &f,
            &rsa_request(
                "rules-size",
                json!([prior(2048, "RS256"), prior(4096, "RS256")]),
            ),
        );
        let a = Answer::new(&c3, &att, vec![rsa_pop(&c3, Alg::RS256)]);
        c3.refuse(
            &f,
            &a.sign(&att),
            "key_size_mismatch",
            "3072 bits where 2048 or 4096 were requested",
        );
        c3.nothing_stored(&f, 1);
        let c4 = Cmd::open(
            &f,
            &rsa_request(
                "rules-second",
                json!([prior(3072, "RS256"), prior(3072, "PS256")]),
            ),
        );
        let a = Answer::new(&c4, &att, vec![rsa_pop(&c4, Alg::PS256)]);
        c4.accept(
            &f,
            &a.sign(&att),
            "PS256 for the second entry of the same size",
        );

        // 21: the CSR of a key whose request carried a dummy.
        let dummy_key = p256();
        let dummy = provd::hermod::csr::dummy("john.doe", &dummy_key).unwrap();
        let b64 = |d: &[u8]| <base64ct::Base64 as base64ct::Encoding>::encode_string(d);
        let mut r = rules_request("rules-csr");
        r["provCommand"]["profile"]["keygenrequests"] = json!([{
            "keyid": "signer", "usage": "SIG", "certreq": b64(&dummy),
            "keytypepriors": [{"keytype": "EC", "keylength": "256", "responsemechanism": "ES256"}]}]);
        let mut c5 = Cmd::open(&f, &r);
        let device = p256();
        let parsed = provd::hermod::csr::Csr::parse(&dummy).unwrap();
        let csr = provd::hermod::csr::build(parsed.subject, parsed.attributes, &device).unwrap();
        let csr_pop = |c: &Cmd, certreq: Option<String>| {
            let mut j = key_jwk(&device, "ES256", "signer", "SIG", Some("ACTIVE"));
            if let Some(cr) = certreq {
                j["certreq"] = cr.into();
            }
            pop(
                &device,
                Alg::ES256,
                &json!({"alg": "ES256", "kid": "signer", "nonce": c.nonce}),
                &j,
            )
        };
        // Variants of the good CSR: SHA-1 (ecdsa-with-SHA1) in place of ecdsa-with-SHA256,
        // and one bit of its signature changed.
        let good_csr = provd::hermod::csr::Csr::parse(&csr).unwrap();
        let sig_bits = der(0x03, &[&[0u8][..], good_csr.signature].concat());
        let sha1 = der(
            0x30,
            &[
                good_csr.info,
                &der(
                    0x30,
                    &der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]),
                ),
                &sig_bits,
            ]
            .concat(),
        );
        let mut flipped = csr.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let other_subject = provd::hermod::csr::dummy("mallory", &device).unwrap();
        for (certreq, case) in [
            (None, "no certreq in the key"),
            (Some("not base64!".to_owned()), "certreq not base64"),
            (Some(b64(&[0x30, 0x03, 1, 2, 3])), "certreq not a PKCS#10"),
            (Some(b64(&dummy)), "the dummy itself (another key)"),
            (Some(b64(&other_subject)), "another subject"),
            (Some(b64(&sha1)), "signed with SHA-1"),
            (Some(b64(&flipped)), "a self-signature that does not verify"),
        ] {
            let a = Answer::new(&c5, &att, vec![csr_pop(&c5, certreq)]);
            c5.refuse(&f, &a.sign(&att), "certreq_invalid", case);
        }
        c5.nothing_stored(&f, 2);
        let a = Answer::new(&c5, &att, vec![csr_pop(&c5, Some(b64(&csr)))]);
        c5.accept(&f, &a.sign(&att), "a good CSR");
        assert_eq!(profile_count(&f), 3);
    }
}

/// Section 6.1: `hermod.attestation_algs` is an allow-list of its own, beside the algorithms
/// pinned on each trust-store entry.
#[test]
fn the_attestation_algs_setting_is_an_allow_list() {
    for backend in backends() {
        let f = start(
            backend,
            vec![],
            &[("PROVD_HERMOD__ATTESTATION_ALGS", r#"["PS256","ES256"]"#)],
        );
        let att = attestation();
        let mut c = Cmd::open(
            &f,
            &serde_json::from_str(&ec_request("rules-algs", &["signer"])).unwrap(),
        );
        let key = p256();
        let p = pop(
            &key,
            Alg::ES256,
            &json!({"alg": "ES256", "kid": "signer", "nonce": c.nonce}),
            &key_jwk(&key, "ES256", "signer", "SIG", Some("ACTIVE")),
        );
        // The entry allows RS256; the setting does not.
        let a = Answer::new(&c, &att, vec![p]);
        c.refuse(
            &f,
            &a.sign(&att),
            "alg_not_allowed",
            "RS256 not in attestation_algs",
        );
        c.nothing_stored(&f, 0);
    }
}
