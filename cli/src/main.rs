//! `pgtls`: probe a PostgreSQL server the way libpq connects, run a TLS-terminating proxy,
//! or watch every sslmode against scripted servers. `pgtls --help` says how.

mod demo;
mod probe_command;
mod progress;
mod proxy_command;

use std::process::ExitCode;

/// `pgtls --help`.
const HELP: &str = "\
pgtls: PostgreSQL transport security with libpq's sslmode behaviour, on rustls

usage: pgtls <command> [arguments]

commands:
  probe [--json] [--quiet] [--resume] 'CONNINFO'
                 connect the way libpq does (sslmode plan, every host and address,
                 connect_timeout) and report the TLS session, the certificates and
                 each attempt; errors in libpq's words (--resume: connect twice
                 and say whether the second resumed the first one's TLS session)
  proxy --listen ADDR --upstream ADDR --cert FILE --key FILE [...]
                 a TLS-terminating proxy in front of a plaintext PostgreSQL server
                 (--tickets: let clients resume TLS sessions)
  demo           every sslmode against scripted servers, checked against libpq's
                 behaviour; needs no server
  help [COMMAND] this text, or a command's

Run `pgtls <command> --help` for a command's options. Exit status: 0 success,
1 failure (a connection, the proxy, a demo row disagreeing), 2 usage error.";

/// The name the messages of a command start with.
const PROGRAM: &str = "pgtls";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        return usage_error("a command is required");
    };
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "probe" => probe_command::run(&rest),
        "proxy" => proxy_command::run(&rest),
        "demo" => demo_command(&rest),
        "help" | "-h" | "--help" => help(rest.first().map(String::as_str)),
        "-V" | "--version" => {
            println!("{PROGRAM} {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        other => usage_error(&format!("unknown command {other:?}")),
    }
}

/// `pgtls help [COMMAND]`.
fn help(command: Option<&str>) -> ExitCode {
    match command {
        None => println!("{HELP}"),
        Some("probe") => println!("{}", probe_command::HELP),
        Some("proxy") => println!("{}", proxy_command::HELP),
        Some("demo") => println!("{}", demo::HELP),
        Some(other) => return usage_error(&format!("unknown command {other:?}")),
    }
    ExitCode::SUCCESS
}

/// `pgtls demo [--help]`.
fn demo_command(args: &[String]) -> ExitCode {
    match args {
        [] => demo::run(),
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{}", demo::HELP);
            ExitCode::SUCCESS
        }
        [other, ..] => {
            eprintln!(
                "{PROGRAM} demo: unexpected argument {other:?}\n\n{}",
                demo::HELP
            );
            ExitCode::from(2)
        }
    }
}

/// A usage error of the command line as a whole: the message and the help, exit 2.
fn usage_error(message: &str) -> ExitCode {
    eprintln!("{PROGRAM}: {message}\n\n{HELP}");
    ExitCode::from(2)
}
