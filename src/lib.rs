//! provd: a OneSpan-compatible SOAP provisioning server for mobile authenticators.
//!
//! Layers, each with its own error type:
//! * [`wire`]: SOAP 1.1 envelopes, the `PROVISIONCMD_*` / `PROVFLD_*` vocabulary, the WSDL.
//! * [`protocol`]: what the commands do (DSAPP-SRP registration, server time, ...); never XML.
//! * [`store`]: diesel over SQLite or PostgreSQL; never seen by the SOAP layer.
//! * [`server`]: actix-web, the HTTP endpoint; [`cli`]: the `provd` command line.
//! * [`delivery`]: the worker that sends the outbox's e-mail through SMTP.

pub mod cli;
pub mod client;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod forwarded;
pub mod health;
pub mod hermod;
pub mod metrics;
pub mod overload;
pub mod protocol;
pub mod pskc;
pub mod refusals;
pub mod replay;
pub mod server;
pub mod store;
pub mod types;
pub mod wire;
