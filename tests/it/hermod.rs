//! The Hermod REST front over HTTP, on SQLite and PostgreSQL: the shared vectors, the
//! reference client accepting and declining, cancel, timeout, refused answers, callbacks with
//! retries and their HMAC, two instances racing one answer, and replay into a new command.

use crate::common;

mod rules;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{backends, cli, cli_result, Backend, TestDb, TestServer};
use provd::hermod::client::{self, Options};
use provd::hermod::jws::{pem_der, Signer};
use serde_json::{json, Value};

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hermod");
const USER: &str = "john.doe@nexusgroup.com";
const VECTOR_BASE: &str = "https://provd.example.test:20400/hermod";

fn fix(path: &str) -> String {
    format!("{FIX}/{path}")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(fix(path)).unwrap()
}

// -------------------------------------------------------------------------------------------
// A loopback callback receiver answering from a script of statuses (then 200).

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
struct Receiver {
    url: String,
    hits: Arc<(Mutex<Vec<Hit>>, Condvar)>,
}

impl Receiver {
    fn start(script: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/as/", listener.local_addr().unwrap());
        let hits: Arc<(Mutex<Vec<Hit>>, Condvar)> = Arc::default();
        let h = hits.clone();
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut headers = Vec::new();
                let mut len = 0usize;
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = l.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        headers.push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let status = script.next().unwrap_or(200);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let (m, cv) = &*h;
                m.lock().unwrap().push(Hit {
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                cv.notify_all();
            }
        });
        Receiver { url, hits }
    }

    /// Waits (up to a generous deadline) until `n` requests have arrived.
    fn wait_for(&self, n: usize) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (m, cv) = &*self.hits;
        let mut g = m.lock().unwrap();
        while g.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "only {} of {n} callbacks arrived", g.len());
            g = cv.wait_timeout(g, left).unwrap().0;
        }
        g.clone()
    }
}

// -------------------------------------------------------------------------------------------
// Setup and HTTP.

struct Front {
    server: TestServer,
    api_key: String,
    secret: String,
    receiver: Receiver,
}

/// A database with the user, a client calling back `receiver`, and the vectors' trust store.
fn prepare(backend: Backend, receiver: &Receiver) -> (TestDb, String, String) {
    let (db, api_key, secret) = user_and_client(backend, receiver);
    cli(
        &db,
        &["hermod", "attestation", "load", &fix("trust_store.json")],
        None,
    );
    (db, api_key, secret)
}

/// A database with the user and a client calling back `receiver`; no trust store yet.
fn user_and_client(backend: Backend, receiver: &Receiver) -> (TestDb, String, String) {
    let db = TestDb::new(backend);
    cli(
        &db,
        &["user", "add", "--user", USER, "--password-stdin"],
        Some("1.Password\n"),
    );
    let out = cli(
        &db,
        &[
            "--json",
            "hermod",
            "client",
            "add",
            "--id",
            "app1",
            "--callback-url",
            &receiver.url,
        ],
        None,
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["api_key"].as_str().unwrap().len(), 64);
    assert_eq!(v["callback_secret"].as_str().unwrap().len(), 64);
    (
        db,
        v["x_api_key"].as_str().unwrap().to_owned(),
        v["callback_secret"].as_str().unwrap().to_owned(),
    )
}

fn start(backend: Backend, script: Vec<u16>, env: &[(&str, &str)]) -> Front {
    let receiver = Receiver::start(script);
    let (db, api_key, secret) = prepare(backend, &receiver);
    let mut all = vec![("PROVD_HERMOD__CALLBACK_RETRY_BASE_SECS", "1")];
    all.extend_from_slice(env);
    let server = TestServer::start_with(db, &all, ureq::AgentBuilder::new().build());
    Front {
        server,
        api_key,
        secret,
        receiver,
    }
}

struct Resp {
    status: u16,
    body: Value,
    cache_control: Option<String>,
}

fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Resp {
    let url = format!("{}{}", base, path.trim_start_matches('/'));
    let mut req = ureq::request(method, &url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let r = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let cache_control = resp.header("Cache-Control").map(str::to_owned);
    let text = resp.into_string().unwrap();
    Resp {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        cache_control,
    }
}

impl Front {
    fn api(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        http(
            &self.server.base,
            method,
            path,
            &[("X-Api-Key", &self.api_key)],
            body,
        )
    }

    fn provision(&self, body: &str) -> Resp {
        self.api("POST", "hermod/rest/command/provision", Some(body))
    }

    fn status(&self, id: &str) -> Value {
        let r = self.api("GET", &format!("hermod/rest/command/{id}"), None);
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    /// The mailbox path of a destination, on this server.
    fn mailbox(&self, bid: &str, mid: Option<&str>, token: &str) -> String {
        match mid {
            Some(m) => format!("hermod/rest/ms/{bid}/{m}?token={token}"),
            None => format!("hermod/rest/ms/{bid}?token={token}"),
        }
    }

    fn callbacks(&self) -> Vec<Value> {
        let out = cli(
            &self.server.db,
            &["--json", "hermod", "callbacks", "list"],
            None,
        );
        serde_json::from_str(&out).unwrap()
    }
}

/// A provision request for EC keys (the reference client generates those).
fn ec_request(nonce: &str, keys: &[&str]) -> String {
    let reqs: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({"keyid": k, "usage": "SIG",
                   "keytypeprios": [{"keytype": "EC", "keylength": 256, "responsemechanism": "ES256"}],
                   "storageprios": ["APP"], "keystate": "ACTIVE"})
        })
        .collect();
    json!({"commandHeader": {"lifespan": 1500, "timeout": 1500, "externalId": "ext-1"},
           "provCommand": {"nonce": nonce, "userid": USER, "responsesignaturekey": "ATTESTATION",
             "responseformat": "jws",
             "profile": {"servername": "nexus-hermod1", "name": "TestProfile", "keygenrequests": reqs}}})
    .to_string()
}

fn attestation() -> Signer {
    Signer::rsa_pkcs8(&pem_der(&read("keys/attestation_rsa2048.pem")).unwrap()).unwrap()
}

fn token_of(uri: &str) -> String {
    client::parse_uri(uri).unwrap().1
}

fn check_hmac(hit: &Hit, secret: &str) {
    let ts: i64 = hit.header("X-Provd-Timestamp").unwrap().parse().unwrap();
    let want = provd::hermod::worker::signature(secret, ts, &hit.body);
    assert_eq!(hit.header("X-Provd-Signature"), Some(want.as_str()));
    // A forged body does not carry the same signature.
    assert_ne!(
        provd::hermod::worker::signature(secret, ts, &format!("{} ", hit.body)),
        want
    );
    assert_eq!(hit.path, "/as/rest/callback/provision");
}

fn refused(r: Result<client::Played, client::ClientError>) -> (u16, String) {
    match r {
        Err(client::ClientError::Refused { status, code, .. }) => (status, code),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(p) => panic!("expected a refusal, got {}", p.state),
    }
}

// -------------------------------------------------------------------------------------------

#[test]
fn shared_vectors_get_their_verdicts_and_the_callback() {
    for backend in backends() {
        let f = start(
            backend,
            vec![],
            &[("PROVD_HERMOD__PUBLIC_URL", VECTOR_BASE)],
        );
        let db = &f.server.db;
        cli(
            db,
            &[
                "hermod",
                "seed-command",
                "--client",
                "app1",
                "--request",
                &fix("command/provision_request.json"),
                "--state",
                &fix("command/server_state.json"),
            ],
            None,
        );
        let state: Value = serde_json::from_str(&read("command/server_state.json")).unwrap();
        let (bid, mid, token) = (
            state["bid"].as_str().unwrap(),
            state["mid"].as_str().unwrap(),
            state["token"].as_str().unwrap(),
        );
        // The message the app fetches carries the normalised request and the box URL.
        let m = http(
            &f.server.base,
            "GET",
            &f.mailbox(bid, Some(mid), token),
            &[],
            None,
        );
        assert_eq!(m.status, 200, "{:?}", m.body);
        assert_eq!(m.cache_control.as_deref(), Some("no-store"));
        assert_eq!(m.body["boxurl"], state["boxurl"]);
        assert_eq!(m.body["provCommand"]["nonce"], "123456789");
        for (case, code) in [
            ("invalid_bad_pop", "pop_signature_invalid"),
            ("invalid_wrong_nonce", "nonce_mismatch"),
        ] {
            let expected: Value =
                serde_json::from_str(&read(&format!("{case}/expected.json"))).unwrap();
            assert_eq!(expected["error"], code);
            let r = http(
                &f.server.base,
                "POST",
                &f.mailbox(bid, Some(mid), token),
                &[],
                Some(&read(&format!("{case}/mailbox_post.json"))),
            );
            assert_eq!(
                (r.status, r.body["error"].as_str()),
                (422, Some(code)),
                "{backend:?} {case}"
            );
        }
        let profiles = cli(db, &["--json", "hermod", "profile", "list"], None);
        assert_eq!(
            serde_json::from_str::<Value>(&profiles).unwrap(),
            json!([]),
            "nothing stored"
        );
        let r = http(
            &f.server.base,
            "POST",
            &f.mailbox(bid, Some(mid), token),
            &[],
            Some(&read("valid/mailbox_post.json")),
        );
        assert_eq!(r.status, 200, "{backend:?} {:?}", r.body);
        let expected: Value = serde_json::from_str(&read("valid/expected.json")).unwrap();
        assert_eq!(r.body["state"], "COMPLETED");
        assert_eq!(r.body["profileId"], expected["profile"]["id"]);
        let s = f.status("1011");
        assert_eq!(s["state"], "COMPLETED");
        assert_eq!(s["profileId"], expected["profile"]["id"]);
        assert_eq!(s["data"].as_str().unwrap(), read("valid/data.jws").trim());
        let listed: Value = serde_json::from_str(&cli(
            db,
            &["--json", "hermod", "profile", "list", "--user", USER],
            None,
        ))
        .unwrap();
        assert_eq!(listed[0]["profile_id"], expected["profile"]["id"]);
        assert_eq!(
            listed[0]["keys"][0]["thumbprint"],
            expected["keys"][0]["thumbprint_s256"]
        );
        assert_eq!(listed[0]["keys"][0]["bits"], 2048);
        let shown: Value =
            serde_json::from_str(&cli(db, &["--json", "user", "show", "--user", USER], None))
                .unwrap();
        assert_eq!(
            shown["hermod_profiles"][0]["profile_id"],
            expected["profile"]["id"]
        );
        // The callback: callback.json, except that provd keeps only the token's hash, so the
        // destination URI it sends carries no token.
        let hits = f.receiver.wait_for(1);
        check_hmac(&hits[0], &f.secret);
        let got: Value = serde_json::from_str(&hits[0].body).unwrap();
        let mut want: Value = serde_json::from_str(&read("valid/callback.json")).unwrap();
        let uri = want["destinations"][0]["uri"].as_str().unwrap().to_owned();
        want["destinations"][0]["uri"] = uri.split("&token=").next().unwrap().into();
        assert_eq!(got, want, "{backend:?}");
        // After the terminal state the link is gone.
        let again = http(
            &f.server.base,
            "GET",
            &f.mailbox(bid, None, token),
            &[],
            None,
        );
        assert_eq!(
            (again.status, again.body["error"].as_str()),
            (410, Some("gone"))
        );
    }
}

#[test]
fn the_reference_client_accepts_and_declines() {
    for backend in backends() {
        let f = start(backend, vec![], &[]);
        let r = f.provision(&ec_request("n-accept", &["signer", "auth"]));
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["commandType"], "PROV");
        assert_eq!(r.body["state"], "IN_PROGRESS");
        assert_eq!(r.body["fqdn"], "127.0.0.1");
        let id = r.body["commandId"].as_str().unwrap().to_owned();
        let uri = r.body["destinations"][0]["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            uri.starts_with("com.nexusgroup.pluginout:///url=http%3A%2F%2F127.0.0.1"),
            "{uri}"
        );
        // The QR code of the link, for its own client only, while the command runs.
        let qr = ureq::get(&format!("{}hermod/rest/command/{id}/qr.svg", f.server.base))
            .set("X-Api-Key", &f.api_key)
            .call()
            .unwrap();
        assert_eq!(qr.content_type(), "image/svg+xml");
        assert_eq!(qr.header("Cache-Control"), Some("no-store"));
        assert!(qr.into_string().unwrap().contains("<svg"));
        let (ok, out, _) = cli_result(&f.server.db, &["--json", "hermod", "qr", &id], None);
        assert!(ok);
        // The CLI builds the link from the configuration (no hermod.public_url here, so its
        // host part is the configured listen address); the token is the command's own.
        let cli_uri = serde_json::from_str::<Value>(&out).unwrap()["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(token_of(&cli_uri), token_of(&uri));
        let agent = ureq::AgentBuilder::new().build();
        let played = client::play(&agent, &uri, &attestation(), &Options::default()).unwrap();
        assert_eq!(played.state, "COMPLETED");
        assert_eq!(played.keys.len(), 2);
        let s = f.status(&id);
        assert_eq!(s["state"], "COMPLETED");
        assert_eq!(s["externalId"], "ext-1");
        assert_eq!(s["responseHeader"]["status"], 200);
        assert_eq!(s["profileId"].as_str(), played.profile_id.as_deref());
        let hits = f.receiver.wait_for(1);
        check_hmac(&hits[0], &f.secret);
        let cb: Value = serde_json::from_str(&hits[0].body).unwrap();
        assert_eq!(cb["state"], "COMPLETED");
        assert_eq!(cb["commandId"], id.as_str());
        assert_eq!(cb["externalId"], "ext-1");
        assert_eq!(cb["data"].as_str(), played.data.as_deref());
        // The stored keys are the ones the client made.
        let listed: Value = serde_json::from_str(&cli(
            &f.server.db,
            &["--json", "hermod", "profile", "list"],
            None,
        ))
        .unwrap();
        let prints: Vec<&str> = listed[0]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["thumbprint"].as_str().unwrap())
            .collect();
        for (_, t, _) in &played.keys {
            assert!(prints.contains(&t.as_str()));
        }
        let qr = f.api("GET", &format!("hermod/rest/command/{id}/qr.svg"), None);
        assert_eq!((qr.status, qr.body["error"].as_str()), (410, Some("gone")));
        // The link is one-time.
        let again = client::play(&agent, &uri, &attestation(), &Options::default());
        assert_eq!(refused(again), (410, "gone".into()));

        // Decline.
        let r = f.provision(&ec_request("n-decline", &["signer"]));
        let id = r.body["commandId"].as_str().unwrap().to_owned();
        let uri = r.body["destinations"][0]["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        let opts = Options {
            decline: true,
            ..Options::default()
        };
        let played = client::play(&agent, &uri, &attestation(), &opts).unwrap();
        assert_eq!(played.state, "REJECTED");
        assert_eq!(f.status(&id)["state"], "REJECTED");
        let hits = f.receiver.wait_for(2);
        let cb: Value = serde_json::from_str(&hits[1].body).unwrap();
        assert_eq!(
            (
                cb["state"].as_str(),
                cb["responseHeader"]["status"].as_u64()
            ),
            (Some("REJECTED"), Some(403))
        );
        assert!(cb.get("data").is_none());
    }
}

#[test]
fn cancel_timeout_and_the_token_limit() {
    for backend in backends() {
        let f = start(backend, vec![], &[]);
        // Cancel.
        let r = f.provision(&ec_request("n-cancel", &["signer"]));
        let id = r.body["commandId"].as_str().unwrap().to_owned();
        let bid = r.body["destinations"][0]["bid"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = token_of(r.body["destinations"][0]["uri"].as_str().unwrap());
        let d = f.api("DELETE", &format!("hermod/rest/command/{id}"), None);
        assert_eq!(
            (d.status, d.body["state"].as_str()),
            (200, Some("CANCELLED")),
            "{:?}",
            d.body
        );
        let d = f.api("DELETE", &format!("hermod/rest/command/{id}"), None);
        assert_eq!(
            (d.status, d.body["error"].as_str()),
            (409, Some("not_cancellable"))
        );
        let m = http(
            &f.server.base,
            "GET",
            &f.mailbox(&bid, None, &token),
            &[],
            None,
        );
        assert_eq!(m.status, 410);
        let hits = f.receiver.wait_for(1);
        let cb: Value = serde_json::from_str(&hits[0].body).unwrap();
        assert_eq!(
            (
                cb["state"].as_str(),
                cb["responseHeader"]["status"].as_u64()
            ),
            (Some("CANCELLED"), Some(410))
        );

        // Timeout: a command whose timeout has passed is TIMEOUT for every request.
        cli(
            &f.server.db,
            &[
                "hermod",
                "seed-command",
                "--client",
                "app1",
                "--request",
                &fix("command/provision_request.json"),
                "--state",
                &fix("command/server_state.json"),
                "--timeout-in",
                "-1",
            ],
            None,
        );
        let state: Value = serde_json::from_str(&read("command/server_state.json")).unwrap();
        let m = http(
            &f.server.base,
            "GET",
            &f.mailbox(
                state["bid"].as_str().unwrap(),
                None,
                state["token"].as_str().unwrap(),
            ),
            &[],
            None,
        );
        assert_eq!((m.status, m.body["error"].as_str()), (410, Some("gone")));
        assert_eq!(f.status("1011")["state"], "TIMEOUT");
        let hits = f.receiver.wait_for(2);
        let cb: Value = serde_json::from_str(&hits[1].body).unwrap();
        assert_eq!(
            (
                cb["state"].as_str(),
                cb["responseHeader"]["status"].as_u64()
            ),
            (Some("TIMEOUT"), Some(408))
        );

        // Wrong tokens: 404 like an unknown box, the fifth locks it (FAILED).
        let r = f.provision(&ec_request("n-tokens", &["signer"]));
        let id = r.body["commandId"].as_str().unwrap().to_owned();
        let bid = r.body["destinations"][0]["bid"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = token_of(r.body["destinations"][0]["uri"].as_str().unwrap());
        let unknown = http(
            &f.server.base,
            "GET",
            &f.mailbox("00000000-0000-4000-8000-000000000000", None, &token),
            &[],
            None,
        );
        assert_eq!(
            (unknown.status, unknown.body["error"].as_str()),
            (404, Some("not_found"))
        );
        for _ in 0..5 {
            let m = http(
                &f.server.base,
                "GET",
                &f.mailbox(&bid, None, "wrong"),
                &[],
                None,
            );
            assert_eq!(
                (m.status, m.body["error"].as_str()),
                (404, Some("not_found"))
            );
            assert_eq!(m.cache_control.as_deref(), Some("no-store"));
        }
        let m = http(
            &f.server.base,
            "GET",
            &f.mailbox(&bid, None, &token),
            &[],
            None,
        );
        assert_eq!(
            m.status, 410,
            "the right token no longer opens a locked box"
        );
        let s = f.status(&id);
        assert_eq!(
            (s["state"].as_str(), s["error"].as_str()),
            (Some("FAILED"), Some("token_bruteforce"))
        );
    }
}

#[test]
fn refused_answers_and_the_integrator_api_errors() {
    for backend in backends() {
        let f = start(backend, vec![], &[]);
        let agent = ureq::AgentBuilder::new().build();
        let r = f.provision(&ec_request("n-refused", &["signer"]));
        let id = r.body["commandId"].as_str().unwrap().to_owned();
        let uri = r.body["destinations"][0]["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        // Three refused answers, each at its step; the third fails the command.
        let corrupt = Options {
            corrupt_pop: true,
            ..Options::default()
        };
        assert_eq!(
            refused(client::play(&agent, &uri, &attestation(), &corrupt)),
            (422, "pop_signature_invalid".into())
        );
        let none = Options {
            alg_none: true,
            ..Options::default()
        };
        assert_eq!(
            refused(client::play(&agent, &uri, &attestation(), &none)),
            (422, "alg_not_allowed".into())
        );
        let (rogue, _) = Signer::generate_p256().unwrap();
        assert_eq!(
            refused(client::play(&agent, &uri, &rogue, &Options::default())),
            (422, "attestation_key_untrusted".into())
        );
        let s = f.status(&id);
        assert_eq!(
            (s["state"].as_str(), s["error"].as_str()),
            (Some("FAILED"), Some("attestation_key_untrusted"))
        );
        let hits = f.receiver.wait_for(1);
        let cb: Value = serde_json::from_str(&hits[0].body).unwrap();
        assert_eq!(
            (
                cb["state"].as_str(),
                cb["responseHeader"]["status"].as_u64(),
                cb["error"].as_str()
            ),
            (Some("FAILED"), Some(422), Some("attestation_key_untrusted"))
        );
        // A wrong nonce on a fresh command.
        let r = f.provision(&ec_request("n-nonce", &["signer"]));
        let uri = r.body["destinations"][0]["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        let wrong = Options {
            wrong_nonce: true,
            ..Options::default()
        };
        assert_eq!(
            refused(client::play(&agent, &uri, &attestation(), &wrong)),
            (422, "nonce_mismatch".into())
        );
        let profiles = cli(&f.server.db, &["--json", "hermod", "profile", "list"], None);
        assert_eq!(
            serde_json::from_str::<Value>(&profiles).unwrap(),
            json!([]),
            "nothing stored"
        );

        // The integrator API.
        let base = &f.server.base;
        let path = "hermod/rest/command/provision";
        let body = ec_request("n-api", &["signer"]);
        let r = http(base, "POST", path, &[], Some(&body));
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (401, Some("unauthorized"))
        );
        let r = http(
            base,
            "POST",
            path,
            &[("X-Api-Key", "YXBwMTp3cm9uZw==")],
            Some(&body),
        );
        assert_eq!(r.status, 401);
        let r = f.provision(&body.replace("\"keystate\"", "\"x\":1,\"keystate\""));
        assert_eq!(
            (r.status, r.body["error"].as_str(), r.body["field"].as_str()),
            (400, Some("unknown_field"), Some("x"))
        );
        let r = f.provision(&body.replace(
            "\"keytypeprios\":",
            "\"keytypepriors\":[],\"keytypeprios\":",
        ));
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (400, Some("duplicate_field"))
        );
        let r = f.provision(&body.replace(USER, "nobody@example.test"));
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (404, Some("unknown_user"))
        );
        let r = f.provision(&body.replace("\"timeout\":1500", "\"timeout\":1501"));
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some("commandHeader.timeout"))
        );
        assert_eq!(f.provision(&body).status, 200);
        let r = f.provision(&body);
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (409, Some("nonce_reused"))
        );
        let r = f.api("GET", "hermod/rest/command/999999", None);
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (404, Some("unknown_command"))
        );
        let r = http(base, "POST", path, &[("X-Api-Key", &f.api_key)], None);
        assert_eq!(r.status, 415);
        cli(&f.server.db, &["hermod", "client", "disable", "app1"], None);
        let r = f.provision(&ec_request("n-disabled", &["signer"]));
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (403, Some("client_disabled"))
        );
        // Another client cannot see app1's commands.
        let (ok, out, _) = cli_result(
            &f.server.db,
            &[
                "--json",
                "hermod",
                "client",
                "add",
                "--id",
                "app2",
                "--callback-url",
                "https://as.example/",
            ],
            None,
        );
        assert!(ok);
        let other: Value = serde_json::from_str(&out).unwrap();
        let r = http(
            base,
            "GET",
            &format!("hermod/rest/command/{id}"),
            &[("X-Api-Key", other["x_api_key"].as_str().unwrap())],
            None,
        );
        assert_eq!(r.status, 404);
        let (ok, _, err) = cli_result(
            &f.server.db,
            &[
                "hermod",
                "client",
                "add",
                "--id",
                "app3",
                "--callback-url",
                "http://as.example/",
            ],
            None,
        );
        assert!(!ok && err.contains("https"), "{err}");
    }
}

#[test]
fn callbacks_are_retried_until_delivered_with_a_stable_id_and_hmac() {
    for backend in backends() {
        let f = start(backend, vec![500, 503, 200], &[]);
        let r = f.provision(&ec_request("n-retry", &["signer"]));
        let id = r.body["commandId"].as_str().unwrap().to_owned();
        let d = f.api("DELETE", &format!("hermod/rest/command/{id}"), None);
        assert_eq!(d.status, 200);
        let hits = f.receiver.wait_for(3);
        let delivery = hits[0].header("X-Provd-Delivery").unwrap().to_owned();
        for h in &hits {
            check_hmac(h, &f.secret);
            assert_eq!(h.header("X-Provd-Delivery"), Some(delivery.as_str()));
            assert_eq!(h.body, hits[0].body);
        }
        // The outcome is recorded right after the answer; poll the outbox listing for it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let cbs = f.callbacks();
            if cbs[0]["status"] == "sent" {
                assert_eq!(cbs[0]["attempts"], 3);
                let (code, metrics) = f.server.get("metrics");
                assert_eq!(code, 200);
                assert!(
                    metrics.contains("provd_hermod_callbacks_total{result=\"retry\"} 2"),
                    "{metrics}"
                );
                assert!(metrics.contains("provd_hermod_callbacks_total{result=\"sent\"} 1"));
                assert!(metrics.contains("command=\"HERMOD_PROVISION\",status=\"ok\""));
                break;
            }
            assert!(Instant::now() < deadline, "{cbs:?}");
            std::thread::yield_now();
        }
    }
}

#[test]
fn two_instances_race_one_answer_and_one_wins() {
    for backend in backends() {
        let f = start(backend, vec![], &[]);
        // Instances behind one name share the public URL (the first's own address here).
        let public = format!("{}hermod", f.server.base);
        let second = TestServer::start_with(
            TestDb::at_url(&f.server.db.url),
            &[("PROVD_HERMOD__PUBLIC_URL", &public)],
            ureq::AgentBuilder::new().build(),
        );
        let r = f.provision(&ec_request("n-race", &["signer"]));
        let id = r.body["commandId"].as_str().unwrap().to_owned();
        let uri = r.body["destinations"][0]["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        let agent = ureq::AgentBuilder::new().build();
        let (message, location, token) = client::fetch(&agent, &uri).unwrap();
        let (data, _) = client::answer(&message, &attestation(), &Options::default()).unwrap();
        let body = json!({"status": 200, "data": data}).to_string();
        let path = location.split_once("/hermod/").unwrap().1.to_owned();
        let path = format!("hermod/{path}?token={token}");
        let bases = [f.server.base.clone(), second.base.clone()];
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let results: Vec<u16> = std::thread::scope(|s| {
            let handles: Vec<_> = bases
                .iter()
                .map(|b| {
                    let (body, path, barrier) = (body.clone(), path.clone(), barrier.clone());
                    s.spawn(move || {
                        barrier.wait();
                        let r = http(b, "POST", &path, &[], Some(&body));
                        if r.status != 200 {
                            eprintln!("race loser: {:?}", r.body);
                        }
                        r.status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|s| **s == 200).count(),
            1,
            "{backend:?} {results:?}"
        );
        assert!(
            results.iter().all(|s| matches!(s, 200 | 409 | 410)),
            "{results:?}"
        );
        assert_eq!(f.status(&id)["state"], "COMPLETED");
        let profiles: Value = serde_json::from_str(&cli(
            &f.server.db,
            &["--json", "hermod", "profile", "list"],
            None,
        ))
        .unwrap();
        assert_eq!(profiles.as_array().unwrap().len(), 1);
        f.receiver.wait_for(1);
        assert_eq!(f.callbacks().len(), 1, "one callback queued");
        drop(second);
    }
}

#[test]
fn an_accepted_answer_replayed_into_a_new_command_is_refused() {
    for backend in backends() {
        let f = start(backend, vec![], &[]);
        let agent = ureq::AgentBuilder::new().build();
        let r = f.provision(&ec_request("n-first", &["signer"]));
        let uri = r.body["destinations"][0]["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        let played = client::play(&agent, &uri, &attestation(), &Options::default()).unwrap();
        let old = played.data.unwrap();
        let r = f.provision(&ec_request("n-second", &["signer"]));
        let id = r.body["commandId"].as_str().unwrap().to_owned();
        let uri = r.body["destinations"][0]["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, location, token) = client::fetch(&agent, &uri).unwrap();
        let replayed = client::post(
            &agent,
            &location,
            &token,
            &provd::hermod::wire::Answer {
                status: 200,
                data: Some(old),
            },
        );
        match replayed {
            Err(client::ClientError::Refused { status, code, .. }) => {
                assert_eq!((status, code.as_str()), (422, "nonce_mismatch"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f.status(&id)["state"], "IN_PROGRESS");
        let profiles: Value = serde_json::from_str(&cli(
            &f.server.db,
            &["--json", "hermod", "profile", "list"],
            None,
        ))
        .unwrap();
        assert_eq!(profiles.as_array().unwrap().len(), 1);
    }
}

#[test]
fn the_served_openapi_document_is_the_pinned_one() {
    let f = start(Backend::Sqlite, vec![], &[]);
    let served = ureq::get(&format!("{}hermod/openapi.json", f.server.base))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(served, read("openapi.json"));
}

#[test]
fn the_cli_client_with_a_csr_and_a_trust_store_from_the_configuration() {
    for backend in backends() {
        // No `attestation load`: the trust store comes from hermod.trust_store at start.
        let receiver = Receiver::start(vec![]);
        let (db, api_key, _) = user_and_client(backend, &receiver);
        let trust = fix("trust_store.json");
        let server = TestServer::start_with(
            db,
            &[("PROVD_HERMOD__TRUST_STORE", &trust)],
            ureq::AgentBuilder::new().build(),
        );
        let listed: Value = serde_json::from_str(&cli(
            &server.db,
            &["--json", "hermod", "attestation", "list"],
            None,
        ))
        .unwrap();
        assert_eq!(
            listed[0]["thumbprint"],
            "iPsG27fJJNt4V_K77oNTYJP41x-1IGnrJQd6n7HPl6s"
        );
        // A request with a dummy CSR (its key is not the device's) at profile level.
        let (dummy_key, _) = Signer::generate_p256().unwrap();
        let dummy = provd::hermod::csr::dummy("john.doe", &dummy_key).unwrap();
        let b64 = <base64ct::Base64 as base64ct::Encoding>::encode_string(&dummy);
        let mut req: Value = serde_json::from_str(&ec_request("n-cli", &["signer"])).unwrap();
        req["provCommand"]["profile"]["certreq"] = b64.clone().into();
        let base = &server.base;
        let r = http(
            base,
            "POST",
            "hermod/rest/command/provision",
            &[("X-Api-Key", &api_key)],
            Some(&req.to_string()),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
        let id = r.body["commandId"].as_str().unwrap().to_owned();
        let uri = r.body["destinations"][0]["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        let bid = r.body["destinations"][0]["bid"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = token_of(&uri);
        // The token given twice, differently, and an oversized body.
        let two = http(
            base,
            "GET",
            &format!("hermod/rest/ms/{bid}?token={token}"),
            &[("X-Hermod-Token", "other")],
            None,
        );
        assert_eq!(two.status, 400);
        let same = http(
            base,
            "GET",
            &format!("hermod/rest/ms/{bid}"),
            &[("X-Hermod-Token", &token)],
            None,
        );
        assert_eq!(same.status, 200, "the header alone carries the token");
        let big = json!({"status": 200, "data": "a".repeat(70 * 1024)}).to_string();
        let r = http(
            base,
            "POST",
            &format!("hermod/rest/ms/{bid}/x?token={token}"),
            &[],
            Some(&big),
        );
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (413, Some("too_large"))
        );
        // The message carries the CSR in the key request.
        let m = http(
            base,
            "GET",
            &format!(
                "hermod/rest/ms/{bid}/{}?token={token}",
                r_mid(&uri, base, &token)
            ),
            &[],
            None,
        );
        assert_eq!(
            m.body["provCommand"]["profile"]["keygenrequests"][0]["certreq"],
            b64.as_str()
        );
        // The reference client from the command line.
        let keys = server.db.dir().join("keys");
        let (ok, out, err) = cli_result(
            &server.db,
            &[
                "--json",
                "client",
                "hermod",
                "--uri",
                &uri,
                "--attestation-key",
                &fix("keys/attestation_rsa2048.pem"),
                "--key-store",
                keys.to_str().unwrap(),
            ],
            None,
        );
        assert!(ok, "{err}");
        let done: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(done["state"], "COMPLETED");
        assert!(keys.join("signer.pk8").exists());
        let s = http(
            base,
            "GET",
            &format!("hermod/rest/command/{id}"),
            &[("X-Api-Key", &api_key)],
            None,
        );
        assert_eq!(s.body["state"], "COMPLETED");
        assert_eq!(s.body["profileId"], done["profile_id"]);
        receiver.wait_for(1);
    }
}

/// The message id of the box behind `uri`, from its listing.
fn r_mid(uri: &str, base: &str, token: &str) -> String {
    let (url, _) = client::parse_uri(uri).unwrap();
    let bid = url.rsplit('/').next().unwrap();
    let l = http(
        base,
        "GET",
        &format!("hermod/rest/ms/{bid}?token={token}"),
        &[],
        None,
    );
    l.body["messages"][0]["mid"].as_str().unwrap().to_owned()
}

#[test]
fn the_sweeper_times_out_and_purges_after_the_callback() {
    for backend in backends() {
        let f = start(backend, vec![], &[("PROVD_HERMOD__POLL_SECS", "1")]);
        cli(
            &f.server.db,
            &[
                "hermod",
                "seed-command",
                "--client",
                "app1",
                "--request",
                &fix("command/provision_request.json"),
                "--state",
                &fix("command/server_state.json"),
                "--timeout-in",
                "-2",
                "--lifespan-in",
                "-1",
            ],
            None,
        );
        // No request touches the command: the sweeper times it out and queues the callback.
        let hits = f.receiver.wait_for(1);
        let cb: Value = serde_json::from_str(&hits[0].body).unwrap();
        assert_eq!(cb["state"], "TIMEOUT");
        // Once the callback is settled, the command past its lifespan is removed.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = f.api("GET", "hermod/rest/command/1011", None);
            if r.status == 404 {
                assert_eq!(r.body["error"], "unknown_command");
                break;
            }
            assert_eq!(r.body["state"], "TIMEOUT");
            assert!(Instant::now() < deadline, "never purged");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(f.callbacks().len(), 0, "its callback rows went with it");
    }
}
