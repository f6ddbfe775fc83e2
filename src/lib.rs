//! provd: a OneSpan-compatible SOAP provisioning server for mobile authenticators.
//!
//! Layers, each with its own error type; data flows one way, bytes -> [`soap`] or [`hermod`]
//! (parse) -> [`commands`] (one module per SOAP command) -> [`lifecycle`] + [`protocol`] ->
//! [`store`] -> typed reply -> writer:
//! * [`soap`]: SOAP 1.1 envelopes, the `PROVISIONCMD_*` / `PROVFLD_*` vocabulary, the typed
//!   attribute reader and the response writer, status codes, the WSDL. Never touches the store.
//! * [`commands`]: one module per SOAP command (decode, handle, reply, write, audit fields),
//!   registered in one table.
//! * [`lifecycle`]: what the commands share about users, authenticators and registrations.
//! * [`protocol`]: the protocols' cryptography (SRP, DSAPP/CPace, MDL, TOTP, record
//!   protection, Luhn); never XML, JSON or SQL.
//! * [`hermod`]: the REST front. [`store`]: diesel over SQLite or PostgreSQL.
//! * [`server`]: actix-web, the HTTP endpoint; [`cli`]: the `provd` command line;
//!   [`client`]: the reference mobile app.
//! * [`delivery`]: the worker that sends the outbox's e-mail through SMTP.

pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod forwarded;
pub mod health;
pub mod hermod;
pub mod lifecycle;
pub mod metrics;
pub mod overload;
pub mod protocol;
pub mod pskc;
pub mod refusals;
pub mod replay;
pub mod server;
pub mod soap;
pub mod store;
pub mod types;
