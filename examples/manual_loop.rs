//! The whole-connection loop of the crate docs over real `std::net::TcpStream`s.
//!
//! ```text
//! cargo run --example manual_loop -- HOST[:PORT][,HOST[:PORT]...] [SSLMODE] [USER] [SSLROOTCERT]
//! ```
//! Runs libpq's whole setup with [`ConnectionSetup`]: every fallback that needs a new
//! connection (`allow` against a server whose pg_hba.conf only has `hostssl`, `prefer`
//! against one with `hostnossl` or a failing handshake), the next host after a refused
//! connection or SQLSTATE 57P03, a 10-second `connect_timeout` per host. The startup
//! sends a StartupMessage and reads the server's first message: an ErrorResponse is
//! handed back to the machine as it came; anything else (an authentication request)
//! counts as accepted here — a real driver authenticates first.
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pgtls::plan::Transport;
use pgtls::setup::{Action, Ready};
use pgtls::{ApplicationData, Config, ConnectionSetup, RootCertificates, Session};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest first message the example reads (a real ErrorResponse is far smaller).
const MAX_MESSAGE: usize = 64 * 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(hosts) = args.first() else {
        eprintln!("usage: manual_loop HOST[:PORT][,HOST[:PORT]...] [SSLMODE] [USER] [SSLROOTCERT]");
        std::process::exit(2);
    };
    let sslmode = args.get(1).map_or("prefer", String::as_str).parse()?;
    let user = args.get(2).map_or("postgres", String::as_str);
    let roots = match args.get(3) {
        Some(path) => Some(RootCertificates::from_pem(&std::fs::read(path)?)?),
        None => None,
    };
    let mut targets = Vec::new();
    let mut configs = Vec::new();
    for target in hosts.split(',') {
        let (host, port) = target.split_once(':').unwrap_or((target, "5432"));
        let mut builder = Config::builder().sslmode(sslmode).host(host);
        if let Some(roots) = &roots {
            builder = builder.root_certificates(roots.clone());
        }
        configs.push((builder.build()?, Transport::Tcp));
        targets.push((host.to_owned(), port.parse::<u16>()?));
    }

    // The driver's whole TLS code: one loop doing what the machine says.
    let mut setup = ConnectionSetup::multi_host(configs)?;
    let (mut out, mut input) = (BytesMut::new(), BytesMut::new());
    let mut sock: Option<TcpStream> = None;
    let mut session: Option<Box<Session>> = None;
    let mut deadline = Instant::now();
    let mut host_now = usize::MAX;
    loop {
        match setup.poll_output(&mut out)? {
            Action::Open { host, method } => {
                if host != host_now {
                    (host_now, deadline) = (host, Instant::now() + CONNECT_TIMEOUT);
                }
                println!(
                    "connecting to {}:{} ({method:?})",
                    targets[host].0, targets[host].1
                );
                input.clear();
                match open(&targets[host], deadline) {
                    Ok(stream) => sock = Some(stream),
                    Err(err) => setup.handle_transport_error(err)?,
                }
            }
            Action::Transmit(_) => {
                let sent = sock.as_mut().ok_or("no transport")?.write_all(&out);
                out.clear();
                if let Err(err) = sent {
                    setup.handle_transport_error(err)?;
                }
            }
            Action::Receive => match read_into(sock.as_mut().ok_or("no transport")?, &mut input) {
                Ok(0) => setup.handle_eof()?,
                Ok(_) => {
                    setup.handle_input(&mut input)?;
                }
                Err(err) => setup.handle_transport_error(err)?,
            },
            Action::Close => {
                if let Some(mut stream) = sock.take() {
                    let _ = stream.write_all(&out); // the last TLS alert, if any
                }
                out.clear();
                session = None;
            }
            Action::Ready(ready) => {
                if let Ready::Tls(tls) = ready {
                    session = Some(tls);
                }
                let stream = sock.as_mut().ok_or("no transport")?;
                match first_reply(session.as_deref_mut(), stream, &mut input, user) {
                    Ok(reply) if reply.first() == Some(&b'E') => {
                        setup.handle_startup_rejected(&reply)?
                    }
                    Ok(_) => setup.handle_startup_accepted()?,
                    Err(err) => setup.handle_transport_error(err)?,
                }
            }
            Action::Done => break,
            Action::Failed(failed) => {
                for attempt in &failed.attempts {
                    println!(
                        "  {:?}: {}",
                        attempt.method,
                        attempt.error.as_deref().unwrap_or("ok")
                    );
                }
                return Err(failed.to_string().into());
            }
        }
    }
    for attempt in setup.attempts() {
        println!(
            "  {:?}: {}",
            attempt.method,
            attempt.error.as_deref().unwrap_or("ok")
        );
    }
    match &session {
        Some(session) => println!(
            "connected to host {host_now} over {:?}, {:?}, ALPN {:?}",
            session.protocol_version(),
            session.cipher_suite().map(|s| s.suite()),
            session.alpn_protocol().map(String::from_utf8_lossy)
        ),
        None => println!("connected to host {host_now} without encryption"),
    }
    Ok(())
}

/// Opens a TCP connection whose reads and writes end at `deadline` (libpq's
/// `connect_timeout`, per host: a timed-out read is reported to the machine as a
/// transport error of kind `WouldBlock`/`TimedOut`, which it takes as the timeout).
fn open((host, port): &(String, u16), deadline: Instant) -> io::Result<TcpStream> {
    let addr = (host.as_str(), *port)
        .to_socket_addrs()?
        .next()
        .ok_or(io::ErrorKind::NotFound)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let stream = TcpStream::connect_timeout(&addr, left)?;
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    Ok(stream)
}

/// Reads once, appending to `input`.
fn read_into(stream: &mut TcpStream, input: &mut BytesMut) -> io::Result<usize> {
    let mut buf = [0u8; 16 * 1024];
    let n = stream.read(&mut buf)?;
    input.extend_from_slice(&buf[..n]);
    Ok(n)
}

/// Sends a StartupMessage (through the session when there is one) and returns the
/// server's first message, whole.
fn first_reply(
    mut session: Option<&mut Session>,
    stream: &mut TcpStream,
    input: &mut BytesMut,
    user: &str,
) -> io::Result<Vec<u8>> {
    let tls_error = |err: pgtls::Error| io::Error::new(io::ErrorKind::InvalidData, err);
    let startup = startup_message(user);
    match session.as_deref_mut() {
        Some(session) => {
            let mut records = BytesMut::new();
            session
                .handle_application_data_buf(&mut &startup[..])
                .map_err(tls_error)?;
            session.poll_output(&mut records).map_err(tls_error)?;
            stream.write_all(&records)?;
        }
        None => stream.write_all(&startup)?,
    }
    let mut plain = BytesMut::new();
    loop {
        if plain.len() >= 5 {
            let len = u32::from_be_bytes([plain[1], plain[2], plain[3], plain[4]]) as usize;
            if !(4..=MAX_MESSAGE).contains(&len) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad message length",
                ));
            }
            if plain.len() > len {
                return Ok(plain.split_to(len + 1).to_vec());
            }
        }
        match session.as_deref_mut() {
            Some(session) => match session
                .poll_application_data_into(&mut plain)
                .map_err(tls_error)?
            {
                ApplicationData::Data(_) => continue,
                ApplicationData::Closed => return Err(io::ErrorKind::UnexpectedEof.into()),
                ApplicationData::NeedInput
                    if input.is_empty() && read_into(stream, input)? == 0 =>
                {
                    session.handle_eof().map_err(tls_error)?;
                }
                ApplicationData::NeedInput => {
                    session.handle_input_buf(input).map_err(tls_error)?;
                }
            },
            None if input.is_empty() && read_into(stream, input)? == 0 => {
                return Err(io::ErrorKind::UnexpectedEof.into())
            }
            None => plain.extend_from_slice(&input.split()),
        }
    }
}

/// A protocol 3.0 StartupMessage with `user` and `database`.
fn startup_message(user: &str) -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", user)] {
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
