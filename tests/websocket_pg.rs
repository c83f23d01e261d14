//! libpq's whole connection over a WebSocket, against real PostgreSQL 15 and 18 servers:
//! the client (`support/ws_connect.rs`, the code of `examples/websocket.rs`) runs
//! [`pgtls::ConnectionSetup`] with settings from a connection string over WebSockets to a
//! WebSocket-to-TCP bridge (`support/ws_bridge.rs`, the code of `examples/ws_bridge.rs`)
//! in front of the server. TLS runs inside the WebSocket: the bridge sees the SSLRequest
//! and the server's `S`, then only ciphertext.
//!
//! Each server runs these in turn: verify-full through the bridge (and the relayed bytes
//! hold neither the query nor the user name), verify-full with a wrong host name (libpq's
//! message), `allow` against a hostssl-only server (plaintext refused, TLS on a second
//! WebSocket), `prefer` against a server with `ssl=off` (plaintext on the same WebSocket),
//! and on PostgreSQL 18 `sslnegotiation=direct`.
//!
//! A last test runs the two examples as programs (`ws_bridge` in its own process).
//!
//! Skips with a notice when the servers are not installed (`scripts/install-postgres.sh`);
//! with `PGTLS_REQUIRE_SERVERS=1` it fails instead.

use pgtls_testkit::certs;
#[path = "support/example_bin.rs"]
mod example_bin;
use pgtls_testkit::pg;
use pgtls_testkit::ws_bridge;
#[path = "support/ws_connect.rs"]
mod ws_connect;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use certs::{Ca, LeafSpec};
use example_bin::example_binary;
use pg::{Hba, PgServer, PgVersion, ServerTls};
use pgtls::libpq::Environment;
use pgtls::plan::Method;
// ws_connect's startup client (`super::startup`), from the tool's library.
use pgtls_cli::startup;
use ws_bridge::{Bridge, RelayLog};
use ws_connect::{connect, Connected, NotConnected, Route};

/// The SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// The start of a TLS handshake record (a ClientHello sent directly).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A server with a certificate for `localhost`, a bridge in front of it, and the
/// client's `root.crt`.
struct Fixture {
    server: PgServer,
    bridge: Bridge,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn start(version: PgVersion) -> Option<Fixture> {
        let install = pg::install_or_skip(version)?;
        if !pg::servers_available() {
            eprintln!("{}", pg::SKIP_NOTICE);
            return None;
        }
        let ca = Ca::root("pgtls websocket test root");
        let leaf = ca.leaf(LeafSpec::server("localhost"));
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.crt");
        std::fs::write(&root, ca.root_pem()).unwrap();
        let server = PgServer::start(
            &install,
            Some(ServerTls::new(leaf.chain_pem(), leaf.key_pem.clone())),
            Hba::Host,
        )
        .unwrap_or_else(|err| panic!("{version} server start: {err}"));
        let bridge = Bridge::start("127.0.0.1:0", &format!("127.0.0.1:{}", server.port), true)
            .expect("bridge start");
        Some(Fixture {
            server,
            bridge,
            root,
            _dir: dir,
        })
    }

    /// A connection string for `host` with `extra` settings (`sslrootcert` is root.crt).
    fn conninfo(&self, host: &str, extra: &str) -> String {
        format!(
            "host={host} hostaddr=127.0.0.1 port={} user=postgres dbname=postgres sslrootcert={} {extra}",
            self.server.port,
            self.root.display()
        )
    }

    /// Connects through the bridge with a fresh relay log.
    fn connect(&self, conninfo: &str) -> (Result<Connected, NotConnected>, Vec<RelayLog>) {
        self.bridge.clear_logs();
        let outcome = connect(
            conninfo,
            &environment(),
            &Route::WebSocket(self.bridge.url()),
        );
        (outcome, self.bridge.logs())
    }
}

/// No variables, no home directory: only the connection string counts.
fn environment() -> Environment {
    Environment::empty()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[track_caller]
fn expect_connected(what: &str, outcome: Result<Connected, NotConnected>) -> Connected {
    match outcome {
        Ok(connected) => {
            assert_eq!(connected.select_one.as_deref(), Some("1"), "{what}");
            connected
        }
        Err(failed) => panic!("{what}: {failed} (attempts {:?})", failed.attempts),
    }
}

/// The bridge relayed an SSLRequest, the server's `S`, and then only TLS records: the
/// query, the user name and the StartupMessage never crossed it in the clear.
#[track_caller]
fn assert_ciphertext_after_ssl_request(what: &str, log: &RelayLog) {
    assert!(
        log.to_server.starts_with(&SSL_REQUEST),
        "{what}: first bytes {:02x?}",
        &log.to_server[..log.to_server.len().min(8)]
    );
    assert_eq!(log.to_client.first(), Some(&b'S'), "{what}");
    let (to_server, to_client) = (&log.to_server[8..], &log.to_client[1..]);
    assert_eq!(to_server.first(), Some(&TLS_HANDSHAKE_RECORD), "{what}");
    assert_only_ciphertext(what, to_server, to_client);
}

#[track_caller]
fn assert_only_ciphertext(what: &str, to_server: &[u8], to_client: &[u8]) {
    // (Not the bare word "postgres": the ClientHello offers ALPN "postgresql".)
    for secret in [&b"SELECT 1"[..], b"user\0postgres", b"database\0postgres"] {
        assert!(
            !contains(to_server, secret),
            "{what}: the bridge saw {:?} from the client",
            String::from_utf8_lossy(secret)
        );
    }
    for secret in [
        &b"server_version"[..],
        b"SELECT 1",
        b"session_authorization",
    ] {
        assert!(
            !contains(to_client, secret),
            "{what}: the bridge saw {:?} from the server",
            String::from_utf8_lossy(secret)
        );
    }
}

fn websocket_scenarios(version: PgVersion) {
    let Some(fx) = Fixture::start(version) else {
        return;
    };

    // verify-full through the bridge: one WebSocket, TLS, and only ciphertext relayed.
    let what = format!("{version} verify-full");
    let (outcome, logs) = fx.connect(&fx.conninfo("localhost", "sslmode=verify-full"));
    let connected = expect_connected(&what, outcome);
    assert_eq!(connected.transports_opened, 1, "{what}");
    assert!(connected.tls_version.is_some(), "{what}");
    assert_eq!(connected.auth, "trust", "{what}");
    assert_eq!(logs.len(), 1, "{what}: one WebSocket");
    assert_ciphertext_after_ssl_request(&what, &logs[0]);

    // verify-full with a wrong host name: libpq's message, no second attempt.
    let what = format!("{version} verify-full, wrong host name");
    let (outcome, logs) = fx.connect(&fx.conninfo("wrong.pgtls.test", "sslmode=verify-full"));
    let failed = outcome.expect_err(&what);
    let expected =
        "server certificate for \"localhost\" does not match host name \"wrong.pgtls.test\"";
    assert!(failed.message.contains(expected), "{what}: {failed}");
    assert_eq!(failed.transports_opened, 1, "{what}");
    assert_eq!(logs.len(), 1, "{what}");
    // libpq's referee says the same.
    let psql = fx
        .server
        .connect_outcome_via_psql(&fx.conninfo("wrong.pgtls.test", "sslmode=verify-full"));
    assert!(psql.error_contains(expected), "{what}: psql says {psql:?}");

    // allow against hostssl-only: plaintext is refused, TLS needs a second WebSocket.
    let what = format!("{version} allow, hostssl only");
    fx.server.set_hba(Hba::HostSslOnly).unwrap();
    let (outcome, logs) = fx.connect(&fx.conninfo("localhost", "sslmode=allow"));
    let connected = expect_connected(&what, outcome);
    assert_eq!(connected.transports_opened, 2, "{what}");
    assert!(connected.tls_version.is_some(), "{what}");
    let methods: Vec<Method> = connected.attempts.iter().map(|a| a.method).collect();
    assert_eq!(methods, [Method::Plaintext, Method::SslRequest], "{what}");
    assert!(
        connected.attempts[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no pg_hba.conf entry")),
        "{what}: {:?}",
        connected.attempts
    );
    assert_eq!(logs.len(), 2, "{what}: two WebSockets");
    assert!(
        contains(&logs[0].to_server, b"user\0postgres"),
        "{what}: the first, plaintext attempt"
    );
    assert_ciphertext_after_ssl_request(&what, &logs[1]);
    fx.server.set_hba(Hba::Host).unwrap();

    // prefer against a server with ssl=off: `N`, then plaintext on the same WebSocket —
    // and there the bridge does see the query (the check above is not vacuous).
    let what = format!("{version} prefer, ssl=off");
    fx.server.set_ssl(false).unwrap();
    let (outcome, logs) = fx.connect(&fx.conninfo("localhost", "sslmode=prefer"));
    let connected = expect_connected(&what, outcome);
    assert_eq!(connected.transports_opened, 1, "{what}");
    assert_eq!(connected.tls_version, None, "{what}");
    assert_eq!(logs.len(), 1, "{what}");
    assert!(logs[0].to_server.starts_with(&SSL_REQUEST), "{what}");
    assert_eq!(logs[0].to_client.first(), Some(&b'N'), "{what}");
    assert!(contains(&logs[0].to_server, b"SELECT 1"), "{what}");
    // verify-full against it fails the way libpq does.
    let (outcome, _) = fx.connect(&fx.conninfo("localhost", "sslmode=verify-full"));
    let failed = outcome.expect_err("verify-full, ssl=off");
    assert!(
        failed.message.contains("server does not support SSL"),
        "{what}: {failed}"
    );
    fx.server.set_ssl(true).unwrap();

    // sslnegotiation=direct (PostgreSQL 17+): a ClientHello first, no SSLRequest.
    if version == PgVersion::V18 {
        let what = format!("{version} sslnegotiation=direct");
        let (outcome, logs) =
            fx.connect(&fx.conninfo("localhost", "sslmode=verify-full sslnegotiation=direct"));
        let connected = expect_connected(&what, outcome);
        assert_eq!(connected.transports_opened, 1, "{what}");
        assert_eq!(connected.attempts.len(), 1, "{what}");
        assert_eq!(connected.attempts[0].method, Method::DirectTls, "{what}");
        assert_eq!(logs.len(), 1, "{what}");
        assert_eq!(
            logs[0].to_server.first(),
            Some(&TLS_HANDSHAKE_RECORD),
            "{what}"
        );
        assert_only_ciphertext(&what, &logs[0].to_server, &logs[0].to_client);
    }
}

#[test]
fn websocket_on_postgresql_15() {
    websocket_scenarios(PgVersion::V15);
}

#[test]
fn websocket_on_postgresql_18() {
    websocket_scenarios(PgVersion::V18);
}

/// Kills the bridge process when the test ends, however it ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The two examples as programs: `ws_bridge` in front of PostgreSQL 15 and `websocket`
/// connecting through it with verify-full; then the wrong host name (exit status 1 and
/// libpq's message on stderr).
#[test]
fn websocket_examples_against_postgresql_15() {
    let Some(fx) = Fixture::start(PgVersion::V15) else {
        return;
    };
    let (bridge_bin, client_bin) = (example_binary("ws_bridge"), example_binary("websocket"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut bridge = ChildGuard(
        Command::new(bridge_bin)
            .args(["--listen", &listen, "--upstream"])
            .arg(format!("127.0.0.1:{}", fx.server.port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting ws_bridge"),
    );
    // The bridge says where it listens once it does.
    let mut banner = String::new();
    let stderr = bridge.0.stderr.take().expect("bridge stderr");
    BufReader::new(stderr).read_line(&mut banner).unwrap();
    assert!(banner.contains(&listen), "bridge said {banner:?}");

    let home = tempfile::tempdir().unwrap();
    let run = |conninfo: &str| {
        Command::new(&client_bin)
            .arg(format!("ws://{listen}/"))
            .arg(conninfo)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .output()
            .expect("running the websocket example")
    };
    let out = run(&fx.conninfo("localhost", "sslmode=verify-full"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout {stdout}, stderr {:?}",
        out.stderr
    );
    assert!(
        stdout.contains("over 1 WebSocket(s), TLS TLSv1_3, auth trust; SELECT 1 returned 1"),
        "{stdout}"
    );

    let out = run(&fx.conninfo("wrong.pgtls.test", "sslmode=verify-full"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "websocket: error: server certificate for \"localhost\" does not match host name \"wrong.pgtls.test\""
        ),
        "{stderr}"
    );
}
