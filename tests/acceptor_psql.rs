//! psql (libpq 15 and libpq 18) through `pgtls proxy` (cli/src/proxy.rs) in front of a real
//! PostgreSQL 15 that speaks plaintext only.
//!
//! The proxy runs in-process (the tool's library, `pgtls_cli::proxy`), and once more as the
//! `pgtls` binary, built for the test with `cargo build -p pgtls-cli` (a no-op when fresh).
//! Skips with a notice when PostgreSQL is not installed; fails instead with
//! `PGTLS_REQUIRE_SERVERS=1`.

use pgtls_testkit::certs;
#[path = "support/example_bin.rs"]
mod example_bin;
use pgtls_testkit::pg;
#[allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certs::{Ca, LeafSpec};
use pg::{install_or_skip, run_psql, servers_available, Hba, PgInstall, PgServer, PgVersion};
use pgtls_cli::proxy as tls_proxy;

/// PostgreSQL 15 (plaintext, trust), the proxy's certificate files, and the logs.
struct Setup {
    server: PgServer,
    dir: tempfile::TempDir,
    root: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn setup() -> Option<Setup> {
    if !servers_available() {
        eprintln!("{}", pg::SKIP_NOTICE);
        return None;
    }
    let pg15 = install_or_skip(PgVersion::V15)?;
    let server = PgServer::start(&pg15, None, Hba::HostNoSslOnly).expect("start PostgreSQL 15");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("pgtls proxy test CA");
    let leaf = ca.leaf(LeafSpec::server("localhost"));
    let root = dir.path().join("root.crt");
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    std::fs::write(&root, ca.root_pem()).unwrap();
    std::fs::write(&cert, leaf.chain_pem()).unwrap();
    certs::write_private_file(&key, leaf.key_pkcs8_pem().as_bytes()).unwrap();
    Some(Setup {
        server,
        dir,
        root,
        cert,
        key,
    })
}

impl Setup {
    fn options(&self, allow_plaintext: bool) -> tls_proxy::Options {
        tls_proxy::Options {
            listen: "127.0.0.1:0".into(),
            upstream: format!("127.0.0.1:{}", self.server.port),
            cert: self.cert.clone(),
            key: self.key.clone(),
            allow_plaintext,
            direct: true,
            ca: None,
            crl: None,
            crl_dir: None,
            startup_timeout: tls_proxy::DEFAULT_STARTUP_TIMEOUT,
            tickets: false,
        }
    }

    /// Starts the proxy in this process; returns its port and its log.
    fn start_proxy(&self, allow_plaintext: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
        start_proxy_with(&self.options(allow_plaintext))
    }

    /// psql through the proxy on `port`: `-c sql` with `extra` conninfo keywords.
    fn psql(&self, install: &PgInstall, port: u16, extra: &str, sql: &str) -> pg::PsqlOutcome {
        let conninfo = format!(
            "host=localhost port={port} user={} dbname=postgres sslrootcert={} {extra}",
            pg::SUPERUSER,
            self.root.display()
        );
        let out = run_psql(install, self.dir.path(), &conninfo, sql, &[]);
        let shown: String = sql.chars().take(70).collect();
        eprintln!(
            "  psql ({}) {extra:?} {shown:?} -> status {:?}, stdout {:?}, stderr {:?}",
            install.version,
            out.status,
            out.stdout.trim(),
            out.stderr.trim()
        );
        out
    }
}

/// Starts the proxy with `options` in this process; returns its port and log.
fn start_proxy_with(options: &tls_proxy::Options) -> (u16, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let log: tls_proxy::Logger = Arc::new(move |line| {
        eprintln!("  proxy: {line}");
        sink.lock().unwrap().push(line);
    });
    let proxy = tls_proxy::Proxy::bind(options, log).unwrap();
    let port = proxy.local_addr().unwrap().port();
    std::thread::spawn(move || proxy.serve());
    (port, lines)
}

#[track_caller]
fn expect_rows(out: &pg::PsqlOutcome, rows: &str) {
    assert!(out.success(), "psql failed: {:?}", out.error_message());
    assert_eq!(out.stdout.trim(), rows);
}

/// Waits until the log has a line containing every needle (the proxy logs before it
/// forwards, so this is quick).
fn logged(lines: &Mutex<Vec<String>>, needles: &[&str]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| needles.iter().all(|n| l.contains(n)))
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn psql_15_and_18_through_the_proxy() {
    let Some(setup) = setup() else { return };
    let pg15 = install_or_skip(PgVersion::V15).unwrap();
    let (port, log) = setup.start_proxy(false);

    // libpq 15: SSLRequest, verify-full against the proxy's CA and host name, no ALPN.
    let out = setup.psql(&pg15, port, "sslmode=verify-full", "SELECT 1");
    expect_rows(&out, "1");
    assert!(
        logged(
            &log,
            &[
                "sslrequest",
                "tls=TLSv1.3",
                "sni=localhost",
                "alpn=-",
                "user=postgres"
            ]
        ),
        "{:?}",
        log.lock().unwrap()
    );
    // The upstream really is plaintext: TLS ends at the proxy.
    let out = setup.psql(
        &pg15,
        port,
        "sslmode=verify-full",
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    expect_rows(&out, "f");
    // More than one TLS record each way.
    let out = setup.psql(
        &pg15,
        port,
        "sslmode=verify-full",
        &format!(
            "SELECT length('{}' || repeat('y', 200000))",
            "x".repeat(40_000)
        ),
    );
    expect_rows(&out, "240000");
    // libpq's default (prefer) goes TLS too.
    expect_rows(&setup.psql(&pg15, port, "", "SELECT 2"), "2");
    // A plaintext client is refused with a FATAL error naming sslmode=require.
    let out = setup.psql(&pg15, port, "sslmode=disable", "SELECT 1");
    assert!(!out.success());
    let err = out.error_message().unwrap_or_default();
    assert!(err.contains("FATAL:  connection is insecure"), "{err}");
    assert!(err.contains("sslmode=require"), "{err}");
    assert!(logged(&log, &["refused: connection is insecure"]));
    // allow: plaintext refused by the proxy, then libpq retries with TLS.
    expect_rows(&setup.psql(&pg15, port, "sslmode=allow", "SELECT 3"), "3");

    // libpq 18: SSLRequest with ALPN, then direct TLS.
    let Some(pg18) = install_or_skip(PgVersion::V18) else {
        return;
    };
    let out = setup.psql(&pg18, port, "sslmode=verify-full", "SELECT 18");
    expect_rows(&out, "18");
    assert!(logged(
        &log,
        &["sslrequest", "alpn=postgresql", "sni=localhost"]
    ));
    let out = setup.psql(
        &pg18,
        port,
        "sslmode=verify-full sslnegotiation=direct",
        "SELECT 'direct'",
    );
    expect_rows(&out, "direct");
    assert!(
        logged(
            &log,
            &["direct", "tls=TLSv1.3", "sni=localhost", "alpn=postgresql"]
        ),
        "{:?}",
        log.lock().unwrap()
    );
    let out = setup.psql(
        &pg18,
        port,
        "sslmode=require sslnegotiation=direct",
        "SELECT count(*) FROM generate_series(1, 50000)",
    );
    expect_rows(&out, "50000");
    let out = setup.psql(&pg18, port, "sslmode=disable", "SELECT 1");
    assert!(out
        .error_message()
        .unwrap_or_default()
        .contains("sslmode=require"));
}

#[test]
fn plaintext_clients_pass_with_allow_plaintext() {
    let Some(setup) = setup() else { return };
    let pg15 = install_or_skip(PgVersion::V15).unwrap();
    let (port, log) = setup.start_proxy(true);
    expect_rows(&setup.psql(&pg15, port, "sslmode=disable", "SELECT 1"), "1");
    assert!(logged(&log, &["plaintext startup user=postgres"]));
    expect_rows(
        &setup.psql(&pg15, port, "sslmode=verify-full", "SELECT 2"),
        "2",
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_binary(bin: &Path, setup: &Setup, port: u16, extra: &[&str]) -> Spawned {
    spawn_binary_logged(bin, setup, port, extra).0
}

/// [`spawn_binary`], keeping its log lines.
fn spawn_binary_logged(
    bin: &Path,
    setup: &Setup,
    port: u16,
    extra: &[&str],
) -> (Spawned, Arc<Mutex<Vec<String>>>) {
    let mut child = proxy_command(bin)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--upstream")
        .arg(format!("127.0.0.1:{}", setup.server.port))
        .arg("--cert")
        .arg(&setup.cert)
        .arg("--key")
        .arg(&setup.key)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pgtls proxy");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains("listening on"), "pgtls proxy said {first:?}");
    // Keep draining its log so it never blocks on a full pipe.
    let kept = Arc::new(Mutex::new(Vec::new()));
    let sink = kept.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("  pgtls proxy binary: {line}");
            sink.lock().unwrap().push(line);
        }
    });
    (Spawned(child), kept)
}

#[test]
fn the_pgtls_proxy_binary_serves_psql() {
    let Some(setup) = setup() else { return };
    let bin = example_bin::tool_binary();
    let pg15 = install_or_skip(PgVersion::V15).unwrap();
    let port = free_port();
    let _proxy = spawn_binary(&bin, &setup, port, &[]);
    expect_rows(
        &setup.psql(&pg15, port, "sslmode=verify-full", "SELECT 'binary'"),
        "binary",
    );
    let out = setup.psql(&pg15, port, "sslmode=disable", "SELECT 1");
    assert!(out
        .error_message()
        .unwrap_or_default()
        .contains("sslmode=require"));
    if let Some(pg18) = install_or_skip(PgVersion::V18) {
        expect_rows(
            &setup.psql(
                &pg18,
                port,
                "sslmode=verify-full sslnegotiation=direct",
                "SELECT 'binary direct'",
            ),
            "binary direct",
        );
    }
    // Unusable files are named with PostgreSQL's wording, at start-up.
    let missing = setup.dir.path().join("missing.crt");
    let out = proxy_command(&bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:1",
            "--cert",
        ])
        .arg(&missing)
        .arg("--key")
        .arg(&setup.key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "could not load server certificate file \"{}\": No such file or directory",
            missing.display()
        )),
        "{stderr}"
    );
    // Bad command lines are refused with the usage.
    for bad in [
        &["--startup-timeout", "0"][..],
        &["--startup-timeout", "soon"],
    ] {
        let out = proxy_command(&bin).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --startup-timeout"));
    }
    let out = proxy_command(&bin).arg("--listen").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen needs a value"));
    let out = proxy_command(&bin).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: pgtls proxy"));
    // --help is not an error: the options on stdout.
    let out = proxy_command(&bin).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("usage: pgtls proxy") && help.contains("--startup-timeout SECONDS"));
}

/// `pgtls proxy`, to be given the proxy's arguments.
fn proxy_command(bin: &Path) -> Command {
    let mut command = Command::new(bin);
    command.arg("proxy");
    command
}

// ---------------------------------------------------------------------------------------------
// The same hostile bytes to PostgreSQL 15, PostgreSQL 18 and the proxy
// ---------------------------------------------------------------------------------------------

use std::io::{Read, Write};
use std::net::TcpStream;

use pgtls::rustls;
use pgtls::rustls::pki_types::pem::PemObject;
use pgtls::rustls::pki_types::CertificateDer;

/// What a server did with a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// These bytes, then nothing more for a while (or the end).
    Bytes(Vec<u8>),
    /// Closed without a byte.
    Closed,
    /// Nothing within the wait.
    Silent,
}

/// Reads what arrives within `wait` (until the peer closes or goes quiet).
fn read_reply(stream: &mut TcpStream, wait: Duration) -> Reply {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                stream
                    .set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if got.is_empty() {
                    return Reply::Silent;
                }
                break;
            }
            Err(_) => break,
        }
    }
    if got.is_empty() {
        Reply::Closed
    } else {
        Reply::Bytes(got)
    }
}

/// A StartupMessage for `postgres` of exactly `total` bytes (length word included),
/// padded with a long `application_name`.
fn startup_of_length(total: usize) -> Vec<u8> {
    let mut packet = vec![0, 0, 0, 0, 0, 3, 0, 0];
    packet.extend_from_slice(b"user\0postgres\0application_name\0");
    let pad = total - packet.len() - 2;
    packet.extend(std::iter::repeat_n(b'p', pad));
    packet.extend_from_slice(b"\0\0");
    let len = packet.len() as u32;
    packet[..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(packet.len(), total);
    packet
}

fn client_tls_config(root_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Arc::new(config)
}

fn rustls_client(root_pem: &str) -> rustls::ClientConnection {
    rustls::ClientConnection::new(client_tls_config(root_pem), "localhost".try_into().unwrap())
        .unwrap()
}

/// Finishes a handshake whose ClientHello was already sent; `early` holds server bytes
/// already read. Then sends `packet` inside TLS and returns the reply (decrypted), or
/// `Closed` when the server ended the session.
fn finish_and_send(
    mut conn: rustls::ClientConnection,
    stream: TcpStream,
    early: &[u8],
    packet: &[u8],
) -> Reply {
    conn.read_tls(&mut &early[..]).unwrap();
    if conn.process_new_packets().is_err() {
        return Reply::Closed;
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, stream);
    if tls.write_all(packet).and_then(|()| tls.flush()).is_err() {
        return Reply::Closed;
    }
    let mut buf = [0u8; 4096];
    match tls.read(&mut buf) {
        Ok(0) | Err(_) => Reply::Closed,
        Ok(n) => Reply::Bytes(buf[..n].to_vec()),
    }
}

/// SSLRequest, `S`, then `packet` inside TLS.
fn inside_tls(port: u16, root_pem: &str, packet: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(&pgtls::wire::SSL_REQUEST).unwrap();
    let mut s = [0u8; 1];
    stream.read_exact(&mut s).unwrap();
    assert_eq!(&s, b"S");
    let mut conn = rustls_client(root_pem);
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    stream.write_all(&hello).unwrap();
    finish_and_send(conn, stream, &[], packet)
}

/// `bytes` in plaintext, in one write.
fn plaintext(port: u16, bytes: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(bytes).unwrap();
    read_reply(&mut stream, Duration::from_secs(5))
}

/// The first byte of a reply (`R` for AuthenticationOk).
fn first_byte(reply: &Reply) -> Option<u8> {
    match reply {
        Reply::Bytes(bytes) => bytes.first().copied(),
        _ => None,
    }
}

/// SSLRequest and a ClientHello in the same write; then, if the server answered with a
/// ServerHello, the rest of the handshake and a StartupMessage inside TLS.
fn glued_client_hello(port: u16, root_pem: &str) -> (Reply, Option<Reply>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut conn = rustls_client(root_pem);
    let mut glued = pgtls::wire::SSL_REQUEST.to_vec();
    conn.write_tls(&mut glued).unwrap();
    stream.write_all(&glued).unwrap();
    let reply = read_reply(&mut stream, Duration::from_secs(3));
    let served = match &reply {
        Reply::Bytes(bytes) if bytes.len() > 1 && bytes[0] == b'S' && bytes[1] == 0x16 => Some(
            finish_and_send(conn, stream, &bytes[1..], &startup_of_length(64)),
        ),
        _ => None,
    };
    (reply, served)
}

/// Trickles a StartupMessage one byte every `every`; returns how many bytes went out
/// before the server closed (or the whole packet if it never did).
fn trickle(port: u16, every: Duration) -> (usize, usize) {
    let packet = startup_of_length(64);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    for (sent, byte) in packet.iter().enumerate() {
        // Closed (EOF, or an error) by the server?
        match stream.read(&mut probe) {
            Ok(0) => return (sent, packet.len()),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return (sent, packet.len()),
        }
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            return (sent, packet.len());
        }
        std::thread::sleep(every);
    }
    (packet.len(), packet.len())
}

#[test]
fn hostile_bytes_get_the_answers_postgresql_gives() {
    let Some(setup) = setup() else { return };
    let pg15 = install_or_skip(PgVersion::V15).unwrap();
    let cert_pem = std::fs::read_to_string(&setup.cert).unwrap();
    let key_pem = std::fs::read_to_string(&setup.key).unwrap();
    let root_pem = std::fs::read_to_string(&setup.root).unwrap();
    let reference_tls = pg::ServerTls::new(cert_pem, key_pem);
    let ref15 = PgServer::start(&pg15, Some(reference_tls.clone()), Hba::Host).unwrap();
    ref15.set_conf(&[("authentication_timeout", "2s")]).unwrap();
    let ref18 = install_or_skip(PgVersion::V18)
        .map(|pg18| PgServer::start(&pg18, Some(reference_tls), Hba::Host).unwrap());
    let mut options = setup.options(true);
    options.startup_timeout = Duration::from_secs(2);
    let (proxy, log) = start_proxy_with(&options);
    let mut targets = vec![("PostgreSQL 15", ref15.port)];
    if let Some(ref18) = &ref18 {
        targets.push(("PostgreSQL 18", ref18.port));
    }
    targets.push(("proxy", proxy));

    // Off by four: PostgreSQL subtracts the length word before comparing with 10000.
    for (name, port) in &targets {
        let at_limit = plaintext(*port, &startup_of_length(10_004));
        let over = plaintext(*port, &startup_of_length(10_005));
        let tls_at_limit = inside_tls(*port, &root_pem, &startup_of_length(10_004));
        let tls_over = inside_tls(*port, &root_pem, &startup_of_length(10_005));
        eprintln!(
            "{name}: 10004 -> {:?}, 10005 -> {:?}; inside TLS: {:?}, {:?}",
            first_byte(&at_limit),
            over,
            first_byte(&tls_at_limit),
            tls_over
        );
        assert_eq!(first_byte(&at_limit), Some(b'R'), "{name}: {at_limit:?}");
        assert_eq!(over, Reply::Closed, "{name}");
        assert_eq!(first_byte(&tls_at_limit), Some(b'R'), "{name}");
        assert_eq!(tls_over, Reply::Closed, "{name}");
    }

    // A ClientHello glued to the SSLRequest: PostgreSQL 17+ hands it to TLS (15 hangs).
    for (name, port) in &targets {
        let (reply, served) = glued_client_hello(*port, &root_pem);
        let shown = match &reply {
            Reply::Bytes(b) => format!("{} bytes starting {:?}", b.len(), &b[..b.len().min(2)]),
            other => format!("{other:?}"),
        };
        let served_first = served.as_ref().map(first_byte);
        eprintln!("{name}: glued ClientHello -> {shown}; then a startup: {served_first:?}");
        if *name == "PostgreSQL 15" {
            assert_eq!(reply, Reply::Bytes(b"S".to_vec()), "{name}: hangs after S");
            assert_eq!(served, None);
        } else {
            assert_eq!(served.as_ref().and_then(first_byte), Some(b'R'), "{name}");
        }
    }

    // Plaintext glued to the SSLRequest (CVE-2021-23214): never served.
    let glued = [&pgtls::wire::SSL_REQUEST[..], &startup_of_length(64)].concat();
    for (name, port) in &targets {
        let reply = plaintext(*port, &glued);
        eprintln!(
            "{name}: glued plaintext -> {:?}",
            match &reply {
                Reply::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            }
        );
        match &reply {
            Reply::Bytes(bytes) => assert!(
                bytes[0] == b'S' && !bytes[1..].starts_with(&[0x16]) || bytes[0] == b'E',
                "{name}: {reply:?}"
            ),
            Reply::Closed | Reply::Silent => {}
        }
        if *name == "proxy" {
            let Reply::Bytes(bytes) = &reply else {
                panic!("no answer")
            };
            let text = String::from_utf8_lossy(bytes);
            assert!(text.contains("received unencrypted data after SSL request"));
        }
    }

    // Trickling one byte every 400 ms (never idle for 2 s): cut off by the 2 s deadline
    // (PostgreSQL's authentication_timeout), long before the 64-byte packet is complete.
    let trickles: Vec<_> = [("PostgreSQL 15", ref15.port), ("proxy", proxy)]
        .into_iter()
        .map(|(name, port)| {
            (
                name,
                std::thread::spawn(move || trickle(port, Duration::from_millis(400))),
            )
        })
        .collect();
    for (name, handle) in trickles {
        let (sent, total) = handle.join().unwrap();
        eprintln!("{name}: trickled {sent} of {total} bytes before being closed");
        assert!(sent < total, "{name} never closed the trickling client");
    }
    assert!(logged(&log, &["timeout expired before the startup packet"]));
}

// ---------------------------------------------------------------------------------------------
// X.509 v1 server certificates, client certificates with CRLs, SIGHUP reload
// ---------------------------------------------------------------------------------------------

#[test]
fn psql_15_verify_full_through_a_v1_certificate() {
    let Some(setup) = setup() else { return };
    let pg15 = install_or_skip(PgVersion::V15).unwrap();
    // PostgreSQL's documented recipe, run with the openssl CLI: a v1 server certificate
    // (CN=localhost, no extensions) signed by a root made the same way.
    let dir = tempfile::tempdir().unwrap();
    let (root, cert, key) = certs::openssl_v1_recipe(dir.path(), "localhost").unwrap();
    let mut options = setup.options(false);
    options.cert = cert;
    options.key = key;
    let (port, log) = start_proxy_with(&options);
    for rootcert in [&root, &options.cert] {
        let conninfo = format!(
            "host=localhost port={port} user={} dbname=postgres sslmode=verify-full sslrootcert={}",
            pg::SUPERUSER,
            rootcert.display()
        );
        let out = run_psql(&pg15, setup.dir.path(), &conninfo, "SELECT 'v1'", &[]);
        eprintln!("  psql 15 sslrootcert={}: {out:?}", rootcert.display());
        if rootcert == &root {
            expect_rows(&out, "v1");
        } else {
            // The v1 leaf as its own root: not self-signed, so OpenSSL cannot anchor it.
            assert!(!out.success());
        }
    }
    assert!(logged(
        &log,
        &["sslrequest", "tls=TLSv1.3", "user=postgres"]
    ));
}

/// A CA with a server certificate, a client certificate for `postgres` and a revoked one,
/// written to `dir`.
struct ClientPki {
    ca_pem: String,
    server: certs::Leaf,
    crl_pem: String,
}

fn client_pki(dir: &Path) -> ClientPki {
    let ca = Ca::root("pgtls client CA");
    let server = ca.leaf(LeafSpec::server("localhost"));
    let good = ca.leaf(LeafSpec::client(pg::SUPERUSER));
    let revoked = ca.leaf(LeafSpec::client(pg::SUPERUSER));
    let crl = ca.crl_now(&[&revoked]);
    let write = |name: &str, contents: &str| std::fs::write(dir.join(name), contents).unwrap();
    write("ca.crt", &ca.root_pem());
    write("server.crt", &server.chain_pem());
    write("root.crl", &certs::crl_pem(&crl));
    write("good.crt", &good.chain_pem());
    write("revoked.crt", &revoked.chain_pem());
    certs::write_private_file(&dir.join("server.key"), server.key_pkcs8_pem().as_bytes()).unwrap();
    certs::write_private_file(&dir.join("good.key"), good.key_pkcs8_pem().as_bytes()).unwrap();
    certs::write_private_file(&dir.join("revoked.key"), revoked.key_pkcs8_pem().as_bytes())
        .unwrap();
    std::fs::create_dir(dir.join("crls")).unwrap();
    std::fs::write(dir.join("crls").join("crl.pem"), certs::crl_pem(&crl)).unwrap();
    ClientPki {
        ca_pem: ca.root_pem(),
        server,
        crl_pem: certs::crl_pem(&crl),
    }
}

#[test]
fn revoked_client_certificates_are_refused_through_the_proxy_as_by_postgresql() {
    let Some(setup) = setup() else { return };
    let pg15 = install_or_skip(PgVersion::V15).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = client_pki(dir.path());
    let path = |name: &str| dir.path().join(name);
    let client = |port: u16, who: &str| {
        format!(
            "host=localhost port={port} user={} dbname=postgres sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
            pg::SUPERUSER,
            path("ca.crt").display(),
            path(&format!("{who}.crt")).display(),
            path(&format!("{who}.key")).display(),
        )
    };
    // PostgreSQL 15 itself, with the same files: what it answers and logs.
    let mut reference_tls = pg::ServerTls::new(pki.server.chain_pem(), pki.server.key_pkcs8_pem());
    reference_tls.ca_pem = Some(pki.ca_pem.clone());
    reference_tls.crl_pem = Some(pki.crl_pem.clone());
    let reference = PgServer::start(&pg15, Some(reference_tls), Hba::Host).unwrap();
    let out = run_psql(
        &pg15,
        setup.dir.path(),
        &client(reference.port, "revoked"),
        "SELECT 1",
        &[],
    );
    let reference_error = out.error_message().unwrap_or_default();
    eprintln!("  PostgreSQL 15, revoked: {reference_error:?}");
    assert!(reference
        .log()
        .contains("could not accept SSL connection: certificate verify failed"));

    for crl_dir in [false, true] {
        let mut options = setup.options(false);
        options.cert = path("server.crt");
        options.key = path("server.key");
        options.ca = Some(path("ca.crt"));
        if crl_dir {
            options.crl_dir = Some(path("crls"));
        } else {
            options.crl = Some(path("root.crl"));
        }
        let (port, log) = start_proxy_with(&options);
        let out = run_psql(
            &pg15,
            setup.dir.path(),
            &client(port, "good"),
            "SELECT 'good'",
            &[],
        );
        expect_rows(&out, "good");
        let out = run_psql(
            &pg15,
            setup.dir.path(),
            &client(port, "revoked"),
            "SELECT 1",
            &[],
        );
        let error = out.error_message().unwrap_or_default();
        eprintln!("  proxy (crl_dir={crl_dir}), revoked: {error:?}");
        assert!(!out.success());
        // libpq reports the alert the server sent: the same words as with PostgreSQL.
        assert!(error.contains("certificate revoked"), "{error}");
        assert!(
            reference_error.contains("certificate revoked"),
            "{reference_error}"
        );
        assert!(
            logged(
                &log,
                &[
                    "refused: could not accept SSL connection: certificate verify failed; \
                     DETAIL: Client certificate verification failed at depth 0: certificate revoked."
                ]
            ),
            "{:?}",
            log.lock().unwrap()
        );
    }
}

/// A PostgreSQL client over rustls: startup, then simple queries.
struct RawSession {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl RawSession {
    fn connect(port: u16, root_pem: &str) -> RawSession {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(&pgtls::wire::SSL_REQUEST).unwrap();
        let mut s = [0u8; 1];
        stream.read_exact(&mut s).unwrap();
        assert_eq!(&s, b"S");
        let mut session = RawSession {
            tls: rustls::StreamOwned::new(rustls_client(root_pem), stream),
        };
        session.send(&startup_of_length(64));
        session.until_ready();
        session
    }

    fn peer_leaf(&self) -> CertificateDer<'static> {
        self.tls.conn.peer_certificates().unwrap()[0]
            .clone()
            .into_owned()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).unwrap();
        self.tls.flush().unwrap();
    }

    /// Messages until ReadyForQuery; returns the DataRow payloads.
    fn until_ready(&mut self) -> Vec<Vec<u8>> {
        let mut rows = Vec::new();
        loop {
            let mut head = [0u8; 5];
            self.tls.read_exact(&mut head).unwrap();
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut body = vec![0u8; len - 4];
            self.tls.read_exact(&mut body).unwrap();
            match head[0] {
                b'Z' => return rows,
                b'D' => rows.push(body),
                b'E' => panic!("error: {}", String::from_utf8_lossy(&body)),
                _ => {}
            }
        }
    }

    fn query(&mut self, sql: &str) -> Vec<Vec<u8>> {
        let mut msg = vec![b'Q'];
        msg.extend_from_slice(&((sql.len() + 5) as u32).to_be_bytes());
        msg.extend_from_slice(sql.as_bytes());
        msg.push(0);
        self.send(&msg);
        self.until_ready()
    }
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_established_sessions() {
    let Some(setup) = setup() else { return };
    let bin = example_bin::tool_binary();
    let root_pem = std::fs::read_to_string(&setup.root).unwrap();
    let before = std::fs::read(&setup.cert).unwrap();
    let port = free_port();
    let (proxy, lines) = spawn_binary_logged(&bin, &setup, port, &[]);
    let mut old = RawSession::connect(port, &root_pem);
    let first_leaf = old.peer_leaf();
    assert_eq!(old.query("SELECT 1").len(), 1);

    // New certificate and key in the same files, then SIGHUP.
    let ca = Ca::root("pgtls reloaded CA");
    let renewed = ca.leaf(LeafSpec::server("localhost"));
    std::fs::write(&setup.cert, renewed.chain_pem()).unwrap();
    certs::write_private_file(&setup.key, renewed.key_pkcs8_pem().as_bytes()).unwrap();
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(proxy.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(logged(&lines, &["configuration reloaded"]));

    // A new connection gets the new certificate (trusting the new CA).
    let mut new = RawSession::connect(port, &ca.root_pem());
    assert_eq!(new.peer_leaf(), renewed.cert);
    assert_ne!(new.peer_leaf(), first_leaf);
    assert_eq!(new.query("SELECT 2").len(), 1);
    // The session established before the reload goes on.
    assert_eq!(old.query("SELECT 3").len(), 1);
    assert_eq!(old.query("SELECT generate_series(1, 100)").len(), 100);

    // A broken file: the reload fails, the previous configuration stays.
    std::fs::write(&setup.cert, "not a certificate\n").unwrap();
    Command::new("kill")
        .arg("-HUP")
        .arg(proxy.0.id().to_string())
        .status()
        .unwrap();
    assert!(logged(
        &lines,
        &[
            "reload failed, keeping the previous configuration: could not load server certificate file",
            "no start line"
        ]
    ));
    let mut after = RawSession::connect(port, &ca.root_pem());
    assert_eq!(after.peer_leaf(), renewed.cert);
    assert_eq!(after.query("SELECT 4").len(), 1);
    std::fs::write(&setup.cert, before).unwrap();
}
