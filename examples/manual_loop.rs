//! The driving loop of the crate docs over a real `std::net::TcpStream`.
//!
//! ```text
//! cargo run --example manual_loop -- HOST PORT [SSLMODE] [USER]
//! ```
//! Negotiates TLS the way the sslmode says (one attempt, no reconnects: see
//! `pgtls::blocking::connect` for the whole plan), sends a StartupMessage and prints the
//! type of the server's first reply.
use std::io::{Read, Write};
use std::net::TcpStream;

use pgtls::plan::Method;
use pgtls::{ApplicationData, Config, Negotiated, Negotiation, Poll};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(host), Some(port)) = (args.first(), args.get(1)) else {
        eprintln!("usage: manual_loop HOST PORT [SSLMODE] [USER]");
        std::process::exit(2);
    };
    let sslmode = args.get(2).map_or("require", String::as_str).parse()?;
    let user = args.get(3).map_or("postgres", String::as_str);
    let config = Config::builder()
        .sslmode(sslmode)
        .host(host.as_str())
        .build()?;
    let mut sock = TcpStream::connect((host.as_str(), port.parse::<u16>()?))?;
    let method = if config.sslmode() == pgtls::SslMode::Disable {
        Method::Plaintext
    } else {
        Method::SslRequest
    };

    // Steps 3–4 of the contract: poll_output / handle_input until Done.
    let mut attempt = Negotiation::new(&config, method)?;
    let (mut out, mut inbuf) = ([0u8; 17 * 1024], [0u8; 17 * 1024]);
    let (mut start, mut end) = (0, 0);
    loop {
        match attempt.poll_output(&mut out)? {
            Poll::Transmit(n) => sock.write_all(&out[..n])?,
            Poll::Done => break,
            Poll::BufferTooSmall { needed } => return Err(format!("need {needed} bytes").into()),
            Poll::NeedInput if start == end => {
                (start, end) = (0, sock.read(&mut inbuf)?);
                if end == 0 {
                    attempt.handle_eof()?;
                }
            }
            Poll::NeedInput => start += attempt.handle_input(&inbuf[start..end])?,
        }
    }
    let startup = startup_message(user);
    let first_reply = match attempt.into_negotiated()? {
        Negotiated::Tls(mut session) => {
            println!(
                "TLS {:?}, {:?}, ALPN {:?}",
                session.protocol_version(),
                session.cipher_suite().map(|s| s.suite()),
                session.alpn_protocol().map(String::from_utf8_lossy)
            );
            session.handle_application_data(&startup)?;
            let n = session.poll_output(&mut out);
            sock.write_all(&out[..n])?;
            let mut plain = [0u8; 1];
            loop {
                match session.poll_application_data(&mut plain)? {
                    ApplicationData::Data(_) => break plain[0],
                    ApplicationData::Closed => return Err("server closed the session".into()),
                    ApplicationData::NeedInput => {
                        if start == end {
                            (start, end) = (0, sock.read(&mut inbuf)?);
                        }
                        if end == 0 {
                            session.handle_eof()?;
                            continue;
                        }
                        start += session.handle_input(&inbuf[start..end])?;
                    }
                }
            }
        }
        Negotiated::SslRefused => return Err("server does not support SSL (N)".into()),
        Negotiated::Plaintext => {
            sock.write_all(&startup)?;
            let mut first = [0u8; 1];
            sock.read_exact(&mut first)?;
            first[0]
        }
    };
    println!("server's first message: {:?}", char::from(first_reply));
    Ok(())
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
