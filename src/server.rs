//! The HTTP endpoint (actix-web): `POST /` for SOAP, `GET /?wsdl`, `GET /schemas/{name}`,
//! `GET /health`. Small bodies are parsed on the async worker, large ones on the blocking
//! pool; `PROVISIONCMD_SERVER_TIME`, the WSDL, schemas and `/health` are answered without
//! the blocking pool; other calls run there, password-checking ones under a global limit
//! (see [`crate::overload`]).

use std::net::SocketAddr;
use std::time::Instant;

use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode as HttpStatus;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

use crate::commands::{AuditFields, Call, Reply};
use crate::config::Config;
use crate::forwarded::TrustedProxies;
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::overload::{BodyError, Opened, PasswordGate};
use crate::soap::codes::Failure;
use crate::soap::xml::Limits;
use crate::soap::{request::parse_http_request, response, wsdl, Operation};
use crate::store::{NewAudit, Store};

/// What the handlers share.
pub struct AppState {
    pub provisioning: Provisioning,
    pub public_url: Option<String>,
    pub audit_server_time: bool,
    pub limits: Limits,
    pub sweep_interval: std::time::Duration,
    pub metrics: crate::metrics::Metrics,
    /// Per client address; `None` when the limit is off.
    pub limiter: Option<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// Peers whose `X-Forwarded-For` names the client address.
    pub trusted_proxies: TrustedProxies,
    /// Wakes the e-mail delivery worker; poke it after committing a transaction that queued
    /// mail. A no-op when `smtp_url` is unset (`mail.is_enabled()` is false).
    pub mail: crate::delivery::MailNotifier,
    /// `/health`'s cached write probe.
    pub health: std::sync::Arc<crate::health::Health>,
    /// Rate-limited refusals, aggregated per address and minute.
    pub refusals: crate::refusals::Refusals,
    /// Audit rows older than this are swept; 0 keeps them.
    pub audit_retention_days: u32,
    /// The global limit on calls that run Argon2.
    pub password_gate: PasswordGate,
    /// Request bodies larger than this are refused (HTTP 413).
    pub max_body_bytes: usize,
    /// See `Config::request_timeout_secs`.
    pub request_timeout: std::time::Duration,
    /// See `Config::tls_handshake_timeout_secs`.
    pub tls_handshake_timeout: std::time::Duration,
    /// Open connections at most (before the file-descriptor limit lowers it).
    pub max_connections: usize,
    /// File descriptors kept free of client connections.
    pub reserved_fds: u64,
    /// The Hermod REST front's settings (`[hermod]`).
    pub hermod: crate::hermod::Settings,
}

impl AppState {
    pub fn new(store: Store, config: &Config) -> Self {
        let mail = crate::delivery::MailNotifier::for_config(config);
        let wake = mail.clone();
        let health = crate::health::Health::new(store.clone(), crate::health::PROBE_TTL);
        AppState {
            provisioning: Provisioning::with_clock(store, config.policy(), clock())
                .with_mail_notifier(std::sync::Arc::new(move || wake.notify())),
            public_url: config.public_url.clone(),
            audit_server_time: config.audit_server_time,
            limits: Limits::default(),
            sweep_interval: std::time::Duration::from_secs(config.sweep_interval_secs.max(1)),
            metrics: crate::metrics::Metrics::new(),
            limiter: std::num::NonZeroU32::new(config.rate_limit_per_minute).map(|rate| {
                let burst = std::num::NonZeroU32::new(config.rate_limit_burst).unwrap_or(rate);
                governor::RateLimiter::keyed(governor::Quota::per_minute(rate).allow_burst(burst))
            }),
            trusted_proxies: config.trusted_proxies.clone(),
            mail,
            health,
            refusals: crate::refusals::Refusals::default(),
            audit_retention_days: config.audit_retention_days,
            password_gate: PasswordGate::new(
                config.password_check_concurrency(),
                config.password_check_queue,
                std::time::Duration::from_millis(config.password_check_wait_ms),
            ),
            max_body_bytes: config.max_body_bytes,
            request_timeout: std::time::Duration::from_secs(config.request_timeout_secs),
            tls_handshake_timeout: std::time::Duration::from_secs(
                config.tls_handshake_timeout_secs,
            ),
            max_connections: config.max_connections,
            reserved_fds: crate::overload::reserved_fds(config.pool_size),
            hermod: config.hermod.clone(),
        }
    }
}

/// The protocol's clock: the system's, or in debug builds (the integration tests) the Unix
/// seconds written in the file `PROVD_TEST_CLOCK_FILE` names, read at every call, so a test
/// can move time (lock expiry) without waiting. Release builds ignore the variable.
fn clock() -> crate::lifecycle::Clock {
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os("PROVD_TEST_CLOCK_FILE") {
        return std::sync::Arc::new(move || {
            std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or_else(crate::store::now)
        });
    }
    std::sync::Arc::new(crate::store::now)
}

fn xml(status: HttpStatus, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, TEXT_XML))
        .body(body)
}

/// SOAP 1.1's content type, as every response carries it.
const TEXT_XML: HeaderValue = HeaderValue::from_static("text/xml; charset=utf-8");

fn fault(client: bool, message: &str) -> HttpResponse {
    xml(
        HttpStatus::INTERNAL_SERVER_ERROR,
        response::fault(client, message),
    )
}

/// The address a call comes from: the TCP peer, or behind a trusted proxy the address that
/// `X-Forwarded-For` gives (see [`TrustedProxies::client_addr`]).
fn client_ip(state: &AppState, req: &HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    if state.trusted_proxies.is_empty() {
        return Some(peer);
    }
    // A header value that is not even text is garbage: the peer, as for any garbage.
    let forwarded: Option<Vec<&str>> = req
        .headers()
        .get_all(actix_web::http::header::X_FORWARDED_FOR)
        .map(|v| v.to_str().ok())
        .collect();
    Some(match forwarded {
        Some(values) => state.trusted_proxies.client_addr(peer, &values),
        None => peer.to_canonical(),
    })
}

/// One provisioning call from start to audit row.
struct Outcome {
    body: String,
    command: &'static str,
    status: &'static str,
    audit: Option<NewAudit>,
    /// The call failed because the database could not be reached: writing its audit row
    /// would wait out the same timeout again and fail.
    store_down: bool,
}

/// Runs a call and writes its answer. Its audit row (and the client's address in it) is
/// built only when one is written: always, except for inline calls unless
/// `audit_server_time`.
fn run_call(
    state: &AppState,
    operation: Operation,
    command: &'static str,
    call: Result<Call, Failure>,
    client: Option<std::net::IpAddr>,
) -> Outcome {
    let audited = !matches!(&call, Ok(c) if c.inline()) || state.audit_server_time;
    let mut audit = audited.then(|| NewAudit {
        client_addr: client.map(|ip| ip.to_string()),
        command: command.to_owned(),
        ..NewAudit::default()
    });
    if let (Ok(c), Some(audit)) = (&call, &mut audit) {
        c.audit(&mut AuditFields(audit));
    }
    let mut store_down = false;
    // The real reason of an answer that hides it (generic status codes): audit and log only.
    let mut concealed: Option<String> = None;
    let result: Result<Reply, Failure> = match call {
        Err(f) => Err(f),
        Ok(c) => c.handle(&state.provisioning).map_err(|e| {
            if let ProvisionError::Store(inner) = &e {
                tracing::error!(error = %inner, "store failure");
                store_down = matches!(inner, crate::store::StoreError::Unavailable(_));
            }
            concealed = e.audit_detail().map(str::to_owned);
            Failure::from(&e)
        }),
    };
    let (body, status) = match &result {
        Ok(reply) => {
            if let Some(audit) = &mut audit {
                reply.audit(&mut AuditFields(audit));
            }
            (reply.write(operation), SUCCESS)
        }
        Err(f) => (response::failure(operation, f), f.status.name()),
    };
    if let Some(audit) = &mut audit {
        audit.status = status.to_owned();
        if let Err(f) = &result {
            audit.status_code = f.status.code();
            audit.return_code = f.status.return_code().code();
            audit.detail = Some(concealed.clone().unwrap_or_else(|| f.description.clone()));
        }
    }
    // Successes at debug: at tens of thousands of calls a second, one line each is noise.
    if result.is_ok() {
        tracing::debug!(command, status, "provisioning call");
    } else {
        tracing::info!(
            command,
            status,
            reason = concealed.as_deref().unwrap_or(""),
            "provisioning call failed"
        );
    }
    Outcome {
        body,
        command,
        status,
        audit,
        store_down,
    }
}

/// The status name of a successful call.
const SUCCESS: &str = "STAT_SUCCESS";

/// A request parsed and decoded into its command.
struct Decoded {
    operation: Operation,
    /// The command's name, for logs, metrics and the audit trail.
    command: &'static str,
    call: Result<Call, crate::soap::RequestError>,
}

/// Parses a SOAP request and decodes the command it names (`Err` deserves a SOAP Fault).
fn decode_request(
    body: &[u8],
    content_type: Option<&str>,
    limits: &Limits,
) -> Result<Decoded, crate::soap::WireError> {
    let parsed = parse_http_request(body, content_type, limits)?;
    let operation = parsed.operation;
    Ok(Decoded {
        operation,
        command: parsed.command,
        call: parsed
            .body
            .and_then(|body| crate::commands::decode(operation, &body)),
    })
}

/// Bodies up to this size are parsed on the async worker (well under a millisecond); larger
/// ones on the blocking pool, after being charged to the per-address rate limit.
const INLINE_PARSE_BYTES: usize = 16 * 1024;

/// Takes one call from the per-address rate limit; true when the address is over it.
fn rate_limited(state: &AppState, client: Option<std::net::IpAddr>) -> bool {
    matches!((&state.limiter, client), (Some(l), Some(ip)) if l.check_key(&ip).is_err())
}

/// A SOAP Fault with another HTTP status than 500 and a `Retry-After`, for a refusal that
/// says nothing about the request itself.
fn refusal(status: HttpStatus, retry_after_secs: u64, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, TEXT_XML))
        .insert_header((
            actix_web::http::header::RETRY_AFTER,
            retry_after_secs.to_string(),
        ))
        .body(response::fault(!status.is_server_error(), message))
}

async fn soap(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let now = Instant::now();
    let clock = req
        .conn_data::<Opened>()
        .map_or(now, |o| o.clock_start(now));
    let client = client_ip(&state, &req);
    let body = match crate::overload::read_body(
        &req,
        payload,
        state.max_body_bytes,
        clock + state.request_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(e) => {
            // Refused bodies count towards the per-address limit.
            rate_limited(&state, client);
            return match e {
                BodyError::TimedOut => {
                    state.metrics.fault("request_timeout");
                    // At debug: a flood of slow connections must not become a flood of lines.
                    tracing::debug!("request not complete within request_timeout_secs; closing");
                    HttpResponse::RequestTimeout()
                        .force_close()
                        .content_type("text/plain; charset=utf-8")
                        .body("the request did not arrive within request_timeout_secs\n")
                }
                BodyError::TooLarge(max) => {
                    state.metrics.fault("too_large");
                    HttpResponse::PayloadTooLarge()
                        .force_close()
                        .content_type("text/plain; charset=utf-8")
                        .body(format!(
                            "request bodies are limited to {max} bytes (max_body_bytes)\n"
                        ))
                }
                BodyError::Broken(e) => {
                    tracing::debug!(error = %e, "request body broken off");
                    HttpResponse::BadRequest().force_close().finish()
                }
            };
        }
    };
    let started = Instant::now();
    // A large body is charged to the rate limit before it is parsed: a flood of them from one
    // address stops costing parse time once the address is over its limit.
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let charged = body.len() > INLINE_PARSE_BYTES;
    if charged && rate_limited(&state, client) {
        state.metrics.fault("rate_limited");
        return refusal(
            HttpStatus::TOO_MANY_REQUESTS,
            60,
            "too many requests from this address; retry later",
        );
    }
    let parsed = if charged {
        let st = state.clone();
        let decoded =
            web::block(move || decode_request(&body, content_type.as_deref(), &st.limits));
        match Box::pin(decoded).await {
            Ok(p) => p,
            Err(_) => return fault(false, "the server is shutting down"),
        }
    } else {
        decode_request(&body, content_type.as_deref(), &state.limits)
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "SOAP fault");
            state.metrics.fault(match e {
                crate::soap::WireError::Malformed(_) => "malformed",
                crate::soap::WireError::NotSoap(_) => "not_soap",
                crate::soap::WireError::UnknownOperation(_) => "unknown_operation",
            });
            if !charged {
                rate_limited(&state, client);
            }
            // Every wire error is the sender's: SOAP-ENV:Client.
            return fault(true, &e.to_string());
        }
    };
    let _in_flight = state.metrics.in_flight();
    let Decoded {
        operation,
        command,
        call,
    } = parsed;
    let call = call.map_err(|e| Failure::from(&e));
    let inline = matches!(&call, Ok(c) if c.inline());
    if inline && !state.audit_server_time {
        // Nothing to write: answered here, never behind the blocking pool.
        let outcome = run_call(&state, operation, command, call, client);
        state.metrics.call(
            outcome.command,
            outcome.status,
            started.elapsed().as_secs_f64(),
        );
        return xml(HttpStatus::OK, outcome.body);
    }
    // Boxed: its waits (rate-limit audit, password gate, blocking pool) would otherwise make
    // every request's future as large as theirs.
    Box::pin(queued(
        state.clone(),
        Queued {
            operation,
            command,
            call,
            client,
            started,
            inline,
            charged,
        },
    ))
    .await
}

/// A decoded call that is answered on the blocking pool.
struct Queued {
    operation: Operation,
    command: &'static str,
    call: Result<Call, Failure>,
    client: Option<std::net::IpAddr>,
    started: Instant,
    inline: bool,
    /// Already charged to the rate limit (a large body).
    charged: bool,
}

/// Runs a call on the blocking pool (after the rate limit and, for a password check, the
/// password gate) and writes its audit row there.
async fn queued(state: web::Data<AppState>, queued: Queued) -> HttpResponse {
    let Queued {
        operation,
        command,
        mut call,
        client,
        started,
        inline,
        charged,
    } = queued;
    let limited = !inline && !charged && rate_limited(&state, client);
    if limited {
        call = Err(Failure {
            status: crate::soap::codes::StatusCode::RateLimited,
            description: "too many provisioning calls from this address; retry later".into(),
        });
        if let (Some(ip), Err(f)) = (client, &call) {
            return answer_rate_limited(&state, ip, operation, command, f, started).await;
        }
    }
    // Calls that run Argon2 wait for their turn here, without holding a blocking thread.
    let _permit = match &call {
        Ok(c) if c.checks_password() => match state.password_gate.enter().await {
            Ok(permit) => Some(permit),
            Err(busy) => {
                state.metrics.fault("busy");
                tracing::debug!(?busy, command = %command, "password checks saturated; refused");
                return refusal(
                    HttpStatus::SERVICE_UNAVAILABLE,
                    state.password_gate.retry_after_secs(),
                    "the server is saturated with password checks; retry later",
                );
            }
        },
        _ => None,
    };
    let st = state.clone();
    let done = web::block(move || {
        let outcome = run_call(&st, operation, command, call, client);
        match &outcome.audit {
            // The failure itself is in the log; the answer is STAT_ERROR at once.
            Some(_) if outcome.store_down => {
                tracing::error!(command = %outcome.command, "audit row skipped: the database is unavailable");
            }
            Some(entry) => st.provisioning.store().audit(entry)?,
            None => {}
        }
        Ok::<_, crate::store::StoreError>(outcome)
    })
    .await;
    let done = done.map(|r| {
        r.map(|outcome| {
            let seconds = started.elapsed().as_secs_f64();
            state.metrics.call(outcome.command, outcome.status, seconds);
            outcome.body
        })
    });
    match done {
        Ok(Ok(body)) => xml(HttpStatus::OK, body),
        Ok(Err(e)) => {
            // The call ran but its audit row could not be written: refuse to answer as if
            // nothing happened.
            tracing::error!(error = %e, "audit write failed");
            fault(false, "the server could not record the call; try again")
        }
        Err(_) => fault(false, "the server is shutting down"),
    }
}

/// A rate-limited refusal: answered at once; audited and logged once per address and minute
/// (see [`crate::refusals`]).
async fn answer_rate_limited(
    state: &web::Data<AppState>,
    ip: std::net::IpAddr,
    operation: Operation,
    command: &'static str,
    failure: &Failure,
    started: Instant,
) -> HttpResponse {
    use crate::refusals::Refusal;
    let body = response::failure(operation, failure);
    let status = failure.status.name();
    let entry = NewAudit {
        client_addr: Some(ip.to_string()),
        command: command.to_owned(),
        status: status.into(),
        status_code: failure.status.code(),
        return_code: failure.status.return_code().code(),
        detail: Some(failure.description.clone()),
        ..NewAudit::default()
    };
    if let Refusal::First(closed) = state.refusals.record(ip, crate::store::now(), &entry) {
        tracing::info!(client = %ip, command = %command, "rate-limited; this address's further refusals this minute are counted in one audit row");
        let st = state.clone();
        let _ = web::block(move || {
            let store = st.provisioning.store();
            if let Some(p) = closed {
                p.write(store)?;
            }
            let row = store.audit_at(&entry, crate::store::now())?;
            st.refusals.written(ip, row);
            Ok::<_, crate::store::StoreError>(())
        })
        .await
        .map(|r| r.map_err(|e| tracing::error!(error = %e, "audit write failed")));
    }
    state
        .metrics
        .call(command, status, started.elapsed().as_secs_f64());
    xml(HttpStatus::OK, body)
}

/// Writes the counts of the refusal windows closed at `now` (all with `None`).
fn flush_refusals(state: &AppState, now: Option<i64>) {
    for p in state.refusals.take_closed(now) {
        if let Err(e) = p.write(state.provisioning.store()) {
            tracing::error!(error = %e, "writing aggregated refusals failed");
        }
    }
}

fn service_address(state: &AppState, req: &HttpRequest) -> String {
    if let Some(url) = &state.public_url {
        return url.clone();
    }
    let info = req.connection_info();
    format!("{}://{}/", info.scheme(), info.host())
}

async fn root_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let wants_wsdl = req
        .query_string()
        .split('&')
        .any(|p| p.eq_ignore_ascii_case("wsdl"));
    if !wants_wsdl {
        return HttpResponse::build(HttpStatus::OK)
            .content_type("text/plain; charset=utf-8")
            .body("provd: POST SOAP 1.1 requests here; the WSDL is at /?wsdl\n");
    }
    xml(
        HttpStatus::OK,
        wsdl::with_address(&service_address(&state, &req)),
    )
}

async fn schema(name: web::Path<String>) -> HttpResponse {
    match wsdl::schema(&name) {
        Some(s) => xml(HttpStatus::OK, s.to_owned()),
        None => HttpResponse::NotFound().body("no such schema\n"),
    }
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let status = state.health.status().await;
    match status.is_ok() {
        true => HttpResponse::Ok(),
        false => HttpResponse::ServiceUnavailable(),
    }
    .content_type("application/json")
    .body(status.body())
}

/// Who may read `/metrics` on an app: set on every app [`serve`] builds.
#[derive(Debug, Clone, Copy)]
pub struct MetricsAccess {
    /// Not served here (a separate `admin_listen` serves it).
    pub hidden: bool,
    /// Only to clients connecting from a loopback address.
    pub loopback_only: bool,
}

async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(access) = req.app_data::<MetricsAccess>() {
        if access.hidden {
            return HttpResponse::NotFound().finish();
        }
        // Canonical: on a dual-stack listener (`[::]:8888`) an IPv4 peer is ::ffff:127.0.0.1.
        let loopback = req
            .peer_addr()
            .is_some_and(|a| a.ip().to_canonical().is_loopback());
        if access.loopback_only && !loopback {
            return HttpResponse::Forbidden()
                .content_type("text/plain")
                .body("/metrics is served to loopback clients only; set admin_listen\n");
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// Routes, for `App::configure`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::post().to(soap))
        .route("/metrics", web::get().to(metrics))
        .route("/", web::get().to(root_get))
        .route("/schemas/{name}", web::get().to(schema))
        .route("/health", web::get().to(health));
}

/// How to listen.
pub struct Listener {
    pub address: String,
    pub max_body_bytes: usize,
    pub blocking_threads: usize,
    pub tls: Option<rustls::ServerConfig>,
    /// `admin_listen`: where `/metrics` (and `/health`) are served apart from the SOAP port;
    /// `None`: `/metrics` stays on the SOAP port, for loopback clients only.
    pub admin_address: Option<String>,
}

/// Binds, announces the bound address on standard output (`provd listening on http://ADDR`,
/// or `https://`), and serves until SIGINT or SIGTERM, letting in-flight requests finish.
/// With `delivery`, the e-mail worker runs alongside and stops after the server (finishing
/// the message it is sending).
pub async fn serve(
    state: AppState,
    listener: Listener,
    delivery: Option<crate::delivery::Delivery>,
) -> anyhow::Result<()> {
    // The handlers are installed before anything is announced or served: a SIGTERM that
    // arrives once the server answers must drain, never hit the default action (exit).
    let signals = shutdown_signals();
    let Listener {
        address: listen,
        max_body_bytes,
        blocking_threads,
        tls,
        admin_address,
    } = listener;
    let main_access = MetricsAccess {
        hidden: admin_address.is_some(),
        loopback_only: true,
    };
    let listen = listen.as_str();
    // Connections never exhaust the file descriptors: accept pauses at the cap instead of
    // failing with EMFILE.
    let fd_limit = crate::overload::raise_fd_limit();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let connections =
        crate::overload::connection_cap(state.max_connections, fd_limit, state.reserved_fds);
    let per_worker = (connections / workers).max(1);
    tracing::info!(
        fd_limit = fd_limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX)),
        max_connections = per_worker * workers,
        "connection limits"
    );
    let request_timeout = state.request_timeout;
    let tls_handshake_timeout = state.tls_handshake_timeout;
    let state = web::Data::new(state);
    let sweeper = state.clone();
    let flusher = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(sweeper.sweep_interval);
        loop {
            tick.tick().await;
            if let Some(l) = &sweeper.limiter {
                l.retain_recent();
            }
            let st = sweeper.clone();
            let swept = web::block(move || {
                flush_refusals(&st, Some(crate::store::now()));
                if st.audit_retention_days > 0 {
                    let before = crate::store::now() - i64::from(st.audit_retention_days) * 86_400;
                    match st.provisioning.store().purge_audit(before) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(removed = n, "swept audit rows past retention"),
                        Err(e) => tracing::warn!(error = %e, "audit retention sweep failed"),
                    }
                }
                st.provisioning.sweep()
            });
            match swept.await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(removed = n, "swept expired registrations"),
                Ok(Err(e)) => tracing::warn!(error = %e, "sweep failed"),
                Err(_) => break,
            }
        }
    });
    // The REST front is built once the bound address is known (its default public URL).
    let hermod: std::sync::Arc<std::sync::OnceLock<web::Data<crate::hermod::Hermod>>> =
        Default::default();
    let hermod_slot = hermod.clone();
    let hermod_state = state.clone();
    let admin_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(max_body_bytes))
            .app_data(main_access)
            .configure(routes)
            .configure(|cfg| {
                if let Some(front) = hermod_slot.get() {
                    crate::hermod::mount(cfg, front);
                }
            })
    })
    .shutdown_timeout(30)
    // SIGINT and SIGTERM are handled below: both drain (actix's own SIGINT stops at once).
    .disable_signals()
    .worker_max_blocking_threads(blocking_threads.max(1))
    .workers(workers)
    .max_connections(per_worker)
    // The headers of a connection's first request; the body's deadline is kept by the
    // handler, counted from the accept recorded here.
    .client_request_timeout(request_timeout)
    .on_connect(|_, ext| {
        ext.insert(Opened::now());
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = match tls {
        // Handshakes in progress may take every connection slot, so that connections that
        // never send a ClientHello do not keep real clients waiting; each gets its own short
        // deadline.
        Some(config) => server
            .tls_handshake_timeout(tls_handshake_timeout)
            .max_connection_rate(per_worker)
            .bind_rustls_0_23(listen, config),
        None => server.bind(listen),
    }
    .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addrs: Vec<SocketAddr> = server.addrs();
    if hermod_state.hermod.enabled {
        let bound = addrs.first().map(|a| format!("{scheme}://{a}"));
        let mut front = crate::hermod::start(
            hermod_state.provisioning.store().clone(),
            hermod_state.hermod.clone(),
            hermod_state.public_url.as_deref(),
            bound.as_deref().unwrap_or(""),
        )?;
        front.metrics = Some(hermod_state.metrics.clone());
        let _ = hermod.set(web::Data::new(front));
    }
    for a in &addrs {
        println!("provd listening on {scheme}://{a}");
    }
    let admin = match &admin_address {
        Some(address) => {
            let state = admin_state;
            let admin = HttpServer::new(move || {
                App::new()
                    .app_data(state.clone())
                    .app_data(MetricsAccess {
                        hidden: false,
                        loopback_only: false,
                    })
                    .route("/metrics", web::get().to(metrics))
                    .route("/health", web::get().to(health))
            })
            .workers(1)
            .shutdown_timeout(5)
            // provd's own handler stops this server too (after the main one has drained).
            .disable_signals()
            .bind(address.as_str())
            .map_err(|e| anyhow::anyhow!("cannot listen on admin_listen {address}: {e}"))?;
            for a in admin.addrs() {
                // Not println!: whoever read the first line may have closed the pipe.
                use std::io::Write;
                let _ = writeln!(std::io::stdout(), "provd admin listening on http://{a}");
            }
            let admin = admin.run();
            let handle = admin.handle();
            actix_web::rt::spawn(admin);
            Some(handle)
        }
        None => None,
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let (stop_mail, stop_rx) = tokio::sync::watch::channel(false);
    let hermod_worker = hermod.get().map(|front| {
        actix_web::rt::spawn(crate::hermod::worker::run(
            front.clone().into_inner(),
            stop_rx.clone(),
        ))
    });
    let mailer = delivery.map(|d| actix_web::rt::spawn(d.run(stop_rx)));
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        let signal = shutdown_signal(signals).await;
        tracing::info!(signal, "stopping: finishing the requests in flight");
        handle.stop(true).await;
    });
    let served = server.await;
    flush_refusals(&flusher, None);
    if let Some(admin) = admin {
        admin.stop(true).await;
    }
    let _ = stop_mail.send(true);
    if let Some(worker) = mailer {
        let _ = worker.await;
    }
    if let Some(worker) = hermod_worker {
        let _ = worker.await;
    }
    served?;
    Ok(())
}

/// Waits for SIGINT or SIGTERM; the name of the one that came.
type Signals = (tokio::signal::unix::Signal, tokio::signal::unix::Signal);

/// Installs the SIGINT and SIGTERM handlers now (a signal that comes later is queued for
/// [`shutdown_signal`]); `None` when they cannot be installed.
fn shutdown_signals() -> Option<Signals> {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(int), Ok(term)) => Some((int, term)),
        _ => {
            tracing::error!("cannot install the SIGINT/SIGTERM handlers");
            None
        }
    }
}

/// The first of SIGINT and SIGTERM; never, without handlers.
async fn shutdown_signal(signals: Option<Signals>) -> &'static str {
    let Some((mut int, mut term)) = signals else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future a handler returns, from its type alone.
    fn future_size<A, B, C, Fut, F: Fn(A, B, C) -> Fut>(_: F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// actix allocates every request's handler future: the waits of calls answered on the
    /// blocking pool are boxed apart, so that an inline call's stays small (1,264 bytes before).
    #[test]
    fn the_soap_handler_future_stays_small() {
        let size = future_size(super::soap);
        assert!(size <= 768, "soap's future is {size} bytes");
    }
}
