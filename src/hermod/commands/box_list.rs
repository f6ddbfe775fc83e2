//! `GET /rest/ms/{bid}` (spec section 4): the pending messages of a box.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{run, token};
use crate::hermod::service::Hermod;

pub const AUDIT: &str = "HERMOD_MS_LIST";

pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/rest/ms/{bid}", web::get().to(handle));
}

#[utoipa::path(get, operation_id = "box_list", path = "/rest/ms/{bid}", tag = "mailbox",
    params(("bid" = String, Path), ("token" = Option<String>, Query, description = "the one-time token (or header X-Hermod-Token)")),
    responses((status = 200, body = crate::hermod::wire::BoxListing),
              (status = "4XX", body = crate::hermod::wire::ErrorBody)))]
pub(crate) async fn handle(
    front: web::Data<Hermod>,
    req: HttpRequest,
    bid: web::Path<String>,
) -> HttpResponse {
    let token = token(&req);
    let bid = bid.into_inner();
    run(front, &req, AUDIT, move |h, _| {
        h.box_list(&bid, token?.as_deref())
    })
    .await
}
