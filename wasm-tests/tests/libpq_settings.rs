//! The libpq settings layer inside wasm32-unknown-unknown, where there is no process
//! environment, no user database and no file system: it builds unchanged, the process
//! environment reads as empty, and a file setting fails with libpq's message instead of
//! panicking. Connection strings with settings given in code work as natively.

use pgtls::libpq::{ConnParams, Environment};
use pgtls::SslMode;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn the_process_environment_is_empty() {
    let env = Environment::from_process_env();
    assert_eq!(env.var("HOME"), None);
    assert_eq!(env.var("PGSSLMODE"), None);
    assert_eq!(env.home(), None);
    assert_eq!(
        env.os_user(),
        Err("could not determine the local user name")
    );
}

/// libpq reports any failed `stat()` of the root file as "does not exist"; without a file
/// system every file is in that case.
#[wasm_bindgen_test]
fn a_root_file_cannot_be_read_and_says_so() {
    let settings = ConnParams::parse(
        "host=db.example.test user=app sslmode=verify-full sslrootcert=/certs/root.crt",
    )
    .expect("parses")
    .resolve(&Environment::from_process_env())
    .expect("resolves");
    assert_eq!(settings.sslmode(), SslMode::VerifyFull);
    let err = settings.to_configs().expect_err("no file system");
    assert_eq!(
        err.to_string(),
        "root certificate file \"/certs/root.crt\" does not exist\nEither provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification."
    );
}

#[wasm_bindgen_test]
fn settings_from_a_string_and_code_build_configs() {
    let env = Environment::empty().with_os_user("app");
    let settings = ConnParams::parse("postgresql://db.example.test:6432/shop?sslmode=require")
        .expect("parses")
        .resolve(&env)
        .expect("resolves");
    let configs = settings.to_configs().expect("no files needed");
    assert_eq!(configs.len(), 1);
    let (target, config) = &configs[0];
    assert_eq!((target.host(), target.port()), ("db.example.test", 6432));
    assert_eq!(config.sslmode(), SslMode::Require);
    assert_eq!(settings.user(), "app");
}
