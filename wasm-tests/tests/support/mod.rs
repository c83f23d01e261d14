//! Shared by the wasm tests: a scripted PostgreSQL server in memory ([`server`]),
//! certificates made in the test ([`certs`]), and the driver that runs libpq's plan
//! between pgtls and that server ([`drive`]).
//!
//! A compact, wasm-side version of the native `tests/support` (not borrowed with
//! `#[path]`): that code is tied to the aws-lc-rs provider, to `pgtls::blocking`
//! (sockets, timers) and to rcgen's clock (`OffsetDateTime::now_utc`, which has no
//! source in wasm32-unknown-unknown), none of which a browser-style wasm module has.
#![allow(dead_code)]

pub mod certs;
pub mod drive;
pub mod server;
