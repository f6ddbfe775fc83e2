//! `DELETE /rest/command/{id}` (spec section 3.3).

use actix_web::{web, HttpRequest, HttpResponse};

use super::{api_key, run};
use crate::hermod::service::Hermod;

pub const AUDIT: &str = "HERMOD_CANCEL";

pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/rest/command/{id}", web::delete().to(handle));
}

#[utoipa::path(delete, operation_id = "cancel", path = "/rest/command/{id}", tag = "integrator",
    params(("id" = String, Path), ("X-Api-Key" = String, Header, description = "base64(clientId:key)")),
    responses((status = 200, body = crate::hermod::wire::CommandStatus),
              (status = "4XX", body = crate::hermod::wire::ErrorBody)))]
pub(crate) async fn handle(
    front: web::Data<Hermod>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let key = api_key(&req);
    let id = id.into_inner();
    run(front, &req, AUDIT, move |h, audit| {
        let client = h.authenticate(key.as_deref())?;
        audit.reference = Some(id.clone());
        h.cancel(&client, &id)
    })
    .await
}
