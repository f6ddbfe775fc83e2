//! Tells the integration tests whether PostgreSQL runs are configured, so that a run without
//! them reports an ignored test instead of passing silently.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(provd_pg_tests)");
    println!("cargo:rerun-if-env-changed=PROVD_TEST_POSTGRES_URL");
    if std::env::var("PROVD_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        println!("cargo:rustc-cfg=provd_pg_tests");
    }
}
