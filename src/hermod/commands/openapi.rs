//! `GET /openapi.json`: the OpenAPI document of the front, generated from the code (utoipa)
//! and pinned by a test against `fixtures/hermod/openapi.json`.

use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::hermod::wire;

#[derive(OpenApi)]
#[openapi(
    info(title = "provd Hermod-style REST front", description = "Spec: hermod.md. Paths are relative to the front's context path (default /hermod)."),
    servers((url = "/hermod")),
    paths(
        super::provision::handle,
        super::status::handle,
        super::cancel::handle,
        super::qr::handle,
        super::box_list::handle,
        super::box_get::handle,
        super::box_answer::handle,
    ),
    components(schemas(
        wire::ProvisionRequest, wire::CommandView, wire::CommandStatus, wire::Callback,
        wire::BoxListing, wire::Message, wire::Answer, wire::AnswerAccepted, wire::ErrorBody
    ))
)]
pub struct Doc;

/// The document as served.
pub fn document() -> String {
    Doc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(handle));
}

async fn handle() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

#[cfg(test)]
mod tests {
    /// The served document is pinned: a change to the API shows up as a diff of this file.
    /// Re-bless with `PROVD_BLESS=1 cargo test --lib hermod::commands::openapi`.
    #[test]
    fn the_document_is_pinned() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hermod/openapi.json");
        let doc = super::document();
        if std::env::var("PROVD_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(path, &doc).unwrap();
        }
        let pinned = std::fs::read_to_string(path).expect("fixtures/hermod/openapi.json");
        assert_eq!(
            doc, pinned,
            "the OpenAPI document changed; re-bless and review the diff"
        );
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert!(v["paths"]["/rest/command/provision"]["post"].is_object());
        assert!(v["paths"]["/rest/ms/{bid}/{mid}"]["post"].is_object());
    }
}
