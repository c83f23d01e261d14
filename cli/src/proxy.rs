//! A TLS-terminating proxy in front of a PostgreSQL server that speaks plaintext.
//!
//! ```text
//! pgtls proxy --listen ADDR --upstream ADDR --cert FILE --key FILE [--ca FILE [--crl FILE]
//!           [--crl-dir DIR]] [--startup-timeout SECONDS] [--allow-plaintext] [--no-direct]
//!           [--tickets]
//! ```
//!
//! Clients connect with TLS (`SSLRequest`, or PostgreSQL 17+ direct TLS with ALPN
//! `postgresql`); plaintext clients are refused with a FATAL error telling them to use
//! `sslmode=require`, unless `--allow-plaintext`. Each client's first packet (a
//! StartupMessage or a CancelRequest) is forwarded to the upstream server, then bytes are
//! pumped both ways. One log line per client: method, TLS version, SNI, ALPN, user.
//!
//! As PostgreSQL's server: `--ca` requests client certificates and refuses those that do
//! not verify against it or are revoked by `--crl` / `--crl-dir` (`could not accept SSL
//! connection: certificate verify failed`); a client has `--startup-timeout` seconds
//! (default 60, PostgreSQL's `authentication_timeout`) from connecting to its first
//! packet, however it trickles its bytes; `SIGHUP` reloads the certificate, key, CA and
//! CRL files for new connections while established sessions go on (a failed reload keeps
//! the old files, as PostgreSQL does).
//!
//! `--tickets` lets clients resume TLS sessions, which PostgreSQL never does (and the proxy
//! by default neither): see [`pgtls::server::SessionTickets::rotating`] — 2 stateless
//! TLS 1.3 tickets per full handshake under keys that rotate every 6 hours (a ticket
//! lives at most 12), and a TLS 1.2 session cache bounded at 1024 entries. Keys live in
//! memory only: a restart or a reload (`SIGHUP`) starts new ones, and clients holding
//! older tickets make a full handshake. A resumed client is logged with `resumed`.
//!
//! Threads and blocking `std::net`: the acceptor and the session are sans-IO, so the
//! same code would run in an event loop. Try it:
//!
//! ```text
//! pgtls proxy --listen 127.0.0.1:6432 --upstream 127.0.0.1:5432 \
//!     --cert server.crt --key server.key
//! psql "host=localhost port=6432 sslmode=verify-full sslrootcert=root.crt user=postgres"
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pgtls::bytes::BytesMut;
use pgtls::plan::Method;
use pgtls::server::{
    error_response, Accepted, Acceptor, AcceptorConfig, FirstPacket, ServerTlsFiles,
    SessionTickets, SharedAcceptorConfig,
};
use pgtls::{ApplicationData, Output, Session};

/// One TLS record plus headers.
const BUF_LEN: usize = 17 * 1024;
/// The acceptor's buffers: the ClientHello arrives in pieces of any size, and its
/// output (`S`, the ServerHello flight) is handed out in as many pieces as needed.
const ACCEPT_BUF_LEN: usize = 4 * 1024;
/// How long a client may take from connecting to its first packet (PostgreSQL's
/// `authentication_timeout` default).
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where each log line goes.
pub type Logger = Arc<dyn Fn(String) + Send + Sync>;

/// The command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on.
    pub listen: String,
    /// The PostgreSQL server (plaintext).
    pub upstream: String,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Accept plaintext clients too.
    pub allow_plaintext: bool,
    /// Accept direct TLS (default on).
    pub direct: bool,
    /// PEM CA file for client certificates (PostgreSQL's `ssl_ca_file`).
    pub ca: Option<PathBuf>,
    /// CRL file for client certificates (`ssl_crl_file`).
    pub crl: Option<PathBuf>,
    /// Directory of CRL files (`ssl_crl_dir`).
    pub crl_dir: Option<PathBuf>,
    /// From connecting to the first packet (`authentication_timeout`).
    pub startup_timeout: Duration,
    /// Issue session tickets (rotating keys, bounded TLS 1.2 cache); off by default.
    pub tickets: bool,
}

/// The one-line synopsis of `pgtls proxy`.
pub const USAGE: &str = "usage: pgtls proxy --listen ADDR --upstream ADDR --cert FILE --key FILE [--ca FILE [--crl FILE] [--crl-dir DIR]] [--startup-timeout SECONDS] [--allow-plaintext] [--no-direct] [--tickets]";

impl Options {
    /// Parses the arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let (mut listen, mut upstream, mut cert, mut key) = (None, None, None, None);
        let (mut allow_plaintext, mut direct, mut tickets) = (false, true, false);
        let (mut ca, mut crl, mut crl_dir) = (None, None, None);
        let mut startup_timeout = DEFAULT_STARTUP_TIMEOUT;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--listen" => listen = Some(value("--listen")?),
                "--upstream" => upstream = Some(value("--upstream")?),
                "--cert" => cert = Some(PathBuf::from(value("--cert")?)),
                "--key" => key = Some(PathBuf::from(value("--key")?)),
                "--ca" => ca = Some(PathBuf::from(value("--ca")?)),
                "--crl" => crl = Some(PathBuf::from(value("--crl")?)),
                "--crl-dir" => crl_dir = Some(PathBuf::from(value("--crl-dir")?)),
                "--startup-timeout" => {
                    let seconds = value("--startup-timeout")?;
                    startup_timeout = seconds
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                        .map(Duration::from_secs_f64)
                        .ok_or(format!(
                            "invalid --startup-timeout {seconds:?}: seconds between 0 and 86400"
                        ))?;
                }
                "--allow-plaintext" => allow_plaintext = true,
                "--no-direct" => direct = false,
                "--tickets" => tickets = true,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        let missing = |what: &str| format!("{what} is required\n{USAGE}");
        Ok(Options {
            listen: listen.ok_or_else(|| missing("--listen"))?,
            upstream: upstream.ok_or_else(|| missing("--upstream"))?,
            cert: cert.ok_or_else(|| missing("--cert"))?,
            key: key.ok_or_else(|| missing("--key"))?,
            allow_plaintext,
            direct,
            ca,
            crl,
            crl_dir,
            startup_timeout,
            tickets,
        })
    }

    /// The server's TLS files these options name.
    pub fn tls_files(&self) -> ServerTlsFiles {
        let mut files = ServerTlsFiles::new(&self.cert, &self.key);
        if let Some(ca) = &self.ca {
            files = files.ca_file(ca);
        }
        if let Some(crl) = &self.crl {
            files = files.crl_file(crl);
        }
        if let Some(dir) = &self.crl_dir {
            files = files.crl_dir(dir);
        }
        files
    }

    /// The acceptor policy these options describe (reads the TLS files).
    pub fn acceptor_config(&self) -> Result<AcceptorConfig, String> {
        if self.ca.is_none() && (self.crl.is_some() || self.crl_dir.is_some()) {
            return Err("--crl and --crl-dir need --ca".into());
        }
        let mut tls = self.tls_files().builder().map_err(|e| e.to_string())?;
        if self.tickets {
            tls = tls.session_tickets(SessionTickets::rotating());
        }
        let tls = tls.build().map_err(|e| e.to_string())?;
        let config = if self.allow_plaintext {
            AcceptorConfig::allow_plaintext(tls)
        } else {
            AcceptorConfig::require_tls(tls)
        };
        Ok(config.with_direct_tls(self.direct))
    }
}

/// A bound proxy.
pub struct Proxy {
    listener: TcpListener,
    options: Options,
    config: SharedAcceptorConfig,
    log: Logger,
}

impl Proxy {
    /// Binds the listening socket.
    pub fn bind(options: &Options, log: Logger) -> Result<Proxy, String> {
        let config = SharedAcceptorConfig::new(options.acceptor_config()?);
        let listener = TcpListener::bind(&options.listen)
            .map_err(|e| format!("could not listen on {}: {e}", options.listen))?;
        Ok(Proxy {
            listener,
            options: options.clone(),
            config,
            log,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What reloads the configuration (the proxy keeps serving while it runs).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            options: self.options.clone(),
            config: self.config.clone(),
            log: self.log.clone(),
        }
    }

    /// Serves clients forever, one thread each.
    pub fn serve(self) {
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else { continue };
            let accepted_at = Instant::now();
            // The configuration current now: a reload affects new connections only.
            let config = self.config.current();
            let (upstream, log) = (self.options.upstream.clone(), self.log.clone());
            let deadline = accepted_at + self.options.startup_timeout;
            let spawned = thread::Builder::new().spawn(move || {
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| "?".into());
                if let Err(err) = handle_client(stream, &config, deadline, &upstream, &peer, &log) {
                    log(format!("{peer}: {err}"));
                }
            });
            if let Err(err) = spawned {
                (self.log)(format!("could not start a thread for a client: {err}"));
            }
        }
    }
}

/// Reloads the TLS files into the running proxy (what `SIGHUP` does).
#[derive(Clone)]
pub struct Reloader {
    options: Options,
    config: SharedAcceptorConfig,
    log: Logger,
}

impl Reloader {
    /// Reads the files again; on success new connections use them, on failure the
    /// old configuration stays (logged either way).
    pub fn reload(&self) -> Result<(), String> {
        match self.options.acceptor_config() {
            Ok(config) => {
                self.config.replace(config);
                (self.log)("configuration reloaded".into());
                Ok(())
            }
            Err(err) => {
                (self.log)(format!(
                    "reload failed, keeping the previous configuration: {err}"
                ));
                Err(err)
            }
        }
    }
}

fn handle_client(
    mut client: TcpStream,
    config: &AcceptorConfig,
    deadline: Instant,
    upstream: &str,
    peer: &str,
    log: &Logger,
) -> Result<(), String> {
    let (accepted, leftover) =
        accept(&mut client, config, deadline).map_err(|e| format!("refused: {e}"))?;
    client.set_read_timeout(None).map_err(|e| e.to_string())?;
    client.set_write_timeout(None).map_err(|e| e.to_string())?;
    log(describe(peer, &accepted));
    let Accepted {
        session, packet, ..
    } = accepted;
    let mut session = session.map(|s| *s);
    let first = match &packet {
        FirstPacket::Startup(startup) => startup.as_bytes().to_vec(),
        FirstPacket::Cancel(cancel) => cancel.to_bytes(),
    };
    let mut server = match TcpStream::connect(upstream) {
        Ok(server) => server,
        Err(err) => {
            let message = error_response("08006", "could not connect to the upstream server", None);
            let _ = send_to_client(&mut client, session.as_mut(), &message, true);
            return Err(format!("upstream {upstream}: {err}"));
        }
    };
    server.write_all(&first).map_err(|e| e.to_string())?;
    if let FirstPacket::Cancel(_) = packet {
        // A cancel gets no answer: forward it and close both sides.
        let _ = server.shutdown(Shutdown::Both);
        let _ = send_to_client(&mut client, session.as_mut(), &[], true);
        return Ok(());
    }
    match session {
        Some(session) => pump_tls(client, session, server, leftover),
        None => pump_plain(client, server, leftover),
    }
}

/// What a client that missed the startup deadline is told in the log (PostgreSQL closes
/// such a connection without a word).
const STARTUP_TIMEOUT_MESSAGE: &str = "timeout expired before the startup packet";

/// Arms the socket's timeouts with what is left until `deadline`: a deadline from accept
/// to the first packet, not a per-read timeout (a client trickling a byte now and then
/// is still cut off on time).
fn arm(client: &TcpStream, deadline: Instant) -> Result<(), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(STARTUP_TIMEOUT_MESSAGE.into());
    }
    client
        .set_read_timeout(Some(left))
        .and_then(|()| client.set_write_timeout(Some(left)))
        .map_err(|e| e.to_string())
}

/// An I/O error while accepting, a timeout named as such.
fn io_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => STARTUP_TIMEOUT_MESSAGE.into(),
        _ => err.to_string(),
    }
}

/// Runs the acceptor over the socket until `deadline`; returns the client and the bytes
/// read past it.
fn accept(
    client: &mut TcpStream,
    config: &AcceptorConfig,
    deadline: Instant,
) -> Result<(Accepted, Vec<u8>), String> {
    let mut acceptor = Acceptor::new(config);
    let mut out = BytesMut::new();
    let mut incoming = vec![0u8; ACCEPT_BUF_LEN];
    let (mut start, mut end) = (0usize, 0usize);
    let mut stalled = false;
    loop {
        match acceptor.poll_output(&mut out) {
            Ok(Output::Transmit(_)) => {
                arm(client, deadline)?;
                client.write_all(&out).map_err(|e| io_error(&e))?;
                out.clear();
                stalled = false;
                continue;
            }
            Ok(Output::Done) => break,
            Ok(Output::Receive) => {}
            // The last words (ErrorResponse, alert) were sent above: now the error, with
            // the detail line PostgreSQL 17+ logs under it.
            Err(err) => {
                return Err(match err.detail() {
                    Some(detail) => format!("{err}; DETAIL: {detail}"),
                    None => err.to_string(),
                })
            }
        }
        if stalled {
            return Err("acceptor made no progress".into());
        }
        if start == end {
            start = 0;
            arm(client, deadline)?;
            end = client.read(&mut incoming).map_err(|e| io_error(&e))?;
            if end == 0 {
                let _ = acceptor.handle_eof();
                continue;
            }
        }
        match acceptor.handle_input(&incoming[start..end]) {
            Ok(0) => stalled = true,
            Ok(n) => start += n,
            // Loop: poll_output hands out the last words, then the error.
            Err(_) => {}
        }
    }
    let leftover = incoming[start..end].to_vec();
    let accepted = acceptor.into_accepted().map_err(|e| e.to_string())?;
    Ok((accepted, leftover))
}

fn describe(peer: &str, accepted: &Accepted) -> String {
    let method = match accepted.method {
        Method::SslRequest => "sslrequest",
        Method::DirectTls => "direct",
        Method::Plaintext => "plaintext",
    };
    let what = match &accepted.packet {
        FirstPacket::Startup(s) => format!("startup user={}", s.user().unwrap_or("-")),
        FirstPacket::Cancel(c) => format!("cancel pid={}", c.process_id()),
    };
    match &accepted.session {
        Some(session) => {
            let version = match session.protocol_version() {
                Some(pgtls::rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
                Some(pgtls::rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
                other => format!("{other:?}"),
            };
            let alpn = session
                .alpn_protocol()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .unwrap_or_else(|| "-".into());
            format!(
                "{peer}: {method} tls={version}{} sni={} alpn={alpn} {what}",
                if session.resumed() { " resumed" } else { "" },
                session.sni().unwrap_or("-")
            )
        }
        None => format!("{peer}: {method} {what}"),
    }
}

/// Sends `plaintext` to the client (encrypted when there is a session), optionally
/// followed by close_notify.
fn send_to_client(
    client: &mut TcpStream,
    session: Option<&mut Session>,
    mut plaintext: &[u8],
    close: bool,
) -> io::Result<()> {
    let Some(session) = session else {
        return client.write_all(plaintext);
    };
    let mut out = BytesMut::new();
    loop {
        if !plaintext.is_empty() {
            let n = session
                .handle_application_data(plaintext)
                .map_err(io::Error::other)?;
            plaintext = &plaintext[n..];
        } else if close {
            session.close();
        }
        while let Ok(Output::Transmit(_)) = session.poll_output(&mut out) {
            client.write_all(&out)?;
            out.clear();
        }
        if plaintext.is_empty() {
            return Ok(());
        }
    }
}

enum Event {
    Client(Vec<u8>),
    ClientEnd,
    Server(Vec<u8>),
    ServerEnd,
}

/// Reads `stream` into the channel until EOF or an error.
fn reader(mut stream: TcpStream, tx: mpsc::SyncSender<Event>, from_client: bool) {
    let mut buf = vec![0u8; BUF_LEN];
    loop {
        let event = match stream.read(&mut buf) {
            Ok(0) | Err(_) => None,
            Ok(n) if from_client => Some(Event::Client(buf[..n].to_vec())),
            Ok(n) => Some(Event::Server(buf[..n].to_vec())),
        };
        let Some(event) = event else { break };
        if tx.send(event).is_err() {
            return;
        }
    }
    let _ = tx.send(if from_client {
        Event::ClientEnd
    } else {
        Event::ServerEnd
    });
}

/// One thread owns the session; two readers feed it through a bounded channel.
fn pump_tls(
    mut client: TcpStream,
    mut session: Session,
    mut server: TcpStream,
    leftover: Vec<u8>,
) -> Result<(), String> {
    let (tx, rx) = mpsc::sync_channel(8);
    let client_reader = client.try_clone().map_err(|e| e.to_string())?;
    let server_reader = server.try_clone().map_err(|e| e.to_string())?;
    let tx2 = tx.clone();
    thread::spawn(move || reader(client_reader, tx, true));
    thread::spawn(move || reader(server_reader, tx2, false));
    let mut plain = vec![0u8; BUF_LEN];
    let mut pending = leftover;
    let result = loop {
        // Flush whatever the session wants to send (handshake leftovers, alerts).
        if let Err(err) = send_to_client(&mut client, Some(&mut session), &[], false) {
            break Err(err.to_string());
        }
        // TLS bytes from the client: decrypt and forward.
        let mut input = &pending[..];
        let mut failed = None;
        while failed.is_none() {
            let consumed = match session.handle_input(input) {
                Ok(n) => n,
                Err(err) => {
                    failed = Some(err.to_string());
                    break;
                }
            };
            input = &input[consumed..];
            let mut progressed = consumed > 0;
            loop {
                match session.poll_application_data(&mut plain) {
                    Ok(ApplicationData::Data(n)) => {
                        progressed = true;
                        if let Err(err) = server.write_all(&plain[..n]) {
                            failed = Some(err.to_string());
                            break;
                        }
                    }
                    Ok(ApplicationData::NeedInput) => break,
                    Ok(ApplicationData::Closed) => {
                        failed = Some(String::new());
                        break;
                    }
                    Err(err) => {
                        failed = Some(err.to_string());
                        break;
                    }
                }
            }
            if input.is_empty() || !progressed {
                break;
            }
        }
        pending.clear();
        if let Some(err) = failed {
            let _ = send_to_client(&mut client, Some(&mut session), &[], false);
            break if err.is_empty() { Ok(()) } else { Err(err) };
        }
        match rx.recv() {
            Ok(Event::Client(bytes)) => pending = bytes,
            Ok(Event::Server(bytes)) => {
                if let Err(err) = send_to_client(&mut client, Some(&mut session), &bytes, false) {
                    break Err(err.to_string());
                }
            }
            Ok(Event::ClientEnd) | Err(_) => {
                let _ = session.handle_eof();
                break Ok(());
            }
            Ok(Event::ServerEnd) => {
                let _ = send_to_client(&mut client, Some(&mut session), &[], true);
                break Ok(());
            }
        }
    };
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    result
}

/// Plaintext: copy both ways.
fn pump_plain(client: TcpStream, mut server: TcpStream, leftover: Vec<u8>) -> Result<(), String> {
    server.write_all(&leftover).map_err(|e| e.to_string())?;
    let (mut client_read, mut server_write) = (
        client.try_clone().map_err(|e| e.to_string())?,
        server.try_clone().map_err(|e| e.to_string())?,
    );
    let upward = thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(Shutdown::Write);
    });
    let (mut server_read, mut client_write) = (server, client);
    let _ = io::copy(&mut server_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = upward.join();
    Ok(())
}

/// Installs a SIGHUP handler (tokio's, on a small runtime of its own) and reloads on
/// every signal, in a thread of its own.
///
/// # Errors
/// When the runtime or the signal handler cannot be set up.
pub fn reload_on_sighup(reloader: Reloader) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let mut hangups = {
        let _entered = runtime.enter();
        signal(SignalKind::hangup())?
    };
    thread::spawn(move || {
        runtime.block_on(async move {
            while hangups.recv().await.is_some() {
                let _ = reloader.reload();
            }
        });
    });
    Ok(())
}
