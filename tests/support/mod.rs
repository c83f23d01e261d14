//! The probe and the startup exchange, shared by the tests that run them. Include with
//! `mod support;` in a test file. The other fixtures (certificates, the fake server, the
//! in-memory pairs, the PostgreSQL harness) are in the `pgtls-testkit` crate (`testkit/`).
#![allow(dead_code)]

// The probe and the startup client live in the tool's library (cli/src), shared with
// `pgtls probe`.
#[allow(unused_imports)] // not every test uses both
pub use pgtls_cli::{probe, startup};
