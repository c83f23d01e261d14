//! The probe (`pgtls probe`, cli/src/probe.rs) over the tokio adapter: connect the way libpq does and
//! report, with `pgtls::tokio::connect_with_plan` and tokio-postgres for the startup.
//!
//! ```text
//! cargo run --example tokio_probe --features tokio-postgres -- [--json] 'CONNINFO or URI'
//! ```
//! Settings come from the string, then `PG*` environment variables and `~/.postgresql/`
//! files, as libpq takes them. Exit status: 0 when ReadyForQuery was reached, 1 when the
//! connection failed (the error on stderr in libpq's words), 2 for usage errors.
//!
//! tokio-postgres does not say which authentication method the server asked for, so the
//! report has no `auth` line (the blocking probe has one).

use std::io;

use pgtls::libpq::{
    connect_failure_text, host_lookup_failure_text, ChannelBinding, ConnParams, Environment,
    HostTarget, Settings,
};
use pgtls::tokio::{connect_with_plan, AttemptRecord, Stream};
use pgtls::Config;
use pgtls_cli::probe::{
    describe_verification, method_name, summarize, AttemptReport, HostFailure, ProbeReport,
};
use tokio::io::{AsyncRead, AsyncWrite};

const USAGE: &str = "usage: tokio_probe [--json] 'CONNINFO or URI'\n\n\
  Connects like libpq (sslmode plan, reconnects, connect_timeout) over tokio, completes\n\
  the startup to ReadyForQuery and reports the TLS session and certificates.\n\
  Exit status: 0 connected, 1 connection failed, 2 usage error.";

#[tokio::main(flavor = "current_thread")]
async fn main() {
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
    let report = run(&conninfo, &Environment::from_process_env()).await;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if !report.ok {
        eprintln!(
            "tokio_probe: error: {}",
            report.error.as_deref().unwrap_or("connection failed")
        );
        std::process::exit(1);
    }
}

fn usage_error(message: &str) -> ! {
    eprintln!("tokio_probe: {message}\n\n{USAGE}");
    std::process::exit(2);
}

/// Parses, resolves and connects host after host; never panics on bad input.
async fn run(conninfo: &str, env: &Environment) -> ProbeReport {
    let mut report = ProbeReport::default();
    let settings = match ConnParams::parse(conninfo).and_then(|p| p.resolve(env)) {
        Ok(settings) => settings,
        Err(err) => {
            report.error = Some(err.to_string());
            return report;
        }
    };
    let targets = match settings.to_configs() {
        Ok(targets) => targets,
        Err(err) => {
            report.error = Some(err.to_string());
            return report;
        }
    };
    let mut last_failure = None;
    for (target, config) in &targets {
        report.verification = describe_verification(config);
        match probe_host(&settings, target, config, &mut report).await {
            Ok(()) => {
                report.ok = true;
                report.error = None;
                return report;
            }
            Err(failure) => {
                let try_next = failure.try_next;
                last_failure = Some(failure);
                if !try_next {
                    break;
                }
            }
        }
    }
    match last_failure {
        Some(failure) => report.record_failure(failure),
        None => report.error = Some("no host to connect to".into()),
    }
    report
}

/// libpq's label for a server in its messages.
fn label(target: &HostTarget) -> String {
    if let Some(path) = target.unix_socket_path() {
        return format!("connection to server on socket \"{path}\"");
    }
    let addr = target.connect_host();
    if target.host().is_empty() || target.host() == addr {
        format!("connection to server at \"{addr}\", port {}", target.port())
    } else {
        format!(
            "connection to server at \"{}\" ({addr}), port {}",
            target.host(),
            target.port()
        )
    }
}

/// Runs the plan on one host; Err((message, try the next host)).
async fn probe_host(
    settings: &Settings,
    target: &HostTarget,
    config: &Config,
    report: &mut ProbeReport,
) -> Result<(), HostFailure> {
    let label = label(target);
    // Failures in libpq's words: connect()'s with libpq's hint, the resolver's alone.
    let connect_failure = |err: io::Error, unix_socket| {
        io::Error::new(err.kind(), connect_failure_text(&err, unix_socket))
    };
    #[cfg(unix)]
    if let Some(path) = target.unix_socket_path() {
        let open = || {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|err| connect_failure(err, true))
            }
        };
        return run_plan(settings, target, config, report, &label, open).await;
    }
    let host = target.connect_host();
    let addrs: Vec<std::net::SocketAddr> =
        match tokio::net::lookup_host((host, target.port())).await {
            Ok(addrs) => addrs.collect(),
            Err(err) => {
                return Err(HostFailure::before_connecting(host_lookup_failure_text(
                    host, &err,
                )))
            }
        };
    let open = || {
        let addrs = addrs.clone();
        async move {
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no addresses");
            for addr in addrs {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(stream) => return Ok(stream),
                    Err(err) => last = connect_failure(err, false),
                }
            }
            Err(last)
        }
    };
    run_plan(settings, target, config, report, &label, open).await
}

/// What the probe learns from the TLS session before tokio-postgres takes the stream.
#[derive(Default)]
struct Facts {
    tls: bool,
    protocol: Option<String>,
    cipher: Option<String>,
    key_exchange: Option<String>,
    alpn: Option<String>,
    sni: Option<String>,
    resumed: Option<bool>,
    certificates: Vec<Vec<u8>>,
    channel_binding: bool,
}

fn facts<S>(stream: &Stream<S>, wanted: ChannelBinding) -> Facts {
    let Some(session) = stream.session() else {
        return Facts::default();
    };
    Facts {
        tls: true,
        protocol: session.protocol_version().map(|v| match v {
            pgtls::rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
            pgtls::rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        }),
        cipher: session.cipher_suite().map(|s| format!("{:?}", s.suite())),
        key_exchange: session.key_exchange_group().map(|g| format!("{g:?}")),
        alpn: session
            .alpn_protocol()
            .map(|a| String::from_utf8_lossy(a).into_owned()),
        sni: session.sni().map(str::to_owned),
        resumed: Some(session.resumed()),
        certificates: session
            .peer_certificates()
            .iter()
            .map(|c| c.as_ref().to_vec())
            .collect(),
        // Known to be used only when required (the startup then fails without it);
        // tokio-postgres does not say whether it used it under `prefer`.
        channel_binding: wanted == ChannelBinding::Require && session.channel_binding().is_ok(),
    }
}

async fn run_plan<S, O, F>(
    settings: &Settings,
    target: &HostTarget,
    config: &Config,
    report: &mut ProbeReport,
    label: &str,
    open: O,
) -> Result<(), HostFailure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    O: FnMut() -> F,
    F: std::future::Future<Output = io::Result<S>>,
{
    let mut pg = tokio_postgres::Config::new();
    pg.user(settings.user()).dbname(settings.dbname());
    if let Some(password) = settings.password_for(target) {
        pg.password(password);
    }
    if let Some(name) = settings.application_name() {
        pg.application_name(name);
    }
    pg.channel_binding(match settings.channel_binding() {
        ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
        ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
        ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
    });
    let wanted = settings.channel_binding();
    let plan = pgtls::plan::Plan::new(config.sslmode(), config.negotiation(), target.transport());
    let result = connect_with_plan(
        config,
        plan,
        settings.connect_timeout(),
        open,
        |stream: Stream<S>| {
            let pg = pg.clone();
            async move {
                let facts = facts(&stream, wanted);
                let (client, connection) = pgtls::tokio_postgres::startup(pg, stream).await?;
                Ok((facts, client, connection))
            }
        },
    )
    .await;
    let record = |attempts: &[AttemptRecord], report: &mut ProbeReport| {
        for a in attempts {
            report.attempts.push(AttemptReport {
                server: label.to_owned(),
                method: method_name(a.method).to_owned(),
                same_connection: a.same_connection,
                error: a.error.clone(),
            });
        }
    };
    match result {
        Ok(connected) => {
            record(&connected.attempts, report);
            let (facts, client, connection) = connected.startup;
            let connection = tokio::spawn(connection);
            report.tls = Some(facts.tls);
            report.protocol = facts.protocol;
            report.cipher = facts.cipher;
            report.alpn = facts.alpn;
            report.sni = facts.sni;
            report.key_exchange = facts.key_exchange;
            report.resumed = facts.resumed;
            report.certificates = facts.certificates.iter().map(|c| summarize(c)).collect();
            report.channel_binding = facts.channel_binding;
            report.server_version = client
                .query_one("SHOW server_version", &[])
                .await
                .ok()
                .map(|row| row.get(0));
            report.server_view = client
                .query_one(
                    "SELECT ssl::text, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await
                .ok()
                .map(|row| vec![row.get(0), row.get(1), row.get(2)]);
            drop(client);
            let _ = connection.await;
            Ok(())
        }
        Err(failed) => {
            record(&failed.attempts, report);
            Err(HostFailure::from_failed(label, &failed))
        }
    }
}
