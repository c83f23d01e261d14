//! `pgtls demo`: pgtls with no server at all, every sslmode against scripted PostgreSQL
//! servers.
//!
//! ```text
//! pgtls demo        # or, from a checkout: cargo run -p pgtls-cli -- demo
//! ```
//!
//! Each "server" is an in-process scripted postmaster in front of a real rustls server,
//! with certificates generated at run time (the test kit's `certs` and `fake_server`, built
//! without the rest of the kit). The client is
//! `pgtls::blocking::connect`, which runs libpq's whole plan — reconnects included —
//! over an in-memory transport. The client trusts the demo CA (`sslrootcert` given) and
//! connects to host `localhost`.
//!
//! Each cell shows what happened: `TLS`, `plain`, or the failure in libpq's words; a
//! `+` marks a plan that needed a new connection. The last column checks the row
//! against the behaviour BEHAVIOUR.md#sslmode and BEHAVIOUR.md#fallbacks describe; the demo exits with status 1 on any
//! disagreement.

use pgtls_testkit::certs;
use pgtls_testkit::fake_server;

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use certs::{Ca, LeafSpec};
use fake_server::{FakeServer, Reply, ServerScript, StartupBehaviour};
use pgtls::blocking::{connect, Deadline, StartupError, Stream};
use pgtls::{Config, RootCertificates, SslMode};

/// An in-memory connection to one scripted server, stepped synchronously.
struct MemTransport {
    server: FakeServer,
}

impl Read for MemTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let out = self.server.take_output();
        if out.is_empty() {
            // Nothing to say and nothing will come: the client sees EOF.
            return Ok(0);
        }
        let n = out.len().min(buf.len());
        buf[..n].copy_from_slice(&out[..n]);
        if n < out.len() {
            self.server.inject_raw(&out[n..]);
        }
        Ok(n)
    }
}

impl Write for MemTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.server
            .handle_client_bytes(buf)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Deadline for MemTransport {
    fn set_io_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

/// The driver's part: StartupMessage, then AuthenticationOk + ReadyForQuery or an error.
fn startup(stream: &mut Stream<MemTransport>) -> Result<(), StartupError> {
    stream.write_all(&fake_server::startup_message("demo", "demo"))?;
    loop {
        let mut header = [0u8; 5];
        stream.read_exact(&mut header)?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        stream.read_exact(&mut body)?;
        match header[0] {
            b'Z' => return Ok(()),
            b'E' => {
                let fields = fake_server::error_fields(&body);
                let field = |code| {
                    fields
                        .iter()
                        .find(|(c, _)| *c == code)
                        .map(|(_, v)| v.clone())
                };
                return Err(StartupError::Rejected {
                    sqlstate: field(b'C'),
                    message: field(b'M').unwrap_or_default(),
                });
            }
            _ => {}
        }
    }
}

/// One server behaviour of the table and what BEHAVIOUR.md (#sslmode, #fallbacks) says each sslmode gets.
struct Row {
    name: &'static str,
    script: ServerScript,
    /// Expected cell per sslmode (disable, allow, prefer, require, verify-ca, verify-full).
    expected: [&'static str; 6],
}

/// `pgtls demo --help`.
pub const HELP: &str = "\
usage: pgtls demo

pgtls with no server at all: every sslmode (disable .. verify-full) against
scripted PostgreSQL servers (valid certificate, ssl=off, an error instead of S/N,
an unknown CA, a host-name mismatch, hostssl, hostnossl), through libpq's whole
plan with its reconnects. Each cell shows TLS, plain, or the failure in libpq's
words; `+` marks a plan that needed a new connection. Each row is checked against
BEHAVIOUR.md (#sslmode, #fallbacks).

Exit status: 0 when every cell agrees with libpq's behaviour, 1 otherwise.";

/// Runs the demo: prints the table, fails when a cell disagrees with BEHAVIOUR.md.
pub fn run() -> ExitCode {
    let ca = Ca::root("pgtls demo CA");
    let good = ca.leaf(LeafSpec::server("localhost"));
    let stranger = Ca::root("someone else's CA").leaf(LeafSpec::server("localhost"));
    let other_name = ca.leaf(LeafSpec::server("other.example"));
    let tls = |leaf: &certs::Leaf| {
        fake_server::default_server_tls_config(leaf.chain.clone(), leaf.key.clone_key())
    };

    const REFUSED: &str = "server does not support SSL, but SSL was required";
    const E: &str = "server sent an error response during SSL exchange";
    const UNKNOWN_CA: &str =
        "SSL error: certificate verify failed: unable to get local issuer certificate";
    const MISMATCH: &str =
        "server certificate for \"other.example\" does not match host name \"localhost\"";
    const NO_ENC: &str = "no pg_hba.conf entry for host \"127.0.0.1\", user \"demo\", database \"demo\", no encryption";
    const SSL_ENC: &str = "no pg_hba.conf entry for host \"127.0.0.1\", user \"demo\", database \"demo\", SSL encryption";

    let rows = vec![
        Row {
            name: "S, valid certificate",
            script: ServerScript::tls(tls(&good)),
            expected: ["plain", "plain", "TLS", "TLS", "TLS", "TLS"],
        },
        Row {
            name: "N (ssl=off)",
            script: ServerScript::plaintext_only(),
            expected: ["plain", "plain", "plain", REFUSED, REFUSED, REFUSED],
        },
        Row {
            name: "E (error instead of S/N)",
            script: ServerScript::replying(Reply::E),
            expected: ["plain", "plain", E, E, E, E],
        },
        Row {
            name: "unknown CA",
            script: ServerScript::tls(tls(&stranger)),
            expected: [
                "plain", "plain", "+plain", UNKNOWN_CA, UNKNOWN_CA, UNKNOWN_CA,
            ],
        },
        Row {
            name: "host-name mismatch",
            script: ServerScript::tls(tls(&other_name)),
            expected: ["plain", "plain", "TLS", "TLS", "TLS", MISMATCH],
        },
        Row {
            name: "refuses plaintext (hostssl)",
            script: ServerScript::tls(tls(&good)).with_startup(StartupBehaviour::RejectPlaintext),
            expected: [NO_ENC, "+TLS", "TLS", "TLS", "TLS", "TLS"],
        },
        Row {
            name: "refuses TLS (hostnossl)",
            script: ServerScript::tls(tls(&good)).with_startup(StartupBehaviour::RejectTls),
            expected: ["plain", "plain", "+plain", SSL_ENC, SSL_ENC, SSL_ENC],
        },
    ];

    let roots = RootCertificates::Certificates(vec![ca.root_der()]);
    let mut disagreements = 0;
    println!("pgtls demo: client trusts the demo CA, host=localhost, sslnegotiation=postgres\n");
    for row in &rows {
        println!("server: {}", row.name);
        for (mode, expected) in SslMode::ALL.into_iter().zip(row.expected) {
            let config = Config::builder()
                .sslmode(mode)
                .host("localhost")
                .root_certificates(roots.clone())
                .build()
                .expect("the demo's settings are valid");
            let script = row.script.clone();
            let result = connect(
                &config,
                Some(Duration::from_secs(5)),
                |_| {
                    Ok(MemTransport {
                        server: FakeServer::new(script.clone()),
                    })
                },
                startup,
            );
            let cell = match &result {
                Ok(connected) => {
                    let kind = if connected.stream.is_tls() {
                        "TLS"
                    } else {
                        "plain"
                    };
                    let reconnected = connected.attempts.len() > 1
                        && !connected.attempts.last().is_some_and(|a| a.same_connection);
                    format!("{}{kind}", if reconnected { "+" } else { "" })
                }
                Err(failed) => failed.error.to_string(),
            };
            let agrees = cell == expected;
            if !agrees {
                disagreements += 1;
            }
            let detail = match &result {
                Ok(connected) => connected
                    .stream
                    .session()
                    .map(|s| {
                        format!(
                            "  ({:?}, ALPN {})",
                            s.protocol_version().unwrap_or(rustls_unknown()),
                            s.alpn_protocol()
                                .map(|a| String::from_utf8_lossy(a).into_owned())
                                .unwrap_or_else(|| "none".into())
                        )
                    })
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            println!(
                "  {:<12} {} {}{}",
                mode.as_str(),
                if agrees { "ok  " } else { "DIFF" },
                cell,
                detail
            );
            if !agrees {
                println!("  {:<12}      expected (BEHAVIOUR.md): {expected}", "");
            }
        }
        println!();
    }
    if disagreements == 0 {
        println!("every row agrees with libpq's behaviour (BEHAVIOUR.md#sslmode, #fallbacks)");
        ExitCode::SUCCESS
    } else {
        println!("{disagreements} cell(s) disagree with BEHAVIOUR.md");
        ExitCode::FAILURE
    }
}

fn rustls_unknown() -> pgtls::rustls::ProtocolVersion {
    pgtls::rustls::ProtocolVersion::Unknown(0)
}
