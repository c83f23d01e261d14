//! A hostile crowd against `pgtls proxy` (cli/src/proxy.rs): 1000 concurrent clients that stall in
//! the middle of the TLS handshake, trickle one byte at a time, or flood garbage records,
//! while legitimate clients keep being served. Measures the proxy's memory per hostile
//! connection (the process's RSS before and during the crowd; BENCHMARKS.md quotes the
//! figures) and checks that the startup deadline clears the crowd.
//!
//! The upstream is a minimal fake PostgreSQL (AuthenticationOk, ReadyForQuery, and a
//! ReadyForQuery per query), so no server install is needed. Loopback only; every loop is
//! bounded in count and time.

use pgtls_testkit::certs;
#[allow(dead_code)]
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certs::{Ca, LeafSpec};
use pgtls::rustls;
use pgtls::rustls::pki_types::pem::PemObject;
use pgtls::rustls::pki_types::CertificateDer;
use pgtls_cli::proxy as tls_proxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STALLERS: usize = 400;
const TRICKLERS: usize = 400;
const FLOODERS: usize = 200;
const CROWD: usize = STALLERS + TRICKLERS + FLOODERS;
/// The proxy's startup deadline in this test (PostgreSQL's default is 60 s).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How many legitimate sessions are run while the crowd is there.
const LEGITIMATE: usize = 20;

/// AuthenticationOk + ReadyForQuery (idle).
const BACKEND_OK: &[u8] = &[b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'Z', 0, 0, 0, 5, b'I'];
/// ReadyForQuery (idle).
const READY: &[u8] = &[b'Z', 0, 0, 0, 5, b'I'];

/// A fake PostgreSQL: takes the StartupMessage, says OK, answers each message with
/// ReadyForQuery until the client goes.
fn fake_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut len = [0u8; 4];
                if stream.read_exact(&mut len).is_err() {
                    return;
                }
                let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
                if stream.read_exact(&mut body).is_err() || stream.write_all(BACKEND_OK).is_err() {
                    return;
                }
                loop {
                    let mut head = [0u8; 5];
                    if stream.read_exact(&mut head).is_err() || head[0] == b'X' {
                        return;
                    }
                    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                    let mut body = vec![0u8; len.saturating_sub(4)];
                    if stream.read_exact(&mut body).is_err() || stream.write_all(READY).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// The process's resident set size, from /proc (kB → bytes).
fn rss_bytes() -> usize {
    status_field("VmRSS:") * 1024
}

/// RSS of the mappings the size of a Rust thread's stack (2 MiB, std's default): how
/// much of the RSS is thread stacks rather than heap (a heuristic, for the report only).
fn stack_rss_bytes() -> usize {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut total = 0;
    let mut stack_sized = false;
    for line in smaps.lines() {
        let kb = |rest: &str| -> usize {
            rest.split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        if let Some(rest) = line.strip_prefix("Size:") {
            stack_sized = kb(rest) == 2048;
        } else if let Some(rest) = line.strip_prefix("Rss:") {
            if stack_sized {
                total += kb(rest) * 1024;
            }
        }
    }
    total
}

fn threads() -> usize {
    status_field("Threads:")
}

fn status_field(name: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Makes sure this process may open enough sockets (the crowd needs about 2 per client,
/// client and proxy ends), raising the soft limit with util-linux's prlimit if needed.
fn ensure_fd_limit(needed: usize) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let soft: usize = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if soft >= needed {
        return;
    }
    let status = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={needed}:{needed}"))
        .status()
        .expect("run prlimit to raise RLIMIT_NOFILE");
    assert!(
        status.success(),
        "could not raise RLIMIT_NOFILE to {needed}"
    );
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

fn startup_message() -> Vec<u8> {
    let mut packet = vec![0, 0, 0, 0, 0, 3, 0, 0];
    packet.extend_from_slice(b"user\0crowd\0\0");
    let len = packet.len() as u32;
    packet[..4].copy_from_slice(&len.to_be_bytes());
    packet
}

/// One legitimate session: SSLRequest, TLS, startup, three queries.
fn legitimate_session(port: u16, config: &Arc<rustls::ClientConfig>) -> Result<(), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&pgtls::wire::SSL_REQUEST)
        .map_err(|e| e.to_string())?;
    let mut s = [0u8; 1];
    stream.read_exact(&mut s).map_err(|e| e.to_string())?;
    if &s != b"S" {
        return Err(format!("answer {s:?}"));
    }
    let conn = rustls::ClientConnection::new(config.clone(), "localhost".try_into().unwrap())
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    tls.write_all(&startup_message())
        .map_err(|e| e.to_string())?;
    let mut ok = [0u8; BACKEND_OK.len()];
    tls.read_exact(&mut ok).map_err(|e| e.to_string())?;
    if ok != BACKEND_OK {
        return Err(format!("startup answer {ok:?}"));
    }
    for _ in 0..3 {
        tls.write_all(b"Q\0\0\0\x0dSELECT 1\0")
            .map_err(|e| e.to_string())?;
        let mut ready = [0u8; READY.len()];
        tls.read_exact(&mut ready).map_err(|e| e.to_string())?;
        if ready != READY {
            return Err(format!("query answer {ready:?}"));
        }
    }
    Ok(())
}

/// What the hostile clients saw.
#[derive(Default)]
struct CrowdCounts {
    /// Connections open and holding the proxy (stallers and tricklers).
    holding: AtomicUsize,
    /// Stallers and tricklers the proxy closed.
    cut_off: AtomicUsize,
    /// Garbage connections the proxy refused.
    refused_floods: AtomicUsize,
}

/// Reads until EOF or an error; true when the peer closed.
async fn closed_by_peer(stream: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let until = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// SSLRequest, `S`, the first half of a real ClientHello, then silence.
async fn staller(port: u16, hello: Arc<Vec<u8>>, counts: Arc<CrowdCounts>) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let mut s = [0u8; 1];
    if stream.write_all(&pgtls::wire::SSL_REQUEST).await.is_err()
        || stream.read_exact(&mut s).await.is_err()
        || stream.write_all(&hello[..hello.len() / 2]).await.is_err()
    {
        return;
    }
    counts.holding.fetch_add(1, Ordering::SeqCst);
    if closed_by_peer(&mut stream, STARTUP_TIMEOUT * 3).await {
        counts.cut_off.fetch_add(1, Ordering::SeqCst);
    }
}

/// SSLRequest and then the ClientHello, one byte a second.
async fn trickler(port: u16, hello: Arc<Vec<u8>>, counts: Arc<CrowdCounts>) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let mut s = [0u8; 1];
    if stream.write_all(&pgtls::wire::SSL_REQUEST).await.is_err()
        || stream.read_exact(&mut s).await.is_err()
    {
        return;
    }
    counts.holding.fetch_add(1, Ordering::SeqCst);
    let until = tokio::time::Instant::now() + STARTUP_TIMEOUT * 3;
    for byte in hello.iter() {
        if tokio::time::Instant::now() > until {
            return;
        }
        if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
            break;
        }
        // The proxy's deadline closes the socket; a read sees it at once.
        if closed_by_peer(&mut stream, Duration::from_secs(1)).await {
            counts.cut_off.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
    if closed_by_peer(&mut stream, STARTUP_TIMEOUT).await {
        counts.cut_off.fetch_add(1, Ordering::SeqCst);
    }
}

/// 64 KiB of garbage TLS records (handshake, application data, alert headers over
/// pseudo-random bodies), made once and shared by every flooder.
fn garbage_records() -> Vec<u8> {
    let mut garbage = Vec::with_capacity(4 * (5 + 16_384));
    let mut x = 0x9E37_79B9u32;
    for kind in [0x16u8, 0x17, 0x16, 0x15] {
        garbage.extend_from_slice(&[kind, 0x03, 0x03, 0x40, 0x00]);
        for _ in 0..16_384 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            garbage.push(x as u8);
        }
    }
    garbage
}

/// Again and again until `stop`: SSLRequest, then the garbage records.
async fn flooder(
    port: u16,
    garbage: Arc<Vec<u8>>,
    counts: Arc<CrowdCounts>,
    stop: Arc<AtomicBool>,
) {
    for _ in 0..1000 {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut s = [0u8; 1];
        if stream.write_all(&pgtls::wire::SSL_REQUEST).await.is_err()
            || stream.read_exact(&mut s).await.is_err()
        {
            continue;
        }
        // The proxy refuses at the first bad record and closes; writes may then fail.
        let _ = stream.write_all(&garbage).await;
        if closed_by_peer(&mut stream, Duration::from_secs(10)).await {
            counts.refused_floods.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// RSS per thread of `count` threads that do nothing but block in a socket read: the
/// floor of a thread-per-connection server, to tell it apart from the proxy's own cost.
fn idle_thread_cost(count: usize) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let before = rss_bytes();
    let mut clients = Vec::with_capacity(count);
    let mut handles = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(TcpStream::connect(addr).unwrap());
        let (mut server, _) = listener.accept().unwrap();
        handles.push(std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            let _ = server.read(&mut byte);
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    let during = rss_bytes();
    drop(clients);
    for handle in handles {
        let _ = handle.join();
    }
    during.saturating_sub(before) / count
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[test]
fn a_hostile_crowd_does_not_stop_legitimate_clients() {
    ensure_fd_limit(3 * CROWD + 1024);
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("pgtls crowd CA");
    let leaf = ca.leaf(LeafSpec::server("localhost"));
    let write = |path: &Path, contents: &str| std::fs::write(path, contents).unwrap();
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    write(&cert, &leaf.chain_pem());
    write(&key, &leaf.key_pkcs8_pem());
    let upstream = fake_upstream();
    let options = tls_proxy::Options::parse(
        [
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &format!("127.0.0.1:{upstream}"),
            "--cert",
            &cert.display().to_string(),
            "--key",
            &key.display().to_string(),
            "--startup-timeout",
            &STARTUP_TIMEOUT.as_secs().to_string(),
        ]
        .map(String::from),
    )
    .unwrap();
    let refusals = Arc::new(Mutex::new(0usize));
    let sink = refusals.clone();
    let log: tls_proxy::Logger = Arc::new(move |line: String| {
        if line.contains("refused") {
            *sink.lock().unwrap() += 1;
        }
    });
    let proxy = tls_proxy::Proxy::bind(&options, log).unwrap();
    let port = proxy.local_addr().unwrap().port();
    std::thread::spawn(move || proxy.serve());
    let client_config = client_tls_config(&ca.root_pem());

    // Warm up (lazy statics, allocator arenas), then the baseline.
    for _ in 0..3 {
        legitimate_session(port, &client_config).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let thread_cost = idle_thread_cost(STALLERS + TRICKLERS);
    let (rss_before, threads_before) = (rss_bytes(), threads());
    let stacks_before = stack_rss_bytes();

    // The crowd, on one tokio thread.
    let mut hello = Vec::new();
    rustls::ClientConnection::new(client_config.clone(), "localhost".try_into().unwrap())
        .unwrap()
        .write_tls(&mut hello)
        .unwrap();
    let hello = Arc::new(hello);
    let counts = Arc::new(CrowdCounts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let garbage = Arc::new(garbage_records());
    let crowd = {
        let (hello, counts, stop) = (hello.clone(), counts.clone(), stop.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut tasks = Vec::with_capacity(CROWD);
                for i in 0..CROWD {
                    let (hello, counts, stop) = (hello.clone(), counts.clone(), stop.clone());
                    let garbage = garbage.clone();
                    tasks.push(tokio::spawn(async move {
                        if i < STALLERS {
                            staller(port, hello, counts).await
                        } else if i < STALLERS + TRICKLERS {
                            trickler(port, hello, counts).await
                        } else {
                            flooder(port, garbage, counts, stop).await
                        }
                    }));
                    if i % 50 == 49 {
                        // Let the listen backlog drain.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
        })
    };

    // Wait until the stallers and tricklers all hold a connection.
    let started = Instant::now();
    while counts.holding.load(Ordering::SeqCst) < STALLERS + TRICKLERS
        && started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let holding = counts.holding.load(Ordering::SeqCst);
    assert_eq!(holding, STALLERS + TRICKLERS, "hostile clients connected");

    // Legitimate clients, while the crowd holds on and the flood goes on.
    let served_started = Instant::now();
    let mut served = 0;
    for _ in 0..LEGITIMATE {
        match legitimate_session(port, &client_config) {
            Ok(()) => served += 1,
            Err(err) => panic!("a legitimate client was not served: {err}"),
        }
    }
    let served_in = served_started.elapsed();
    let (rss_during, threads_during) = (rss_bytes(), threads());
    let stacks_during = stack_rss_bytes();
    assert_eq!(served, LEGITIMATE);

    // The deadline clears the stallers and tricklers; the flood stops.
    let cleared_started = Instant::now();
    while counts.cut_off.load(Ordering::SeqCst) < STALLERS + TRICKLERS
        && cleared_started.elapsed() < STARTUP_TIMEOUT * 2
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::SeqCst);
    let cut_off = counts.cut_off.load(Ordering::SeqCst);
    crowd.join().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (rss_after, threads_after) = (rss_bytes(), threads());
    // And the proxy still serves.
    legitimate_session(port, &client_config).unwrap();

    let per_connection = rss_during.saturating_sub(rss_before) / holding;
    eprintln!(
        "crowd: {STALLERS} stalling, {TRICKLERS} trickling, {FLOODERS} flooding; \
         {LEGITIMATE} legitimate sessions served in {served_in:?}"
    );
    eprintln!(
        "crowd: RSS before {:.1} MiB, during {:.1} MiB, after {:.1} MiB; \
         {} bytes per held connection; threads {threads_before} / {threads_during} / {threads_after}",
        mib(rss_before),
        mib(rss_during),
        mib(rss_after),
        per_connection
    );
    eprintln!(
        "crowd: an idle thread blocked in a socket read costs {thread_cost} bytes of RSS; \
         the rest, {} bytes per held connection, is the proxy's",
        per_connection.saturating_sub(thread_cost)
    );
    eprintln!(
        "crowd: of which thread stacks {} bytes per held connection (2 MiB mappings)",
        stacks_during.saturating_sub(stacks_before) / holding
    );
    eprintln!(
        "crowd: {cut_off} cut off by the {STARTUP_TIMEOUT:?} deadline, {} garbage floods refused, \
         {} refusals logged",
        counts.refused_floods.load(Ordering::SeqCst),
        *refusals.lock().unwrap()
    );
    assert_eq!(
        cut_off,
        STALLERS + TRICKLERS,
        "the deadline cut off the crowd"
    );
    assert!(counts.refused_floods.load(Ordering::SeqCst) >= FLOODERS);
    // Generous: a held connection costs its thread's touched stack and a few KiB of
    // buffers (BENCHMARKS.md); a regression to per-connection record buffers or
    // handshake-sized allocations would show here.
    assert!(
        per_connection < 256 * 1024,
        "{per_connection} bytes per held connection"
    );
}
