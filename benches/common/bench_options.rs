//! The pgtls extensions the connection benchmarks (`examples/connbench.rs`,
//! `examples/connbench_tokio.rs`) switch on from the environment, so that
//! `benches/connections.rs` runs one binary with and without them:
//!
//! - `PGTLS_BENCH_RESUMPTION=1`: client TLS session resumption
//!   (`SessionResumption::in_memory()`; `0` or unset: off, as in libpq).
//! - `PGTLS_BENCH_CHAIN_CACHE=0|1`: the verified-chain cache off (capacity 0) or on
//!   (pgtls's default capacity); unset: pgtls's default.
//! - `PGTLS_BENCH_X25519_FIRST=1`: offer X25519 first (then P-256) instead of pgtls's P-256
//!   first, which PostgreSQL ≤ 17 needs to avoid a HelloRetryRequest but a pooler does not.
//! - `PGTLS_BENCH_SHA256_FIRST=1`: offer `TLS13_AES_128_GCM_SHA256` first (rustls's aws-lc-rs
//!   provider offers `TLS13_AES_256_GCM_SHA384` first): the key schedule's HMACs and the
//!   transcript then use SHA-256, which x86 CPUs with SHA extensions run in hardware.

use std::sync::Arc;

use pgtls::rustls::{CipherSuite, NamedGroup};
use pgtls::{Config, ConfigBuilder, SessionResumption};

/// What the environment asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BenchOptions {
    /// `PGTLS_BENCH_RESUMPTION=1`.
    pub resumption: bool,
    /// `PGTLS_BENCH_CHAIN_CACHE`: `Some(false)` for `0`, `Some(true)` for `1`.
    pub chain_cache: Option<bool>,
    /// `PGTLS_BENCH_X25519_FIRST=1`.
    pub x25519_first: bool,
    /// `PGTLS_BENCH_SHA256_FIRST=1`.
    pub sha256_first: bool,
}

impl BenchOptions {
    /// Reads `PGTLS_BENCH_RESUMPTION` and `PGTLS_BENCH_CHAIN_CACHE`.
    pub fn from_env() -> Result<BenchOptions, String> {
        Ok(BenchOptions {
            resumption: flag("PGTLS_BENCH_RESUMPTION")?.unwrap_or(false),
            chain_cache: flag("PGTLS_BENCH_CHAIN_CACHE")?,
            x25519_first: flag("PGTLS_BENCH_X25519_FIRST")?.unwrap_or(false),
            sha256_first: flag("PGTLS_BENCH_SHA256_FIRST")?.unwrap_or(false),
        })
    }

    /// The builder with the options applied (for `Settings::to_configs_with`).
    pub fn customize(&self, mut builder: ConfigBuilder) -> ConfigBuilder {
        if self.resumption {
            builder = builder.session_resumption(SessionResumption::in_memory());
        }
        if self.chain_cache == Some(false) {
            builder = builder.verified_chain_cache(0);
        }
        if self.x25519_first {
            builder = builder.key_exchange_groups(&[NamedGroup::X25519, NamedGroup::secp256r1]);
        }
        if self.sha256_first {
            let mut provider = pgtls::rustls::crypto::aws_lc_rs::default_provider();
            provider
                .cipher_suites
                .sort_by_key(|s| s.suite() != CipherSuite::TLS13_AES_128_GCM_SHA256);
            builder = builder.crypto_provider(Arc::new(provider));
        }
        builder
    }

    /// The config for one connection target: sessions are kept per port, so the target's
    /// port goes into the config (without one, pgtls never resumes).
    pub fn for_port(&self, config: Config, port: u16) -> Config {
        if self.resumption {
            config.with_port(port)
        } else {
            config
        }
    }
}

/// Whether a connection's TLS session resumed an earlier one (`false` without TLS).
pub fn resumed(session: Option<&pgtls::Session>) -> bool {
    session.is_some_and(|s| s.resumed())
}

/// ` chain_cache_hits=H` for the `connbench:` line (empty without a cache).
pub fn chain_cache_field(config: &Config) -> String {
    config
        .verified_chain_cache_stats()
        .map_or(String::new(), |s| format!(" chain_cache_hits={}", s.hits))
}

fn flag(name: &str) -> Result<Option<bool>, String> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) if v == "0" => Ok(Some(false)),
        Ok(v) if v == "1" => Ok(Some(true)),
        Ok(v) => Err(format!("{name}={v}: expected 0 or 1")),
        Err(e) => Err(format!("{name}: {e}")),
    }
}
