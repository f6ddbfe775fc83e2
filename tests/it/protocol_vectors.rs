//! The worked test vectors of `docs/protocols.md`, read from the document itself and checked
//! against the real code, so the document cannot drift from what provd does. Each fenced block
//! opened with ```` ```vector <name> ```` holds `key = value` lines: inputs, then outputs; every
//! output the code computes must be in the block with the same value.

use std::collections::BTreeMap;

use p256::NonZeroScalar;
use provd::crypto::MasterKey;
use provd::protocol::srp::record::RecordKeys;
use provd::protocol::{cpace, dsapp, mdl, otp, srp, standard};
use provd::types::SerialNumber;

type Block = BTreeMap<String, String>;

fn document() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocols.md");
    std::fs::read_to_string(path).expect("docs/protocols.md exists")
}

/// Every ```` ```vector <name> ```` block of the document.
fn blocks(doc: &str) -> BTreeMap<String, Block> {
    let mut out = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.trim().strip_prefix("```vector ") else {
            continue;
        };
        let mut block = Block::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            if let Some((k, v)) = l.split_once(" = ") {
                assert!(
                    block
                        .insert(k.trim().to_owned(), v.trim().to_owned())
                        .is_none(),
                    "vector {name}: {k} twice"
                );
            }
        }
        assert!(
            out.insert(name.trim().to_owned(), block).is_none(),
            "vector {name} twice"
        );
    }
    out
}

fn get<'a>(b: &'a Block, name: &str, key: &str) -> &'a str {
    b.get(key)
        .unwrap_or_else(|| panic!("vector {name}: no input {key}"))
}

fn unhex(b: &Block, name: &str, key: &str) -> Vec<u8> {
    hex::decode(get(b, name, key)).unwrap_or_else(|e| panic!("vector {name}: {key}: {e}"))
}

fn arr<const N: usize>(b: &Block, name: &str, key: &str) -> [u8; N] {
    unhex(b, name, key)
        .try_into()
        .unwrap_or_else(|_| panic!("vector {name}: {key} is not {N} bytes"))
}

fn up(bytes: impl AsRef<[u8]>) -> String {
    hex::encode_upper(bytes)
}

/// Compares what the code computed with the block; on any difference, fails listing every
/// computed line (what the document should say).
fn compare(name: &str, b: &Block, computed: &[(&str, String)]) {
    let wrong: Vec<String> = computed
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, _)| (*k).to_owned())
        .collect();
    if !wrong.is_empty() {
        let lines: Vec<String> = computed.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        panic!(
            "vector {name}: {wrong:?} differ from the code; it computes:\n{}",
            lines.join("\n")
        );
    }
}

fn dsapp_srp(name: &str, b: &Block) {
    let srp = srp::srp();
    let g = &srp.group;
    let (i, p) = (get(b, name, "I"), get(b, name, "P"));
    let s = unhex(b, name, "s");
    let a = g.parse(&unhex(b, name, "a")).unwrap();
    let bb = g.parse(&unhex(b, name, "b")).unwrap();
    let x = srp.x(&s, i.as_bytes(), p.as_bytes());
    let v = srp.verifier(&x);
    let a_pub = srp.client_public(&a);
    let b_pub = srp.server_public(&v, &bb);
    let u = srp.u(&a_pub, &b_pub).unwrap();
    let premaster = srp.server_premaster(&a_pub, &v, &u, &bb).unwrap();
    let client = srp.client_premaster(&b_pub, &x, &a, &u).unwrap();
    assert_eq!(*premaster, *client, "vector {name}: both sides agree");
    let session = srp.session(&premaster, i.as_bytes(), &s, &a_pub, &b_pub);
    let keys = RecordKeys::derive(&s, &session.key);
    let iv = arr::<16>(b, name, "IV");
    let pt = get(b, name, "plaintext");
    let sealed = keys.seal(i.as_bytes(), iv, pt.as_bytes());
    let opened = keys.open(i.as_bytes(), &sealed).unwrap();
    assert_eq!(opened.as_slice(), pt.as_bytes());
    compare(
        name,
        b,
        &[
            ("v", up(g.pad(&v))),
            ("A", up(g.pad(&a_pub))),
            ("B", up(g.pad(&b_pub))),
            ("u", up(&g.pad(&u)[224..])),
            ("K", up(&*session.key)),
            ("M1", up(&session.m1)),
            ("M2", up(&session.m2)),
            ("C", up(&sealed.ciphertext)),
            ("MAC", up(sealed.mac)),
        ],
    );
}

fn scalar(b: &Block, name: &str, key: &str) -> NonZeroScalar {
    NonZeroScalar::try_from(unhex(b, name, key).as_slice())
        .unwrap_or_else(|_| panic!("vector {name}: {key} is not a scalar"))
}

fn dsapp_v3(name: &str, b: &Block) {
    let id = get(b, name, "REGISTRATIONID");
    let prs = get(b, name, "PRS");
    let sid = arr::<16>(b, name, "sid");
    let cn = arr::<4>(b, name, "cn");
    let adb = arr::<16>(b, name, "ADb");
    let serial = SerialNumber::parse(get(b, name, "serial")).unwrap();
    let otp_key = unhex(b, name, "otp_key");
    let counter: i32 = get(b, name, "counter").parse().unwrap();
    let g = cpace::calculate_generator(prs.as_bytes(), &dsapp::channel_identifier(id), &sid);
    let hello = dsapp::client_hello_with(id, prs, sid, scalar(b, name, "ya"), cn);
    let key_nonce = hello.key_nonce;
    let server =
        dsapp::server_key_exchange_with(id, prs, &key_nonce, &sid, scalar(b, name, "yb"), adb)
            .unwrap();
    let client = hello
        .finish(&server.server_public_key, &server.adb, &server.server_tag)
        .unwrap();
    let s = &server.session;
    assert_eq!(client.to_bytes().as_slice(), s.to_bytes().as_slice());
    let code_pt = dsapp::activation_code_plaintext(&serial, &otp_key, counter);
    let counter_pt = counter.to_string();
    use dsapp::{Field, Purpose, Version};
    let v1_code = s.seal_field_with_iv(Field::ActivationCode, None, &code_pt);
    let v1_counter =
        s.seal_field_with_iv(Field::EventReactivationCounter, None, counter_pt.as_bytes());
    let iv_code = arr::<16>(b, name, "v2 PROVFLD_ACTIVATION_CODE_IV");
    let iv_counter = arr::<16>(b, name, "v2 PROVFLD_EVENT_REACTIVATION_COUNTER_IV");
    let v2_code = s.seal_field_with_iv(Field::ActivationCode, Some(iv_code), &code_pt);
    let v2_counter = s.seal_field_with_iv(
        Field::EventReactivationCounter,
        Some(iv_counter),
        counter_pt.as_bytes(),
    );
    // The client side opens all four.
    for (v, f, sealed) in [
        (Version::V1, Field::ActivationCode, &v1_code),
        (Version::V1, Field::EventReactivationCounter, &v1_counter),
        (Version::V2, Field::ActivationCode, &v2_code),
        (Version::V2, Field::EventReactivationCounter, &v2_counter),
    ] {
        client
            .open_field(v, f, &sealed.value, sealed.iv.as_ref())
            .unwrap();
    }
    assert!(s.verify_client_tag(&client.client_tag()));
    let otp_at: i64 = get(b, name, "otp_time").parse().unwrap();
    compare(
        name,
        b,
        &[
            ("CI", up(dsapp::channel_identifier(id))),
            ("G", up(cpace::encode(&g))),
            ("PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE", up(key_nonce)),
            (
                "PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY",
                up(server.server_public_key),
            ),
            ("ISK", up(s.isk())),
            ("K_confirm server", up(*s.key(Purpose::ConfirmServer))),
            ("K_confirm client", up(*s.key(Purpose::ConfirmClient))),
            ("K_derivation", up(*s.key(Purpose::Derivation))),
            (
                "K_enc activation code",
                up(*s.key(Purpose::Enc(Field::ActivationCode))),
            ),
            (
                "K_mac activation code",
                up(*s.key(Purpose::Mac(Field::ActivationCode))),
            ),
            (
                "K_enc event reactivation counter",
                up(*s.key(Purpose::Enc(Field::EventReactivationCounter))),
            ),
            (
                "K_mac event reactivation counter",
                up(*s.key(Purpose::Mac(Field::EventReactivationCounter))),
            ),
            ("PROVFLD_ENCRYPTED_NONCES", up(server.server_tag)),
            (
                "activation code plaintext",
                String::from_utf8(code_pt.to_vec()).unwrap(),
            ),
            ("v1 PROVFLD_ACTIVATION_CODE", up(&v1_code.value)),
            (
                "v1 PROVFLD_EVENT_REACTIVATION_COUNTER",
                up(&v1_counter.value),
            ),
            ("v2 PROVFLD_ACTIVATION_CODE", up(&v2_code.value)),
            (
                "v2 PROVFLD_EVENT_REACTIVATION_COUNTER",
                up(&v2_counter.value),
            ),
            ("PROVFLD_ENCRYPTED_SERVER_NONCE", up(client.client_tag())),
            (
                "PROVFLD_DERIVATION_CODE",
                client.derivation_code(&serial).to_string(),
            ),
            (
                "PROVFLD_DP_RESPONSE",
                otp::totp(&otp_key, otp_at, otp::DIGITS),
            ),
        ],
    );
}

/// REGISTER's activation code and MDL's Activation Message 1: Argon2id, then the record
/// protection of DSAPP-SRP under identity `<command>:<serial>`.
fn password_protected(name: &str, b: &Block, command: &str) {
    let password = get(b, name, "password");
    let alea = b.get("alea").map(String::as_str);
    let serial = SerialNumber::parse(get(b, name, "serial")).unwrap();
    let salt = unhex(b, name, "salt");
    let iv = arr::<16>(b, name, "IV");
    let pt = get(b, name, "plaintext");
    let mut material = password.as_bytes().to_vec();
    material.extend_from_slice(alea.unwrap_or("").as_bytes());
    let k = provd::crypto::derive_key(&material, &salt).unwrap();
    let identity = format!("{command}:{serial}");
    let sealed = RecordKeys::derive(&salt, k.as_ref()).seal(identity.as_bytes(), iv, pt.as_bytes());
    let mut blob = salt.clone();
    blob.extend_from_slice(&iv);
    blob.extend_from_slice(&sealed.ciphertext);
    blob.extend_from_slice(&sealed.mac);
    // The real client's path opens it.
    let opened = standard::unprotect(password, alea, command, &serial, &blob).unwrap();
    assert_eq!(opened.as_slice(), pt.as_bytes(), "vector {name}");
    if command == provd::protocol::mdl::MDL_REGISTER {
        let am1 = mdl::ActivationMessage1::decode(&opened).unwrap();
        assert_eq!(am1.serial, serial, "vector {name}");
    }
    compare(
        name,
        b,
        &[
            ("k", up(k.as_ref())),
            ("identity", identity.clone()),
            ("wire", up(&blob)),
        ],
    );
}

fn mdl_device(name: &str, b: &Block) {
    let license = unhex(b, name, "license");
    let serial = SerialNumber::parse(get(b, name, "serial")).unwrap();
    let challenge = arr::<8>(b, name, "challenge");
    let device_type = mdl::DeviceType::parse(get(b, name, "type")).unwrap();
    let device_id: u32 = get(b, name, "id").parse().unwrap();
    let code = mdl::DeviceCode::compute(&license, &serial, &challenge, device_type, device_id);
    assert!(code.verify(&license, &serial, &challenge));
    let rendered = code.render();
    assert_eq!(mdl::DeviceCode::parse(&rendered).unwrap(), code);
    compare(
        name,
        b,
        &[
            ("tag", format!("{:010X}", code.tag)),
            ("PROVFLD_DEVICE_CODE", rendered),
        ],
    );
}

fn mdl_am2(name: &str, b: &Block) {
    let license = unhex(b, name, "license");
    let serial = SerialNumber::parse(get(b, name, "serial")).unwrap();
    let challenge = arr::<8>(b, name, "challenge");
    let device_id: u32 = get(b, name, "id").parse().unwrap();
    let wire = unhex(b, name, "wire");
    let am2 = mdl::open_am2(&license, &challenge, device_id, &serial, &wire)
        .unwrap_or_else(|e| panic!("vector {name}: {e}"));
    let otp_at: i64 = get(b, name, "otp_time").parse().unwrap();
    // Any altered byte is refused.
    for i in [0, 16, wire.len() - 1] {
        let mut bad = wire.clone();
        bad[i] ^= 1;
        assert!(mdl::open_am2(&license, &challenge, device_id, &serial, &bad).is_err());
    }
    compare(
        name,
        b,
        &[
            ("seq", format!("{:02}", am2.sequence)),
            ("nonce", up(am2.nonce)),
            ("instance key", up(&*am2.instance_key)),
            (
                "PROVFLD_SIGNATURE",
                mdl::signature(&am2.instance_key, &am2.nonce, &serial, am2.sequence),
            ),
            (
                "PROVFLD_DP_RESPONSE",
                mdl::instance_otp(&am2.instance_key, otp_at),
            ),
        ],
    );
}

fn at_rest(name: &str, b: &Block) {
    let key = MasterKey::from_hex(get(b, name, "master key")).unwrap();
    let context = get(b, name, "context");
    let sealed = unhex(b, name, "sealed");
    let opened = key.open(context, &sealed).unwrap();
    assert!(key.open("another-context", &sealed).is_err());
    compare(name, b, &[("plaintext", up(&*opened))]);
}

fn totp(name: &str, b: &Block) {
    let key = unhex(b, name, "key");
    let at: i64 = get(b, name, "time").parse().unwrap();
    let digits: u32 = get(b, name, "digits").parse().unwrap();
    compare(
        name,
        b,
        &[
            ("T", format!("{}", at / otp::STEP_SECS)),
            ("OTP", otp::totp(&key, at, digits)),
        ],
    );
}

#[test]
fn every_vector_of_the_protocol_document_matches_the_code() {
    let doc = document();
    let all = blocks(&doc);
    let want = [
        "dsapp-srp",
        "dsapp-v3",
        "register-activation-code",
        "mdl-am1",
        "mdl-device-code",
        "mdl-am2",
        "otp",
        "at-rest",
    ];
    for name in want {
        let b = all
            .get(name)
            .unwrap_or_else(|| panic!("docs/protocols.md has no ```vector {name} block"));
        match name {
            "dsapp-srp" => dsapp_srp(name, b),
            "dsapp-v3" => dsapp_v3(name, b),
            "register-activation-code" => password_protected(name, b, standard::REGISTER),
            "mdl-am1" => password_protected(name, b, provd::protocol::mdl::MDL_REGISTER),
            "mdl-device-code" => mdl_device(name, b),
            "mdl-am2" => mdl_am2(name, b),
            "otp" => totp(name, b),
            "at-rest" => at_rest(name, b),
            _ => unreachable!(),
        }
    }
    let unknown: Vec<&String> = all.keys().filter(|k| !want.contains(&k.as_str())).collect();
    assert!(unknown.is_empty(), "unchecked vectors {unknown:?}");
}

#[test]
fn the_dsapp_v3_vector_starts_from_the_cpace_draft_suite() {
    // The document's CPace is the draft's: its B.5 generator from the draft's inputs.
    let g = cpace::calculate_generator(
        b"Password",
        &hex::decode("6f630b425f726573706f6e6465720b415f696e69746961746f72").unwrap(),
        &hex::decode("34b36454cab2e7842c389f7d88ecb7df").unwrap(),
    );
    assert_eq!(
        hex::encode(cpace::encode(&g)),
        "04eee577320b1c241a79419fcde5718c2b63f81ef8717d56a57d2fb26b65a8beb63573b52605efb32ff4cf31aaef9a92df84e4e8408cc6c7cf27a535aad2b38a56"
    );
    let doc = document();
    assert!(doc.contains("CPACE-P256_XMD:SHA-256_SSWU_NU_-SHA256"));
}
