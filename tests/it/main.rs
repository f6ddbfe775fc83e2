//! The integration tests, one binary: each module drives real `provd serve` processes over
//! HTTP, on SQLite and, when `PROVD_TEST_POSTGRES_URL` is set, on PostgreSQL too.

mod common;

mod audit;
mod crash;
mod delivery;
mod dsapp;
mod fixtures;
mod harness_tools;
mod hermod;
mod independent_srp;
mod lifecycle;
mod mail;
mod master_key;
mod mdl;
mod operator;
mod overload;
#[cfg(feature = "postgres")]
mod pg_restart;
mod protocol_vectors;
mod provisioning;
mod shutdown;
mod srp;
mod standard;
mod storage_faults;
mod wire_fidelity;

/// Says in the test output which backends ran: without `PROVD_TEST_POSTGRES_URL` this test
/// is reported as ignored, with the reason, so a run that skipped PostgreSQL is visible.
#[test]
#[cfg_attr(
    not(provd_pg_tests),
    ignore = "PROVD_TEST_POSTGRES_URL is not set (or the `postgres` feature is off): every test ran on SQLite only"
)]
fn backends_postgres_included() {
    assert!(common::backends().contains(&common::Backend::Postgres));
}
