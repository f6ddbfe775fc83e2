//! SOAP parse and serialize, per envelope: the wire layer's cost without HTTP or database.
//! `cargo bench --bench soap`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use provd::protocol::Reply;
use provd::wire::codes::{Failure, StatusCode};
use provd::wire::xml::Limits;
use provd::wire::{parse_request, response, Operation};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/{name}.request.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("soap");
    g.sample_size(50)
        .measurement_time(std::time::Duration::from_secs(3));
    for name in [
        "01_server_time",
        "03_srp_register",
        "19_srp_ephemeral_key_unknown_registration",
    ] {
        let body = fixture(name);
        g.bench_function(format!("parse {name}"), |b| {
            b.iter(|| parse_request(black_box(&body), &limits).unwrap())
        });
    }
    g.bench_function("serialize SERVER_TIME response", |b| {
        b.iter(|| {
            response::success(
                Operation::ProvisioningExecute,
                black_box(&Reply::ServerTime(1_800_000_000)),
            )
        })
    });
    let failure = Failure {
        status: StatusCode::InvalidData,
        description: "PROVFLD_USERID: value must be at most 255 characters, got 300 characters"
            .into(),
    };
    g.bench_function("serialize failure response", |b| {
        b.iter(|| response::failure(Operation::ProvisioningExecute, black_box(&failure)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
