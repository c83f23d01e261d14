//! pgtls's sans-IO core as a wasm module: one export, [`first_attempt`], that builds a
//! [`Config`] and drives the first attempt of libpq's plan through [`Negotiation`] over
//! the bytes a server sent. It exists so that `cargo build --release` of this crate
//! measures the size of the core in a `.wasm` (README.md, "wasm32"); the tests in
//! `tests/` exercise the same core inside wasm under node.

use pgtls::plan::Step;
use pgtls::bytes::BytesMut;
use pgtls::{Config, Negotiated, Negotiation, Output, RootCertificates, SslMode};
use wasm_bindgen::prelude::wasm_bindgen;

/// Runs the first attempt of the plan for `sslmode` (libpq's spelling) and `host`, with
/// the roots of `root_pem` (empty: no root file), against `server_bytes` (everything the
/// server sent, then EOF). Returns the bytes the client sent, or libpq's error message.
///
/// # Errors
/// An unknown sslmode, an unusable root file, or the attempt's failure, in libpq's words.
#[wasm_bindgen]
pub fn first_attempt(
    sslmode: &str,
    host: &str,
    root_pem: &[u8],
    server_bytes: &[u8],
) -> Result<Vec<u8>, String> {
    let mode = SslMode::ALL
        .into_iter()
        .find(|m| m.as_str() == sslmode)
        .ok_or_else(|| format!("invalid sslmode value: \"{sslmode}\""))?;
    let roots = if root_pem.is_empty() {
        RootCertificates::None
    } else {
        RootCertificates::from_pem(root_pem).map_err(|e| e.to_string())?
    };
    let config = Config::builder()
        .sslmode(mode)
        .host(host)
        .root_certificates(roots)
        .build()
        .map_err(|e| e.to_string())?;
    let method = match config.plan().poll_step() {
        Step::Connect(method) | Step::Continue(method) => method,
        Step::Fail(err) | Step::NextHost(err) => return Err(err.to_string()),
        Step::Done => return Ok(Vec::new()),
    };
    let mut attempt = Negotiation::new(&config, method).map_err(|e| e.to_string())?;
    let mut sent = BytesMut::new();
    let mut unread = server_bytes;
    // Bounded: every turn either sends, consumes input, or ends the attempt.
    for _ in 0..1_000 {
        // What to send is appended to `sent`.
        match attempt.poll_output(&mut sent).map_err(|e| e.to_string())? {
            Output::Transmit(_) => {}
            Output::Done => break,
            Output::Receive if unread.is_empty() => {
                attempt.handle_eof().map_err(|e| e.to_string())?;
            }
            Output::Receive => {
                let n = attempt.handle_input(unread).map_err(|e| e.to_string())?;
                unread = &unread[n..];
            }
        }
    }
    match attempt.into_negotiated().map_err(|e| e.to_string())? {
        Negotiated::Tls(_) | Negotiated::SslRefused | Negotiated::Plaintext => Ok(sent.to_vec()),
    }
}
