//! Shared fixtures for pgtls's integration tests. Include with `mod support;` in a test file.
//!
//! * [`certs`]: CAs, leaves (v3 and X.509 v1), CRLs and keys generated at test time, plus the
//!   openssl CLI recipe PostgreSQL documents. Self-contained: examples include it with
//!   `#[path = "../tests/support/certs.rs"] mod certs;`.
//! * [`fake_server`]: a scripted, in-memory postmaster in front of a real rustls server.
//! * [`pair`]: bounded drivers connecting pgtls to a fake server (sans-IO and blocking).
#![allow(dead_code)]

pub mod certs;
pub mod fake_server;
pub mod pair;
// The probe and the startup client live in the tool's library (cli/src), shared with
// `pgtls probe`.
#[allow(unused_imports)] // not every test uses both
pub use pgtls_cli::{probe, startup};
