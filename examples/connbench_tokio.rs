//! `connbench` over tokio (current-thread runtime): N connections one after another,
//! `SELECT 1` on each, close.
//!
//! ```text
//! cargo run --release --example connbench_tokio -- 'CONNINFO' N
//! cargo run --release --example connbench_tokio -- --tokio-postgres 'CONNINFO' N
//! ```
//!
//! - Default: pgtls's tokio adapter, `pgtls::tokio::connect` (libpq's plan), a hand-written
//!   StartupMessage (trust authentication only), `SELECT 1`, Terminate, close_notify.
//! - `--tokio-postgres`: tokio-postgres with pgtls's connector
//!   (`pgtls::tokio_postgres::MakeTlsConnector::from_conninfo`), the same driver as the
//!   tokio-postgres-rustls baseline (`examples/connbench_tokio_postgres_rustls.rs`).
//!
//! The connection string is parsed and the TLS configuration built once. Output as
//! `connbench`: connections per second, client CPU per connection (user + sys, measured
//! around the loop after the RNG is seeded), and a `connbench:` line for scripts.
//! The adapter honours `PGTLS_BENCH_RESUMPTION` and `PGTLS_BENCH_CHAIN_CACHE` as `connbench`
//! does (`benches/common/bench_options.rs`) and its `connbench:` line counts resumed
//! connections (`resumed=K`); `--tokio-postgres` refuses them.
use std::time::{Duration, Instant};

use pgtls::libpq::{ConnParams, Environment};
use pgtls::tokio::{StartupError, Stream};
use pgtls::tokio_postgres::MakeTlsConnector;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[path = "../benches/common/pgwire.rs"]
mod pgwire;

#[path = "../benches/common/bench_options.rs"]
mod bench_options;
use bench_options::BenchOptions;

fn main() {
    // Errors in their Display form (libpq's words), not Debug.
    if let Err(err) = run() {
        eprintln!("connbench_tokio: {err}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let tokio_postgres = args.first().is_some_and(|a| a == "--tokio-postgres");
    if tokio_postgres {
        args.remove(0);
    }
    let (Some(conninfo), Some(n)) = (args.first(), args.get(1)) else {
        eprintln!("usage: connbench_tokio [--tokio-postgres] 'CONNINFO' N");
        std::process::exit(2);
    };
    let n: usize = n.parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (cpu, wall, counts) = if tokio_postgres {
        rt.block_on(with_tokio_postgres(conninfo, n))?
    } else {
        rt.block_on(with_adapter(conninfo, n))?
    };
    let tls = counts.tls;
    let resumed = counts
        .resumed
        .map_or(String::new(), |k| format!(" resumed={k}"));
    println!("connections: {n} ({tls} over TLS)");
    println!("connections/s: {:.0}", n as f64 / wall.as_secs_f64());
    println!(
        "client CPU per connection: {:.3} ms (user + sys)",
        cpu.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "connbench: n={n} tls={tls}{resumed}{} wall_s={:.6} cpu_s={:.6}",
        counts.chain_cache,
        wall.as_secs_f64(),
        cpu.as_secs_f64()
    );
    Ok(())
}

/// What the connections were.
#[derive(Clone, Debug)]
struct Counts {
    /// Over TLS.
    tls: usize,
    /// Resumed an earlier TLS session (`None`: not known).
    resumed: Option<usize>,
    /// ` chain_cache_hits=H` when known, else empty.
    chain_cache: String,
}

/// CPU time, wall time and the counts of one run.
type Measured = Result<(Duration, Duration, Counts), Box<dyn std::error::Error>>;

/// The connection settings from `conninfo` and the environment.
fn settings(conninfo: &str) -> Result<pgtls::libpq::Settings, Box<dyn std::error::Error>> {
    Ok(ConnParams::parse(conninfo)?.resolve(&Environment::from_process_env())?)
}

/// Seeds the provider's random generator (aws-lc: once per process, 50-100 ms).
fn seed_rng(config: &pgtls::Config) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(tls) = config.rustls_config() {
        tls.crypto_provider()
            .secure_random
            .fill(&mut [0u8; 1])
            .map_err(|_| "no randomness")?;
    }
    Ok(())
}

async fn with_adapter(conninfo: &str, n: usize) -> Measured {
    let options = BenchOptions::from_env()?;
    let settings = settings(conninfo)?;
    let (target, config) = settings
        .to_configs_with(|builder| options.customize(builder))?
        .into_iter()
        .next()
        .ok_or("no host in the connection string")?;
    let config = options.for_port(config, target.port());
    let addr = (target.connect_host().to_owned(), target.port());
    let startup = pgwire::startup_message(settings.user(), settings.dbname());
    seed_rng(&config)?;
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let mut counts = Counts {
        tls: 0,
        resumed: Some(0),
        chain_cache: String::new(),
    };
    for _ in 0..n {
        let connected = pgtls::tokio::connect(
            &config,
            settings.connect_timeout(),
            || async {
                let stream = TcpStream::connect((addr.0.as_str(), addr.1)).await?;
                stream.set_nodelay(true)?;
                Ok(stream)
            },
            |mut stream: Stream<TcpStream>| {
                let startup = &startup;
                async move {
                    match pgwire::startup(&mut stream, startup).await {
                        Ok(()) => Ok(stream),
                        Err(pgwire::StartupFailure::Rejected(message)) => {
                            Err(StartupError::Rejected {
                                sqlstate: None,
                                message,
                            })
                        }
                        Err(pgwire::StartupFailure::Io(err)) => Err(StartupError::Io(err)),
                        Err(pgwire::StartupFailure::NeedsPassword) => Err(StartupError::Fatal(
                            "connbench supports trust authentication only".into(),
                        )),
                    }
                }
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut stream = connected.startup;
        counts.tls += usize::from(stream.is_tls());
        if let Some(k) = &mut counts.resumed {
            *k += usize::from(bench_options::resumed(stream.session()));
        }
        pgwire::select_1(&mut stream).await?;
        stream.write_all(pgwire::TERMINATE).await?;
        stream.shutdown().await?;
    }
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    counts.chain_cache = bench_options::chain_cache_field(&config);
    Ok((cpu, wall, counts))
}

async fn with_tokio_postgres(conninfo: &str, n: usize) -> Measured {
    if BenchOptions::from_env()? != BenchOptions::default() {
        return Err("--tokio-postgres takes no PGTLS_BENCH_* options".into());
    }
    let (tls, pg) = MakeTlsConnector::from_libpq(&settings(conninfo)?)?;
    seed_rng(tls.config())?;
    let encrypted = tls.config().sslmode() != pgtls::SslMode::Disable;
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    for _ in 0..n {
        let (client, connection) = pg.connect(tls.clone()).await?;
        let task = tokio::spawn(connection);
        let messages = client.simple_query("SELECT 1").await?;
        let rows = messages
            .iter()
            .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
            .count();
        assert_eq!(rows, 1, "SELECT 1 returns one row");
        drop(client);
        task.await??;
    }
    let counts = Counts {
        tls: if encrypted { n } else { 0 },
        resumed: None,
        chain_cache: String::new(),
    };
    Ok((cpu_time() - cpu0, wall0.elapsed(), counts))
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
