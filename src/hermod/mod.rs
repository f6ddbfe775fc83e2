//! The Hermod-style REST front (spec `hermod.md`): an integrator posts a provision command,
//! the user's app fetches it from a one-time mailbox, answers with a JWS that an attestation
//! key signs over proof-of-possession JWS of every generated key, provd verifies and stores
//! the keys, and a callback tells the integrator.
//!
//! Layout, one concern per module:
//! * [`wire`]: the JSON wire types, nothing else; [`model`]: the typed, checked command.
//! * [`jws`], [`csr`]: parsing and cryptography (ring), no HTTP, no store;
//!   [`verify`]: the rules of section 6 over parsed inputs.
//! * [`service`]: the state machine over the store (`crate::store::hermod`).
//! * [`commands`]: one file per HTTP command; registering one is one line in its table.
//! * [`worker`]: callback delivery and the sweeper; [`error`]: the one error mapping.

pub mod csr;
pub mod error;
pub mod jws;
pub mod model;
pub mod qr;
pub mod settings;
pub mod verify;
pub mod wire;

pub use settings::Settings;

pub mod client;
pub mod commands;
pub mod service;
pub mod trust;
pub mod worker;

pub use service::Hermod;

use actix_web::web;

/// Mounts the front under its context path.
pub fn mount(cfg: &mut web::ServiceConfig, front: &web::Data<Hermod>) {
    let mut scope = web::scope(&front.settings.context_path).app_data(front.clone());
    for register in commands::ALL {
        scope = scope.configure(register);
    }
    cfg.service(scope);
}

/// The front for a server that listens at `bound` (e.g. `http://127.0.0.1:8888`): loads the
/// trust-store file if one is configured.
pub fn start(
    store: crate::store::Store,
    settings: Settings,
    provd_public_url: Option<&str>,
    bound: &str,
) -> anyhow::Result<Hermod> {
    let base = match (&settings.public_url, provd_public_url) {
        (None, None) => format!("{}{}", bound.trim_end_matches('/'), settings.context_path),
        _ => settings.public_base(provd_public_url, bound),
    };
    let clock: service::Clock = store.clock();
    if let Some(path) = &settings.trust_store {
        let loaded = trust::load_file(&store, path, store.now())?;
        tracing::info!(entries = loaded.len(), "hermod: trust store loaded");
    }
    Ok(Hermod::new(store, settings, base, clock))
}
