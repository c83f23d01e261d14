//! The Postgres-aware `openssl s_client`: connect the way libpq does and report.
//!
//! ```text
//! cargo run --example probe -- [--json] 'CONNINFO or URI'
//! ```
//! Settings come from the string, then `PG*` environment variables and
//! `~/.postgresql/` files, as libpq takes them. Exit status: 0 when ReadyForQuery was
//! reached, 1 when the connection failed (the error on stderr in libpq's words), 2 for
//! usage errors.
//!
//! On a failure the verification line says `failed: <reason>`, the chain the server
//! presented is listed when it was rejected, and a common cause gets a `hint:` line.

#[path = "../tests/support/probe.rs"]
mod probe;
#[path = "../tests/support/startup.rs"]
mod startup;

use pgtls::libpq::Environment;

const USAGE: &str = "usage: probe [--json] 'CONNINFO or URI'\n\n\
  Connects like libpq (sslmode plan, reconnects, connect_timeout), completes the\n\
  startup to ReadyForQuery and reports the TLS session and certificates.\n\
  Exit status: 0 connected, 1 connection failed, 2 usage error.";

fn main() {
    let mut json = false;
    let mut conninfo = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            s if s.starts_with("--") => usage_error(&format!("unknown option {s}")),
            s if conninfo.is_none() => conninfo = Some(s.to_owned()),
            _ => usage_error("only one connection string may be given"),
        }
    }
    let Some(conninfo) = conninfo else {
        usage_error("a connection string is required")
    };
    if !json {
        eprintln!("probing {conninfo} ...");
    }
    let report = probe::probe(&conninfo, &Environment::from_process_env());
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if !report.ok {
        eprintln!(
            "probe: error: {}",
            report.error.as_deref().unwrap_or("connection failed")
        );
        if let Some(hint) = &report.hint {
            eprintln!("probe: hint: {hint}");
        }
        std::process::exit(1);
    }
}

fn usage_error(message: &str) -> ! {
    eprintln!("probe: {message}\n\n{USAGE}");
    std::process::exit(2);
}
