//! Server-side cost of the DSAPP (CPace) and MDL steps and of REGISTER's password protection,
//! without the store or the network:
//!
//! * `dsapp/key_exchange`: DSAPP revision 3's CPace step: checking `Ya`, hashing to the curve
//!   (the generator), two scalar multiplications, ISK and the server's confirmation tag
//!   (`PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA` minus I/O);
//! * `dsapp/activation_fields`: sealing (encrypt-then-MAC) the activation code and counter;
//! * `dsapp/activate_checks`: the client's confirmation tag and a derivation code;
//! * `mdl/device_code_verify` and `mdl/seal_am2`: MDL_ADD_DEVICE's crypto;
//! * `register/password_key`: the Argon2id stretch that protects REGISTER's activation code.
//!
//! Run: `cargo bench --bench activation` (a filter such as `-- dsapp` narrows it).

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use provd::protocol::{dsapp, mdl, standard};
use provd::types::SerialNumber;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("dsapp");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let (id, pw) = ("e3wfISG9", "TB048AX2K");
    g.bench_function("key_exchange", |b| {
        b.iter_batched(
            || dsapp::client_hello(id, pw),
            |hello| {
                black_box(dsapp::server_key_exchange(id, pw, &hello.key_nonce, &hello.sid).unwrap())
            },
            BatchSize::SmallInput,
        )
    });
    let hello = dsapp::client_hello(id, pw);
    let exchange = dsapp::server_key_exchange(id, pw, &hello.key_nonce, &hello.sid).unwrap();
    let session = exchange.session;
    let plaintext = vec![b'x'; 180];
    g.bench_function("activation_fields", |b| {
        b.iter(|| {
            black_box(session.seal_field(
                dsapp::Version::V2,
                dsapp::Field::ActivationCode,
                &plaintext,
            ));
            black_box(session.seal_field(
                dsapp::Version::V2,
                dsapp::Field::EventReactivationCounter,
                b"1",
            ))
        })
    });
    let tag = session.client_tag();
    let serial = SerialNumber::parse("VDS0000001").unwrap();
    let code = session.derivation_code(&serial);
    g.bench_function("activate_checks", |b| {
        b.iter(|| {
            black_box(session.verify_client_tag(&tag));
            black_box(session.verify_derivation_code(&serial, &code))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("mdl");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let serial = SerialNumber::parse("VDS0000001").unwrap();
    let license = mdl::new_license_key();
    let challenge = mdl::new_challenge();
    let rendered =
        mdl::DeviceCode::compute(&license, &serial, &challenge, mdl::DeviceType::Android, 42)
            .render();
    g.bench_function("device_code_verify", |b| {
        b.iter(|| {
            let code = mdl::DeviceCode::parse(black_box(&rendered)).unwrap();
            black_box(code.verify(&license, &serial, &challenge))
        })
    });
    let am2 = mdl::ActivationMessage2::generate(1).unwrap();
    g.bench_function("seal_am2", |b| {
        b.iter(|| black_box(mdl::seal_am2(&license, &challenge, 42, &serial, &am2)))
    });
    g.finish();

    let mut g = c.benchmark_group("register");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("password_key", |b| {
        b.iter(|| black_box(standard::PasswordKey::derive("1.Password", None).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
