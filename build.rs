//! Tells the integration tests whether PostgreSQL runs are configured, so that a run without
//! them reports an ignored test instead of passing silently.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(provd_pg_tests)");
    println!("cargo:rerun-if-env-changed=PROVD_TEST_POSTGRES_URL");
    let url_set = std::env::var("PROVD_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty());
    let postgres_built = std::env::var_os("CARGO_FEATURE_POSTGRES").is_some();
    if url_set && postgres_built {
        println!("cargo:rustc-cfg=provd_pg_tests");
    } else if url_set {
        println!(
            "cargo:warning=PROVD_TEST_POSTGRES_URL is set but the `postgres` feature is off: \
             the PostgreSQL tests will not run"
        );
    }
}
