//! `DELETE /rest/command/{id}` (spec section 3.3).

use actix_web::{web, HttpRequest, HttpResponse};

use super::{api_key, run};
use crate::hermod::service::Hermod;

pub const AUDIT: &str = "HERMOD_CANCEL";

pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/rest/command/{id}", web::delete().to(handle));
}

async fn handle(front: web::Data<Hermod>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let key = api_key(&req);
    let id = id.into_inner();
    run(front, &req, AUDIT, move |h, audit| {
        let client = h.authenticate(key.as_deref())?;
        audit.reference = Some(id.clone());
        h.cancel(&client, &id)
    })
    .await
}
