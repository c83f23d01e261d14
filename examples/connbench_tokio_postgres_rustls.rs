//! The tokio-postgres + tokio-postgres-rustls baseline for `connbench`: N connections one
//! after another on a current-thread runtime, `SELECT 1` on each, then the client is dropped
//! (tokio-postgres sends Terminate) and the connection task awaited.
//!
//! ```text
//! cargo run --release --example connbench_tokio_postgres_rustls -- \
//!     'host=localhost hostaddr=127.0.0.1 port=5432 user=postgres dbname=postgres \
//!      sslmode=verify-full sslrootcert=root.crt' 300
//! ```
//!
//! tokio-postgres knows neither `verify-full` nor `sslrootcert`: they are taken out of the
//! string here and turned into what a tokio-postgres-rustls user writes — `sslmode=require`
//! and a rustls `ClientConfig` (aws-lc-rs, WebPKI verifier) whose root store holds that
//! file, built once. Output as `connbench`, plus `resumed=K` in the `connbench:` line: rustls's
//! default `ClientConfig` resumes TLS sessions where the server issues tickets (pgbouncer,
//! `pgtls proxy --tickets`; never PostgreSQL), and K counts the connections that showed no
//! certificate (the verifier is rustls's own `WebPkiServerVerifier`, wrapped to count).
use std::str::FromStr;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use pgtls::rustls;

fn main() {
    // Errors in their Display form (libpq's words), not Debug.
    if let Err(err) = run() {
        eprintln!("connbench_tokio_postgres_rustls: {err}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(conninfo), Some(n)) = (args.first(), args.get(1)) else {
        eprintln!("usage: connbench_tokio_postgres_rustls 'CONNINFO' N");
        std::process::exit(2);
    };
    let n: usize = n.parse()?;
    let mut rootcert = None;
    let mut verify = false;
    let kept: Vec<&str> = conninfo
        .split_whitespace()
        .filter(|kv| match kv.split_once('=') {
            Some(("sslrootcert", v)) => {
                rootcert = Some(v.to_owned());
                false
            }
            Some(("sslmode", v)) => {
                verify = matches!(v, "verify-ca" | "verify-full" | "require");
                false
            }
            _ => true,
        })
        .collect();
    let mut pg = tokio_postgres::Config::from_str(&kept.join(" "))?;
    let mut roots = RootCertStore::empty();
    if let Some(path) = &rootcert {
        for cert in CertificateDer::pem_slice_iter(&std::fs::read(path)?) {
            roots.add(cert?)?;
        }
    }
    pg.ssl_mode(if verify {
        tokio_postgres::config::SslMode::Require
    } else {
        tokio_postgres::config::SslMode::Disable
    });
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    // Without a root file (the plaintext runs) there is nothing to verify against, and
    // rustls's WebPKI verifier refuses an empty root store.
    let (config, verifier) = if roots.is_empty() {
        (
            builder.with_root_certificates(roots).with_no_client_auth(),
            None,
        )
    } else {
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        let verifier = Arc::new(CountingVerifier {
            inner: webpki,
            verified: AtomicUsize::new(0),
        });
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        (config, Some(verifier))
    };
    // Seed aws-lc's random generator before the clock starts, as `connbench` does.
    config
        .crypto_provider()
        .secure_random
        .fill(&mut [0u8; 1])
        .map_err(|_| "no randomness")?;
    let tls = MakeRustlsConnect::new(config);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    rt.block_on(async {
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
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    let tls_count = if verify { n } else { 0 };
    let verified = verifier.map_or(tls_count, |v| v.verified.load(Ordering::Relaxed));
    let resumed = tls_count.saturating_sub(verified);
    println!("connections: {n} ({tls_count} over TLS)");
    println!("connections/s: {:.0}", n as f64 / wall.as_secs_f64());
    println!(
        "client CPU per connection: {:.3} ms (user + sys)",
        cpu.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "connbench: n={n} tls={tls_count} resumed={resumed} wall_s={:.6} cpu_s={:.6}",
        wall.as_secs_f64(),
        cpu.as_secs_f64()
    );
    Ok(())
}

/// rustls's WebPKI verifier, counting the chains it verified: a resumed TLS session shows no
/// certificate, so `N - verified` connections resumed (rustls's default `ClientConfig`
/// keeps a session cache and offers its tickets, which tokio-postgres-rustls does not change).
#[derive(Debug)]
struct CountingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    verified: AtomicUsize,
}

impl ServerCertVerifier for CountingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verified.fetch_add(1, Ordering::Relaxed);
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
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
