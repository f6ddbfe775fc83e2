//! SOAP parse and serialize, per envelope: the wire layer's cost without HTTP or database.
//! `cargo bench --bench soap`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use provd::commands::{decode, server_time::Time, Reply};
use provd::soap::codes::{Failure, StatusCode};
use provd::soap::xml::Limits;
use provd::soap::{parse_request, response, Operation};

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
            b.iter(|| {
                let p = parse_request(black_box(&body), &limits).unwrap();
                p.body.and_then(|b| decode(p.operation, &b)).is_ok()
            })
        });
    }
    // Issue 11: a well-formed ~1 MB body built to make namespace lookups expensive (27
    // nested elements each declaring 31 prefixes, 2,930 leaves with 31 prefixed attributes;
    // also a fuzz seed), beside a plain body of the same shape and size without namespaces,
    // and a flood that stays within the namespace caps (62 prefixes in scope). Target: each
    // within 5x of the plain body.
    let flood = std::fs::read(format!(
        "{}/fuzz/corpus/envelope/25_namespace_flood.request.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let plain = nested_body(27, 0, flood.len());
    let within_caps = nested_body(2, 31, flood.len());
    assert!(plain.len() >= flood.len() && within_caps.len() >= flood.len());
    for (name, body) in [
        ("plain 1 MB body", &plain),
        ("namespace flood 1 MB (issue 11)", &flood),
        ("namespace flood within the caps 1 MB", &within_caps),
    ] {
        g.bench_function(format!("parse {name}"), |b| {
            b.iter(|| parse_request(black_box(body), &limits).is_ok())
        });
    }
    g.bench_function("serialize SERVER_TIME response", |b| {
        b.iter(|| {
            black_box(&Reply::ServerTime(Time(1_800_000_000))).write(Operation::ProvisioningExecute)
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

/// An envelope whose Body nests `depth` elements, each declaring `prefixes` namespace
/// prefixes, around leaves with 31 attributes (prefixed when `prefixes` > 0), as many leaves
/// as make it at least `size` bytes.
fn nested_body(depth: usize, prefixes: usize, size: usize) -> Vec<u8> {
    let mut head = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>"#,
    );
    let mut tail = String::from("</soapenv:Body></soapenv:Envelope>");
    for d in 0..depth {
        head.push_str(&format!("<n{d}"));
        for i in 0..prefixes {
            head.push_str(&format!(r#" xmlns:p{d}x{i}="urn:n:{d}:{i}""#));
        }
        head.push('>');
        tail.insert_str(0, &format!("</n{d}>"));
    }
    let leaf: String = (0..31)
        .map(|i| match prefixes {
            0 => format!(r#" plain{i}="{i}""#),
            _ => format!(r#" p{}x{}:a="{i}""#, i % depth, i % prefixes),
        })
        .collect();
    let leaf = format!("<l{leaf}/>");
    let mut body = head;
    while body.len() + tail.len() < size {
        body.push_str(&leaf);
    }
    body.push_str(&tail);
    body.into_bytes()
}

criterion_group!(benches, bench);
criterion_main!(benches);
