//! pgtls's test kit: the fixtures the integration tests, benches and examples share, compiled
//! once as one crate instead of once per test binary.
//!
//! * [`certs`]: CAs, leaves (v3 and X.509 v1), CRLs and keys generated at test time, plus the
//!   openssl CLI recipe PostgreSQL documents.
//! * [`fake_server`]: a scripted, in-memory postmaster in front of a real rustls server.
//! * [`pair`]: bounded drivers connecting pgtls to a fake server (sans-IO and blocking).
//! * [`tokio_harness`]: the fake server behind a tokio pipe, a transport that misbehaves on
//!   purpose and a minimal async startup, for the tokio adapter's tests.
//! * [`pg`]: real PostgreSQL servers (initdb, pg_ctl) and psql as the referee.
//! * [`pgbouncer`]: pgbouncer with client TLS in front of a [`pg`] server.
//! * [`ws_bridge`]: a WebSocket-to-TCP bridge in front of PostgreSQL.
//!
//! Not published: a dev-dependency of pgtls, and (`certs` and `fake_server` only, without the
//! default feature `harness`) a dependency of the `pgtls` command's demo.

pub mod certs;
pub mod fake_server;
#[cfg(feature = "harness")]
pub mod pair;
#[cfg(feature = "harness")]
pub mod pg;
#[cfg(feature = "harness")]
pub mod pgbouncer;
#[cfg(feature = "harness")]
pub mod tokio_harness;
#[cfg(feature = "harness")]
pub mod ws_bridge;
