//! Hostile servers over real loopback sockets. Each case runs the probe (pgtls's blocking
//! adapter, libpq's whole plan) and libpq itself (psql 15) against the same server and
//! checks that pgtls ends the way libpq ends, or safer. Needs only psql for the referee
//! (the relay case also needs a PostgreSQL server); without psql the cases print a
//! notice and check pgtls alone.

use pgtls_testkit::pg;
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pgtls::libpq::Environment;
use support::probe::{probe, ProbeReport};

/// A hostile server: accepts connections until dropped, runs `behave` on each.
struct Hostile {
    port: u16,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    /// Bytes the hostile server sent in total (for the flood case).
    sent: Arc<AtomicUsize>,
}

impl Hostile {
    fn start<F>(behave: F) -> Hostile
    where
        F: Fn(TcpStream, &AtomicUsize, &AtomicBool) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        let behave = Arc::new(behave);
        let (stop2, conns2, sent2) = (stop.clone(), connections.clone(), sent.clone());
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        conns2.fetch_add(1, Ordering::Relaxed);
                        let (behave, sent, stop) = (behave.clone(), sent2.clone(), stop2.clone());
                        thread::spawn(move || behave(stream, &sent, &stop));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hostile {
            port,
            stop,
            connections,
            sent,
        }
    }

    fn conninfo(&self, extra: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=3 {extra}",
            self.port
        )
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads the 8-byte first packet (SSLRequest or the start of a StartupMessage).
fn read_request(stream: &mut TcpStream) -> Option<[u8; 8]> {
    let mut request = [0u8; 8];
    stream.read_exact(&mut request).ok()?;
    Some(request)
}

fn is_ssl_request(request: &[u8; 8]) -> bool {
    request == &pgtls::wire::SSL_REQUEST
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn run_probe(conninfo: &str, home: &Path) -> ProbeReport {
    let env = Environment::empty()
        .with_home(Some(home.to_path_buf()))
        .with_os_user("postgres");
    probe(conninfo, &env)
}

/// libpq's verdict: (connected, stderr).
fn run_libpq(conninfo: &str, home: &Path) -> Option<(bool, String)> {
    let Some(install) = pg::PgInstall::find(pg::PgVersion::V15) else {
        pg::report_skip(
            Some("libpq as referee; pgtls is still checked"),
            "psql 15 not found",
        );
        return None;
    };
    let out = pg::run_psql(&install, home, conninfo, "SELECT 1", &[]);
    Some((out.status == Some(0), out.stderr))
}

/// Runs both clients; asserts pgtls is not more permissive than libpq.
fn compare(server: &Hostile, extra: &str) -> (ProbeReport, Option<(bool, String)>) {
    let home = home();
    let conninfo = server.conninfo(extra);
    let started = Instant::now();
    let ours = run_probe(&conninfo, home.path());
    let elapsed = started.elapsed();
    let libpq = run_libpq(&conninfo, home.path());
    eprintln!(
        "[{extra}] pgtls: ok={} error={:?} ({elapsed:?}) | libpq: {:?}",
        ours.ok, ours.error, libpq
    );
    if let Some((connected, _)) = &libpq {
        assert!(
            !ours.ok || *connected,
            "pgtls connected where libpq refused: {conninfo}"
        );
    }
    (ours, libpq)
}

#[test]
fn bytes_glued_to_s_are_refused_in_every_tls_mode() {
    let server = Hostile::start(|mut stream, _, _| {
        if let Some(request) = read_request(&mut stream) {
            if is_ssl_request(&request) {
                let _ = stream.write_all(b"S\x00\x00\x00\x08injected-plaintext");
            }
        }
        thread::sleep(Duration::from_millis(300));
    });
    for mode in ["prefer", "require", "verify-full sslrootcert=/nonexistent"] {
        let (ours, libpq) = compare(&server, &format!("sslmode={mode}"));
        if mode.starts_with("verify-full") {
            // Settings fail before connecting (no root file), on both sides.
            assert!(!ours.ok);
            continue;
        }
        assert!(!ours.ok);
        let error = ours.error.unwrap();
        assert!(
            error.contains("received unencrypted data after SSL response"),
            "{error}"
        );
        // libpq checks for buffered bytes only once its handshake succeeds, so against
        // this server its handshake fails instead and prefer falls back to plaintext;
        // pgtls refuses at once and never falls back: the same end, reached earlier.
        assert_eq!(ours.attempts.len(), 1, "{:?}", ours.attempts);
        if let Some((connected, _)) = libpq {
            assert!(!connected);
        }
    }
}

#[test]
fn an_e_reply_fails_every_mode_without_fallback() {
    let server = Hostile::start(|mut stream, _, _| {
        if read_request(&mut stream).is_some() {
            // An ErrorResponse as old servers send it: it must not be shown or trusted.
            let mut msg = b"E".to_vec();
            let body = b"SFATAL\0C0A000\0Munsupported frontend protocol (attacker text)\0\0";
            msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
            msg.extend_from_slice(body);
            let _ = stream.write_all(&msg);
        }
    });
    let mut clients_run = 0;
    for mode in ["prefer", "require"] {
        let (ours, libpq) = compare(&server, &format!("sslmode={mode}"));
        clients_run += 1;
        let error = ours.error.unwrap();
        assert!(
            error.contains("server sent an error response during SSL exchange"),
            "{error}"
        );
        assert!(!error.contains("attacker text"));
        if let Some((connected, stderr)) = libpq {
            clients_run += 1;
            assert!(!connected);
            assert!(stderr.contains("server sent an error response during SSL exchange"));
        }
    }
    // No fallback: exactly one connection per client run (pgtls, and psql when present),
    // under prefer too.
    assert_eq!(server.connections.load(Ordering::Relaxed), clients_run);
}

#[test]
fn an_invalid_byte_is_refused() {
    let server = Hostile::start(|mut stream, _, _| {
        if read_request(&mut stream).is_some() {
            let _ = stream.write_all(b"X");
            thread::sleep(Duration::from_millis(200));
        }
    });
    let (ours, libpq) = compare(&server, "sslmode=prefer");
    assert!(ours
        .error
        .unwrap()
        .contains("received invalid response to SSL negotiation: X"));
    if let Some((connected, stderr)) = libpq {
        assert!(!connected);
        assert!(stderr.contains("received invalid response to SSL negotiation: X"));
    }
}

#[test]
fn close_right_after_ssl_request() {
    let server = Hostile::start(|mut stream, _, _| {
        let _ = read_request(&mut stream);
        let _ = stream.shutdown(Shutdown::Both);
    });
    for mode in ["prefer", "require"] {
        let (ours, libpq) = compare(&server, &format!("sslmode={mode}"));
        assert!(!ours.ok);
        if let Some((connected, _)) = libpq {
            assert!(!connected);
        }
    }
}

#[test]
fn s_then_random_bytes_fails_the_handshake() {
    let server = Hostile::start(|mut stream, _, _| {
        if let Some(request) = read_request(&mut stream) {
            if is_ssl_request(&request) {
                let _ = stream.write_all(b"S");
                let mut hello = [0u8; 512];
                let _ = stream.read(&mut hello);
                let noise: Vec<u8> = (0..4096u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect();
                let _ = stream.write_all(&noise);
            } else {
                let _ = stream.write_all(b"garbage instead of an authentication request");
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    for mode in ["prefer", "require"] {
        let (ours, _) = compare(&server, &format!("sslmode={mode}"));
        assert!(!ours.ok);
        let first = ours.attempts[0].error.clone().unwrap_or_default();
        assert!(first.contains("SSL error"), "TLS must fail first: {first}");
        // prefer then tries plaintext on a new connection, as libpq does.
        let expected_attempts = if mode == "prefer" { 2 } else { 1 };
        assert_eq!(
            ours.attempts.len(),
            expected_attempts,
            "{:?}",
            ours.attempts
        );
    }
}

#[test]
fn an_endless_handshake_flood_is_cut_off_quickly() {
    let server = Hostile::start(|mut stream, sent, stop| {
        if let Some(request) = read_request(&mut stream) {
            if !is_ssl_request(&request) {
                return;
            }
            let _ = stream.write_all(b"S");
            let mut hello = [0u8; 2048];
            let _ = stream.read(&mut hello);
            // A Certificate handshake message announcing 16 MiB, then endless
            // well-formed handshake records carrying its "body".
            let mut first = vec![0x16, 0x03, 0x03, 0x00, 0x04, 0x0b, 0xff, 0xff, 0xff];
            first[3..5].copy_from_slice(&4u16.to_be_bytes());
            let _ = stream.write_all(&first);
            let mut record = vec![0x16, 0x03, 0x03, 0x40, 0x00];
            record.extend(std::iter::repeat_n(0x30, 0x4000));
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(20) {
                if stream.write_all(&record).is_err() {
                    break;
                }
                sent.fetch_add(record.len(), Ordering::Relaxed);
            }
        }
    });
    let started = Instant::now();
    let (ours, libpq) = compare(&server, "sslmode=require");
    assert!(!ours.ok);
    let error = ours.error.unwrap();
    assert!(error.contains("SSL error"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the client must give up quickly"
    );
    // The client stopped reading long before the flood ended: the server could push at
    // most what fits in socket buffers beyond what rustls accepted.
    let sent = server.sent.load(Ordering::Relaxed);
    assert!(sent < 16 << 20, "the client kept reading {sent} bytes");
    if let Some((connected, _)) = libpq {
        assert!(!connected);
    }
}

#[test]
fn a_server_that_never_answers_hits_connect_timeout() {
    let server = Hostile::start(|mut stream, _, stop| {
        let _ = read_request(&mut stream);
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(50));
        }
    });
    let home = home();
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres connect_timeout=2 sslmode=prefer",
        server.port
    );
    let started = Instant::now();
    let ours = run_probe(&conninfo, home.path());
    let elapsed = started.elapsed();
    assert!(!ours.ok);
    assert!(
        ours.error.as_deref().unwrap().contains("timeout expired"),
        "{:?}",
        ours.error
    );
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "connect_timeout=2 took {elapsed:?}"
    );
    if let Some((connected, stderr)) = run_libpq(&conninfo, home.path()) {
        assert!(!connected);
        assert!(stderr.contains("timeout expired"), "{stderr}");
    }
}

#[test]
fn n_then_close() {
    let server = Hostile::start(|mut stream, _, _| {
        if read_request(&mut stream).is_some() {
            let _ = stream.write_all(b"N");
            let _ = stream.shutdown(Shutdown::Both);
        }
    });
    let (prefer, libpq) = compare(&server, "sslmode=prefer");
    assert!(!prefer.ok);
    // prefer went on in plaintext on the same connection, then saw the close.
    assert_eq!(prefer.attempts.len(), 2, "{:?}", prefer.attempts);
    assert!(prefer.attempts[1].same_connection);
    if let Some((connected, _)) = libpq {
        assert!(!connected);
    }
    let (require, _) = compare(&server, "sslmode=require");
    assert_eq!(
        require.error.unwrap().split(": ").last().unwrap(),
        "server does not support SSL, but SSL was required"
    );
}

/// Relays client and server bytes one byte per write, in both directions.
fn one_byte_relay(upstream_port: u16) -> Hostile {
    Hostile::start(move |client, _, _| {
        let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let pipe = |mut from: TcpStream, mut to: TcpStream| {
            thread::spawn(move || {
                let mut byte = [0u8; 1];
                while let Ok(1) = from.read(&mut byte) {
                    if to.write_all(&byte).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Write);
            })
        };
        let a = pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let b = pipe(upstream, client);
        let _ = a.join();
        let _ = b.join();
    })
}

#[test]
fn a_one_byte_relay_in_front_of_postgresql_works() {
    let Some(install) = pg::install_or_skip(pg::PgVersion::V15) else {
        return;
    };
    let tls = pg::ServerTls::openssl_self_signed("localhost").unwrap();
    let server = pg::PgServer::start(&install, Some(tls), pg::Hba::Host).unwrap();
    let relay = one_byte_relay(server.port);
    for mode in ["require", "prefer", "disable"] {
        let (ours, libpq) = compare(&relay, &format!("sslmode={mode}"));
        assert!(ours.ok, "{mode}: {:?}", ours.error);
        assert_eq!(ours.tls, Some(mode != "disable"));
        if let Some((connected, stderr)) = libpq {
            assert!(connected, "{stderr}");
        }
    }
}
