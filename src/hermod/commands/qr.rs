//! `GET /rest/command/{id}/qr.svg` (spec section 3.4): the destination URI as an SVG QR
//! code, only while the command is IN_PROGRESS; `Cache-Control: no-store` (it embeds the
//! one-time token).

use actix_web::{web, HttpRequest, HttpResponse};

use super::api_key;
use crate::hermod::service::Hermod;

pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/rest/command/{id}/qr.svg", web::get().to(handle));
}

#[utoipa::path(get, operation_id = "qr", path = "/rest/command/{id}/qr.svg", tag = "integrator",
    params(("id" = String, Path), ("X-Api-Key" = String, Header, description = "base64(clientId:key)")),
    responses((status = 200, content_type = "image/svg+xml", body = String),
              (status = "4XX", body = crate::hermod::wire::ErrorBody)))]
pub(crate) async fn handle(
    front: web::Data<Hermod>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let key = api_key(&req);
    let id = id.into_inner();
    let st = front.clone();
    let done = web::block(move || {
        let client = st.authenticate(key.as_deref())?;
        let uri = st.destination_uri(&client, &id)?;
        crate::hermod::qr::svg(&uri)
    })
    .await;
    match done {
        Ok(Ok(svg)) => HttpResponse::Ok()
            .content_type("image/svg+xml")
            .insert_header(("Cache-Control", "no-store"))
            .body(svg),
        Ok(Err(e)) => actix_web::ResponseError::error_response(&e),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}
