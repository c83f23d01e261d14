//! libpq's whole connection ([`ConnectionSetup`] with settings from a connection string)
//! over a WebSocket, or over plain TCP for comparison: every `Action::Open` opens a new
//! transport, binary messages carry the raw PostgreSQL/TLS byte stream, and the startup
//! (`pgtls_cli::startup`) runs to ReadyForQuery, then `SELECT 1`.
//!
//! Include it next to the startup client:
//! `use pgtls_cli::startup;` and
//! `#[path = "../tests/support/ws_connect.rs"] mod ws_connect;`.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pgtls::error_response::ErrorResponse;
use pgtls::libpq::{ConnParams, Environment, Settings};
use pgtls::setup::{Action, AttemptRecord, Ready};
use pgtls::{ApplicationData, ConnectionSetup, Session};
use tungstenite::error::ProtocolError;
use tungstenite::{Message, WebSocket};

use super::startup::{
    run_startup, simple_query, terminate, ChannelBindingMode, StartupFailure, StartupParams,
    TlsFacts,
};

/// How each new transport is opened.
#[derive(Debug, Clone)]
pub enum Route {
    /// A new WebSocket to this `ws://` URL (a bridge in front of the server) per attempt.
    WebSocket(String),
    /// A new TCP connection to the host's address and port per attempt.
    Direct,
}

/// A connection that made it to ReadyForQuery and ran `SELECT 1`.
#[derive(Debug)]
pub struct Connected {
    /// The attempts, libpq's way (the last one succeeded).
    pub attempts: Vec<AttemptRecord>,
    /// How many transports were opened (WebSockets on [`Route::WebSocket`]).
    pub transports_opened: usize,
    /// The TLS version, or `None` without encryption.
    pub tls_version: Option<String>,
    /// The authentication method the server asked for.
    pub auth: String,
    /// What `SELECT 1` returned (first column of the first row).
    pub select_one: Option<String>,
}

/// A connection that failed, with libpq's message.
#[derive(Debug)]
pub struct NotConnected {
    /// libpq's error message.
    pub message: String,
    /// The attempts made (empty when the settings were refused).
    pub attempts: Vec<AttemptRecord>,
    /// How many transports were opened.
    pub transports_opened: usize,
}

impl std::fmt::Display for NotConnected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A byte-stream transport: WebSocket binary messages or a TCP stream.
trait ByteStream {
    /// Sends these bytes.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Appends what arrives next to `into`; 0 at the end of the stream.
    fn recv(&mut self, into: &mut BytesMut) -> io::Result<usize>;
    /// Sends `last` (a final TLS alert, possibly empty) and closes.
    fn close(&mut self, last: &[u8]);
}

/// One WebSocket carrying one PostgreSQL connection.
struct WsStream {
    ws: WebSocket<TcpStream>,
}

fn ws_error(err: tungstenite::Error) -> io::Error {
    match err {
        tungstenite::Error::Io(err) => err,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::ErrorKind::UnexpectedEof.into()
        }
        other => io::Error::other(other.to_string()),
    }
}

impl WsStream {
    /// Opens a WebSocket to `url`; reads and writes time out at `deadline`.
    fn open(url: &str, deadline: Option<Instant>) -> io::Result<WsStream> {
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .ok_or_else(|| io::Error::other(format!("not a ws:// URL: {url}")))?;
        let addr = authority
            .to_socket_addrs()?
            .next()
            .ok_or(io::ErrorKind::NotFound)?;
        let socket = match left(deadline) {
            Some(left) => TcpStream::connect_timeout(&addr, left)?,
            None => TcpStream::connect(addr)?,
        };
        socket.set_nodelay(true)?;
        socket.set_read_timeout(left(deadline))?;
        socket.set_write_timeout(left(deadline))?;
        let (ws, _response) = tungstenite::client(url, socket).map_err(|err| match err {
            tungstenite::HandshakeError::Failure(err) => ws_error(err),
            tungstenite::HandshakeError::Interrupted(_) => io::ErrorKind::TimedOut.into(),
        })?;
        Ok(WsStream { ws })
    }
}

impl ByteStream for WsStream {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .map_err(ws_error)
    }

    fn recv(&mut self, into: &mut BytesMut) -> io::Result<usize> {
        loop {
            match self.ws.read() {
                Ok(Message::Binary(bytes)) if bytes.is_empty() => continue,
                Ok(Message::Binary(bytes)) => {
                    into.extend_from_slice(&bytes);
                    return Ok(bytes.len());
                }
                Ok(Message::Close(_)) => return Ok(0),
                Ok(_) => continue, // ping/pong (answered by tungstenite), text
                // The bridge hung up, with or without a closing handshake.
                Err(
                    tungstenite::Error::ConnectionClosed
                    | tungstenite::Error::AlreadyClosed
                    | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                ) => return Ok(0),
                Err(err) => return Err(ws_error(err)),
            }
        }
    }

    fn close(&mut self, last: &[u8]) {
        if !last.is_empty() {
            let _ = self.send(last);
        }
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}

/// One TCP connection (the comparison route).
struct TcpByteStream(TcpStream);

impl TcpByteStream {
    fn open(host: &str, port: u16, deadline: Option<Instant>) -> io::Result<TcpByteStream> {
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or(io::ErrorKind::NotFound)?;
        let socket = match left(deadline) {
            Some(left) => TcpStream::connect_timeout(&addr, left)?,
            None => TcpStream::connect(addr)?,
        };
        socket.set_nodelay(true)?;
        socket.set_read_timeout(left(deadline))?;
        socket.set_write_timeout(left(deadline))?;
        Ok(TcpByteStream(socket))
    }
}

impl ByteStream for TcpByteStream {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn recv(&mut self, into: &mut BytesMut) -> io::Result<usize> {
        let mut buf = [0u8; 16 * 1024];
        let n = self.0.read(&mut buf)?;
        into.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn close(&mut self, last: &[u8]) {
        let _ = self.0.write_all(last);
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Time left until `deadline` (at least 1 ms), or `None` without one.
fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    })
}

/// The PostgreSQL byte stream of a ready connection: through the TLS session when
/// there is one, else the transport itself. `Read`/`Write` for the startup client.
struct Channel<'a> {
    session: Option<&'a mut Session>,
    transport: &'a mut dyn ByteStream,
    /// Received, not yet given to the session (TLS records) or the reader (plaintext).
    input: &'a mut BytesMut,
    /// Decrypted, not yet read.
    plain: BytesMut,
}

fn tls_error(err: pgtls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl Write for Channel<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.session.as_deref_mut() {
            Some(session) => {
                let mut data = buf;
                session
                    .handle_application_data_buf(&mut data)
                    .map_err(tls_error)?;
                let mut records = BytesMut::new();
                session.poll_output(&mut records).map_err(tls_error)?;
                self.transport.send(&records)?;
                Ok(buf.len() - data.len())
            }
            None => {
                self.transport.send(buf)?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Channel<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.plain.is_empty() {
            match self.session.as_deref_mut() {
                Some(session) => match session
                    .poll_application_data_into(&mut self.plain)
                    .map_err(tls_error)?
                {
                    ApplicationData::Data(_) => {}
                    ApplicationData::Closed => return Ok(0),
                    ApplicationData::NeedInput => {
                        if self.input.is_empty() && self.transport.recv(self.input)? == 0 {
                            session.handle_eof().map_err(tls_error)?;
                        } else {
                            session.handle_input_buf(self.input).map_err(tls_error)?;
                        }
                    }
                },
                None if self.input.is_empty() => {
                    if self.transport.recv(self.input)? == 0 {
                        return Ok(0);
                    }
                }
                None => self.plain = self.input.split(),
            }
        }
        let n = buf.len().min(self.plain.len());
        buf[..n].copy_from_slice(&self.plain.split_to(n));
        Ok(n)
    }
}

/// The `(severity, message)` of the startup client's `"SEVERITY:  message"`.
fn split_severity(text: &str) -> (Option<String>, String) {
    match text.split_once(":  ") {
        Some((severity, message)) => (Some(severity.to_owned()), message.to_owned()),
        None => (None, text.to_owned()),
    }
}

/// Parses `conninfo` (libpq's keywords or a URI), resolves it against `env` and runs
/// the whole connection over `route`, then `SELECT 1`.
pub fn connect(
    conninfo: &str,
    env: &Environment,
    route: &Route,
) -> Result<Connected, NotConnected> {
    let refused = |message: String| NotConnected {
        message,
        attempts: Vec::new(),
        transports_opened: 0,
    };
    let settings = ConnParams::parse(conninfo)
        .and_then(|params| params.resolve(env))
        .map_err(|err| refused(err.to_string()))?;
    let targets = settings
        .to_configs()
        .map_err(|err| refused(err.to_string()))?;
    let mut endpoints = Vec::new();
    let mut configs = Vec::new();
    for (target, config) in targets {
        endpoints.push((target.connect_host().to_owned(), target.port()));
        configs.push((config, target.transport()));
    }
    let setup = ConnectionSetup::multi_host(configs).map_err(|err| refused(err.to_string()))?;
    drive(setup, &settings, &endpoints, route)
}

/// The driver's loop: does what the machine says.
fn drive(
    mut setup: ConnectionSetup,
    settings: &Settings,
    endpoints: &[(String, u16)],
    route: &Route,
) -> Result<Connected, NotConnected> {
    let mut opened = 0;
    let misuse = |setup: &ConnectionSetup, opened: usize, err: pgtls::Error| NotConnected {
        message: err.to_string(),
        attempts: setup.attempts().to_vec(),
        transports_opened: opened,
    };
    let (mut out, mut input) = (BytesMut::new(), BytesMut::new());
    let mut transport: Option<Box<dyn ByteStream>> = None;
    let mut session: Option<Box<Session>> = None;
    let mut host_now = usize::MAX;
    let mut deadline = None;
    let mut auth = String::new();
    loop {
        let action = setup
            .poll_output(&mut out)
            .map_err(|err| misuse(&setup, opened, err))?;
        let step = match action {
            Action::Open { host, .. } => {
                if host != host_now {
                    host_now = host;
                    deadline = settings.connect_timeout().map(|t| Instant::now() + t);
                }
                input.clear();
                opened += 1;
                let (addr, port) = &endpoints[host];
                let result = match route {
                    Route::WebSocket(url) => {
                        WsStream::open(url, deadline).map(|ws| Box::new(ws) as Box<dyn ByteStream>)
                    }
                    Route::Direct => TcpByteStream::open(addr, *port, deadline)
                        .map(|tcp| Box::new(tcp) as Box<dyn ByteStream>),
                };
                match result {
                    Ok(stream) => {
                        transport = Some(stream);
                        Ok(())
                    }
                    Err(err) => setup.handle_transport_error(err),
                }
            }
            Action::Transmit(_) => {
                let sent = match transport.as_mut() {
                    Some(stream) => stream.send(&out),
                    None => Err(io::ErrorKind::NotConnected.into()),
                };
                out.clear();
                match sent {
                    Ok(()) => Ok(()),
                    Err(err) => setup.handle_transport_error(err),
                }
            }
            Action::Receive => {
                let received = match transport.as_mut() {
                    Some(stream) => stream.recv(&mut input),
                    None => Err(io::ErrorKind::NotConnected.into()),
                };
                match received {
                    Ok(0) => setup.handle_eof(),
                    Ok(_) => setup.handle_input(&mut input).map(drop),
                    Err(err) => setup.handle_transport_error(err),
                }
            }
            Action::Close => {
                if let Some(mut stream) = transport.take() {
                    stream.close(&out);
                }
                out.clear();
                session = None;
                Ok(())
            }
            Action::Ready(ready) => {
                if let Ready::Tls(tls) = ready {
                    session = Some(tls);
                }
                let Some(stream) = transport.as_deref_mut() else {
                    return Err(misuse(&setup, opened, pgtls::Error::Misuse("no transport")));
                };
                let facts = TlsFacts {
                    tls: session.is_some(),
                    channel_binding: session.as_ref().and_then(|s| s.channel_binding().ok()),
                };
                let params = StartupParams {
                    user: settings.user().to_owned(),
                    database: settings.dbname().to_owned(),
                    password: settings.password().map(str::to_owned),
                    application_name: None,
                    channel_binding: match settings.channel_binding().as_str() {
                        "disable" => ChannelBindingMode::Disable,
                        "require" => ChannelBindingMode::Require,
                        _ => ChannelBindingMode::Prefer,
                    },
                };
                let mut channel = Channel {
                    session: session.as_deref_mut(),
                    transport: stream,
                    input: &mut input,
                    plain: BytesMut::new(),
                };
                match run_startup(&mut channel, &params, &facts) {
                    Ok(report) => {
                        auth = report.auth;
                        setup.handle_startup_accepted()
                    }
                    Err(StartupFailure::Rejected { sqlstate, message }) => {
                        let (severity, message) = split_severity(&message);
                        setup.handle_startup_error(ErrorResponse {
                            severity,
                            sqlstate,
                            message,
                        })
                    }
                    Err(StartupFailure::Fatal(message)) => setup.handle_startup_failed(message),
                    Err(StartupFailure::Io(err)) => setup.handle_transport_error(err),
                }
            }
            Action::Done => break,
            Action::Failed(failed) => {
                if let Some(mut stream) = transport.take() {
                    stream.close(&[]);
                }
                return Err(NotConnected {
                    message: failed.to_string(),
                    attempts: failed.attempts.clone(),
                    transports_opened: opened,
                });
            }
        };
        step.map_err(|err| misuse(&setup, opened, err))?;
    }

    let attempts = setup.take_attempts();
    let Some(mut stream) = transport else {
        return Err(NotConnected {
            message: "no transport after the startup".into(),
            attempts,
            transports_opened: opened,
        });
    };
    let tls_version = session
        .as_ref()
        .and_then(|s| s.protocol_version())
        .map(|v| format!("{v:?}"));
    let mut channel = Channel {
        session: session.as_deref_mut(),
        transport: stream.as_mut(),
        input: &mut input,
        plain: BytesMut::new(),
    };
    let rows = simple_query(&mut channel, "SELECT 1").map_err(|err| NotConnected {
        message: err.to_string(),
        attempts: attempts.clone(),
        transports_opened: opened,
    });
    let _ = terminate(&mut channel);
    let mut last = BytesMut::new();
    if let Some(session) = session.as_deref_mut() {
        session.close();
        let _ = session.poll_output(&mut last);
    }
    stream.close(&last);
    let rows = rows?;
    Ok(Connected {
        attempts,
        transports_opened: opened,
        tls_version,
        auth,
        select_one: rows.first().and_then(|row| row.first().cloned().flatten()),
    })
}
