//! The HTTP endpoint (actix-web): `POST /` for SOAP, `GET /?wsdl`, `GET /schemas/{name}`,
//! `GET /health`. Parsing happens on the async worker; protocol and database work on the
//! blocking pool.

use std::net::SocketAddr;
use std::time::Instant;

use actix_web::http::header::ContentType;
use actix_web::http::StatusCode as HttpStatus;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

use crate::config::Config;
use crate::forwarded::TrustedProxies;
use crate::protocol::{Call, ProvisionError, Provisioning, Reply};
use crate::store::{NewAudit, Store};
use crate::wire::codes::Failure;
use crate::wire::xml::Limits;
use crate::wire::{request::parse_http_request, response, wsdl, Operation};

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
}

impl AppState {
    pub fn new(store: Store, config: &Config) -> Self {
        let mail = crate::delivery::MailNotifier::for_config(config);
        let wake = mail.clone();
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
        }
    }
}

/// The protocol's clock: the system's, or in debug builds (the integration tests) the Unix
/// seconds written in the file `PROVD_TEST_CLOCK_FILE` names, read at every call, so a test
/// can move time (lock expiry) without waiting. Release builds ignore the variable.
fn clock() -> crate::protocol::Clock {
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
        .insert_header(ContentType(mime_text_xml()))
        .body(body)
}

fn mime_text_xml() -> actix_web::mime::Mime {
    "text/xml; charset=utf-8"
        .parse()
        .expect("a valid mime type")
}

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
    command: String,
    status: String,
    audit: Option<NewAudit>,
    /// The call failed because the database could not be reached: writing its audit row
    /// would wait out the same timeout again and fail.
    store_down: bool,
}

fn run_call(
    state: &AppState,
    operation: Operation,
    command: String,
    call: Result<Call, Failure>,
    client_addr: Option<String>,
) -> Outcome {
    let mut audit = NewAudit {
        client_addr,
        command,
        ..NewAudit::default()
    };
    let audited = !matches!(call, Ok(Call::ServerTime)) || state.audit_server_time;
    if let Ok(c) = &call {
        if let Some((user, domain)) = c.audit_user() {
            audit.user_id = Some(user.to_string());
            audit.domain = domain.map(|d| d.to_string());
        }
        audit.registration_id = c.audit_registration().map(|r| r.to_string());
    }
    let mut store_down = false;
    // The real reason of an answer that hides it (generic status codes): audit and log only.
    let mut concealed: Option<String> = None;
    let result: Result<Reply, Failure> = match call {
        Err(f) => Err(f),
        Ok(c) => state.provisioning.handle(c).map_err(|e| {
            if let ProvisionError::Store(inner) = &e {
                tracing::error!(error = %inner, "store failure");
                store_down = matches!(inner, crate::store::StoreError::Unavailable(_));
            }
            concealed = e.audit_detail().map(str::to_owned);
            Failure::from(&e)
        }),
    };
    let body = match &result {
        Ok(reply) => {
            match reply {
                Reply::SrpRegistered(r) => {
                    audit.serial_no = Some(r.serial_no.to_string());
                    audit.registration_id = Some(r.registration_id.to_string());
                    audit.domain = Some(r.domain.to_string());
                }
                Reply::SrpActivated(a) => {
                    audit.serial_no = Some(a.serial_no.to_string());
                    audit.user_id = Some(a.user_id.to_string());
                    audit.domain = Some(a.domain.to_string());
                }
                Reply::Registered(r) => {
                    audit.serial_no = Some(r.serial_no.to_string());
                    audit.domain = Some(r.domain.to_string());
                }
                Reply::DsappRegistered(r) => {
                    audit.serial_no = Some(r.serial_no.to_string());
                    audit.registration_id = Some(r.registration_id.to_string());
                    audit.domain = Some(r.domain.to_string());
                }
                Reply::Activated(a) | Reply::DsappActivated(a) => {
                    audit.serial_no = Some(a.serial_no.to_string());
                    audit.user_id = Some(a.user_id.to_string());
                    audit.domain = Some(a.domain.to_string());
                }
                Reply::MdlRegistered(r) => {
                    audit.serial_no = Some(r.serial_no.to_string());
                    audit.registration_id = Some(r.registration_id.to_string());
                    audit.domain = Some(r.domain.to_string());
                }
                Reply::MdlDeviceAdded(d) => {
                    audit.serial_no = Some(d.serial_no.to_string());
                }
                Reply::MdlActivated(a) => {
                    audit.serial_no = Some(a.serial_no.to_string());
                    audit.user_id = Some(a.user_id.to_string());
                    audit.domain = Some(a.domain.to_string());
                }
                _ => {}
            }
            audit.status = "STAT_SUCCESS".into();
            response::success(operation, reply)
        }
        Err(f) => {
            audit.status = f.status.name().into();
            audit.status_code = f.status.code();
            audit.return_code = f.status.return_code().code();
            audit.detail = Some(concealed.clone().unwrap_or_else(|| f.description.clone()));
            response::failure(operation, f)
        }
    };
    // Successes at debug: at tens of thousands of calls a second, one line each is noise.
    if result.is_ok() {
        tracing::debug!(command = %audit.command, status = %audit.status, "provisioning call");
    } else {
        tracing::info!(command = %audit.command, status = %audit.status, reason = concealed.as_deref().unwrap_or(""), "provisioning call failed");
    }
    Outcome {
        body,
        command: audit.command.clone(),
        status: audit.status.clone(),
        audit: audited.then_some(audit),
        store_down,
    }
}

async fn soap(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed = match parse_http_request(&body, content_type, &state.limits) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "SOAP fault");
            state.metrics.fault(match e {
                crate::wire::WireError::Malformed(_) => "malformed",
                crate::wire::WireError::NotSoap(_) => "not_soap",
                crate::wire::WireError::UnknownOperation(_) => "unknown_operation",
            });
            // Every wire error is the sender's: SOAP-ENV:Client.
            return fault(true, &e.to_string());
        }
    };
    let _in_flight = state.metrics.in_flight();
    let client = client_ip(&state, &req);
    let mut call = parsed.call.map_err(|e| Failure::from(&e));
    let limited = !matches!(call, Ok(Call::ServerTime))
        && matches!((&state.limiter, client), (Some(l), Some(ip)) if l.check_key(&ip).is_err());
    if limited {
        call = Err(Failure {
            status: crate::wire::codes::StatusCode::RateLimited,
            description: "too many provisioning calls from this address; retry later".into(),
        });
    }
    let client_addr = client.map(|ip| ip.to_string());
    let st = state.clone();
    let operation = parsed.operation;
    let command = parsed.command;
    let done = web::block(move || {
        let outcome = run_call(&st, operation, command, call, client_addr);
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
            state
                .metrics
                .call(&outcome.command, &outcome.status, seconds);
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
    let st = state.clone();
    match web::block(move || st.provisioning.store().ping()).await {
        Ok(Ok(())) => HttpResponse::Ok()
            .content_type("application/json")
            .body(r#"{"status":"ok"}"#),
        _ => HttpResponse::ServiceUnavailable()
            .content_type("application/json")
            .body(r#"{"status":"database unavailable"}"#),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
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
    let Listener {
        address: listen,
        max_body_bytes,
        blocking_threads,
        tls,
    } = listener;
    let listen = listen.as_str();
    let state = web::Data::new(state);
    let sweeper = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(sweeper.sweep_interval);
        loop {
            tick.tick().await;
            if let Some(l) = &sweeper.limiter {
                l.retain_recent();
            }
            let st = sweeper.clone();
            match web::block(move || st.provisioning.sweep()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(removed = n, "swept expired registrations"),
                Ok(Err(e)) => tracing::warn!(error = %e, "sweep failed"),
                Err(_) => break,
            }
        }
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(max_body_bytes))
            .configure(routes)
    })
    .shutdown_timeout(30)
    .worker_max_blocking_threads(blocking_threads.max(1));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = match tls {
        Some(config) => server.bind_rustls_0_23(listen, config),
        None => server.bind(listen),
    }
    .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addrs: Vec<SocketAddr> = server.addrs();
    for a in &addrs {
        println!("provd listening on {scheme}://{a}");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let (stop_mail, stop_rx) = tokio::sync::watch::channel(false);
    let mailer = delivery.map(|d| actix_web::rt::spawn(d.run(stop_rx)));
    let served = server.run().await;
    let _ = stop_mail.send(true);
    if let Some(worker) = mailer {
        let _ = worker.await;
    }
    served?;
    Ok(())
}
