//! A scripted postmaster in memory: answers `SSLRequest` per [`Behaviour`], runs a real
//! rustls `ServerConnection` after `S`, and takes a plaintext StartupMessage as accepted.
//! Never panics on client bytes.

use std::io::{Read as _, Write as _};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

/// `SSLRequest`: length 8, code 80877103.
pub const SSL_REQUEST: [u8; 8] = [0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f];

/// How the server answers an `SSLRequest`.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// `S`, then the TLS handshake with this configuration.
    Tls(Arc<ServerConfig>),
    /// `N`: no SSL, plaintext on the same connection.
    RefuseN,
    /// An ErrorResponse (FATAL 53300 "sorry, too many clients already"), then close.
    ErrorE,
    /// One byte that is not a valid answer, then silence.
    Garbage(u8),
    /// Close without answering.
    Close,
}

impl Behaviour {
    /// A short name for assertion messages.
    pub fn name(&self) -> String {
        match self {
            Behaviour::Tls(_) => "S+TLS".into(),
            Behaviour::RefuseN => "N".into(),
            Behaviour::ErrorE => "E".into(),
            Behaviour::Garbage(b) => format!("garbage {b:#04x}"),
            Behaviour::Close => "close".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first 8 bytes.
    Request,
    /// Plaintext after `N` or a plaintext startup.
    Plain,
    /// TLS after `S`.
    Tls,
    /// Reading and discarding.
    Discard,
    /// The connection is closed.
    Closed,
}

/// One connection to the scripted server.
pub struct ScriptedServer {
    behaviour: Behaviour,
    phase: Phase,
    request: Vec<u8>,
    out: Vec<u8>,
    tls: Option<ServerConnection>,
    saw_ssl_request: bool,
    tls_plaintext: Vec<u8>,
}

impl ScriptedServer {
    /// A fresh connection.
    pub fn new(behaviour: Behaviour) -> Self {
        ScriptedServer {
            behaviour,
            phase: Phase::Request,
            request: Vec::new(),
            out: Vec::new(),
            tls: None,
            saw_ssl_request: false,
            tls_plaintext: Vec::new(),
        }
    }

    /// Takes the client's bytes (ignored once closed).
    pub fn receive(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.phase {
                Phase::Request => {
                    let n = (8 - self.request.len()).min(bytes.len());
                    self.request.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.request.len() == 8 {
                        self.answer_request();
                    }
                }
                Phase::Tls => {
                    self.receive_tls(bytes);
                    bytes = &[];
                }
                Phase::Plain | Phase::Discard | Phase::Closed => bytes = &[],
            }
        }
    }

    fn answer_request(&mut self) {
        if self.request != SSL_REQUEST {
            // A plaintext StartupMessage: accepted.
            self.phase = Phase::Plain;
            return;
        }
        self.saw_ssl_request = true;
        match self.behaviour.clone() {
            Behaviour::Tls(config) => match ServerConnection::new(config) {
                Ok(conn) => {
                    self.out.push(b'S');
                    self.tls = Some(conn);
                    self.phase = Phase::Tls;
                }
                Err(_) => self.phase = Phase::Closed,
            },
            Behaviour::RefuseN => {
                self.out.push(b'N');
                self.phase = Phase::Plain;
            }
            Behaviour::ErrorE => {
                self.out
                    .extend_from_slice(&error_response("53300", "sorry, too many clients already"));
                self.phase = Phase::Closed;
            }
            Behaviour::Garbage(byte) => {
                self.out.push(byte);
                self.phase = Phase::Discard;
            }
            Behaviour::Close => self.phase = Phase::Closed,
        }
    }

    fn receive_tls(&mut self, mut bytes: &[u8]) {
        let Some(conn) = self.tls.as_mut() else {
            return;
        };
        while !bytes.is_empty() {
            match conn.read_tls(&mut bytes) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if conn.process_new_packets().is_err() {
                // rustls queued its alert: send it, then close.
                self.flush_tls();
                self.phase = Phase::Closed;
                return;
            }
            let mut buf = [0u8; 4096];
            while let Ok(n) = conn.reader().read(&mut buf) {
                if n == 0 {
                    break;
                }
                self.tls_plaintext.extend_from_slice(&buf[..n]);
            }
        }
        self.flush_tls();
    }

    fn flush_tls(&mut self) {
        if let Some(conn) = self.tls.as_mut() {
            while conn.wants_write() {
                match conn.write_tls(&mut self.out) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }

    /// Sends application data inside TLS (nothing before the handshake is up).
    pub fn send_tls(&mut self, data: &[u8]) {
        if let Some(conn) = self.tls.as_mut() {
            let _ = conn.writer().write_all(data);
        }
        self.flush_tls();
    }

    /// What the server sends now (drained).
    pub fn take_output(&mut self) -> Vec<u8> {
        self.flush_tls();
        std::mem::take(&mut self.out)
    }

    /// The server closed its side: once its output is read, the client sees EOF.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// An `SSLRequest` arrived on this connection.
    pub fn saw_ssl_request(&self) -> bool {
        self.saw_ssl_request
    }

    /// The server's side of the handshake completed.
    pub fn handshake_complete(&self) -> bool {
        self.tls.as_ref().is_some_and(|c| !c.is_handshaking())
    }

    /// The SNI name the client sent.
    pub fn sni(&self) -> Option<String> {
        self.tls
            .as_ref()
            .and_then(|c| c.server_name())
            .map(str::to_owned)
    }

    /// Application data received inside TLS.
    pub fn tls_plaintext(&self) -> &[u8] {
        &self.tls_plaintext
    }
}

/// A FATAL ErrorResponse with fields S, V, C and M.
pub fn error_response(sqlstate: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', sqlstate),
        (b'M', message),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    msg.extend_from_slice(&body);
    msg
}
