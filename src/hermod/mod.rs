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
pub mod settings;
pub mod verify;
pub mod wire;

pub use settings::Settings;
