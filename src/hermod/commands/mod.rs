//! The HTTP commands of the REST front, one file each: the route, the handler that reads the
//! request into typed input, calls [`super::service::Hermod`] on a blocking thread and
//! writes the answer, and the audit name. Registering a command is one line in [`ALL`].

mod box_answer;
mod box_get;
mod box_list;
mod cancel;
pub mod openapi;
mod provision;
mod qr;
mod status;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::error::ApiError;
use super::service::Hermod;
use crate::store::NewAudit;

/// Every command's `register`, in routing order.
pub const ALL: &[fn(&mut web::ServiceConfig)] = &[
    provision::register,
    status::register,
    cancel::register,
    qr::register,
    box_list::register,
    box_get::register,
    box_answer::register,
    openapi::register,
];

/// Largest request body of the front.
pub const MAX_BODY: usize = 64 * 1024;

/// What a command reports for its audit row.
#[derive(Default)]
pub struct Audit {
    pub user_id: Option<String>,
    pub reference: Option<String>,
}

/// Runs `f` on a blocking thread, writes the audit row (`command`, the outcome code, never a
/// token or JWS), and answers JSON; mailbox answers carry `Cache-Control: no-store`.
pub async fn run<T, F>(
    front: web::Data<Hermod>,
    req: &HttpRequest,
    command: &'static str,
    f: F,
) -> HttpResponse
where
    T: Serialize + Send + 'static,
    F: FnOnce(&Hermod, &mut Audit) -> Result<T, ApiError> + Send + 'static,
{
    let started = std::time::Instant::now();
    let client_addr = req.peer_addr().map(|a| a.ip().to_string());
    let st = front.clone();
    let done = web::block(move || {
        let mut audit = Audit::default();
        let result = f(&st, &mut audit);
        let (status, detail) = match &result {
            Ok(_) => ("ok".to_owned(), None),
            Err(e) => (
                e.code.to_owned(),
                Some(e.message.chars().take(300).collect()),
            ),
        };
        let row = NewAudit {
            client_addr,
            command: command.to_owned(),
            user_id: audit.user_id,
            registration_id: audit.reference,
            status,
            status_code: result
                .as_ref()
                .map_or_else(|e| i32::from(e.status), |_| 200),
            detail,
            ..NewAudit::default()
        };
        if let Err(e) = st.store.audit(&row) {
            tracing::error!(error = %e, "hermod: audit write failed");
        }
        result
    })
    .await;
    let result = done.unwrap_or_else(|_| {
        Err(ApiError::new(
            503,
            "store_unavailable",
            "the server is shutting down",
        ))
    });
    if let Some(m) = &front.metrics {
        let status = result.as_ref().map_or_else(|e| e.code, |_| "ok");
        m.call(command, status, started.elapsed().as_secs_f64());
    }
    match result {
        Ok(body) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(body),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

/// The `X-Api-Key` header.
pub fn api_key(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("X-Api-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The mailbox token: query `token` or header `X-Hermod-Token`; both and different → 400.
pub fn token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let query = req
        .query_string()
        .split('&')
        .find_map(|p| p.strip_prefix("token="))
        .map(str::to_owned);
    let header = req
        .headers()
        .get("X-Hermod-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match (query, header) {
        (Some(q), Some(h)) if q != h => Err(ApiError::new(
            400,
            "malformed_body",
            "token given twice with different values",
        )),
        (q, h) => Ok(q.or(h)),
    }
}

/// A JSON body: size and media type checked.
pub fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
    mailbox: bool,
) -> Result<T, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::too_large());
    }
    let ct = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            "send application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::from_json(&e, mailbox))
}
