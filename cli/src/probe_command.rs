//! `pgtls probe`: the Postgres-aware `openssl s_client`. Connect the way libpq does and
//! report.
//!
//! ```text
//! pgtls probe [--json] [--quiet] [--resume] 'CONNINFO or URI'
//! ```
//! Settings come from the string, then `PG*` environment variables, the service file and
//! `~/.postgresql/` files, as libpq takes them. Exit status: 0 when ReadyForQuery was
//! reached, 1 when the connection failed (the error on stderr in libpq's words), 2 for
//! usage errors.
//!
//! The report names the TLS version, cipher suite, key-exchange group (`key exchange:`,
//! `"key_exchange_group"` in JSON), ALPN, SNI and the server's certificates.
//!
//! On a failure the verification line says `failed: <reason>`, the chain the server
//! presented is listed when it was rejected, and a common cause gets a `hint:` line.
//! While it works, each connection and attempt is reported on stderr as it happens, with
//! the `connect_timeout` countdown (see [`crate::progress`]); `--quiet` silences that.

use std::process::ExitCode;

use pgtls::libpq::Environment;
use pgtls_cli::probe::{probe_with_options, NoProgress, ProbeOptions, Progress};

use crate::progress::StderrProgress;

/// `pgtls probe --help`.
pub const HELP: &str = "\
usage: pgtls probe [--json] [--quiet] [--resume] 'CONNINFO or URI'

Connects like libpq (sslmode plan, reconnects, every host and address,
connect_timeout), completes the startup to ReadyForQuery and reports the TLS
session, the certificates and every attempt. Settings come from the string, then
PG* environment variables, the service file (service=NAME, PGSERVICEFILE) and
~/.postgresql/, as libpq takes them.

options:
  --json     print the report as one JSON object on stdout
  --quiet    no progress lines on stderr (each attempt as it happens, the
             connect_timeout countdown)
  --resume   connect twice with TLS session resumption on (a pgtls extension;
             libpq never resumes) and report the second connection: `resumed:
             yes` when the server accepted the first one's session (a resumed
             handshake sends and verifies no certificate)
  -h, --help this text

Exit status: 0 connected, 1 connection failed (libpq's error on stderr),
2 usage error.";

/// The prefix of this command's messages.
const NAME: &str = "pgtls probe";

/// Runs `pgtls probe` with its arguments (after `probe`).
pub fn run(args: &[String]) -> ExitCode {
    let mut json = false;
    let mut quiet = false;
    let mut options = ProbeOptions::default();
    let mut conninfo = None;
    for arg in args {
        match arg.as_str() {
            "--json" => json = true,
            "-q" | "--quiet" => quiet = true,
            "--resume" => options.resume = true,
            "-h" | "--help" => {
                println!("{HELP}");
                return ExitCode::SUCCESS;
            }
            s if s.starts_with('-') && s.len() > 1 => {
                return usage_error(&format!("unknown option {s:?}"))
            }
            s if conninfo.is_none() => conninfo = Some(s.to_owned()),
            _ => return usage_error("only one connection string may be given"),
        }
    }
    let Some(conninfo) = conninfo else {
        return usage_error("a connection string is required");
    };
    let env = Environment::from_process_env();
    let report = if quiet {
        probe_with_options(&conninfo, &env, options, &mut NoProgress)
    } else {
        eprintln!("{NAME}: probing {conninfo} ...");
        let mut progress = StderrProgress::start(NAME);
        let report =
            probe_with_options(&conninfo, &env, options, &mut progress as &mut dyn Progress);
        progress.finish();
        report
    };
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.ok {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "{NAME}: error: {}",
        report.error.as_deref().unwrap_or("connection failed")
    );
    if let Some(hint) = &report.hint {
        eprintln!("{NAME}: hint: {hint}");
    }
    ExitCode::FAILURE
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("{NAME}: {message}\n\n{HELP}");
    ExitCode::from(2)
}
