//! `GET /rest/ms/{bid}/{mid}` (spec section 4): the message the app displays.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{run, token};
use crate::hermod::service::Hermod;

pub const AUDIT: &str = "HERMOD_MS_GET";

pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/rest/ms/{bid}/{mid}", web::get().to(handle));
}

#[utoipa::path(get, operation_id = "box_get", path = "/rest/ms/{bid}/{mid}", tag = "mailbox",
    params(("bid" = String, Path), ("mid" = String, Path), ("token" = Option<String>, Query, description = "the one-time token (or header X-Hermod-Token)")),
    responses((status = 200, body = crate::hermod::wire::Message),
              (status = "4XX", body = crate::hermod::wire::ErrorBody)))]
pub(crate) async fn handle(
    front: web::Data<Hermod>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let token = token(&req);
    let (bid, mid) = path.into_inner();
    run(front, &req, AUDIT, move |h, _| {
        h.box_get(&bid, &mid, token?.as_deref())
    })
    .await
}
