//! Memory against a real PostgreSQL: whole-process counters, one thread. Needs the counting
//! allocator installed by the including binary and `mod alloc; mod common;` beside it.
#![allow(dead_code)]

use super::alloc;
use super::common;
use super::pgwire;
use std::future::Future;
use std::pin::Pin;

use pgtls::rustls::pki_types::pem::PemObject;
use pgtls::rustls::pki_types::CertificateDer;
use pgtls::rustls::{ClientConfig, RootCertStore};
use tokio::task::JoinHandle;
use tokio_postgres::Client;

/// Connections held at once for the per-connection figures.
const HELD: usize = 100;

type Held = (Client, JoinHandle<()>);
type Connect<'a> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Held> + 'a>> + 'a>;

pub fn run(host: &str, port: u16, ca: &str) {
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run_async(host, port, ca));
}

fn pg_config(host: &str, port: u16) -> tokio_postgres::Config {
    let mut pg = tokio_postgres::Config::new();
    pg.host(host)
        .hostaddr(std::net::Ipv4Addr::LOCALHOST.into())
        .port(port)
        .user("postgres")
        .dbname("postgres");
    pg
}

async fn run_async(host: &str, port: u16, ca: &str) {
    let ca_pem = std::fs::read(ca).expect("CA file");
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("root");
    }
    let rustls_config = ClientConfig::builder_with_provider(common::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let rustls_tls = tokio_postgres_rustls::MakeRustlsConnect::new(rustls_config);

    let mut rows = Vec::new();
    {
        let mut pg = pg_config(host, port);
        pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
        rows.push((
            "tokio-postgres, no TLS (reference)",
            per_connection(Box::new(move || {
                let pg = pg.clone();
                Box::pin(async move { spawn(pg.connect(tokio_postgres::NoTls).await).await })
            }))
            .await,
        ));
    }
    {
        let mut pg = pg_config(host, port);
        pg.ssl_mode(tokio_postgres::config::SslMode::Require);
        let tls = rustls_tls.clone();
        rows.push((
            "tokio-postgres + tokio-postgres-rustls (WebPKI)",
            per_connection(Box::new(move || {
                let (pg, tls) = (pg.clone(), tls.clone());
                Box::pin(async move { spawn(pg.connect(tls).await).await })
            }))
            .await,
        ));
    }
    let conninfo = format!(
        "host={host} hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={ca}"
    );
    {
        let (tls, pg) =
            pgtls::tokio_postgres::MakeTlsConnector::from_conninfo(&conninfo).expect("conninfo");
        rows.push((
            "tokio-postgres + pgtls connector (verify-full)",
            per_connection(Box::new(move || {
                let (pg, tls) = (pg.clone(), tls.clone());
                Box::pin(async move { spawn(pg.connect(tls).await).await })
            }))
            .await,
        ));
    }
    println!("### Memory per connection, real PostgreSQL 15 on loopback (whole process, {HELD} idle connections held, `SELECT 1` run once on each)\n");
    println!("| client | allocations per connect | heap held per connection | vs no TLS |");
    println!("|---|---:|---:|---|");
    let plain = rows[0].1;
    for (name, (allocs, live)) in &rows {
        println!(
            "| {name} | {allocs:.0} | {live:.0} B | {:+.0} B |",
            live - plain.1
        );
    }
    println!();
    scale(&conninfo).await;
}

/// 1, 10, 100 and 1000 pgtls tokio-adapter sessions held open at once (startup and
/// `SELECT 1` done, idle): whole-process heap per session.
async fn scale(conninfo: &str) {
    use pgtls::libpq::{ConnParams, Environment};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    let settings = ConnParams::parse(conninfo)
        .and_then(|p| p.resolve(&Environment::empty()))
        .expect("conninfo");
    let (target, config) = settings.to_configs().expect("config").remove(0);
    let addr = (target.connect_host().to_owned(), target.port());
    let startup = pgwire::startup_message(settings.user(), settings.dbname());
    let connect = || async {
        let connected = pgtls::tokio::connect(
            &config,
            None,
            || async { TcpStream::connect((addr.0.as_str(), addr.1)).await },
            |mut stream: pgtls::tokio::Stream<TcpStream>| {
                let startup = &startup;
                async move {
                    pgwire::startup(&mut stream, startup)
                        .await
                        .map_err(|e| pgtls::tokio::StartupError::Fatal(format!("{e:?}").into()))?;
                    Ok(stream)
                }
            },
        )
        .await
        .expect("connect");
        let mut stream = connected.startup;
        pgwire::select_1(&mut stream).await.expect("SELECT 1");
        stream
    };
    drop(connect().await); // warm-up
    println!("### Scale: pgtls tokio-adapter sessions held open at once against PostgreSQL 15 (verify-full; whole-process heap per session, idle after `SELECT 1`)\n");
    println!("| sessions | heap per session | allocations per connect |");
    println!("|---:|---:|---:|");
    for n in [1usize, 10, 100, 1000] {
        let mut held = Vec::with_capacity(n);
        let before = alloc::global();
        for _ in 0..n {
            held.push(connect().await);
        }
        let diff = alloc::global().since(&before);
        println!(
            "| {n} | {:.0} B | {:.0} |",
            diff.live() as f64 / n as f64,
            diff.allocs as f64 / n as f64
        );
        for mut stream in held {
            let _ = stream.write_all(pgwire::TERMINATE).await;
            let _ = stream.shutdown().await;
        }
        // Let the backends exit before the next, larger step.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    println!();
}

async fn spawn<T>(
    connected: Result<
        (
            Client,
            tokio_postgres::Connection<tokio_postgres::Socket, T>,
        ),
        tokio_postgres::Error,
    >,
) -> Held
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) = connected.expect("connect");
    let handle = tokio::spawn(async move {
        let _ = connection.await;
    });
    client.simple_query("SELECT 1").await.expect("SELECT 1");
    (client, handle)
}

/// Connects `HELD` times, holding every connection; (allocations per connect, live heap
/// per connection), both whole-process.
async fn per_connection(mut connect: Connect<'_>) -> (f64, f64) {
    // Warm-up connection (lazy statics, runtime structures), dropped.
    drop(connect().await);
    tokio::task::yield_now().await;
    let mut held = Vec::with_capacity(HELD);
    let before = alloc::global();
    for _ in 0..HELD {
        held.push(connect().await);
    }
    // Let the connection tasks settle (idle, waiting for the socket).
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let diff = alloc::global().since(&before);
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    (
        diff.allocs as f64 / HELD as f64,
        diff.live() as f64 / HELD as f64,
    )
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
