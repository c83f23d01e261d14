//! The one output vocabulary of the sans-IO machines: [`Output`].

use bytes::BytesMut;

use crate::tls::TlsConn;

/// What a machine's `poll_output` asks of the caller.
///
/// Every machine that speaks bytes — the client's [`crate::Negotiation`], the
/// established [`crate::Session`] and the server's [`crate::server::Acceptor`] — has the
/// same output verb:
///
/// ```text
/// fn poll_output(&mut self, out: &mut BytesMut) -> Result<Output, E>
/// ```
///
/// Bytes to send are *appended* to the caller's `BytesMut` (rustls writes straight into
/// its spare capacity: no zero-filling, and no buffer can be too small). Each machine
/// also has `poll_output_slice(&mut [u8])` for callers that send from fixed buffers (a
/// ring of registered buffers, a fuzzer choosing the sizes): output is handed out in
/// pieces of at most the slice's length, and an empty slice while output waits is
/// refused as misuse. [`crate::ConnectionSetup`]'s [`crate::setup::Action`] uses the same
/// words (`Transmit`, `Receive`, `Done`) beside its connection-level actions.
///
/// | arm | [`crate::Negotiation`] | [`crate::Session`] | [`crate::server::Acceptor`] |
/// |---|---|---|---|
/// | `Transmit(n)` | send the `SSLRequest` or handshake records | send TLS records (data, alerts, close_notify) | send `S`/`N`, an ErrorResponse or handshake records |
/// | `Receive` | read from the server: `handle_input` / `handle_eof` | nothing to send now: more comes after input or application data | read from the client: `handle_input` / `handle_eof` |
/// | `Done` | finished: [`crate::Negotiation::into_negotiated`] | [`crate::Session::close`] was called and close_notify went out: nothing more will ever be sent | finished: [`crate::server::Acceptor::into_accepted`] |
/// | `Err(e)` | the attempt failed (its last TLS alert was handed out first) | the session failed (its last alert was handed out first) | the client was refused (its ErrorResponse or alert was handed out first) |
///
/// The error is returned again on every later call: extra calls are harmless.
///
/// Not `#[must_use]`: with `poll_output` the bytes are already in the caller's buffer,
/// and after [`crate::Session::handle_application_data`] one call hands out every record
/// (the `Result` around it still is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `n` bytes (never 0) were appended to the output buffer (with `poll_output_slice`:
    /// written at the start of the slice): send them, then poll again.
    Transmit(usize),
    /// Nothing to send now: receive from the peer (and pass the bytes to `handle_input`,
    /// or the end of the stream to `handle_eof`), then poll again.
    Receive,
    /// Finished: nothing more will be sent.
    Done,
}

/// Where a machine writes what it has to send: the caller's growing `BytesMut` or its
/// fixed slice. Each `poll_output` call writes into it at most once.
pub(crate) enum OutputBuffer<'a> {
    /// Appended to; never full.
    Append(&'a mut BytesMut),
    /// Written from the start; at most its length.
    Slice(&'a mut [u8]),
}

impl OutputBuffer<'_> {
    /// Copies as much of `bytes` as fits; returns how many.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> usize {
        match self {
            OutputBuffer::Append(out) => {
                out.extend_from_slice(bytes);
                bytes.len()
            }
            OutputBuffer::Slice(buf) => {
                let n = bytes.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), bytes.get(..n)) {
                    dst.copy_from_slice(src);
                }
                n
            }
        }
    }

    /// The TLS records `tls` wants to send as [`Output::Transmit`], or `None` when
    /// nothing waits. `Transmit(0)` only for an empty slice while records wait.
    pub(crate) fn put_tls(&mut self, tls: &mut TlsConn) -> Option<Output> {
        if !tls.wants_output() {
            return None;
        }
        let n = match self {
            OutputBuffer::Append(out) => tls.poll_tls_output_into(out),
            OutputBuffer::Slice([]) => return Some(Output::Transmit(0)),
            OutputBuffer::Slice(buf) => tls.poll_tls_output(buf),
        };
        (n > 0).then_some(Output::Transmit(n))
    }
}

/// The message for `poll_output_slice` given an empty slice while output waits.
pub(crate) const EMPTY_SLICE: &str =
    "poll_output_slice was given an empty buffer while output waits";
