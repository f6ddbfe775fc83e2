//! Server-side SRP cost, one step at a time, over the protocol's group (RFC 5054 2048-bit,
//! SHA-256): B = k*v + g^b, S = (A*v^u)^b, the whole ephemeral-key computation without the
//! store, and a single 2048-bit modular exponentiation (A = g^a) for scale.
//!
//! Run: `cargo bench --bench srp` (add `-- --quick` or a filter such as `-- modexp` to
//! narrow it). Each benchmark takes 20 samples over about 5 s, so the run stays under
//! two minutes.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::U2048;
use provd::crypto::random_bytes;
use provd::protocol::srp;

/// What the server holds when `dsappSRPGenerateEphemeralKey` arrives: the registration's
/// identity, salt and verifier, and the client's A (as bytes, as it comes off the wire).
struct Inputs {
    identity: String,
    salt: Vec<u8>,
    verifier: Vec<u8>,
    a_pub: Vec<u8>,
}

fn inputs() -> Inputs {
    let s = srp::srp();
    let identity = srp::new_registration_id().as_str().to_owned();
    let password = srp::new_activation_password();
    let salt = random_bytes(srp::SALT_BYTES).to_vec();
    let verifier = srp::verifier(&salt, &identity, &password);
    let a = s.group.parse(&random_bytes(32)).unwrap();
    let a_pub = s.group.pad(&s.client_public(&a));
    Inputs {
        identity,
        salt,
        verifier,
        a_pub,
    }
}

/// A fresh 256-bit secret exponent, as the server and the client draw it.
fn exponent() -> U2048 {
    srp::srp().group.parse(&random_bytes(32)).unwrap()
}

fn bench(c: &mut Criterion) {
    let s = srp::srp();
    let inp = inputs();
    let v = s.group.parse(&inp.verifier).unwrap();
    let a_pub = s.group.parse(&inp.a_pub).unwrap();

    let mut g = c.benchmark_group("srp_server");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));

    // (a) B = k*v + g^b mod N.
    g.bench_function("server_public", |bch| {
        bch.iter_batched(
            exponent,
            |b| black_box(s.server_public(black_box(&v), &b)),
            BatchSize::SmallInput,
        )
    });

    // (b) S = (A * v^u)^b mod N, with u = H(PAD(A) | PAD(B)) of a real exchange.
    let b = exponent();
    let b_pub = s.server_public(&v, &b);
    let u = s.u(&a_pub, &b_pub).unwrap();
    g.bench_function("server_premaster", |bch| {
        bch.iter(|| {
            black_box(
                s.server_premaster(black_box(&a_pub), black_box(&v), &u, &b)
                    .unwrap(),
            )
        })
    });

    // (c) Everything `Provisioning::srp_ephemeral_key` computes, without the store: parse and
    // check A, parse v, draw b, B, u, S, the session (K, M1, M2) and the state to seal.
    g.bench_function("ephemeral_key_step", |bch| {
        bch.iter(|| {
            let s = srp::srp();
            let a_pub = s.group.parse(black_box(&inp.a_pub)).unwrap();
            s.check_public(&a_pub).unwrap();
            let v = s.group.parse(black_box(&inp.verifier)).unwrap();
            let b = zeroize::Zeroizing::new(s.group.parse(&random_bytes(32)).unwrap());
            let b_pub = s.server_public(&v, &b);
            let u = s.u(&a_pub, &b_pub).unwrap();
            let premaster = s.server_premaster(&a_pub, &v, &u, &b).unwrap();
            let session = s.session(
                &premaster,
                inp.identity.as_bytes(),
                &inp.salt,
                &a_pub,
                &b_pub,
            );
            let mut state = zeroize::Zeroizing::new(Vec::with_capacity(96));
            state.extend_from_slice(&session.key);
            state.extend_from_slice(&session.m1);
            state.extend_from_slice(&session.m2);
            black_box((s.group.pad(&b_pub), state))
        })
    });

    // (d) One 2048-bit modular exponentiation: A = g^a, as the code computes it (constant time,
    // from the group's table of powers of g: 64 multiplications). `benches/modexp.sh` compares
    // this figure with OpenSSL's BN_mod_exp_mont_consttime in the same run.
    g.bench_function("modexp_client_public", |bch| {
        bch.iter_batched(
            exponent,
            |a| black_box(s.client_public(&a)),
            BatchSize::SmallInput,
        )
    });

    // A variable base (v^u and (A*v^u)^b in S): crypto-bigint's bounded exponentiation, as
    // provd calls it, here on g so that it does the same work as a table-less g^a.
    let params = DynResidueParams::new(&s.group.n);
    let gen = DynResidue::new(&s.group.g, params);
    g.bench_function("modexp_bounded_256_bits", |bch| {
        bch.iter_batched(
            exponent,
            |a| black_box(gen.pow_bounded_exp(&a, 256).retrieve()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
