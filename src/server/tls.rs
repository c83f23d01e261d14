//! The only server-side module that calls rustls's server connection API.
//!
//! `rustls::server::Acceptor` reads the ClientHello from the caller's slices so that the
//! acceptor can apply PostgreSQL's ALPN rules and learn the SNI name *before* any
//! handshake work; `Accepted::into_connection` then starts the `ServerConnection`, which
//! `crate::tls::TlsConn` drives from there exactly like the client's connection.
//!
//! Memory: rustls holds at most one handshake message being reassembled (64 KiB, its
//! handshake limit) while the ClientHello arrives.

use std::cell::RefCell;
use std::sync::Arc;

use rustls::server::{Accepted, Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::config::ServerTls;
use crate::tls::TlsConn;
use crate::wire::ALPN_POSTGRESQL;

/// A fatal `no_application_protocol` (120) alert in a plaintext record: what the server
/// sends when the ALPN rules refuse a ClientHello (no keys exist yet, so it is not
/// encrypted, as rustls and OpenSSL also send it).
pub(crate) const NO_APPLICATION_PROTOCOL_ALERT: [u8; 7] =
    [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x78];

/// Reads the ClientHello.
pub(crate) struct HelloReader {
    acceptor: Acceptor,
}

/// What the ALPN extension of a ClientHello offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlpnOffer {
    /// No ALPN extension.
    Absent,
    /// An ALPN list containing `postgresql`.
    Postgresql,
    /// An ALPN list without `postgresql` (possibly empty).
    Other,
}

/// The ClientHello, read and checked by rustls, not yet answered.
pub(crate) struct Hello {
    accepted: Accepted,
}

/// Progress of [`HelloReader::handle_input`].
pub(crate) enum HelloProgress {
    /// More bytes are needed.
    NeedMore,
    /// The ClientHello is complete.
    Hello(Box<Hello>),
    /// rustls refused it; the alert bytes to send.
    Failed(rustls::Error, Vec<u8>),
    /// rustls's buffer is full without a complete ClientHello.
    Stalled,
}

impl HelloReader {
    pub(crate) fn new() -> HelloReader {
        HelloReader {
            acceptor: Acceptor::default(),
        }
    }

    /// Feeds bytes; returns how many were consumed and the progress.
    pub(crate) fn handle_input(&mut self, input: &[u8]) -> (usize, HelloProgress) {
        let mut rest = input;
        while !rest.is_empty() {
            let read = self.acceptor.read_tls(&mut rest);
            match self.acceptor.accept() {
                Ok(None) => {}
                Ok(Some(accepted)) => {
                    let consumed = input.len() - rest.len();
                    return (consumed, HelloProgress::Hello(Box::new(Hello { accepted })));
                }
                Err((err, mut alert)) => {
                    let mut bytes = Vec::new();
                    let _ = alert.write_all(&mut bytes);
                    return (input.len() - rest.len(), HelloProgress::Failed(err, bytes));
                }
            }
            match read {
                Ok(0) => break,
                Ok(_) => {}
                // The buffer is full and still holds no complete ClientHello.
                Err(_) => return (input.len() - rest.len(), HelloProgress::Stalled),
            }
        }
        (input.len() - rest.len(), HelloProgress::NeedMore)
    }
}

impl Hello {
    /// The SNI name, if the client sent one.
    pub(crate) fn sni(&self) -> Option<String> {
        self.accepted
            .client_hello()
            .server_name()
            .map(str::to_owned)
    }

    /// What the client offered in ALPN. An empty list counts as "other", never panics.
    pub(crate) fn alpn(&self) -> AlpnOffer {
        match self.accepted.client_hello().alpn() {
            None => AlpnOffer::Absent,
            Some(mut offers) => {
                if offers.any(|p| p == ALPN_POSTGRESQL) {
                    AlpnOffer::Postgresql
                } else {
                    AlpnOffer::Other
                }
            }
        }
    }

    /// Starts the handshake with `tls`: the ServerHello flight is queued.
    pub(crate) fn start(self, tls: &ServerTls) -> Started {
        // A caller's resolver runs inside `into_connection` (it answers the ClientHello
        // there, on this thread); its [`RecordingResolver`] wrapper notes the answer, so
        // the channel binding hashes exactly the certificate presented. Nothing is
        // cloned per connection.
        PRESENTED.with(|slot| slot.borrow_mut().take());
        let started = self.accepted.into_connection(tls.config.clone());
        let local = match &tls.certified {
            Some(certified) => Some(certified.clone()),
            None => PRESENTED.with(|slot| slot.borrow_mut().take()),
        };
        let mut conn = match started {
            Ok(conn) => conn,
            Err((err, mut alert)) => {
                let mut bytes = Vec::new();
                let _ = alert.write_all(&mut bytes);
                return Started::Refused(err, bytes);
            }
        };
        // Records that arrived with the ClientHello are already buffered: process them.
        let processed = conn.process_new_packets().map(|_| ());
        let tls_conn = TlsConn::from_server(conn);
        match processed {
            Ok(()) => Started::Handshaking(Box::new(tls_conn), local),
            Err(err) => Started::Failed(err, Box::new(tls_conn)),
        }
    }
}

/// What [`Hello::start`] made of the ClientHello.
pub(crate) enum Started {
    /// The handshake is under way; the certificate presented, when known.
    Handshaking(Box<TlsConn>, Option<Arc<CertifiedKey>>),
    /// rustls refused the ClientHello for this configuration; the alert bytes.
    Refused(rustls::Error, Vec<u8>),
    /// rustls failed on records buffered after the ClientHello; the connection holds the
    /// alert to send.
    Failed(rustls::Error, Box<TlsConn>),
}

thread_local! {
    /// The certificate a [`RecordingResolver`] answered last on this thread.
    static PRESENTED: RefCell<Option<Arc<CertifiedKey>>> = const { RefCell::new(None) };
}

/// Wraps a caller's certificate resolver (installed once, when the [`ServerTls`] is
/// built) and notes on the current thread which certificate it chose, for the channel
/// binding.
#[derive(Debug)]
pub(crate) struct RecordingResolver(pub(crate) Arc<dyn ResolvesServerCert>);

impl ResolvesServerCert for RecordingResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = self.0.resolve(client_hello);
        PRESENTED.with(|slot| *slot.borrow_mut() = chosen.clone());
        chosen
    }

    fn only_raw_public_keys(&self) -> bool {
        self.0.only_raw_public_keys()
    }
}
