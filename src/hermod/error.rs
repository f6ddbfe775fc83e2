//! The one error type of the REST front and its mapping to HTTP status and the spec's
//! error codes (section 9). Every handler returns `Result<_, ApiError>`; the body is always
//! `{"status","error","message","field"?}` and never echoes a token, key or JWS.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::verify::Rejection;
use super::wire::ErrorBody;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_value", message).field(field)
    }

    pub fn unsupported(field: &str, message: impl Into<String>) -> Self {
        Self::new(400, "unsupported_value", message).field(field)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "unauthorized", "missing or invalid X-Api-Key")
    }

    pub fn unknown_command() -> Self {
        Self::new(404, "unknown_command", "no such command")
    }

    /// The mailbox's one answer for an unknown box, message or a wrong token.
    pub fn not_found() -> Self {
        Self::new(404, "not_found", "no such message")
    }

    pub fn gone() -> Self {
        Self::new(410, "gone", "this link has been used or has expired")
    }

    pub fn too_large() -> Self {
        Self::new(413, "too_large", "the request body is too large")
    }

    /// A body that serde refused: the error names the member when serde does.
    pub fn from_json(e: &serde_json::Error, mailbox: bool) -> Self {
        let text = e.to_string();
        let name = text
            .split('`')
            .nth(1)
            .map(str::to_owned)
            .filter(|n| !n.is_empty());
        let (code, keep_field) = if mailbox {
            ("malformed_body", true)
        } else if text.starts_with("unknown field") {
            ("unknown_field", true)
        } else if text.starts_with("duplicate field") {
            ("duplicate_field", true)
        } else if text.starts_with("missing field") {
            ("missing_field", true)
        } else if e.is_data() {
            ("invalid_value", false)
        } else {
            ("invalid_json", false)
        };
        let mut err = Self::new(400, code, text.clone());
        if keep_field {
            err.field = name;
        }
        err
    }

    pub fn rejected(r: &Rejection) -> Self {
        let mut e = Self::new(422, r.code.as_str(), r.detail.clone());
        e.field = r.field.clone();
        e
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status: self.status,
            error: self.code.to_owned(),
            message: self.message.clone(),
            field: self.field.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::error!(error = %e, "hermod: store unavailable");
                Self::new(
                    503,
                    "store_unavailable",
                    "the database is unavailable; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "hermod: store failure");
                Self::new(
                    500,
                    "internal_error",
                    "the server could not complete the request",
                )
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .insert_header(("Cache-Control", "no-store"))
            .json(self.body())
    }
}
