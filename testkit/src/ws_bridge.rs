//! A WebSocket-to-TCP bridge in front of PostgreSQL: each WebSocket connection gets its
//! own TCP connection to the upstream server, binary messages carry the byte stream both
//! ways, and a close on either side closes the other. TLS runs inside the WebSocket, from
//! the client to PostgreSQL, so the bridge only ever relays ciphertext (after the
//! SSLRequest and its `S`).
//!
//! Every relayed byte is kept in a [`RelayLog`] per connection so tests can check what
//! the bridge saw. Self-contained (std + `tungstenite`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use tungstenite::error::ProtocolError;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// The bytes one bridged connection relayed.
#[derive(Debug, Clone, Default)]
pub struct RelayLog {
    /// From the WebSocket client to the server, in order.
    pub to_server: Vec<u8>,
    /// From the server to the WebSocket client, in order.
    pub to_client: Vec<u8>,
}

/// A running bridge: accepts WebSocket connections on [`Self::addr`] until dropped.
pub struct Bridge {
    addr: SocketAddr,
    logs: Arc<Mutex<Vec<Arc<Mutex<RelayLog>>>>>,
    stopping: Arc<AtomicBool>,
}

impl Bridge {
    /// Listens on `listen` and relays every WebSocket connection to `upstream`. With
    /// `keep_logs`, the relayed bytes are kept for [`Self::logs`].
    pub fn start(listen: &str, upstream: &str, keep_logs: bool) -> io::Result<Bridge> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let upstream: SocketAddr = upstream
            .to_socket_addrs()?
            .next()
            .ok_or(io::ErrorKind::NotFound)?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (accept_logs, accept_stopping) = (Arc::clone(&logs), Arc::clone(&stopping));
        thread::spawn(move || {
            for client in listener.incoming() {
                if accept_stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let log = Arc::new(Mutex::new(RelayLog::default()));
                if keep_logs {
                    lock(&accept_logs).push(Arc::clone(&log));
                }
                thread::spawn(move || {
                    if let Err(err) = serve(client, upstream, &log, keep_logs) {
                        eprintln!("ws_bridge: connection ended: {err}");
                    }
                });
            }
        });
        Ok(Bridge {
            addr,
            logs,
            stopping,
        })
    }

    /// The address the bridge listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/`, the URL clients connect to.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// What each WebSocket connection relayed so far, in the order they were accepted.
    pub fn logs(&self) -> Vec<RelayLog> {
        lock(&self.logs)
            .iter()
            .map(|log| lock(log).clone())
            .collect()
    }

    /// Forgets the connections logged so far.
    pub fn clear_logs(&self) {
        lock(&self.logs).clear();
    }

    /// Serves until the process ends (for the command-line bridge).
    pub fn run_forever(self) -> ! {
        loop {
            thread::park();
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn ws_error(err: tungstenite::Error) -> io::Error {
    match err {
        tungstenite::Error::Io(err) => err,
        other => io::Error::other(other),
    }
}

/// One bridged connection: the WebSocket handshake, then one thread per direction until
/// either side closes. The WebSocket is read through one `WebSocket` value and written
/// through another over a clone of the same socket: the reading half never writes (it
/// stops at the client's Close, before tungstenite would answer it; the clients here
/// send no pings, whose pongs it would write), so frames never interleave.
fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    log: &Arc<Mutex<RelayLog>>,
    keep_log: bool,
) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut reader =
        tungstenite::accept(client).map_err(|err| io::Error::other(err.to_string()))?;
    let writer_socket = reader.get_ref().try_clone()?;
    let mut writer = WebSocket::from_raw_socket(writer_socket, Role::Server, None);
    let server = match TcpStream::connect(upstream) {
        Ok(server) => server,
        Err(err) => {
            // The client sees the WebSocket close, as it would see a refused connection.
            let _ = reader.close(None);
            let _ = reader.flush();
            return Err(err);
        }
    };
    server.set_nodelay(true)?;
    let mut server_reader = server.try_clone()?;
    let writer_log = Arc::clone(log);
    let to_client = thread::spawn(move || -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if keep_log {
                lock(&writer_log).to_client.extend_from_slice(&buf[..n]);
            }
            writer
                .send(Message::binary(buf[..n].to_vec()))
                .map_err(ws_error)?;
        }
        // The server closed (or the client side ended): close the WebSocket.
        let _ = writer.close(None);
        let _ = writer.flush();
        Ok(())
    });
    let result = to_server(&mut reader, &server, log, keep_log);
    let _ = server.shutdown(Shutdown::Both);
    let sent = to_client.join().unwrap_or(Ok(()));
    result.and(sent)
}

/// Relays the client's binary messages to the server until the client closes.
fn to_server(
    ws: &mut WebSocket<TcpStream>,
    mut server: &TcpStream,
    log: &Mutex<RelayLog>,
    keep_log: bool,
) -> io::Result<()> {
    loop {
        match ws.read() {
            Ok(Message::Binary(bytes)) => {
                if keep_log {
                    lock(log).to_server.extend_from_slice(&bytes);
                }
                server.write_all(&bytes)?;
            }
            Ok(Message::Close(_)) => return Ok(()),
            Ok(_) => {} // text, ping, pong: not part of the byte stream
            Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake),
            ) => return Ok(()),
            Err(err) => return Err(ws_error(err)),
        }
    }
}
