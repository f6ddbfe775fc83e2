//! `POST /rest/command/provision` (spec section 3.1).

use actix_web::{web, HttpRequest, HttpResponse};

use super::{api_key, json_body, run};
use crate::hermod::model;
use crate::hermod::service::Hermod;
use crate::hermod::wire::ProvisionRequest;

pub const AUDIT: &str = "HERMOD_PROVISION";

pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/rest/command/provision", web::post().to(handle));
}

#[utoipa::path(post, operation_id = "provision", path = "/rest/command/provision", tag = "integrator",
    request_body = crate::hermod::wire::ProvisionRequest,
    params(("X-Api-Key" = String, Header, description = "base64(clientId:key)")),
    responses((status = 200, body = crate::hermod::wire::CommandView),
              (status = "4XX", body = crate::hermod::wire::ErrorBody)))]
pub(crate) async fn handle(
    front: web::Data<Hermod>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let key = api_key(&req);
    let parsed = json_body::<ProvisionRequest>(&req, &body, false);
    run(front, &req, AUDIT, move |h, audit| {
        let client = h.authenticate(key.as_deref())?;
        let spec = model::check(parsed?)?;
        audit.user_id = Some(spec.userid.clone());
        let view = h.provision(&client, &spec)?;
        audit.reference = Some(view.command_id.clone());
        Ok(view)
    })
    .await
}
