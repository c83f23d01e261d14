//! The probe: connect the way libpq does (every host and address, the sslmode plan with
//! its reconnects, `connect_timeout`), complete the startup to ReadyForQuery, and report
//! what happened. Shared by `pgtls probe` and pgtls's real-server conformance tests.
//!
//! [`probe`] is silent; [`probe_with_progress`] also tells a [`Progress`] about each
//! connection as it opens and each attempt as it ends, for a person watching.

use std::cell::RefCell;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use pgtls::blocking::{connect_over, AttemptRecord, ConnectError, Deadline, StartupError, Stream};
use pgtls::libpq::{ChannelBinding, ConnParams, Environment, HostTarget, Settings};
use pgtls::plan::Method;
use pgtls::Config;
use serde_json::{json, Value};
use x509_parser::prelude::*;

use crate::startup::{
    run_startup, simple_query, terminate, ChannelBindingMode, StartupParams, TlsFacts,
};

/// One certificate of the server's chain, for the report.
#[derive(Debug, Clone)]
pub struct CertSummary {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Subject alternative names (`DNS:x`, `IP:y`).
    pub sans: Vec<String>,
    /// notBefore.
    pub not_before: String,
    /// notAfter.
    pub not_after: String,
    /// X.509 version (1 or 3).
    pub version: u32,
}

/// One attempt, for the report.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    /// The server tried (`host:port` and address).
    pub server: String,
    /// `plaintext`, `SSLRequest`, `direct TLS`.
    pub method: String,
    /// Whether it reused the previous socket (plaintext after `N`).
    pub same_connection: bool,
    /// `None` for success, else the error.
    pub error: Option<String>,
}

/// What the probe found.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    /// ReadyForQuery reached.
    pub ok: bool,
    /// Encrypted (None when no connection).
    pub tls: Option<bool>,
    /// TLS version.
    pub protocol: Option<String>,
    /// Cipher suite.
    pub cipher: Option<String>,
    /// Key-exchange group (`secp256r1`, `X25519`, `X25519MLKEM768`, ...).
    pub key_exchange: Option<String>,
    /// ALPN selected by the server.
    pub alpn: Option<String>,
    /// SNI sent.
    pub sni: Option<String>,
    /// Whether the TLS handshake resumed an earlier session (`None` without TLS).
    pub resumed: Option<bool>,
    /// This is the second of two connections made with the same settings and session
    /// store ([`ProbeOptions::resume`]).
    pub second_connection: bool,
    /// The server's chain: as accepted when the connection succeeded, as presented when
    /// pgtls rejected it (then `ok` is false), else empty.
    pub certificates: Vec<CertSummary>,
    /// What verification the settings of the host tried last apply. Reports show
    /// [`ProbeReport::verification_outcome`], which never states a success for a failed
    /// connection.
    pub verification: String,
    /// The authentication method and whether channel binding was used.
    pub auth: Option<String>,
    /// Channel binding used (SCRAM-SHA-256-PLUS).
    pub channel_binding: bool,
    /// The server's view, from pg_stat_ssl (ssl, version, cipher).
    pub server_view: Option<Vec<Option<String>>>,
    /// Every attempt.
    pub attempts: Vec<AttemptReport>,
    /// The error in libpq's words.
    pub error: Option<String>,
    /// The error that ended the last attempt, without libpq's `connection to server ...
    /// failed:` prefix: the reason in the `failed: <reason>` verification outcome.
    pub failure_reason: Option<String>,
    /// A likely cause of a common failure, and what to try.
    pub hint: Option<String>,
    /// The server version (ParameterStatus server_version).
    pub server_version: Option<String>,
}

/// The hint for direct TLS refused by a server without it.
pub const DIRECT_TLS_HINT: &str = "the server may be older than PostgreSQL 17, which does not \
     support direct TLS; try sslnegotiation=postgres";

/// Why one host could not be used.
#[derive(Debug, Clone)]
pub struct HostFailure {
    /// libpq's message, with the server (`connection to server at ... failed: ...`).
    pub message: String,
    /// Whether libpq would go on to the next address or host.
    pub try_next: bool,
    /// The error alone, for the `failed: <reason>` verification outcome.
    pub reason: String,
    /// The certificates the server presented when they were rejected.
    pub rejected_chain: Vec<CertSummary>,
    /// A likely cause and what to try, for common failures.
    pub hint: Option<String>,
}

impl HostFailure {
    /// The failure of libpq's whole plan for one address (any adapter: they share
    /// [`pgtls::setup::Failed`]); `label` names the server as libpq does
    /// (`connection to server at "host" (addr), port 5432`).
    pub fn from_failed(label: &str, failed: &pgtls::setup::Failed) -> HostFailure {
        let rejected_chain = match &failed.error {
            ConnectError::Tls(err) => err
                .rejected_chain()
                .iter()
                .map(|der| summarize(der.as_ref()))
                .collect(),
            _ => Vec::new(),
        };
        HostFailure {
            message: format!("{label} failed: {}", failed.error),
            try_next: failed.try_next_host,
            reason: failed.error.to_string(),
            rejected_chain,
            hint: direct_tls_hint(
                failed.attempts.last().map(|a| a.method),
                server_hung_up(&failed.error),
            ),
        }
    }

    /// A failure before any server was reached (the message is the reason).
    pub fn before_connecting(message: String) -> HostFailure {
        HostFailure {
            reason: message.clone(),
            message,
            try_next: true,
            rejected_chain: Vec::new(),
            hint: None,
        }
    }
}

/// [`DIRECT_TLS_HINT`] when the last attempt was direct TLS and the server hung up on it,
/// which is what a server before PostgreSQL 17 does with a ClientHello it takes for a
/// startup packet.
pub fn direct_tls_hint(last_method: Option<Method>, server_hung_up: bool) -> Option<String> {
    (last_method == Some(Method::DirectTls) && server_hung_up).then(|| DIRECT_TLS_HINT.to_owned())
}

/// A failed `connect()` in libpq's words: the OS's text and libpq's hint line (the kind
/// is kept, so timeouts and resets are still told apart).
fn connect_failure(err: std::io::Error, unix_socket: bool) -> std::io::Error {
    std::io::Error::new(
        err.kind(),
        pgtls::libpq::connect_failure_text(&err, unix_socket),
    )
}

/// Whether the server closed or reset the connection (rather than answering).
pub fn server_hung_up(error: &ConnectError) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match error {
        ConnectError::Tls(
            pgtls::Error::ClosedDuringHandshake
            | pgtls::Error::ClosedBeforeSslResponse
            | pgtls::Error::HandshakeTransport(_),
        ) => true,
        ConnectError::Io(io) => matches!(
            io.kind(),
            ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
        ),
        _ => false,
    }
}

/// The name of a method in reports.
pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::Plaintext => "plaintext",
        Method::SslRequest => "SSLRequest",
        Method::DirectTls => "direct TLS",
    }
}

/// What the probe says while it works: each connection as it opens, each attempt as it
/// ends. `pgtls probe` prints these on stderr; the tests stay silent ([`NoProgress`]).
pub trait Progress {
    /// A new connection to `server` (libpq's `connection to server at ...` words) is being
    /// opened; `time_left` is what remains of `connect_timeout`, if one is set.
    fn handle_connecting(&mut self, server: &str, time_left: Option<Duration>);
    /// The connection to `server` is established (`tls` says whether encrypted) and the
    /// startup (authentication up to ReadyForQuery) begins.
    fn handle_established(&mut self, server: &str, tls: bool);
    /// One attempt of libpq's plan ended (successfully when `attempt.error` is `None`).
    fn handle_attempt_finished(&mut self, attempt: &AttemptReport);
}

/// A [`Progress`] that says nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn handle_connecting(&mut self, _server: &str, _time_left: Option<Duration>) {}
    fn handle_established(&mut self, _server: &str, _tls: bool) {}
    fn handle_attempt_finished(&mut self, _attempt: &AttemptReport) {}
}

/// How to probe.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeOptions {
    /// Connect twice with one set of configs and session resumption on, and report the
    /// second connection: whether the server let it resume the first one's session.
    pub resume: bool,
}

/// Parses, resolves and connects; never panics on bad input.
pub fn probe(conninfo: &str, env: &Environment) -> ProbeReport {
    probe_with_progress(conninfo, env, &mut NoProgress)
}

/// [`probe`], telling `progress` about each connection and attempt as it happens.
pub fn probe_with_progress(
    conninfo: &str,
    env: &Environment,
    progress: &mut dyn Progress,
) -> ProbeReport {
    probe_with_options(conninfo, env, ProbeOptions::default(), progress)
}

/// [`probe_with_progress`] with [`ProbeOptions`].
pub fn probe_with_options(
    conninfo: &str,
    env: &Environment,
    options: ProbeOptions,
    progress: &mut dyn Progress,
) -> ProbeReport {
    let mut report = ProbeReport::default();
    let settings = match ConnParams::parse(conninfo).and_then(|p| p.resolve(env)) {
        Ok(settings) if options.resume => {
            settings.with_session_resumption(pgtls::SessionResumption::in_memory())
        }
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
    if options.resume {
        // The first connection fills the configs' session stores; a failure ends here.
        let first = probe_targets(&settings, &targets, progress);
        if !first.ok {
            return first;
        }
        let mut second = probe_targets(&settings, &targets, progress);
        second.second_connection = true;
        return second;
    }
    probe_targets(&settings, &targets, progress)
}

/// One connection through libpq's host list.
fn probe_targets(
    settings: &Settings,
    targets: &[(HostTarget, Config)],
    progress: &mut dyn Progress,
) -> ProbeReport {
    let mut report = ProbeReport::default();
    let mut last_failure = None;
    for (target, config) in targets {
        report.verification = describe_verification(config);
        match probe_host(settings, target, config, &mut report, progress) {
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
    if let Some(failure) = last_failure {
        report.record_failure(failure);
    }
    report
}

/// What verification `config` applies, for a connection that succeeded.
pub fn describe_verification(config: &Config) -> String {
    use pgtls::SslMode::*;
    let chain = if config.verifies_chain() {
        "chain verified against the root certificates"
    } else {
        "no chain verification (no root certificates)"
    };
    match config.sslmode() {
        Disable => "none (sslmode=disable)".into(),
        VerifyFull => format!(
            "{chain}; host name \"{}\" verified (verify-full)",
            config.host()
        ),
        mode => format!("{chain}; host name not verified (sslmode={mode})"),
    }
}

/// Tries each address of one host.
fn probe_host(
    settings: &Settings,
    target: &HostTarget,
    config: &Config,
    report: &mut ProbeReport,
    progress: &mut dyn Progress,
) -> Result<(), HostFailure> {
    let server_label = |addr: &str| {
        if target.is_unix_socket() {
            format!(
                "connection to server on socket \"{}\"",
                target.unix_socket_path().unwrap_or_default()
            )
        } else if target.hostaddr().is_some() || target.host().is_empty() || target.host() == addr {
            format!("connection to server at \"{addr}\", port {}", target.port())
        } else {
            format!(
                "connection to server at \"{}\" ({addr}), port {}",
                target.host(),
                target.port()
            )
        }
    };
    #[cfg(unix)]
    if let Some(path) = target.unix_socket_path() {
        let label = server_label(&path);
        let open = |_timeout: Option<Duration>| {
            std::os::unix::net::UnixStream::connect(&path).map_err(|err| connect_failure(err, true))
        };
        return run_plan(settings, target, config, report, progress, &label, open);
    }
    let addrs: Vec<SocketAddr> = match (target.connect_host(), target.port()).to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(err) => {
            return Err(HostFailure::before_connecting(
                pgtls::libpq::host_lookup_failure_text(target.connect_host(), &err),
            ))
        }
    };
    let mut last = HostFailure::before_connecting(String::from("no addresses"));
    for addr in addrs {
        let label = server_label(&addr.ip().to_string());
        let open = |timeout: Option<Duration>| {
            match timeout {
                Some(t) => TcpStream::connect_timeout(&addr, t.max(Duration::from_millis(1))),
                None => TcpStream::connect(addr),
            }
            .map_err(|err| connect_failure(err, false))
        };
        match run_plan(settings, target, config, report, progress, &label, open) {
            Ok(()) => return Ok(()),
            Err(failure) => {
                let try_next = failure.try_next;
                last = failure;
                if !try_next {
                    break;
                }
            }
        }
    }
    Err(last)
}

fn run_plan<S, O>(
    settings: &Settings,
    target: &HostTarget,
    config: &Config,
    report: &mut ProbeReport,
    progress: &mut dyn Progress,
    label: &str,
    mut open: O,
) -> Result<(), HostFailure>
where
    S: std::io::Read + std::io::Write + Deadline,
    O: FnMut(Option<Duration>) -> std::io::Result<S>,
{
    let params = StartupParams {
        user: settings.user().to_owned(),
        database: settings.dbname().to_owned(),
        password: settings.password_for(target),
        application_name: settings.application_name().map(str::to_owned),
        channel_binding: match settings.channel_binding() {
            ChannelBinding::Disable => ChannelBindingMode::Disable,
            ChannelBinding::Prefer => ChannelBindingMode::Prefer,
            ChannelBinding::Require => ChannelBindingMode::Require,
        },
    };
    // Both callbacks speak to `progress`, one at a time.
    let progress = RefCell::new(progress);
    let result = connect_over(
        config,
        target.transport(),
        settings.connect_timeout(),
        |time_left| {
            progress.borrow_mut().handle_connecting(label, time_left);
            open(time_left)
        },
        |stream: &mut Stream<S>| {
            progress
                .borrow_mut()
                .handle_established(label, stream.is_tls());
            let facts = TlsFacts {
                tls: stream.is_tls(),
                channel_binding: stream.session().and_then(|s| s.channel_binding().ok()),
            };
            run_startup(stream, &params, &facts).map_err(StartupError::from)
        },
    );
    let progress = progress.into_inner();
    let mut record = |attempts: &[AttemptRecord], report: &mut ProbeReport| {
        for a in attempts {
            let attempt = AttemptReport {
                server: label.to_owned(),
                method: method_name(a.method).to_owned(),
                same_connection: a.same_connection,
                error: a.error.clone(),
            };
            progress.handle_attempt_finished(&attempt);
            report.attempts.push(attempt);
        }
    };
    match result {
        Ok(mut connected) => {
            record(&connected.attempts, report);
            fill_tls(report, &connected.stream);
            report.auth = Some(connected.startup.auth.clone());
            report.channel_binding = connected.startup.channel_bound;
            report.server_version = connected
                .startup
                .parameters
                .iter()
                .find(|(k, _)| k == "server_version")
                .map(|(_, v)| v.clone());
            report.server_view = simple_query(
                &mut connected.stream,
                "SELECT ssl::text, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            )
            .ok()
            .and_then(|rows| rows.into_iter().next());
            let _ = terminate(&mut connected.stream);
            if let Stream::Tls(tls) = &mut connected.stream {
                let _ = tls.close();
            }
            Ok(())
        }
        Err(failed) => {
            record(&failed.attempts, report);
            Err(HostFailure::from_failed(label, &failed))
        }
    }
}

fn fill_tls<S>(report: &mut ProbeReport, stream: &Stream<S>) {
    report.tls = Some(stream.is_tls());
    let Some(session) = stream.session() else {
        return;
    };
    report.protocol = session.protocol_version().map(|v| match v {
        pgtls::rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        pgtls::rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    });
    report.cipher = session.cipher_suite().map(|s| format!("{:?}", s.suite()));
    report.key_exchange = session.key_exchange_group().map(|g| format!("{g:?}"));
    report.alpn = session
        .alpn_protocol()
        .map(|a| String::from_utf8_lossy(a).into_owned());
    report.sni = session.sni().map(str::to_owned);
    report.resumed = Some(session.resumed());
    report.certificates = session
        .peer_certificates()
        .iter()
        .map(|der| summarize(der.as_ref()))
        .collect();
}

/// One certificate for the report; an unparsable one is reported as such.
pub fn summarize(der: &[u8]) -> CertSummary {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => {
            let sans = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|ext| {
                    ext.value
                        .general_names
                        .iter()
                        .map(|name| match name {
                            GeneralName::DNSName(d) => format!("DNS:{d}"),
                            GeneralName::IPAddress(ip) => match ip.len() {
                                4 => format!(
                                    "IP:{}",
                                    std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])
                                ),
                                16 => {
                                    let mut b = [0u8; 16];
                                    b.copy_from_slice(ip);
                                    format!("IP:{}", std::net::Ipv6Addr::from(b))
                                }
                                _ => "IP:<invalid>".into(),
                            },
                            other => format!("{other}"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            CertSummary {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                sans,
                not_before: cert.validity().not_before.to_string(),
                not_after: cert.validity().not_after.to_string(),
                version: cert.version().0 + 1,
            }
        }
        Err(err) => CertSummary {
            subject: format!("<unparsable certificate: {err}>"),
            issuer: String::new(),
            sans: Vec::new(),
            not_before: String::new(),
            not_after: String::new(),
            version: 0,
        },
    }
}

impl ProbeReport {
    /// Records the failure that ended the probe: its error, the chain the server presented
    /// if it was rejected, and a hint.
    pub fn record_failure(&mut self, failure: HostFailure) {
        self.ok = false;
        self.error = Some(failure.message);
        self.failure_reason = Some(failure.reason);
        self.certificates = failure.rejected_chain;
        self.hint = failure.hint;
    }

    /// What verification achieved: `failed: <reason>` unless the connection succeeded;
    /// `none (...)` for a plaintext connection; else what the settings verified.
    pub fn verification_outcome(&self) -> String {
        if !self.ok {
            let reason = self
                .failure_reason
                .as_deref()
                .or(self.error.as_deref())
                .unwrap_or("connection failed");
            return format!("failed: {reason}");
        }
        if self.tls == Some(false) && !self.verification.starts_with("none") {
            return "none (plaintext connection)".into();
        }
        self.verification.clone()
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok,
            "tls": self.tls,
            "protocol": self.protocol,
            "cipher": self.cipher,
            "key_exchange_group": self.key_exchange,
            "alpn": self.alpn,
            "sni": self.sni,
            "resumed": self.resumed,
            "second_connection": self.second_connection,
            "verification": self.verification_outcome(),
            "auth": self.auth,
            "channel_binding": self.channel_binding,
            "server_version": self.server_version,
            "server_view": self.server_view.as_ref().map(|row| json!({
                "ssl": row.first().cloned().flatten(),
                "version": row.get(1).cloned().flatten(),
                "cipher": row.get(2).cloned().flatten(),
            })),
            "certificates": self.certificates.iter().map(|c| json!({
                "subject": c.subject, "issuer": c.issuer, "sans": c.sans,
                "not_before": c.not_before, "not_after": c.not_after, "version": c.version,
            })).collect::<Vec<_>>(),
            "attempts": self.attempts.iter().map(|a| json!({
                "server": a.server, "method": a.method,
                "same_connection": a.same_connection, "error": a.error,
            })).collect::<Vec<_>>(),
            "error": self.error,
            "hint": self.hint,
        })
    }

    /// The report for a person.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        if self.second_connection {
            line("connection:   the second of two with one session store (--resume)".into());
        }
        for (i, a) in self.attempts.iter().enumerate() {
            line(format!(
                "attempt {}: {} via {}{} -> {}",
                i + 1,
                a.server.trim_end_matches(" failed"),
                a.method,
                if a.same_connection {
                    " (same connection)"
                } else {
                    ""
                },
                a.error.as_deref().unwrap_or("ready for query"),
            ));
        }
        match self.tls {
            Some(true) => {
                line(format!(
                    "TLS:          {} {}",
                    self.protocol.as_deref().unwrap_or("?"),
                    self.cipher.as_deref().unwrap_or("?")
                ));
                line(format!(
                    "key exchange: {}",
                    self.key_exchange.as_deref().unwrap_or("?")
                ));
                line(format!(
                    "ALPN:         {}",
                    self.alpn.as_deref().unwrap_or("(none)")
                ));
                line(format!(
                    "SNI sent:     {}",
                    self.sni.as_deref().unwrap_or("(none)")
                ));
                line(format!(
                    "resumed:      {}",
                    match (self.resumed, self.second_connection) {
                        (Some(true), _) =>
                            "yes (the server accepted the first connection's \
                             session: no certificate was sent or verified again)",
                        (_, true) =>
                            "no (full handshake: the server issued no ticket or \
                             refused it)",
                        _ => "no (full handshake)",
                    }
                ));
            }
            Some(false) => line("TLS:          no (plaintext connection)".into()),
            None => {}
        }
        line(format!("verification: {}", self.verification_outcome()));
        if !self.ok && !self.certificates.is_empty() {
            line("rejected chain, as the server presented it:".into());
        }
        for (i, c) in self.certificates.iter().enumerate() {
            line(format!(
                "certificate {i}: {} (X.509 v{})",
                c.subject, c.version
            ));
            line(format!("    issuer:   {}", c.issuer));
            if !c.sans.is_empty() {
                line(format!("    SANs:     {}", c.sans.join(", ")));
            }
            line(format!("    validity: {} .. {}", c.not_before, c.not_after));
        }
        if let Some(auth) = &self.auth {
            line(format!(
                "auth:         {auth}{}",
                if self.channel_binding {
                    " (channel binding: tls-server-end-point)"
                } else {
                    ""
                }
            ));
        }
        if let Some(v) = &self.server_version {
            line(format!("server:       PostgreSQL {v}"));
        }
        if let Some(row) = &self.server_view {
            line(format!(
                "pg_stat_ssl:  ssl={} version={} cipher={}",
                row.first().cloned().flatten().unwrap_or_default(),
                row.get(1).cloned().flatten().unwrap_or_default(),
                row.get(2).cloned().flatten().unwrap_or_default()
            ));
        }
        match &self.error {
            Some(err) => line(format!("result:       FAILED: {err}")),
            None if self.ok => line("result:       ready for query".into()),
            None => {}
        }
        if let Some(hint) = &self.hint {
            line(format!("hint:         {hint}"));
        }
        out
    }
}
