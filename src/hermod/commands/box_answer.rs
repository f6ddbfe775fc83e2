//! `POST /rest/ms/{bid}/{mid}` (spec sections 4 and 6): the app accepts (JWS) or declines.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{json_body, run, token};
use crate::hermod::service::Hermod;
use crate::hermod::wire::Answer;

pub const AUDIT: &str = "HERMOD_MS_POST";

pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/rest/ms/{bid}/{mid}", web::post().to(handle));
}

#[utoipa::path(post, operation_id = "box_answer", path = "/rest/ms/{bid}/{mid}", tag = "mailbox",
    request_body = crate::hermod::wire::Answer,
    params(("bid" = String, Path), ("mid" = String, Path), ("token" = Option<String>, Query, description = "the one-time token (or header X-Hermod-Token)")),
    responses((status = 200, body = crate::hermod::wire::AnswerAccepted),
              (status = "4XX", body = crate::hermod::wire::ErrorBody)))]
pub(crate) async fn handle(
    front: web::Data<Hermod>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let token = token(&req);
    let answer = json_body::<Answer>(&req, &body, true);
    let (bid, mid) = path.into_inner();
    run(front, &req, AUDIT, move |h, audit| {
        audit.reference = Some(bid.clone());
        h.box_answer(&bid, &mid, token?.as_deref(), &answer?)
    })
    .await
}
