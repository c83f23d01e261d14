//! libpq's negotiation table as data: sslmode × sslnegotiation × server behaviour → the
//! sequence of events → the outcome. Written from BEHAVIOUR.md#sslmode, #fallbacks and #direct-tls (our own table, not copied
//! from libpq's tests), run through `pgtls::blocking::connect` over an in-memory network whose
//! servers are scripted postmasters, with a startup callback that sends a StartupMessage and
//! reads AuthenticationOk or an ErrorResponse.
//!
//! Events (see `pgtls_testkit::pair::MemNetwork`): `connect` / `reconnect` (a new connection),
//! `sslrequest` / `direct` (what the server saw first), `S` / `N` / `E` (the reply as the
//! client read it), `eof` (the client read EOF), `tls-fail` (a TLS attempt that never reached
//! the startup), `tls-ok` (TLS up, startup next), `startup` / `startup-plaintext`,
//! `authok` / `authfail`.
//!
//! Root certificates: verify-ca and verify-full rows, and the "unknown CA" server, come with a
//! root file that trusts the regular server's CA; other rows have none (libpq without
//! `root.crt`).

use std::sync::Arc;

use pgtls::blocking::connect;
use pgtls::{Config, RootCertificates, SslMode, SslNegotiation};
use rustls::pki_types::CertificateDer;
use rustls::ServerConfig;

use pgtls_testkit::certs::{Ca, LeafSpec};
use pgtls_testkit::fake_server::{
    default_server_tls_config, Reply, ServerScript, StartupBehaviour,
};
use pgtls_testkit::pair::MemNetwork;

const HOST: &str = "db.example.com";
const USER: &str = "alice";
const DB: &str = "app";

/// How the server behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    /// PostgreSQL 17+ with `ssl=on`, pg_hba `host` (both encrypted and not).
    SslOn,
    /// `ssl=off`: answers `N`; closes on a direct ClientHello.
    SslOff,
    /// pg_hba `hostssl` only: a plaintext startup is rejected (28000).
    HostSslOnly,
    /// pg_hba `hostnossl` only: a startup over TLS is rejected (28000).
    HostNoSslOnly,
    /// Answers `SSLRequest` with an ErrorResponse (`E`).
    EReply,
    /// A certificate from a CA the client's root file does not hold.
    UnknownCa,
    /// PostgreSQL before 17: SSL on, closes on a direct ClientHello.
    Pre17,
    /// Every startup gets 57P03 "the database system is starting up".
    StartingUp,
}

const SERVERS: [Server; 8] = [
    Server::SslOn,
    Server::SslOff,
    Server::HostSslOnly,
    Server::HostNoSslOnly,
    Server::EReply,
    Server::UnknownCa,
    Server::Pre17,
    Server::StartingUp,
];

/// What the whole connect ends with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// Connected over TLS.
    Tls,
    /// Connected in plaintext.
    Plain,
    /// Failed with this message; libpq would not try the next host.
    Fail(String),
    /// Failed with this message; libpq would try the next host.
    NextHost(String),
    /// The settings were refused before connecting.
    Config(String),
}

struct Row {
    mode: &'static str,
    negotiation: &'static str,
    server: Server,
    events: &'static [&'static str],
    outcome: Outcome,
}

const REFUSED: &str = "server does not support SSL, but SSL was required";
const E_REPLY: &str = "server sent an error response during SSL exchange";
const HBA_NOSSL: &str =
    "no pg_hba.conf entry for host \"127.0.0.1\", user \"alice\", database \"app\", no encryption";
const HBA_SSL: &str =
    "no pg_hba.conf entry for host \"127.0.0.1\", user \"alice\", database \"app\", SSL encryption";
const UNKNOWN_CA: &str =
    "SSL error: certificate verify failed: unable to get local issuer certificate";
const EOF_DIRECT: &str = "SSL SYSCALL error: EOF detected";
const STARTING_UP: &str = "the database system is starting up";

fn fail(message: &str) -> Outcome {
    Outcome::Fail(message.to_owned())
}

fn next_host(message: &str) -> Outcome {
    Outcome::NextHost(message.to_owned())
}

fn weak_direct(mode: &str) -> Outcome {
    Outcome::Config(format!(
        "weak sslmode \"{mode}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")"
    ))
}

// Event sequences shared by several rows.
const PLAIN_OK: &[&str] = &["connect", "startup-plaintext", "authok"];
const PLAIN_FAIL: &[&str] = &["connect", "startup-plaintext", "authfail"];
const TLS_OK: &[&str] = &["connect", "sslrequest", "S", "tls-ok", "startup", "authok"];
const TLS_AUTHFAIL: &[&str] = &[
    "connect",
    "sslrequest",
    "S",
    "tls-ok",
    "startup",
    "authfail",
];
const N_THEN_PLAIN: &[&str] = &["connect", "sslrequest", "N", "startup-plaintext", "authok"];
const N_ONLY: &[&str] = &["connect", "sslrequest", "N"];
const E_ONLY: &[&str] = &["connect", "sslrequest", "E"];
const TLS_FAIL: &[&str] = &["connect", "sslrequest", "S", "tls-fail"];
const DIRECT_OK: &[&str] = &["connect", "direct", "tls-ok", "startup", "authok"];
const DIRECT_AUTHFAIL: &[&str] = &["connect", "direct", "tls-ok", "startup", "authfail"];
const DIRECT_CLOSED: &[&str] = &["connect", "direct", "eof", "tls-fail"];
const DIRECT_TLS_FAIL: &[&str] = &["connect", "direct", "tls-fail"];

/// Rows for a TLS-only mode (require, verify-ca, verify-full) over `SSLRequest`.
fn tls_only_postgres(mode: &'static str) -> Vec<Row> {
    use Server::*;
    vec![
        row(mode, "postgres", SslOn, TLS_OK, Outcome::Tls),
        row(mode, "postgres", SslOff, N_ONLY, fail(REFUSED)),
        row(mode, "postgres", HostSslOnly, TLS_OK, Outcome::Tls),
        row(mode, "postgres", HostNoSslOnly, TLS_AUTHFAIL, fail(HBA_SSL)),
        row(mode, "postgres", EReply, E_ONLY, fail(E_REPLY)),
        row(mode, "postgres", UnknownCa, TLS_FAIL, fail(UNKNOWN_CA)),
        row(mode, "postgres", Pre17, TLS_OK, Outcome::Tls),
        row(
            mode,
            "postgres",
            StartingUp,
            TLS_AUTHFAIL,
            next_host(STARTING_UP),
        ),
    ]
}

/// Rows for a TLS-only mode with direct TLS.
fn tls_only_direct(mode: &'static str) -> Vec<Row> {
    use Server::*;
    vec![
        row(mode, "direct", SslOn, DIRECT_OK, Outcome::Tls),
        row(mode, "direct", SslOff, DIRECT_CLOSED, fail(EOF_DIRECT)),
        row(mode, "direct", HostSslOnly, DIRECT_OK, Outcome::Tls),
        row(
            mode,
            "direct",
            HostNoSslOnly,
            DIRECT_AUTHFAIL,
            fail(HBA_SSL),
        ),
        // No SSLRequest, so nothing to answer with `E`.
        row(mode, "direct", EReply, DIRECT_OK, Outcome::Tls),
        row(mode, "direct", UnknownCa, DIRECT_TLS_FAIL, fail(UNKNOWN_CA)),
        row(mode, "direct", Pre17, DIRECT_CLOSED, fail(EOF_DIRECT)),
        row(
            mode,
            "direct",
            StartingUp,
            DIRECT_AUTHFAIL,
            next_host(STARTING_UP),
        ),
    ]
}

fn row(
    mode: &'static str,
    negotiation: &'static str,
    server: Server,
    events: &'static [&'static str],
    outcome: Outcome,
) -> Row {
    Row {
        mode,
        negotiation,
        server,
        events,
        outcome,
    }
}

/// The table.
fn table() -> Vec<Row> {
    use Server::*;
    let mut rows = vec![
        // disable: plaintext only, never an SSLRequest.
        row("disable", "postgres", SslOn, PLAIN_OK, Outcome::Plain),
        row("disable", "postgres", SslOff, PLAIN_OK, Outcome::Plain),
        row(
            "disable",
            "postgres",
            HostSslOnly,
            PLAIN_FAIL,
            fail(HBA_NOSSL),
        ),
        row(
            "disable",
            "postgres",
            HostNoSslOnly,
            PLAIN_OK,
            Outcome::Plain,
        ),
        row("disable", "postgres", EReply, PLAIN_OK, Outcome::Plain),
        row("disable", "postgres", UnknownCa, PLAIN_OK, Outcome::Plain),
        row("disable", "postgres", Pre17, PLAIN_OK, Outcome::Plain),
        row(
            "disable",
            "postgres",
            StartingUp,
            PLAIN_FAIL,
            next_host(STARTING_UP),
        ),
        // allow: plaintext first; TLS on a new connection if the startup is rejected.
        row("allow", "postgres", SslOn, PLAIN_OK, Outcome::Plain),
        row("allow", "postgres", SslOff, PLAIN_OK, Outcome::Plain),
        row(
            "allow",
            "postgres",
            HostSslOnly,
            &[
                "connect",
                "startup-plaintext",
                "authfail",
                "reconnect",
                "sslrequest",
                "S",
                "tls-ok",
                "startup",
                "authok",
            ],
            Outcome::Tls,
        ),
        row("allow", "postgres", HostNoSslOnly, PLAIN_OK, Outcome::Plain),
        row("allow", "postgres", EReply, PLAIN_OK, Outcome::Plain),
        row("allow", "postgres", UnknownCa, PLAIN_OK, Outcome::Plain),
        row("allow", "postgres", Pre17, PLAIN_OK, Outcome::Plain),
        row(
            "allow",
            "postgres",
            StartingUp,
            PLAIN_FAIL,
            next_host(STARTING_UP),
        ),
        // prefer: TLS first; plaintext on the same socket after N, on a new one otherwise.
        row("prefer", "postgres", SslOn, TLS_OK, Outcome::Tls),
        row("prefer", "postgres", SslOff, N_THEN_PLAIN, Outcome::Plain),
        row("prefer", "postgres", HostSslOnly, TLS_OK, Outcome::Tls),
        row(
            "prefer",
            "postgres",
            HostNoSslOnly,
            &[
                "connect",
                "sslrequest",
                "S",
                "tls-ok",
                "startup",
                "authfail",
                "reconnect",
                "startup-plaintext",
                "authok",
            ],
            Outcome::Plain,
        ),
        row("prefer", "postgres", EReply, E_ONLY, fail(E_REPLY)),
        // A root file and a certificate that fails it: libpq's silent downgrade.
        row(
            "prefer",
            "postgres",
            UnknownCa,
            &[
                "connect",
                "sslrequest",
                "S",
                "tls-fail",
                "reconnect",
                "startup-plaintext",
                "authok",
            ],
            Outcome::Plain,
        ),
        row("prefer", "postgres", Pre17, TLS_OK, Outcome::Tls),
        row(
            "prefer",
            "postgres",
            StartingUp,
            TLS_AUTHFAIL,
            next_host(STARTING_UP),
        ),
    ];
    for mode in ["require", "verify-ca", "verify-full"] {
        rows.extend(tls_only_postgres(mode));
        rows.extend(tls_only_direct(mode));
    }
    // direct with a weak mode is refused before connecting, whatever the server.
    for mode in ["disable", "allow", "prefer"] {
        for server in SERVERS {
            rows.push(row(mode, "direct", server, &[], weak_direct(mode)));
        }
    }
    rows
}

struct World {
    trusted: Ca,
    good: Arc<ServerConfig>,
    unknown: Arc<ServerConfig>,
}

impl World {
    fn new() -> World {
        let trusted = Ca::root("table trusted root");
        let leaf = trusted.leaf(LeafSpec::server(HOST));
        let other = Ca::root("table unknown root").leaf(LeafSpec::server(HOST));
        World {
            good: default_server_tls_config(leaf.chain.clone(), leaf.key.clone_key()),
            unknown: default_server_tls_config(other.chain.clone(), other.key.clone_key()),
            trusted,
        }
    }

    fn script(&self, server: Server) -> ServerScript {
        let good = || ServerScript::tls(self.good.clone());
        match server {
            Server::SslOn => good(),
            Server::SslOff => ServerScript::plaintext_only(),
            Server::HostSslOnly => good().with_startup(StartupBehaviour::RejectPlaintext),
            Server::HostNoSslOnly => good().with_startup(StartupBehaviour::RejectTls),
            Server::EReply => good().with_reply(Reply::E),
            Server::UnknownCa => ServerScript::tls(self.unknown.clone()),
            Server::Pre17 => ServerScript::pre17_tls(self.good.clone()),
            Server::StartingUp => good().with_startup(StartupBehaviour::Error {
                sqlstate: "57P03".to_owned(),
                message: STARTING_UP.to_owned(),
            }),
        }
    }

    fn roots(&self, mode: SslMode, server: Server) -> Option<Vec<CertificateDer<'static>>> {
        (mode.requires_verification() || server == Server::UnknownCa)
            .then(|| vec![self.trusted.root_der()])
    }
}

/// Runs one row; returns the events and the outcome.
fn run(world: &World, row: &Row, read_sizes: &[usize]) -> (Vec<String>, Outcome) {
    let mode: SslMode = row.mode.parse().expect("sslmode in the table");
    let negotiation: SslNegotiation = row.negotiation.parse().expect("sslnegotiation");
    let mut builder = Config::builder()
        .sslmode(mode)
        .negotiation(negotiation)
        .host(HOST)
        .crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    if let Some(roots) = world.roots(mode, row.server) {
        builder = builder.root_certificates(RootCertificates::Certificates(roots));
    }
    let config = match builder.build() {
        Ok(config) => config,
        Err(err) => return (Vec::new(), Outcome::Config(err.to_string())),
    };
    let net = MemNetwork::same(world.script(row.server)).with_read_sizes(read_sizes);
    let result = connect(
        &config,
        None,
        |timeout| net.open(timeout),
        |stream| net.startup(stream, USER, DB),
    );
    let outcome = match result {
        Ok(connected) => {
            // The last server saw the startup on the transport the client reports.
            let last = net.observations().pop().expect("a connection");
            let over_tls = last.startups.last().map(|s| s.over_tls);
            assert_eq!(
                over_tls,
                Some(connected.stream.is_tls()),
                "{}",
                describe(row)
            );
            if connected.stream.is_tls() {
                Outcome::Tls
            } else {
                Outcome::Plain
            }
        }
        Err(failed) if failed.try_next_host => Outcome::NextHost(failed.error.to_string()),
        Err(failed) => Outcome::Fail(failed.error.to_string()),
    };
    (net.events(), outcome)
}

fn describe(row: &Row) -> String {
    format!(
        "sslmode={} sslnegotiation={} server={:?}",
        row.mode, row.negotiation, row.server
    )
}

/// Runs every row selected by `filter` (with whole and 1/7-byte reads) and fails with every
/// mismatch at once.
fn check(filter: impl Fn(&Row) -> bool) {
    let world = World::new();
    let rows: Vec<Row> = table().into_iter().filter(|r| filter(r)).collect();
    assert!(!rows.is_empty());
    let mut mismatches = Vec::new();
    for row in &rows {
        for reads in [&[][..], &[1, 7]] {
            let (events, outcome) = run(&world, row, reads);
            if events != row.events || outcome != row.outcome {
                mismatches.push(format!(
                    "{} (reads {reads:?})\n    expected {:?} → {:?}\n    got      {:?} → {:?}",
                    describe(row),
                    row.events,
                    row.outcome,
                    events,
                    outcome
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} runs disagree with the table:\n{}",
        mismatches.len(),
        rows.len() * 2,
        mismatches.join("\n")
    );
}

#[test]
fn the_table_covers_every_mode_negotiation_and_server() {
    let rows = table();
    for mode in SslMode::ALL {
        for negotiation in ["postgres", "direct"] {
            for server in SERVERS {
                let n = rows
                    .iter()
                    .filter(|r| {
                        r.mode == mode.as_str()
                            && r.negotiation == negotiation
                            && r.server == server
                    })
                    .count();
                assert_eq!(n, 1, "{mode} {negotiation} {server:?}");
            }
        }
    }
    assert_eq!(rows.len(), 6 * 2 * SERVERS.len());
}

#[test]
fn disable() {
    check(|r| r.mode == "disable" && r.negotiation == "postgres");
}

#[test]
fn allow() {
    check(|r| r.mode == "allow" && r.negotiation == "postgres");
}

#[test]
fn prefer() {
    check(|r| r.mode == "prefer" && r.negotiation == "postgres");
}

#[test]
fn require() {
    check(|r| r.mode == "require" && r.negotiation == "postgres");
}

#[test]
fn verify_ca() {
    check(|r| r.mode == "verify-ca" && r.negotiation == "postgres");
}

#[test]
fn verify_full() {
    check(|r| r.mode == "verify-full" && r.negotiation == "postgres");
}

#[test]
fn direct_weak_modes_are_refused_before_connecting() {
    check(|r| r.negotiation == "direct" && !r.mode.starts_with('r') && !r.mode.starts_with('v'));
}

#[test]
fn direct_require() {
    check(|r| r.mode == "require" && r.negotiation == "direct");
}

#[test]
fn direct_verify_ca() {
    check(|r| r.mode == "verify-ca" && r.negotiation == "direct");
}

#[test]
fn direct_verify_full() {
    check(|r| r.mode == "verify-full" && r.negotiation == "direct");
}
