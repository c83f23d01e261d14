//! The few PostgreSQL frontend messages the benchmarks need, over any tokio stream:
//! StartupMessage (trust authentication only), a simple `SELECT 1`, Terminate.
//!
//! Shared by `examples/connbench_tokio.rs` and the bench binaries
//! (`#[path = "…/benches/common/pgwire.rs"] mod pgwire;`).
#![allow(dead_code)]

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A StartupMessage (protocol 3.0) for `user` and `database`.
pub fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", database)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// `Q` `SELECT 1`.
pub const SELECT_1: &[u8] = b"Q\x00\x00\x00\x0dSELECT 1\x00";
/// `X` Terminate.
pub const TERMINATE: &[u8] = b"X\x00\x00\x00\x04";

/// One backend message: (type, body).
pub async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(4)];
    stream.read_exact(&mut body).await?;
    Ok((header[0], body))
}

/// The `M` field of an ErrorResponse.
pub fn error_text(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find(|f| f.first() == Some(&b'M'))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
        .unwrap_or_else(|| "server error".into())
}

/// What went wrong in [`startup`].
#[derive(Debug)]
pub enum StartupFailure {
    /// The server sent an ErrorResponse.
    Rejected(String),
    /// It asked for a password.
    NeedsPassword,
    /// Transport error.
    Io(io::Error),
}

impl From<io::Error> for StartupFailure {
    fn from(err: io::Error) -> Self {
        StartupFailure::Io(err)
    }
}

/// Sends `startup` and reads until ReadyForQuery (trust authentication only).
pub async fn startup<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    startup: &[u8],
) -> Result<(), StartupFailure> {
    stream.write_all(startup).await?;
    stream.flush().await?;
    loop {
        match read_message(stream).await? {
            (b'R', body) if body.starts_with(&[0, 0, 0, 0]) => {}
            (b'R', _) => return Err(StartupFailure::NeedsPassword),
            (b'E', body) => return Err(StartupFailure::Rejected(error_text(&body))),
            (b'Z', _) => return Ok(()),
            _ => {}
        }
    }
}

/// Runs `SELECT 1` and checks that one row came back.
pub async fn select_1<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> io::Result<()> {
    stream.write_all(SELECT_1).await?;
    stream.flush().await?;
    let mut rows = 0;
    loop {
        match read_message(stream).await? {
            (b'D', _) => rows += 1,
            (b'E', body) => return Err(io::Error::other(error_text(&body))),
            (b'Z', _) if rows == 1 => return Ok(()),
            (b'Z', _) => return Err(io::Error::other("SELECT 1 returned no row")),
            _ => {}
        }
    }
}
