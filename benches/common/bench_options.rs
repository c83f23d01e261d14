//! The pgtls extensions the connection benchmarks (`examples/connbench.rs`,
//! `examples/connbench_tokio.rs`) switch on from the environment, so that
//! `benches/connections.rs` runs one binary with and without them:
//!
//! - `PGTLS_BENCH_RESUMPTION=1`: client TLS session resumption (off by default, as in libpq;
//!   `0` or unset: off).
//! - `PGTLS_BENCH_CHAIN_CACHE=0|1`: the verified-chain cache off or on (unset: pgtls's
//!   default).
//!
//! A setting this build of pgtls cannot honour is an error, never silently ignored: a
//! benchmark row must measure what its name says.

/// What the environment asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BenchOptions {
    /// `PGTLS_BENCH_RESUMPTION=1`.
    pub resumption: bool,
    /// `PGTLS_BENCH_CHAIN_CACHE`: `Some(false)` for `0`, `Some(true)` for `1`.
    pub chain_cache: Option<bool>,
}

impl BenchOptions {
    /// Reads `PGTLS_BENCH_RESUMPTION` and `PGTLS_BENCH_CHAIN_CACHE`.
    pub fn from_env() -> Result<BenchOptions, String> {
        Ok(BenchOptions {
            resumption: flag("PGTLS_BENCH_RESUMPTION")?.unwrap_or(false),
            chain_cache: flag("PGTLS_BENCH_CHAIN_CACHE")?,
        })
    }

    /// Applies the options to the resolved connection settings, before their configs are built.
    pub fn apply(&self, settings: &mut pgtls::libpq::Settings) -> Result<(), String> {
        let _ = settings;
        if self.resumption {
            return Err(
                "PGTLS_BENCH_RESUMPTION=1: this build of pgtls has no client session resumption"
                    .into(),
            );
        }
        if let Some(on) = self.chain_cache {
            return Err(format!(
                "PGTLS_BENCH_CHAIN_CACHE={}: this build of pgtls has no verified-chain cache",
                u8::from(on)
            ));
        }
        Ok(())
    }
}

/// Whether a session resumed an earlier one (`None`: this build of pgtls cannot tell).
pub fn resumed(session: &pgtls::Session) -> Option<bool> {
    let _ = session;
    None
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
