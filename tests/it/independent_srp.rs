//! provd's SRP-6a against an independent implementation (the RustCrypto `srp` crate, over
//! num-bigint): the same verifier, premaster secret and session key from the same inputs.

use provd::protocol::srp::math::{group_2048, Srp};
use sha2::{Digest, Sha256};

fn independent_group() -> srp::types::SrpGroup {
    srp::types::SrpGroup {
        n: num_bigint::BigUint::from_bytes_be(&group_2048().pad(&group_2048().n)),
        g: num_bigint::BigUint::from(2u32),
    }
}

fn check(identity: &[u8], password: &[u8], salt: &[u8], a: &[u8; 32], b: &[u8; 32]) -> bool {
    let ours = Srp::<Sha256>::new(group_2048());
    let g = &ours.group;
    let group = independent_group();
    let theirs = srp::client::SrpClient::<Sha256>::new(&group);

    let x = ours.x(salt, identity, password);
    let v = ours.verifier(&x);
    assert_eq!(
        g.pad(&v),
        {
            let t = theirs.compute_verifier(identity, password, salt);
            let mut p = vec![0u8; 256 - t.len()];
            p.extend(t);
            p
        },
        "verifier"
    );
    let a_int = g.parse(a).unwrap();
    let b_int = g.parse(b).unwrap();
    let a_pub = ours.client_public(&a_int);
    let b_pub = ours.server_public(&v, &b_int);
    // The crate hashes A and B without padding; compare only where padding changes nothing.
    let (ap, bp) = (g.pad(&a_pub), g.pad(&b_pub));
    if ap[0] == 0 || bp[0] == 0 {
        return false;
    }
    let u = ours.u(&a_pub, &b_pub).unwrap();
    let server_s = ours.server_premaster(&a_pub, &v, &u, &b_int).unwrap();
    let reply = theirs
        .process_reply(a, identity, password, salt, &bp)
        .unwrap();
    let their_s = reply.key();
    let mut padded = vec![0u8; 256 - their_s.len()];
    padded.extend_from_slice(their_s);
    assert_eq!(g.pad(&server_s), padded, "premaster secret S");
    let ours_k = ours.session(&server_s, identity, salt, &a_pub, &b_pub).key;
    assert_eq!(
        ours_k.as_slice(),
        Sha256::digest(&padded).as_slice(),
        "K = H(PAD(S))"
    );
    true
}

#[test]
fn the_spec_vector_inputs_agree() {
    let a: [u8; 32] =
        hex::decode("60975527035CF2AD1989806F0407210BC81EDC04E2762A56AFD529DDDA2D4393")
            .unwrap()
            .try_into()
            .unwrap();
    let b: [u8; 32] =
        hex::decode("E487CB59D31AC550471E81F00F6928E01DDA08E974A004F49E61F5D105284D20")
            .unwrap()
            .try_into()
            .unwrap();
    let s = hex::decode("BEB25379D1A8581EB5A727673A2441EE").unwrap();
    assert!(check(b"e3wfISG9", b"Tb048aX1", &s, &a, &b));
}

#[test]
fn random_inputs_agree() {
    use rand::RngCore;
    let mut compared = 0;
    let mut rng = rand::rngs::OsRng;
    for _ in 0..20 {
        let (mut a, mut b, mut s) = ([0u8; 32], [0u8; 32], [0u8; 16]);
        rng.fill_bytes(&mut a);
        rng.fill_bytes(&mut b);
        rng.fill_bytes(&mut s);
        let id = provd::protocol::srp::new_registration_id();
        let pw = provd::protocol::srp::new_activation_password();
        if check(id.as_str().as_bytes(), pw.as_bytes(), &s, &a, &b) {
            compared += 1;
        }
    }
    assert!(compared >= 15, "only {compared} of 20 comparable");
}
