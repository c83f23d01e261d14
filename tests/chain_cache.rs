//! The verified-chain cache ([`ConfigBuilder::verified_chain_cache`]): a chain that verified
//! before is accepted without path building or chain signatures, and every connection still
//! gets exactly the verdict and libpq message a full verification gives — across certificate
//! changes, a full cache, clocks that jump either way over a certificate's or a CRL's
//! validity, and wrong host names. In memory (real rustls handshakes against the fake
//! server, with a settable clock), and against a real PostgreSQL 15.

mod support;

use std::net::TcpStream;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgtls::blocking::{connect, StartupError, Stream};
use pgtls::plan::Method;
use pgtls::rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use pgtls::rustls::time_provider::TimeProvider;
use pgtls::{Config, ConfigBuilder, RootCertificates, SslMode, VerifiedChainCacheStats};
use time::OffsetDateTime;

use pgtls_testkit::certs::{Ca, Leaf, LeafSpec};
use pgtls_testkit::fake_server::{default_server_tls_config, ServerScript};
use pgtls_testkit::pair::{drive, Drive};
use pgtls_testkit::pg;

const HOST: &str = "db.example.com";
const DAY: i64 = 86_400;

const UNKNOWN_ISSUER: &str =
    "SSL error: certificate verify failed: unable to get local issuer certificate";
const EXPIRED: &str = "SSL error: certificate verify failed: certificate has expired";
const NOT_YET_VALID: &str = "SSL error: certificate verify failed: certificate is not yet valid";
const REVOKED: &str = "SSL error: certificate verify failed: certificate revoked";
const CRL_EXPIRED: &str = "SSL error: certificate verify failed: CRL has expired";
const CRL_NOT_YET_VALID: &str = "SSL error: certificate verify failed: CRL is not yet valid";

/// A clock the test sets, in whole seconds.
#[derive(Debug)]
struct Clock(AtomicI64);

impl Clock {
    fn at(seconds: i64) -> Arc<Clock> {
        Arc::new(Clock(AtomicI64::new(seconds)))
    }

    fn set(&self, seconds: i64) {
        self.0.store(seconds, Ordering::SeqCst);
    }
}

impl TimeProvider for Clock {
    fn current_time(&self) -> Option<UnixTime> {
        let seconds = u64::try_from(self.0.load(Ordering::SeqCst)).ok()?;
        Some(UnixTime::since_unix_epoch(Duration::from_secs(seconds)))
    }
}

/// Now, in whole seconds (certificate times are whole seconds).
fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn time(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).expect("a valid time")
}

/// A server leaf for [`HOST`] valid from `not_before` until `not_after` (seconds).
fn leaf_valid(ca: &Ca, not_before: i64, not_after: i64) -> Leaf {
    ca.leaf(LeafSpec::server(HOST).validity(time(not_before), time(not_after)))
}

fn builder(ca: &Ca, clock: &Arc<Clock>) -> ConfigBuilder {
    Config::builder()
        .sslmode(SslMode::VerifyFull)
        .host(HOST)
        .crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .root_certificates(RootCertificates::Certificates(vec![ca.root_der()]))
        .time_provider(clock.clone())
}

/// The same settings with the default cache and without any.
struct Pair {
    cached: Config,
    uncached: Config,
}

impl Pair {
    fn new(builder: ConfigBuilder) -> Pair {
        Pair {
            cached: builder.clone().build().expect("config"),
            uncached: builder.verified_chain_cache(0).build().expect("config"),
        }
    }

    /// One connection with each config; both must reach the same verdict.
    #[track_caller]
    fn attempt(&self, leaf: &Leaf) -> Result<(), String> {
        let cached = attempt(&self.cached, &leaf.chain, leaf);
        let uncached = attempt(&self.uncached, &leaf.chain, leaf);
        assert_eq!(cached, uncached, "the cache changed the verdict");
        cached
    }

    fn stats(&self) -> VerifiedChainCacheStats {
        assert_eq!(self.uncached.verified_chain_cache_stats(), None);
        self.cached
            .verified_chain_cache_stats()
            .expect("a cache by default")
    }

    /// (hits, misses) so far.
    fn counts(&self) -> (u64, u64) {
        let stats = self.stats();
        (stats.hits, stats.misses)
    }
}

/// One TLS attempt against a server presenting `chain` with `leaf`'s key: `Ok` if TLS came
/// up, else the error message.
fn attempt(config: &Config, chain: &[CertificateDer<'static>], leaf: &Leaf) -> Result<(), String> {
    let server = default_server_tls_config(chain.to_vec(), leaf.key.clone_key());
    let transcript = drive(
        config,
        Method::SslRequest,
        ServerScript::tls(server),
        &Drive::default(),
    );
    match transcript.outcome.kind() {
        "tls" => Ok(()),
        "failed" => Err(transcript.outcome.expect_err().to_string()),
        other => panic!("unexpected outcome {other}"),
    }
}

#[test]
fn a_chain_seen_before_is_a_hit_and_a_new_or_bad_chain_is_verified_in_full() {
    let t = now();
    let ca = Ca::root("chain-cache root");
    let other_ca = Ca::root("chain-cache other root");
    let clock = Clock::at(t);
    let pair = Pair::new(builder(&ca, &clock));
    let first = leaf_valid(&ca, t - DAY, t + 30 * DAY);
    let second = leaf_valid(&ca, t - DAY, t + 30 * DAY);

    assert_eq!(pair.attempt(&first), Ok(()));
    assert_eq!(pair.counts(), (0, 1));
    assert_eq!(pair.attempt(&first), Ok(()));
    assert_eq!(pair.counts(), (1, 1), "the same chain again is a hit");
    clock.set(t + DAY);
    assert_eq!(pair.attempt(&first), Ok(()));
    assert_eq!(
        pair.counts(),
        (2, 1),
        "a later time inside the window is a hit"
    );

    // The server changes certificate: a new chain is verified, the old one stays cached.
    assert_eq!(pair.attempt(&second), Ok(()));
    assert_eq!(pair.counts(), (2, 2));
    assert_eq!(pair.attempt(&second), Ok(()));
    assert_eq!(pair.attempt(&first), Ok(()));
    assert_eq!(pair.counts(), (4, 2));
    assert_eq!(pair.stats().entries, 2);

    // A bad new chain fails as without the cache, every time (failures are not cached).
    let stranger = other_ca.leaf(LeafSpec::server(HOST));
    for misses in [3, 4] {
        assert_eq!(pair.attempt(&stranger), Err(UNKNOWN_ISSUER.to_owned()));
        assert_eq!(pair.counts(), (4, misses));
    }
    assert_eq!(pair.stats().entries, 2);

    // The same certificate with another intermediate list is another chain.
    let mut padded = first.clone();
    padded.chain.push(second.cert.clone());
    assert_eq!(pair.attempt(&padded), Ok(()));
    assert_eq!(pair.counts(), (4, 5));
}

#[test]
fn the_host_name_is_checked_on_every_connection_even_on_a_hit() {
    let t = now();
    let ca = Ca::root("chain-cache host root");
    let clock = Clock::at(t);
    let config = builder(&ca, &clock).build().expect("config");
    let leaf = leaf_valid(&ca, t - DAY, t + DAY);
    assert_eq!(attempt(&config, &leaf.chain, &leaf), Ok(()));
    // with_host shares the cache: the chain is a hit, the host name still fails.
    let other = config.with_host("other.example").expect("config");
    assert_eq!(
        attempt(&other, &leaf.chain, &leaf),
        Err(format!(
            "server certificate for \"{HOST}\" does not match host name \"other.example\""
        ))
    );
    let stats = other.verified_chain_cache_stats().expect("a cache");
    assert_eq!((stats.hits, stats.misses), (1, 1));
    assert_eq!(config.verified_chain_cache_stats(), Some(stats));
}

#[test]
fn a_clock_past_not_after_or_back_before_not_before_verifies_in_full() {
    let t = now();
    let ca = Ca::root("chain-cache clock root");
    let clock = Clock::at(t);
    let pair = Pair::new(builder(&ca, &clock));
    // The root is valid from about t - DAY: stay clear of that instant.
    let (not_before, not_after) = (t - DAY / 2, t + DAY);
    let leaf = leaf_valid(&ca, not_before, not_after);

    assert_eq!(pair.attempt(&leaf), Ok(()));
    clock.set(not_after - 1);
    assert_eq!(pair.attempt(&leaf), Ok(()));
    assert_eq!(pair.counts(), (1, 1));
    // OpenSSL: expired from notAfter on.
    clock.set(not_after);
    assert_eq!(pair.attempt(&leaf), Err(EXPIRED.to_owned()));
    assert_eq!(pair.counts(), (1, 2));
    assert_eq!(
        pair.stats().entries,
        0,
        "an entry out of its window is dropped"
    );

    // The clock jumps back: valid again (verified in full, then cached)...
    clock.set(t);
    assert_eq!(pair.attempt(&leaf), Ok(()));
    assert_eq!(pair.counts(), (1, 3));
    // ... then back before notBefore: not yet valid, as without the cache.
    clock.set(not_before - 1);
    assert_eq!(pair.attempt(&leaf), Err(NOT_YET_VALID.to_owned()));
    assert_eq!(pair.counts(), (1, 4));
    // notBefore itself is valid.
    clock.set(not_before);
    assert_eq!(pair.attempt(&leaf), Ok(()));
    assert_eq!(pair.attempt(&leaf), Ok(()));
    assert_eq!(pair.counts(), (2, 5));
}

#[test]
fn another_certificates_validity_inside_the_path_validity_ends_the_window() {
    // OpenSSL prefers an issuer that is valid now among the presented certificates, so the
    // validity of every certificate the server sends bounds the window, on the path or not.
    let t = now();
    let ca = Ca::root("chain-cache window root");
    let clock = Clock::at(t);
    let pair = Pair::new(builder(&ca, &clock));
    let leaf = leaf_valid(&ca, t - DAY, t + 30 * DAY);
    // An unrelated certificate the server also sends, valid from t + DAY.
    let extra = leaf_valid(&ca, t + DAY, t + 30 * DAY);
    let mut chain = leaf.clone();
    chain.chain.push(extra.cert.clone());
    assert_eq!(pair.attempt(&chain), Ok(()));
    clock.set(t + DAY - 1);
    assert_eq!(pair.attempt(&chain), Ok(()));
    assert_eq!(pair.counts(), (1, 1));
    clock.set(t + DAY);
    assert_eq!(pair.attempt(&chain), Ok(()));
    assert_eq!(
        pair.counts(),
        (1, 2),
        "the extra certificate's notBefore ends the window"
    );
}

fn crl_pair(ca: &Ca, clock: &Arc<Clock>, crls: Vec<CertificateRevocationListDer<'static>>) -> Pair {
    Pair::new(builder(ca, clock).crls(crls))
}

#[test]
fn a_crl_past_its_next_update_fails_as_without_the_cache() {
    let t = now();
    let ca = Ca::root("chain-cache crl root");
    let leaf = leaf_valid(&ca, t - 10 * DAY, t + 30 * DAY);
    // The root is valid from about t - DAY: stay clear of that instant.
    let (this_update, next_update) = (t - DAY / 2, t + DAY);
    let crl = ca.crl(&[], time(this_update), time(next_update));
    let clock = Clock::at(t);
    let pair = crl_pair(&ca, &clock, vec![crl]);

    assert_eq!(pair.attempt(&leaf), Ok(()));
    clock.set(next_update - 1);
    assert_eq!(pair.attempt(&leaf), Ok(()));
    assert_eq!(pair.counts(), (1, 1));
    clock.set(next_update);
    assert_eq!(pair.attempt(&leaf), Err(CRL_EXPIRED.to_owned()));
    clock.set(this_update - 1);
    assert_eq!(pair.attempt(&leaf), Err(CRL_NOT_YET_VALID.to_owned()));
    clock.set(this_update);
    assert_eq!(pair.attempt(&leaf), Ok(()));
    assert_eq!(pair.counts(), (1, 4));
}

#[test]
fn a_newer_crl_that_becomes_valid_later_revokes_a_cached_chain() {
    // Two CRLs of the same CA: the current one lists nothing, a newer one (issued ahead of
    // time) revokes the leaf from t + DAY. Before then OpenSSL scores the newer one down (not in
    // time) and uses the current one; from then on it prefers the newer one. The path's own
    // validity and the CRL used first both span t + DAY, so only a window that stops at every
    // CRL's thisUpdate keeps the cache from accepting a revoked certificate.
    let t = now();
    let ca = Ca::root("chain-cache newer crl root");
    let leaf = leaf_valid(&ca, t - 10 * DAY, t + 30 * DAY);
    let current = ca.crl(&[], time(t - DAY), time(t + 10 * DAY));
    let newer = ca.crl(&[&leaf], time(t + DAY), time(t + 10 * DAY));
    let clock = Clock::at(t);
    let pair = crl_pair(&ca, &clock, vec![current, newer]);

    assert_eq!(pair.attempt(&leaf), Ok(()));
    clock.set(t + DAY - 1);
    assert_eq!(pair.attempt(&leaf), Ok(()));
    assert_eq!(pair.counts(), (1, 1));
    clock.set(t + DAY);
    assert_eq!(pair.attempt(&leaf), Err(REVOKED.to_owned()));
    assert_eq!(pair.counts(), (1, 2));
}

#[test]
fn a_full_cache_stays_bounded_and_correct() {
    let t = now();
    let ca = Ca::root("chain-cache bound root");
    let clock = Clock::at(t);
    let pair = Pair::new(builder(&ca, &clock).verified_chain_cache(2));
    let leaves: Vec<Leaf> = (0..3).map(|_| leaf_valid(&ca, t - DAY, t + DAY)).collect();
    let stranger = Ca::root("chain-cache bound stranger").leaf(LeafSpec::server(HOST));
    for round in 0..3 {
        for leaf in &leaves {
            assert_eq!(pair.attempt(leaf), Ok(()), "round {round}");
            assert_eq!(pair.attempt(&stranger), Err(UNKNOWN_ISSUER.to_owned()));
            let stats = pair.stats();
            assert!(stats.entries <= 2, "{stats:?}");
            assert_eq!(stats.capacity, 2);
        }
    }
    // Cycling three chains through two entries evicts each before it returns: all misses.
    assert_eq!(pair.counts(), (0, 18));
    // The most recent one is still there.
    assert_eq!(pair.attempt(&leaves[2]), Ok(()));
    assert_eq!(pair.counts(), (1, 18));
}

#[test]
fn one_cache_serves_connections_on_several_threads() {
    let t = now();
    let ca = Ca::root("chain-cache threads root");
    let clock = Clock::at(t);
    let config = builder(&ca, &clock).build().expect("config");
    let leaf = leaf_valid(&ca, t - DAY, t + DAY);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(attempt(&config, &leaf.chain, &leaf), Ok(()));
                }
            });
        }
    });
    let stats = config.verified_chain_cache_stats().expect("a cache");
    assert_eq!(stats.hits + stats.misses, 20, "{stats:?}");
    // Threads that raced the first verification missed too; every later connection hit.
    assert!((1..=4).contains(&stats.misses), "{stats:?}");
    assert_eq!(stats.entries, 1);
}

#[test]
fn no_cache_without_roots_or_when_turned_off() {
    let ca = Ca::root("chain-cache off root");
    let clock = Clock::at(now());
    let off = builder(&ca, &clock)
        .verified_chain_cache(0)
        .build()
        .expect("config");
    assert_eq!(off.verified_chain_cache_stats(), None);
    let leaf = ca.leaf(LeafSpec::server(HOST));
    assert_eq!(attempt(&off, &leaf.chain, &leaf), Ok(()));
    assert_eq!(attempt(&off, &leaf.chain, &leaf), Ok(()));
    assert_eq!(off.verified_chain_cache_stats(), None);
    let no_roots = Config::builder()
        .sslmode(SslMode::Require)
        .host(HOST)
        .build()
        .expect("config");
    assert_eq!(no_roots.verified_chain_cache_stats(), None);
    let default = builder(&ca, &clock).build().expect("config");
    let stats = default.verified_chain_cache_stats().expect("on by default");
    assert_eq!((stats.capacity, stats.entries), (64, 0));
}

// ------------------------------------------------------------------------------------------
// A real server: PostgreSQL 15

/// One connection to `server` through `config`: a full startup on success, else libpq's
/// message.
fn connect_pg(server: &pg::PgServer, config: &Config) -> Result<(), String> {
    let port = server.port;
    let params = support::startup::StartupParams {
        user: pg::SUPERUSER.to_owned(),
        database: "postgres".to_owned(),
        password: None,
        application_name: Some("pgtls-chain-cache".to_owned()),
        channel_binding: support::startup::ChannelBindingMode::Disable,
    };
    connect(
        config,
        Some(Duration::from_secs(10)),
        |_| TcpStream::connect(("127.0.0.1", port)),
        |stream: &mut Stream<TcpStream>| {
            let facts = support::startup::TlsFacts {
                tls: stream.is_tls(),
                channel_binding: None,
            };
            support::startup::run_startup(stream, &params, &facts)
                .map_err(|err| StartupError::Fatal(err.to_string().into()))
        },
    )
    .map(|_| ())
    .map_err(|failed| failed.error.to_string())
}

#[test]
fn postgresql_15_second_verify_full_connection_is_a_hit_and_a_wrong_host_still_fails() {
    if !pg::servers_available() {
        eprintln!("{}", pg::SKIP_NOTICE);
        return;
    }
    let Some(install) = pg::install_or_skip(pg::PgVersion::V15) else {
        return;
    };
    let ca = Ca::root("chain-cache real-server root");
    let leaf = ca.leaf(LeafSpec::server("localhost"));
    let server = pg::PgServer::start(
        &install,
        Some(pg::ServerTls::new(leaf.chain_pem(), leaf.key_pem.clone())),
        pg::Hba::HostSslOnly,
    )
    .expect("start server");
    let config = Config::builder()
        .sslmode(SslMode::VerifyFull)
        .host("localhost")
        .root_certificates(RootCertificates::Certificates(vec![ca.root_der()]))
        .build()
        .expect("config");
    let stats = |config: &Config| {
        let stats = config.verified_chain_cache_stats().expect("a cache");
        (stats.hits, stats.misses)
    };
    assert_eq!(connect_pg(&server, &config), Ok(()));
    assert_eq!(stats(&config), (0, 1));
    assert_eq!(connect_pg(&server, &config), Ok(()));
    assert_eq!(stats(&config), (1, 1), "the second connection is a hit");

    let wrong = config.with_host("wrong.example").expect("config");
    let err = connect_pg(&server, &wrong).expect_err("a wrong host must fail");
    assert!(
        err.contains(
            "server certificate for \"localhost\" does not match host name \"wrong.example\""
        ),
        "{err}"
    );
    assert_eq!(
        stats(&config),
        (2, 1),
        "the chain was a hit, the host name was checked"
    );
    // Without the cache, the same outcome.
    let uncached = Config::builder()
        .sslmode(SslMode::VerifyFull)
        .host("wrong.example")
        .root_certificates(RootCertificates::Certificates(vec![ca.root_der()]))
        .verified_chain_cache(0)
        .build()
        .expect("config");
    assert_eq!(connect_pg(&server, &uncached), Err(err));
}

#[test]
fn postgresql_15_changing_its_certificate_between_connections_is_verified_again() {
    if !pg::servers_available() {
        eprintln!("{}", pg::SKIP_NOTICE);
        return;
    }
    let Some(install) = pg::install_or_skip(pg::PgVersion::V15) else {
        return;
    };
    let ca = Ca::root("chain-cache changing-server root");
    let first = ca.leaf(LeafSpec::server("localhost"));
    let server = pg::PgServer::start(
        &install,
        Some(pg::ServerTls::new(first.chain_pem(), first.key_pem.clone())),
        pg::Hba::HostSslOnly,
    )
    .expect("start server");
    let builder = || {
        Config::builder()
            .sslmode(SslMode::VerifyFull)
            .host("localhost")
            .root_certificates(RootCertificates::Certificates(vec![ca.root_der()]))
    };
    let config = builder().build().expect("config");
    let uncached = builder().verified_chain_cache(0).build().expect("config");
    let stats = |config: &Config| {
        let stats = config.verified_chain_cache_stats().expect("a cache");
        (stats.hits, stats.misses)
    };
    assert_eq!(connect_pg(&server, &config), Ok(()));
    assert_eq!(connect_pg(&server, &config), Ok(()));
    assert_eq!(stats(&config), (1, 1));

    // A new, good certificate from the same CA: a new chain, verified in full, then a hit.
    let second = ca.leaf(LeafSpec::server("localhost"));
    server
        .set_server_cert(&second.chain_pem(), &second.key_pem, None, None)
        .expect("new certificate");
    assert_eq!(connect_pg(&server, &config), Ok(()));
    assert_eq!(stats(&config), (1, 2), "the new chain is a miss");
    assert_eq!(connect_pg(&server, &config), Ok(()));
    assert_eq!(stats(&config), (2, 2));

    // An expired one: verified in full, and libpq's failure, as without the cache.
    let expired = ca.leaf(LeafSpec::server("localhost").expired());
    server
        .set_server_cert(&expired.chain_pem(), &expired.key_pem, None, None)
        .expect("expired certificate");
    let err = connect_pg(&server, &config).expect_err("an expired certificate must fail");
    assert!(err.contains("certificate has expired"), "{err}");
    assert_eq!(stats(&config), (2, 3), "a failure is a miss");
    assert_eq!(connect_pg(&server, &uncached), Err(err.clone()));
    // And it stays a failure: failures are never remembered.
    assert_eq!(connect_pg(&server, &config), Err(err));
    assert_eq!(stats(&config), (2, 4));
}
