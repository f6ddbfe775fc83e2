//! Load generator for complete DSAPP-SRP online activations against a running `provd serve`:
//! for each activation, `dsappSRPRegister` (raw SOAP, static password), then the reference
//! client's ephemeral key, activation data and activate. Bounded: stops after `--activations`
//! activations (or at `--max-secs`, whichever comes first).
//!
//! Expects users `load0001` .. `loadNNNN` (`--users N`) in domain `master` with password
//! `Load.Pass1`, each able to get an authenticator (see benches/load/activations.sh, which
//! seeds them). Activations go round-robin over the users; re-registering a user whose
//! authenticator is already active reuses that authenticator, so activations may exceed users.
//!
//! Run: `cargo run --release --example activation_load -- --url http://127.0.0.1:8888/
//! --users 200 --threads 8 --activations 400`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use provd::client::{Client, DsappProof};
use provd::types::RegistrationId;

#[derive(Debug, Parser)]
#[command(about = "Complete DSAPP-SRP activations against a running provd, with latency")]
struct Args {
    /// The server's SOAP endpoint, e.g. http://127.0.0.1:8888/
    #[arg(long)]
    url: String,
    /// Users named load0001 .. loadNNNN; activations go round-robin over them.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Concurrent clients (OS threads), each with its own HTTP agent.
    #[arg(long, default_value_t = 8)]
    threads: usize,
    /// Complete activations to run in total.
    #[arg(long, default_value_t = 200)]
    activations: usize,
    /// The users' static password.
    #[arg(long, default_value = "Load.Pass1")]
    password: String,
    /// The users' domain.
    #[arg(long, default_value = "master")]
    domain: String,
    /// Stop starting new activations after this many seconds.
    #[arg(long, default_value_t = 600)]
    max_secs: u64,
    /// Which activation: `srp` (dsappSRPRegister and the DSAPP-SRP steps) or `dsapp`
    /// (PROVISIONCMD_DSAPPREGISTER, version 2, the CPace exchange, activation with an OTP).
    #[arg(long, default_value = "srp", value_parser = ["srp", "dsapp"])]
    flow: String,
    /// How many failure messages to print.
    #[arg(long, default_value_t = 5)]
    show_errors: usize,
}

fn user_name(i: usize) -> String {
    format!("load{:04}", i + 1)
}

fn register_body(user: &str, domain: &str, password: &str) -> String {
    format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:PROV-TYPES="http://www.vasco.com/IdentikeyServer/IdentikeyTypes/Provisioning"><SOAP-ENV:Body><PROV-TYPES:dsappSRPRegister><componentType>provd activation_load</componentType><user><userID>{user}</userID><domain>{domain}</domain></user><credential><staticPassword>{password}</staticPassword></credential></PROV-TYPES:dsappSRPRegister></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

/// The text of the first `<tag>` element in `xml` (the answer's fields carry no prefix).
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

fn short(s: &str) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() > 300 {
        format!("{}...", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

/// `dsappSRPRegister` over raw SOAP; returns the registration id and activation password.
fn register(
    agent: &ureq::Agent,
    args: &Args,
    user: &str,
) -> Result<(RegistrationId, String), String> {
    let body = register_body(user, &args.domain, &args.password);
    let text = match agent
        .post(&args.url)
        .set("Content-Type", "text/xml; charset=utf-8")
        .send_string(&body)
    {
        Ok(r) => r
            .into_string()
            .map_err(|e| format!("register {user}: {e}"))?,
        Err(ureq::Error::Status(code, r)) => {
            let t = r.into_string().unwrap_or_default();
            return Err(format!("register {user}: HTTP {code}: {}", short(&t)));
        }
        Err(e) => return Err(format!("register {user}: {e}")),
    };
    let status = element(&text, "statusCodeEnum").unwrap_or("(none)");
    if status != "STAT_SUCCESS" {
        let desc = element(&text, "errorDesc").unwrap_or("");
        return Err(format!("register {user}: {status} {desc}"));
    }
    let id = element(&text, "registrationID")
        .ok_or_else(|| format!("register {user}: no registrationID in {}", short(&text)))?;
    let id = RegistrationId::parse(id).map_err(|e| format!("register {user}: {id:?}: {e}"))?;
    let pw = element(&text, "activationPassword")
        .ok_or_else(|| format!("register {user}: no activationPassword"))?;
    Ok((id, pw.to_owned()))
}

#[derive(Default)]
struct Totals {
    /// Complete activations (register .. activate), successful only.
    total: Vec<Duration>,
    register: Vec<Duration>,
    activate: Vec<Duration>,
    failures: usize,
    errors: Vec<String>,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn summary(name: &str, v: &mut [Duration]) -> String {
    v.sort();
    let mean = if v.is_empty() {
        f64::NAN
    } else {
        v.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / v.len() as f64
    };
    format!(
        "{name:<18}: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  mean {:.1} ms",
        pct(v, 50.0),
        pct(v, 99.0),
        v.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        mean
    )
}

fn main() {
    let args = Args::parse();
    if args.users == 0 || args.threads == 0 {
        eprintln!("--users and --threads must be at least 1");
        std::process::exit(2);
    }
    let next = AtomicUsize::new(0);
    let totals = Mutex::new(Totals::default());
    let deadline = Duration::from_secs(args.max_secs);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.threads {
            scope.spawn(|| {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(60))
                    .build();
                let client = Client::new(&args.url);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= args.activations || started.elapsed() >= deadline {
                        break;
                    }
                    let user = user_name(i % args.users);
                    let t0 = Instant::now();
                    let outcome = if args.flow == "dsapp" {
                        client
                            .dsapp_register(&user, &args.password, 2)
                            .map_err(|e| format!("register {user}: {e}"))
                            .and_then(|(id, pw)| {
                                let t1 = Instant::now();
                                client
                                    .dsapp_activate(&id, &pw, 2, DsappProof::Otp)
                                    .map(|a| (t1, a))
                                    .map_err(|e| format!("activate {user} ({id}): {e}"))
                            })
                    } else {
                        register(&agent, &args, &user).and_then(|(id, pw)| {
                            let t1 = Instant::now();
                            client
                                .activate(&id, &pw)
                                .map(|a| (t1, a))
                                .map_err(|e| format!("activate {user} ({id}): {e}"))
                        })
                    };
                    let end = Instant::now();
                    let mut t = totals.lock().unwrap();
                    match outcome {
                        Ok((t1, a)) if a.user_id == user => {
                            t.total.push(end - t0);
                            t.register.push(t1 - t0);
                            t.activate.push(end - t1);
                        }
                        Ok((_, a)) => {
                            t.failures += 1;
                            t.errors
                                .push(format!("activate {user}: activated as {}", a.user_id));
                        }
                        Err(e) => {
                            t.failures += 1;
                            t.errors.push(e);
                        }
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut t = totals.into_inner().unwrap();
    let ok = t.total.len();
    let attempted = ok + t.failures;
    println!(
        "activation load ({}): {} users, {} threads, {} activations requested, {}",
        args.flow, args.users, args.threads, args.activations, args.url
    );
    println!(
        "attempted         : {attempted}   ok {ok}   failures {}",
        t.failures
    );
    for e in t.errors.iter().take(args.show_errors) {
        println!("  error: {}", short(e));
    }
    if t.errors.len() > args.show_errors {
        println!("  ... and {} more", t.errors.len() - args.show_errors);
    }
    println!("elapsed           : {elapsed:.2} s");
    println!(
        "activations/s     : {:.2} (successful)",
        ok as f64 / elapsed
    );
    println!("{}", summary("complete latency", &mut t.total));
    println!("{}", summary("  register", &mut t.register));
    println!("{}", summary("  key+data+activate", &mut t.activate));
    println!(
        "RESULT attempted={attempted} ok={ok} failures={} elapsed_s={elapsed:.3} rate={:.2} p50_ms={:.1} p99_ms={:.1}",
        t.failures,
        ok as f64 / elapsed,
        pct(&t.total, 50.0),
        pct(&t.total, 99.0)
    );
    if t.failures > 0 || attempted < args.activations {
        std::process::exit(1);
    }
}
