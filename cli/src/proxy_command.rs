//! `pgtls proxy`: the TLS-terminating proxy of [`pgtls_cli::proxy`] as a command. One log
//! line per client on stderr; `SIGHUP` reloads the TLS files.

use std::process::ExitCode;
use std::sync::Arc;

use pgtls_cli::proxy::{reload_on_sighup, Logger, Options, Proxy, USAGE};

/// `pgtls proxy --help`.
pub const HELP: &str = "\
usage: pgtls proxy --listen ADDR --upstream ADDR --cert FILE --key FILE
                   [--ca FILE [--crl FILE] [--crl-dir DIR]] [--startup-timeout SECONDS]
                   [--allow-plaintext] [--no-direct] [--tickets]

A TLS-terminating proxy in front of a PostgreSQL server that speaks plaintext.
Clients connect with TLS (SSLRequest, or PostgreSQL 17+ direct TLS with ALPN
postgresql); each client's first packet goes to the upstream server, then bytes
are pumped both ways. One log line per client on stderr.

options:
  --listen ADDR             address to listen on (port 0: any free port)
  --upstream ADDR           the PostgreSQL server, plaintext
  --cert FILE, --key FILE   the server's PEM certificate chain and private key
  --ca FILE                 request client certificates and verify them against
                            this CA (PostgreSQL's ssl_ca_file)
  --crl FILE, --crl-dir DIR revoked client certificates (ssl_crl_file, ssl_crl_dir)
  --startup-timeout SECONDS from connecting to the first packet (default 60,
                            PostgreSQL's authentication_timeout)
  --allow-plaintext         accept plaintext clients too (else they are told to use
                            sslmode=require)
  --no-direct               refuse direct TLS
  --tickets                 let clients resume TLS sessions (PostgreSQL never does):
                            2 TLS 1.3 tickets per full handshake under keys rotated
                            every 6 hours (a ticket lives at most 12 hours), a TLS 1.2
                            session cache of at most 1024 entries; keys are in memory
                            only, so a restart or reload makes clients shake hands in
                            full again
  -h, --help                this text

SIGHUP reloads the certificate, key, CA and CRL files for new connections (a failed
reload keeps the old ones). Exit status: 1 when it cannot start, 2 usage error.";

/// The prefix of this command's messages.
const NAME: &str = "pgtls proxy";

/// Runs `pgtls proxy` with its arguments (after `proxy`); returns only on a failure to
/// start.
pub fn run(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(args.iter().cloned()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{NAME}: {message}");
            if !message.contains(USAGE) {
                eprintln!("{USAGE}");
            }
            return ExitCode::from(2);
        }
    };
    let log: Logger = Arc::new(|line| eprintln!("{NAME}: {line}"));
    let proxy = match Proxy::bind(&options, log) {
        Ok(proxy) => proxy,
        Err(message) => {
            eprintln!("{NAME}: {message}");
            return ExitCode::FAILURE;
        }
    };
    // The handler is installed before "listening" is printed: from then on SIGHUP
    // reloads instead of ending the process.
    if let Err(err) = reload_on_sighup(proxy.reloader()) {
        eprintln!("{NAME}: cannot handle SIGHUP: {err}");
        return ExitCode::FAILURE;
    }
    match proxy.local_addr() {
        Ok(addr) => eprintln!(
            "{NAME}: listening on {addr}, upstream {}, {}",
            options.upstream,
            if options.allow_plaintext {
                "plaintext allowed"
            } else {
                "TLS required"
            }
        ),
        Err(err) => eprintln!("{NAME}: {err}"),
    }
    proxy.serve();
    ExitCode::SUCCESS
}
