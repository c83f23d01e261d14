//! The library behind the `pgtls` tool (the binary of this package):
//!
//! * [`probe`]: connect the way libpq does and report what happened (`pgtls probe`);
//! * [`startup`]: the minimal PostgreSQL startup the probe needs to reach ReadyForQuery
//!   (trust, cleartext, MD5, SCRAM-SHA-256 and SCRAM-SHA-256-PLUS with libpq's
//!   `channel_binding` rules), plus a simple query;
//! * [`proxy`]: a TLS-terminating proxy in front of a plaintext PostgreSQL server
//!   (`pgtls proxy`).
//!
//! pgtls's own real-server tests use these modules through a dev-dependency, so the tool
//! and the tests run the same client.

pub mod probe;
pub mod proxy;
pub mod startup;
