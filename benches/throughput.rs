//! Session throughput: 256 MiB of application data each way in 8 KiB writes through an
//! established pgtls [`pgtls::Session`], through a bare rustls `ClientConnection`, and through
//! the provider's AEAD alone (aws-lc-rs seal/open on 16 KiB records, the practical limit).
//!
//! Only the client's work is timed, as CPU time of the thread (`CLOCK_THREAD_CPUTIME_ID`), in
//! batches of 512 KiB: the in-memory rustls server decrypts and encrypts between batches,
//! outside the clock. The three are run in turn, `ROUNDS` times, and each keeps its best
//! round, so a burst of load on this shared machine does not land on one of them only.
//!
//! `cargo bench --bench throughput [-- MiB]` (default 256).

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::time::Duration;

use aws_lc_rs::aead::{
    Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305,
};
use common::{thread_cpu, Material};
use pgtls::rustls::{ClientConnection, ServerConnection};
use pgtls::{ApplicationData, Output, Session};

const CHUNK: usize = 8 * 1024;
const BATCH: usize = 64; // writes per timed batch: 512 KiB
const ROUNDS: usize = 3;
const RECORD: usize = 16 * 1024;

/// One direction's client-side calls for an established connection.
trait Tunnel {
    /// Encrypts `chunk`; writes the records into `out`, returns their length.
    fn send(&mut self, chunk: &[u8], out: &mut [u8]) -> usize;
    /// Decrypts all of `wire`; returns the number of plaintext bytes taken out.
    fn receive(&mut self, wire: &[u8], plain: &mut [u8]) -> usize;
}

impl Tunnel for Session {
    fn send(&mut self, chunk: &[u8], out: &mut [u8]) -> usize {
        let taken = self.handle_application_data(chunk).expect("send");
        assert_eq!(taken, chunk.len());
        match self.poll_output_slice(out).expect("records") {
            Output::Transmit(n) => n,
            Output::Receive | Output::Done => 0,
        }
    }

    fn receive(&mut self, mut wire: &[u8], plain: &mut [u8]) -> usize {
        let mut total = 0;
        loop {
            let consumed = self.handle_input(wire).expect("input");
            wire = &wire[consumed..];
            loop {
                match self.poll_application_data(plain).expect("data") {
                    ApplicationData::Data(n) => total += n,
                    ApplicationData::NeedInput => break,
                    ApplicationData::Closed => panic!("closed"),
                }
            }
            if wire.is_empty() {
                return total;
            }
        }
    }
}

impl Tunnel for ClientConnection {
    fn send(&mut self, chunk: &[u8], mut out: &mut [u8]) -> usize {
        let taken = self.writer().write(chunk).expect("send");
        assert_eq!(taken, chunk.len());
        let mut n = 0;
        while self.wants_write() {
            n += self.write_tls(&mut out).expect("write_tls");
        }
        n
    }

    fn receive(&mut self, mut wire: &[u8], plain: &mut [u8]) -> usize {
        let mut total = 0;
        while !wire.is_empty() {
            // read_tls refuses input while 16 KiB of plaintext wait: drain, then go on.
            if let Ok(n) = self.read_tls(&mut wire) {
                if n > 0 {
                    self.process_new_packets().expect("process");
                }
            }
            loop {
                match self.reader().read(plain) {
                    Ok(0) => panic!("closed"),
                    Ok(n) => total += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
        total
    }
}

/// Client CPU time for `total` bytes up and `total` bytes down.
fn run_tunnel(
    client: &mut dyn Tunnel,
    server: &mut ServerConnection,
    total: usize,
) -> (Duration, Duration) {
    let chunk = vec![0x42u8; CHUNK];
    let mut wire = vec![0u8; BATCH * (CHUNK + 64)];
    let mut server_wire = Vec::with_capacity(BATCH * (CHUNK + 64));
    let mut plain = vec![0u8; RECORD];
    let batches = total / (CHUNK * BATCH);
    let (mut up, mut down) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..batches {
        // Up: the client encrypts a batch (timed), the server decrypts it.
        let t0 = thread_cpu();
        let mut len = 0;
        for _ in 0..BATCH {
            len += measured_up(|| client.send(&chunk, &mut wire[len..]));
        }
        up += thread_cpu() - t0;
        let mut input = &wire[..len];
        let mut received = 0;
        while !input.is_empty() {
            server.read_tls(&mut input).expect("server read");
            server.process_new_packets().expect("server process");
            loop {
                match server.reader().read(&mut plain) {
                    Ok(n) if n > 0 => received += n,
                    _ => break,
                }
            }
        }
        assert_eq!(received, CHUNK * BATCH);
        // Down: the server encrypts a batch, the client decrypts it (timed).
        server_wire.clear();
        for _ in 0..BATCH {
            server.writer().write_all(&chunk).expect("server write");
            while server.wants_write() {
                server
                    .write_tls(&mut server_wire)
                    .expect("server write_tls");
            }
        }
        let t0 = thread_cpu();
        let got = measured_down(|| client.receive(&server_wire, &mut plain));
        down += thread_cpu() - t0;
        assert_eq!(got, CHUNK * BATCH);
    }
    (up, down)
}

/// The provider's AEAD on 16 KiB records: seal (up) and open (down), in place.
fn run_aead(suite: &str, total: usize) -> (Duration, Duration) {
    let algorithm = if suite.contains("AES_256_GCM") {
        &AES_256_GCM
    } else if suite.contains("AES_128_GCM") {
        &AES_128_GCM
    } else {
        &CHACHA20_POLY1305
    };
    let key =
        LessSafeKey::new(UnboundKey::new(algorithm, &vec![7u8; algorithm.key_len()]).expect("key"));
    let records = total / RECORD;
    let per_batch = (BATCH * CHUNK) / RECORD;
    let mut batch: Vec<Vec<u8>> = (0..per_batch).map(|_| vec![0x42u8; RECORD + 16]).collect();
    let mut sealed: Vec<Vec<u8>> = Vec::new();
    let nonce = |seq: u64| {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&seq.to_be_bytes());
        Nonce::assume_unique_for_key(n)
    };
    let header = [23u8, 3, 3, 0x40, 0x11];
    let (mut up, mut down) = (Duration::ZERO, Duration::ZERO);
    let mut seq = 0u64;
    for _ in 0..records / per_batch {
        let t0 = thread_cpu();
        for record in batch.iter_mut() {
            let (data, tag_space) = record.split_at_mut(RECORD);
            let tag =
                measured_up(|| key.seal_in_place_separate_tag(nonce(seq), Aad::from(header), data))
                    .expect("seal");
            tag_space.copy_from_slice(tag.as_ref());
            seq += 1;
        }
        up += thread_cpu() - t0;
        // Open what was just sealed (in place: they are consumed).
        sealed.clear();
        sealed.extend(batch.iter().cloned());
        let first = seq - per_batch as u64;
        let t0 = thread_cpu();
        for (i, record) in sealed.iter_mut().enumerate() {
            let plain = measured_down(|| {
                key.open_in_place(nonce(first + i as u64), Aad::from(header), record)
            })
            .expect("open");
            std::hint::black_box(plain);
        }
        down += thread_cpu() - t0;
        for record in batch.iter_mut() {
            record.fill(0x42);
        }
    }
    (up, down)
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

/// Every client-side call of the upload goes through here (callgrind collects in it).
#[inline(never)]
fn measured_up<R>(f: impl FnOnce() -> R) -> R {
    std::hint::black_box(1u8);
    f()
}

/// Every client-side call of the download goes through here.
#[inline(never)]
fn measured_down<R>(f: impl FnOnce() -> R) -> R {
    std::hint::black_box(2u8);
    f()
}

/// Instruction counts of the three, from callgrind runs of this binary (`run-one`).
fn instructions(mib: usize) {
    let exe = std::env::current_exe().expect("exe");
    let dir = common::target_dir().join("bench").join("callgrind");
    std::fs::create_dir_all(&dir).expect("callgrind dir");
    let mut rows = Vec::new();
    for variant in ["pgtls", "rustls", "aead"] {
        let mut counts = [0f64; 2];
        for (i, direction) in ["up", "down"].into_iter().enumerate() {
            let out = dir.join(format!("throughput-{variant}-{direction}.out"));
            let ok = std::process::Command::new("valgrind")
                .args(["--tool=callgrind", "--collect-atstart=no"])
                .arg(format!("--toggle-collect=*measured_{direction}*"))
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(&exe)
                .args(["run-one", variant, &mib.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "callgrind run of {variant} failed");
            let text = std::fs::read_to_string(&out).expect("callgrind output");
            let total: u64 = text
                .lines()
                .find_map(|l| l.strip_prefix("summary:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .expect("summary");
            counts[i] = total as f64 / (mib as f64 * 1024.0 * 1024.0);
        }
        rows.push((variant, counts));
    }
    let [(_, pg), (_, rl), (_, ae)] = [rows[0], rows[1], rows[2]];
    println!("### Session throughput in instructions (callgrind, client side only, {mib} MiB each way, 8 KiB writes; instructions per byte, lower is faster)\n");
    println!("| | up (encrypt) | down (decrypt) | up ratio | down ratio |");
    println!("|---|---:|---:|---|---|");
    println!(
        "| pgtls `Session` | {:.3} | {:.3} | {:.3} × rustls's speed (target ≥ 0.9), {:.2} × AEAD | {:.3} × rustls's speed, {:.2} × AEAD |",
        pg[0], pg[1], rl[0] / pg[0], ae[0] / pg[0], rl[1] / pg[1], ae[1] / pg[1]
    );
    println!(
        "| bare rustls `ClientConnection` | {:.3} | {:.3} | {:.2} × AEAD | {:.2} × AEAD |",
        rl[0],
        rl[1],
        ae[0] / rl[0],
        ae[1] / rl[1]
    );
    println!(
        "| aws-lc-rs AEAD, 16 KiB records | {:.3} | {:.3} | 1 | 1 |",
        ae[0], ae[1]
    );
    println!();
}

/// One variant, one round (what `instructions` runs under callgrind).
fn run_one(variant: &str, total: usize) {
    let material = Material::load_or_generate(&Material::default_dir());
    let server_config = material.server_config();
    match variant {
        "pgtls" => {
            let (mut session, mut server) =
                common::pgtls_pair(&material.pgtls_verify_full(), &server_config);
            run_tunnel(&mut session, &mut server, total);
        }
        "rustls" => {
            let (mut conn, mut server) =
                common::rustls_pair(&material.rustls_webpki(), &server_config);
            run_tunnel(&mut conn, &mut server, total);
        }
        _ => {
            let (session, _server) =
                common::pgtls_pair(&material.pgtls_verify_full(), &server_config);
            let suite = format!("{:?}", session.cipher_suite().expect("suite").suite());
            run_aead(&suite, total);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().is_some_and(|a| a == "run-one") {
        let mib: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);
        run_one(
            args.get(1).map_or("pgtls", String::as_str),
            mib * 1024 * 1024,
        );
        return;
    }
    let mib: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(256);
    let total = mib * 1024 * 1024;
    instructions(16);
    let material = Material::load_or_generate(&Material::default_dir());
    let server_config = material.server_config();
    let pgtls_config = material.pgtls_verify_full();
    let rustls_config = material.rustls_webpki();

    let mut best = [(Duration::MAX, Duration::MAX); 3];
    let mut suite = String::new();
    for _ in 0..ROUNDS {
        let (mut session, mut server) = common::pgtls_pair(&pgtls_config, &server_config);
        suite = format!("{:?}", session.cipher_suite().expect("suite").suite());
        let r = run_tunnel(&mut session, &mut server, total);
        best[0] = (best[0].0.min(r.0), best[0].1.min(r.1));

        let (mut conn, mut server) = common::rustls_pair(&rustls_config, &server_config);
        let r = run_tunnel(&mut conn, &mut server, total);
        best[1] = (best[1].0.min(r.0), best[1].1.min(r.1));

        let r = run_aead(&suite, total);
        best[2] = (best[2].0.min(r.0), best[2].1.min(r.1));
    }
    let [pg, rl, ae] = best;
    println!("### Session throughput ({mib} MiB each way, 8 KiB writes, {suite}; client CPU, best of {ROUNDS})\n");
    println!("| | up (encrypt) MiB/s | down (decrypt) MiB/s | up ratio | down ratio |");
    println!("|---|---:|---:|---|---|");
    let row = |name: &str, (u, d): (Duration, Duration), ratio: String| {
        println!(
            "| {name} | {:.0} | {:.0} | {ratio} |",
            mib_s(total, u),
            mib_s(total, d)
        );
    };
    let r = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    row(
        "pgtls `Session`",
        pg,
        format!(
            "{:.2} × rustls (target ≥ 0.9), {:.2} × AEAD | {:.2} × rustls, {:.2} × AEAD",
            r(pg.0, rl.0),
            r(pg.0, ae.0),
            r(pg.1, rl.1),
            r(pg.1, ae.1)
        ),
    );
    row(
        "bare rustls `ClientConnection`",
        rl,
        format!("{:.2} × AEAD | {:.2} × AEAD", r(rl.0, ae.0), r(rl.1, ae.1)),
    );
    row("aws-lc-rs AEAD, 16 KiB records", ae, "1 | 1".into());
    println!();

    let mut best = [(Duration::MAX, Duration::MAX); 3];
    for _ in 0..ROUNDS {
        let (pg, rl, fio) = adapter::run(&pgtls_config, &rustls_config, &server_config, total);
        best[0] = (best[0].0.min(pg.0), best[0].1.min(pg.1));
        best[1] = (best[1].0.min(rl.0), best[1].1.min(rl.1));
        best[2] = (best[2].0.min(fio.0), best[2].1.min(fio.1));
    }
    let [pg, rl, fio] = best;
    println!("### Async adapters ({mib} MiB each way, 8 KiB writes, against a tokio-rustls server over an in-memory duplex, one thread; its CPU time, client and server together, best of {ROUNDS})\n");
    println!("| | up MiB/s | down MiB/s | up ratio | down ratio |");
    println!("|---|---:|---:|---|---|");
    let row = |name: &str, (u, d): (Duration, Duration), ratio: String| {
        println!(
            "| {name} | {:.0} | {:.0} | {ratio} |",
            mib_s(total, u),
            mib_s(total, d)
        );
    };
    row(
        "pgtls `tokio::TlsStream`",
        pg,
        format!(
            "{:.2} × tokio-rustls | {:.2} × tokio-rustls",
            r(pg.0, rl.0),
            r(pg.1, rl.1)
        ),
    );
    row(
        "tokio-rustls `client::TlsStream`",
        rl,
        "baseline | baseline".into(),
    );
    row(
        "pgtls `futures_io::Stream` (the pipe through futures-io's traits)",
        fio,
        format!(
            "{:.2} × tokio-rustls | {:.2} × tokio-rustls",
            r(fio.0, rl.0),
            r(fio.1, rl.1)
        ),
    );
    println!();
}

/// The tokio layer: pgtls's adapter (`pgtls::tokio::TlsStream`) versus tokio-rustls's client
/// stream, each against a tokio-rustls server over an in-memory duplex pipe, on one
/// current-thread runtime. Wall-clock of both sides together (the server's share is the
/// same in both), 8 KiB writes each way.
mod adapter {
    use std::sync::Arc;
    use std::time::Duration;

    use pgtls::plan::Method;
    use pgtls::rustls::pki_types::ServerName;
    use pgtls::rustls::{ClientConfig, ServerConfig};
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

    use super::CHUNK;

    const PIPE: usize = 64 * 1024;

    async fn server(
        config: Arc<ServerConfig>,
        mut sock: DuplexStream,
        ssl_request: bool,
        total: usize,
    ) {
        if ssl_request {
            let mut req = [0u8; 8];
            sock.read_exact(&mut req).await.expect("SSLRequest");
            sock.write_all(b"S").await.expect("S");
        }
        let mut tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(sock)
            .await
            .expect("server handshake");
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = 0;
        while got < total {
            let n = tls.read(&mut buf).await.expect("server read");
            assert!(n > 0, "client closed early");
            got += n;
        }
        let chunk = vec![0x24u8; CHUNK];
        for _ in 0..total / CHUNK {
            tls.write_all(&chunk).await.expect("server write");
        }
        tls.flush().await.expect("server flush");
        let _ = tls.read(&mut buf).await;
    }

    async fn client<S: AsyncRead + AsyncWrite + Unpin>(
        mut tls: S,
        total: usize,
    ) -> (Duration, Duration) {
        let chunk = vec![0x42u8; CHUNK];
        let t0 = super::thread_cpu();
        for _ in 0..total / CHUNK {
            tls.write_all(&chunk).await.expect("client write");
        }
        tls.flush().await.expect("client flush");
        let up = super::thread_cpu() - t0;
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = 0;
        let t0 = super::thread_cpu();
        while got < total {
            let n = tls.read(&mut buf).await.expect("client read");
            assert!(n > 0, "server closed early");
            got += n;
        }
        let down = super::thread_cpu() - t0;
        let _ = tls.shutdown().await;
        (up, down)
    }

    pub fn run(
        pgtls_config: &pgtls::Config,
        rustls_config: &Arc<ClientConfig>,
        server_config: &Arc<ServerConfig>,
        total: usize,
    ) -> (
        (Duration, Duration),
        (Duration, Duration),
        (Duration, Duration),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (c, s) = tokio::io::duplex(PIPE);
            let srv = tokio::spawn(server(server_config.clone(), s, true, total));
            let stream = match pgtls::tokio::negotiate(pgtls_config, Method::SslRequest, c)
                .await
                .expect("pgtls negotiate")
            {
                pgtls::tokio::Attempt::Ready(stream) => stream,
                pgtls::tokio::Attempt::Refused(_) => panic!("refused"),
            };
            let pg = client(stream, total).await;
            srv.await.expect("server task");

            let (c, s) = tokio::io::duplex(PIPE);
            let srv = tokio::spawn(server(server_config.clone(), s, false, total));
            let name = ServerName::try_from(super::common::HOST).expect("name");
            let stream = tokio_rustls::TlsConnector::from(rustls_config.clone())
                .connect(name, c)
                .await
                .expect("tokio-rustls connect");
            let rl = client(stream, total).await;
            srv.await.expect("server task");

            // The futures-io adapter over the same pipe seen through futures-io's traits
            // (no tokio IO types reach pgtls), through libpq's whole plan for one host.
            let (c, s) = tokio::io::duplex(PIPE);
            let srv = tokio::spawn(server(server_config.clone(), s, true, total));
            let mut pipe = Some(FuturesPipe(c));
            let connected = pgtls::futures_io::connect(
                pgtls_config,
                None::<std::future::Pending<()>>,
                move || {
                    let pipe = pipe.take();
                    async move { pipe.ok_or_else(|| std::io::Error::other("one connection only")) }
                },
                |stream| async move { Ok::<_, pgtls::futures_io::StartupError>(stream) },
            )
            .await
            .expect("pgtls futures-io connect");
            let fio = futures_io_client(connected.startup, total).await;
            srv.await.expect("server task");
            (pg, rl, fio)
        })
    }

    /// [`client`] through futures-io's traits (smol's extension methods).
    async fn futures_io_client<S>(mut tls: S, total: usize) -> (Duration, Duration)
    where
        S: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin,
    {
        use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let chunk = vec![0x42u8; CHUNK];
        let t0 = super::thread_cpu();
        for _ in 0..total / CHUNK {
            tls.write_all(&chunk).await.expect("client write");
        }
        tls.flush().await.expect("client flush");
        let up = super::thread_cpu() - t0;
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = 0;
        let t0 = super::thread_cpu();
        while got < total {
            let n = tls.read(&mut buf).await.expect("client read");
            assert!(n > 0, "server closed early");
            got += n;
        }
        let down = super::thread_cpu() - t0;
        let _ = tls.close().await;
        (up, down)
    }

    /// A tokio duplex pipe seen through futures-io's `AsyncRead`/`AsyncWrite`.
    struct FuturesPipe(DuplexStream);

    impl smol::io::AsyncRead for FuturesPipe {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            let mut read = ReadBuf::new(buf);
            ready!(Pin::new(&mut self.get_mut().0).poll_read(cx, &mut read))?;
            Poll::Ready(Ok(read.filled().len()))
        }
    }

    impl smol::io::AsyncWrite for FuturesPipe {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_flush(cx)
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
        }
    }
}
