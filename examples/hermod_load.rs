//! Load generator for the Hermod REST front against a running `provd serve`.
//!
//! `--mode provision`: provision commands per second (POST /hermod/rest/command/provision).
//! `--mode complete`: complete provisionings per second: command, mailbox list and fetch,
//! a verified answer (one EC P-256 key, attested with the given RSA key), and the callback
//! delivered to the receiver this program runs on `--receiver` (the API client must call
//! back `http://<receiver>/`). `--mode health`: `GET /health` (the baseline the benches
//! compare a provisioning's server cost with). Bounded by `--count` and `--max-secs`.
//!
//! Run through benches/load/hermod.sh, which seeds the user, client and trust store.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use provd::hermod::client::{self, Options};
use provd::hermod::jws::{pem_der, Signer};

#[derive(Debug, Parser)]
struct Args {
    /// The server, e.g. http://127.0.0.1:8888/
    #[arg(long)]
    url: String,
    /// The X-Api-Key header value.
    #[arg(long)]
    api_key: String,
    #[arg(long)]
    attestation_key: std::path::PathBuf,
    #[arg(long, default_value = "provision")]
    mode: String,
    #[arg(long, default_value_t = 4)]
    threads: usize,
    #[arg(long, default_value_t = 200)]
    count: usize,
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
    /// Where to receive callbacks (complete mode).
    #[arg(long, default_value = "127.0.0.1:18555")]
    receiver: String,
    #[arg(long, default_value = "john.doe@nexusgroup.com")]
    user: String,
}

fn request(nonce: &str, user: &str) -> String {
    serde_json::json!({"commandHeader": {"lifespan": 600, "timeout": 600},
        "provCommand": {"nonce": nonce, "userid": user, "responsesignaturekey": "ATTESTATION",
          "responseformat": "jws", "profile": {"servername": "load", "name": "Load",
            "keygenrequests": [{"keyid": "signer", "usage": "SIG",
              "keytypepriors": [{"keytype": "EC", "keylength": "256", "responsemechanism": "ES256"}]}]}}})
    .to_string()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let received = Arc::new(AtomicUsize::new(0));
    if args.mode == "complete" {
        let listener = TcpListener::bind(&args.receiver)?;
        let r = received.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut s = s;
                    let mut reader = BufReader::new(s.try_clone().unwrap());
                    let mut len = 0usize;
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        line.clear();
                    }
                    let mut body = vec![0u8; len];
                    let _ = reader.read_exact(&mut body);
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    r.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
    }
    let pem = std::fs::read_to_string(&args.attestation_key)?;
    let att =
        Arc::new(Signer::rsa_pkcs8(&pem_der(&pem).unwrap()).map_err(|e| anyhow::anyhow!("{e}"))?);
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_secs);
    let run_id = std::process::id();
    std::thread::scope(|s| {
        for _ in 0..args.threads {
            let (next, failures, att, args) = (next.clone(), failures.clone(), att.clone(), &args);
            s.spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= args.count || Instant::now() > deadline {
                        break;
                    }
                    if args.mode == "health" {
                        let ok = agent
                            .get(&format!("{}health", args.url))
                            .call()
                            .ok()
                            .and_then(|r| r.into_string().ok())
                            .is_some();
                        if !ok {
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                        continue;
                    }
                    let r = agent
                        .post(&format!("{}hermod/rest/command/provision", args.url))
                        .set("X-Api-Key", &args.api_key)
                        .set("Content-Type", "application/json")
                        .send_string(&request(&format!("load-{run_id}-{i}"), &args.user));
                    let body = match r.ok().and_then(|r| r.into_string().ok()) {
                        Some(b) => b,
                        None => {
                            failures.fetch_add(1, Ordering::SeqCst);
                            continue;
                        }
                    };
                    if args.mode != "complete" {
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let uri = v["destinations"][0]["uri"].as_str().unwrap_or("");
                    if client::play(&agent, uri, &att, &Options::default()).is_err() {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let done = next.load(Ordering::SeqCst).min(args.count);
    let failed = failures.load(Ordering::SeqCst);
    if args.mode == "complete" {
        let want = done - failed;
        while received.load(Ordering::SeqCst) < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let ok = done - failed;
    println!(
        "mode={} threads={} done={} failed={} callbacks={} seconds={:.2} per_second={:.1}",
        args.mode,
        args.threads,
        ok,
        failed,
        received.load(Ordering::SeqCst),
        secs,
        ok as f64 / secs
    );
    Ok(())
}
