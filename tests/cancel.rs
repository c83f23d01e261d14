//! Cancel requests negotiated with the connection's own settings (libpq 17+ sends them
//! over TLS), against a real PostgreSQL.

use pgtls_testkit::pg;
mod support;

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use pgtls::blocking::{cancel, connect, StartupError};
use pgtls::{Config, SslMode};
use support::startup::{
    run_startup, simple_query, ChannelBindingMode, StartupFailure, StartupParams, TlsFacts,
};

fn params() -> StartupParams {
    StartupParams {
        user: "postgres".into(),
        database: "postgres".into(),
        password: None,
        application_name: Some("pgtls-cancel-test".into()),
        channel_binding: ChannelBindingMode::Prefer,
    }
}

#[test]
fn a_cancel_request_over_tls_stops_a_running_query() {
    let Some(install) = pg::install_or_skip(pg::PgVersion::V15) else {
        return;
    };
    let tls = pg::ServerTls::openssl_self_signed("localhost").unwrap();
    // hostssl-only for the session; the cancel itself goes over TLS because sslmode=require
    // says so (the postmaster reads a CancelRequest inside TLS as libpq 17+ sends it).
    let server = pg::PgServer::start(&install, Some(tls), pg::Hba::HostSslOnly).unwrap();
    let port = server.port;
    let config = Config::builder()
        .sslmode(SslMode::Require)
        .host("localhost")
        .build()
        .unwrap();
    let open = move |_t: Option<Duration>| TcpStream::connect(("127.0.0.1", port));
    let mut connected = connect(&config, Some(Duration::from_secs(10)), open, |stream| {
        let facts = TlsFacts {
            tls: stream.is_tls(),
            channel_binding: None,
        };
        run_startup(stream, &params(), &facts)
            .map_err(|e| StartupError::Fatal(e.to_string().into()))
    })
    .unwrap();
    assert!(connected.stream.is_tls());
    let (pid, key) = connected
        .startup
        .backend_key
        .clone()
        .expect("BackendKeyData");

    let canceller = {
        let config = config.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(500));
            cancel(&config, Some(Duration::from_secs(5)), open, pid, &key)
        })
    };
    let started = Instant::now();
    let result = simple_query(&mut connected.stream, "SELECT pg_sleep(30)");
    canceller
        .join()
        .unwrap()
        .expect("the cancel request was sent");
    match result {
        Err(StartupFailure::Fatal(message)) => {
            assert!(
                message.contains("canceling statement due to user request"),
                "{message}"
            )
        }
        other => panic!("the query was not cancelled: {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn cancel_keys_are_checked() {
    let config = Config::builder().sslmode(SslMode::Disable).build().unwrap();
    let never = |_t: Option<Duration>| -> std::io::Result<TcpStream> {
        panic!("no connection may be opened for an invalid key")
    };
    let err = cancel(&config, None, never, 1, &[1, 2, 3]).unwrap_err();
    assert!(err.to_string().contains("cancel key"), "{err}");
}
