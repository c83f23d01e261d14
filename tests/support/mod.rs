//! The probe and the startup exchange, shared by the tests that run them. Include with
//! `mod support;` in a test file. The other fixtures (certificates, the fake server, the
//! in-memory pairs, the PostgreSQL harness) are in the `pgtls-testkit` crate (`testkit/`).
#![allow(dead_code)]

pub mod probe;
pub mod startup;
