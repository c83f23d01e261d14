//! tokio-postgres with libpq's TLS (feature `tokio-postgres`).
//!
//! tokio-postgres knows three sslmodes (`disable`, `prefer`, `require`), runs the
//! `SSLRequest` exchange itself and leaves verification to the connector plugged into it.
//! This module offers two ways in:
//!
//! 1. **The connector** — [`MakeTlsConnector`] / [`TlsConnector`] implement
//!    tokio-postgres's `MakeTlsConnect` / `TlsConnect` with pgtls's [`Config`]: libpq's
//!    verification for `verify-ca` and `verify-full` (CN fallback, X.509 v1, IP rules,
//!    root files and `system`, CRLs), client certificates, `sslcertmode`, SNI, version
//!    limits, ALPN `postgresql` (mandatory with direct negotiation). Its stream
//!    ([`crate::tokio::TlsStream`]) reports `tls-server-end-point` channel binding, so
//!    SCRAM-SHA-256-PLUS and `channel_binding=require` work.
//! 2. **[`connect`]** — libpq's whole plan on top of tokio-postgres: pgtls opens the
//!    connections and negotiates (`SSLRequest` or direct), then hands the ready stream to
//!    tokio-postgres (`Config::connect_raw`). Every sslmode behaves as in libpq, including
//!    the fallbacks that need a new connection.
//!
//! ## How the two sslmodes combine (the connector)
//!
//! With the connector, tokio-postgres's own `ssl_mode` decides *whether* TLS is tried and
//! what happens when the server answers `N`; pgtls's decides *how* the server is
//! verified. [`MakeTlsConnector::from_settings`] / [`MakeTlsConnector::apply`] set
//! tokio-postgres's to match ours:
//!
//! | pgtls sslmode | tokio-postgres `ssl_mode` | what differs from libpq through the connector |
//! |---|---|---|
//! | `disable` | `Disable` | nothing |
//! | `allow` | `Prefer` | TLS is tried first (libpq tries plaintext first and TLS only after a rejection); it connects wherever libpq would, but may encrypt where libpq would not |
//! | `prefer` | `Prefer` | a failed handshake is an error (libpq reconnects in plaintext); an `E` answer continues as if it were `N` (libpq fails, CVE-2024-10977) |
//! | `require` | `Require` | none in the outcome; `N` reads `server does not support TLS` |
//! | `verify-ca` | `Require` | as `require` |
//! | `verify-full` | `Require` | as `require` |
//!
//! `sslnegotiation=direct` maps to tokio-postgres's `SslNegotiation::Direct` (0.7.13 or
//! later). tokio-postgres does not use TLS without a host name (only `hostaddr`): it fails
//! with `no hostname provided for TLS handshake`, where libpq would connect without SNI.
//! Use [`connect`] for exactly libpq's behaviour in every case.
//!
//! Bytes glued to the server's `S` (CVE-2021-23222): tokio-postgres reads exactly one
//! byte, so the connector checks that nothing else has already arrived before it sends
//! the ClientHello and fails with libpq's `received unencrypted data after SSL response`
//! otherwise.
//!
//! ```no_run
//! use pgtls::tokio_postgres::MakeTlsConnector;
//! use pgtls::{Config, RootCertificates, SslMode};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let roots = RootCertificates::from_pem(&std::fs::read("root.crt")?)?;
//! let tls = Config::builder()
//!     .sslmode(SslMode::VerifyFull)
//!     .host("db.example.com")
//!     .root_certificates(roots)
//!     .build()?;
//! let mut pg = tokio_postgres::Config::new();
//! pg.host("db.example.com").user("app").dbname("app");
//! let connector = MakeTlsConnector::from_settings(tls, &mut pg); // ssl_mode = Require
//! let (client, connection) = pg.connect(connector).await?;
//! tokio::spawn(connection);
//! client.simple_query("SELECT 1").await?;
//! # Ok(()) }
//! ```
//!
//! ## [`connect`]: libpq's plan
//!
//! ```no_run
//! use pgtls::{Config, SslMode};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = Config::builder().sslmode(SslMode::Prefer).host("db.example.com").build()?;
//! let mut pg = tokio_postgres::Config::new();
//! pg.host("db.example.com").user("app").dbname("app");
//! let (client, connection) = pgtls::tokio_postgres::connect(&pg, &tls).await?;
//! tokio::spawn(connection);
//! println!("TLS: {}", client.simple_query("SHOW ssl").await.is_ok());
//! # Ok(()) }
//! ```
//!
//! [`connect`] honours tokio-postgres's hosts, `hostaddr`s, ports (per host, as libpq),
//! `connect_timeout` (per host, over the whole plan) and `channel_binding`; it ignores
//! tokio-postgres's `ssl_mode` and `ssl_negotiation` (pgtls's [`Config`] decides). Its
//! limits: `target_session_attrs`, `load_balance_hosts`, TCP keepalives and
//! `tcp_user_timeout` are not applied. The returned `Client` cannot build its own cancel
//! connection (`cancel_token().cancel_query` fails): cancel with [`cancel_query`] (or
//! [`cancel_query_settings`]), which negotiates as [`connect`] does.
//!
//! ## From a libpq connection string
//!
//! tokio-postgres's own parser refuses `verify-ca`, `verify-full` and the other TLS
//! keywords. [`connect_conninfo`] / [`connect_settings`] take a libpq connection string
//! (or [`crate::libpq::Settings`]) and run [`connect`] with both sides set from it;
//! [`MakeTlsConnector::from_conninfo`] / [`MakeTlsConnector::from_libpq`] give the
//! connector plus a tokio-postgres config set consistently, for `Config::connect` or a
//! pool.
//!
//! Module name: `pgtls::tokio_postgres`, like the feature; inside pgtls the crate is always
//! written `::tokio_postgres`.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::TcpStream;
#[cfg(unix)]
use ::tokio::net::UnixStream;
use ::tokio_postgres::config::{
    ChannelBinding as PgChannelBinding, Host, SslMode as PgSslMode,
    SslNegotiation as PgSslNegotiation,
};
use ::tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use ::tokio_postgres::{CancelToken, Client};

use crate::libpq::{
    connect_failure_text, host_lookup_failure_text, ChannelBinding as LibpqChannelBinding,
    ConnParams, Environment, Settings,
};
use crate::plan::{Method, Plan, Transport};
use crate::tokio::{start_tls, ConnectError, Failed, StartupError, Stream, TlsStream};
use crate::{Config, ConfigError, SslMode, SslNegotiation};

/// tokio-postgres's `ssl_mode` for a pgtls sslmode (see the module docs' table).
pub fn pg_ssl_mode(mode: SslMode) -> PgSslMode {
    match mode {
        SslMode::Disable => PgSslMode::Disable,
        // tokio-postgres cannot try plaintext first: prefer connects wherever allow does.
        SslMode::Allow | SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    }
}

/// tokio-postgres's `ssl_negotiation` for a pgtls one.
pub fn pg_ssl_negotiation(negotiation: SslNegotiation) -> PgSslNegotiation {
    match negotiation {
        SslNegotiation::Postgres => PgSslNegotiation::Postgres,
        SslNegotiation::Direct => PgSslNegotiation::Direct,
    }
}

/// tokio-postgres's `MakeTlsConnect` with libpq's TLS rules. Cheap to clone; every
/// connection reuses the parsed roots, CRLs and keys of its [`Config`].
#[derive(Debug, Clone)]
pub struct MakeTlsConnector {
    config: Config,
}

impl MakeTlsConnector {
    /// A connector for `config`. tokio-postgres's own `ssl_mode` still decides whether TLS
    /// is tried: see [`MakeTlsConnector::from_settings`].
    pub fn new(config: Config) -> Self {
        MakeTlsConnector { config }
    }

    /// A connector for `config`, with `pg` adjusted to match it ([`Self::apply`]).
    pub fn from_settings(config: Config, pg: &mut ::tokio_postgres::Config) -> Self {
        let connector = MakeTlsConnector::new(config);
        connector.apply(pg);
        connector
    }

    /// The connector and a matching tokio-postgres config from libpq settings
    /// ([`crate::libpq`]): hosts, ports, `hostaddr`s, user, database, password,
    /// `application_name`, `options`, `channel_binding`, `connect_timeout`, and the
    /// `ssl_mode`/`ssl_negotiation` of [`Self::apply`]. The TLS files are read here.
    ///
    /// # Errors
    /// The TLS files cannot be used (libpq's messages), or the hosts cannot be expressed
    /// to tokio-postgres (a `hostaddr` for some hosts but not all, a `hostaddr` that is
    /// not an IP address).
    pub fn from_libpq(settings: &Settings) -> Result<(Self, ::tokio_postgres::Config), Error> {
        let targets = settings
            .to_configs()
            .map_err(|err| Error::Config(Box::new(err)))?;
        let Some((_, config)) = targets.first() else {
            return Err(Error::Config("no host to connect to".into()));
        };
        let mut pg = startup_config(settings)?;
        let hosts = settings.hosts();
        let with_addr = hosts.iter().filter(|h| h.hostaddr().is_some()).count();
        if with_addr != 0 && with_addr != hosts.len() {
            return Err(Error::Config(
                "tokio-postgres needs a hostaddr for every host or for none".into(),
            ));
        }
        for host in hosts {
            if !host.host().is_empty() {
                pg.host(host.host());
            }
            if let Some(addr) = host.hostaddr() {
                let ip = addr.parse().map_err(|_| {
                    Error::Config(format!("could not parse network address \"{addr}\"").into())
                })?;
                pg.hostaddr(ip);
            }
            pg.port(host.port());
        }
        let connector = MakeTlsConnector::new(config.clone());
        connector.apply(&mut pg);
        Ok((connector, pg))
    }

    /// [`Self::from_libpq`] from a connection string (`key=value` or URI) and the
    /// process environment.
    ///
    /// # Errors
    /// As [`Self::from_libpq`], plus the string's own errors (libpq's messages).
    pub fn from_conninfo(conninfo: &str) -> Result<(Self, ::tokio_postgres::Config), Error> {
        Self::from_libpq(&settings_from(conninfo)?)
    }

    /// Sets tokio-postgres's `ssl_mode` ([`pg_ssl_mode`]) and `ssl_negotiation` from the
    /// pgtls settings, and its host from [`Config::host`] when it has none.
    pub fn apply(&self, pg: &mut ::tokio_postgres::Config) {
        pg.ssl_mode(pg_ssl_mode(self.config.sslmode()));
        pg.ssl_negotiation(pg_ssl_negotiation(self.config.negotiation()));
        if pg.get_hosts().is_empty() && !self.config.host().is_empty() {
            pg.host(self.config.host());
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The connector for one host name (tokio-postgres's `host`, used for SNI and
    /// verify-full).
    ///
    /// # Errors
    /// verify-full without a host name.
    pub fn connector_for(&self, host: &str) -> Result<TlsConnector, ConfigError> {
        let config = if host == self.config.host() {
            self.config.clone()
        } else {
            self.config.with_host(host)?
        };
        Ok(TlsConnector { config })
    }
}

impl<S> MakeTlsConnect<S> for MakeTlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = TlsConnector;
    type Error = ConfigError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<TlsConnector, ConfigError> {
        self.connector_for(domain)
    }
}

/// tokio-postgres's `TlsConnect` for one host: runs the TLS handshake after
/// tokio-postgres's `SSLRequest` (or at once with direct negotiation), with libpq's
/// verification and post-handshake checks.
#[derive(Debug, Clone)]
pub struct TlsConnector {
    config: Config,
}

impl TlsConnector {
    /// A connector for `config` (its host is the one verified and sent as SNI). For
    /// `tokio_postgres::Config::connect_raw`.
    pub fn new(config: Config) -> Self {
        TlsConnector { config }
    }
}

impl<S> TlsConnect<S> for TlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = ConnectError;
    type Future = TlsConnectFuture<S>;

    fn connect(self, stream: S) -> TlsConnectFuture<S> {
        let method = match self.config.negotiation() {
            SslNegotiation::Postgres => Method::SslRequest,
            SslNegotiation::Direct => Method::DirectTls,
        };
        TlsConnectFuture {
            inner: Box::pin(async move { start_tls(&self.config, method, stream).await }),
        }
    }
}

/// The handshake future of [`TlsConnector`].
pub struct TlsConnectFuture<S> {
    inner: Pin<Box<dyn Future<Output = Result<TlsStream<S>, ConnectError>> + Send>>,
}

impl<S> fmt::Debug for TlsConnectFuture<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConnectFuture")
    }
}

impl<S> Future for TlsConnectFuture<S> {
    type Output = Result<TlsStream<S>, ConnectError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// `tls-server-end-point` from the session; none when the certificate's signature has no
/// defined hash (Ed25519, Ed448), as in libpq.
fn channel_binding(session: &crate::Session) -> ChannelBinding {
    match session.channel_binding() {
        Ok(data) => ChannelBinding::tls_server_end_point(data),
        Err(_) => ChannelBinding::none(),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ::tokio_postgres::tls::TlsStream for TlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        channel_binding(self.session())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ::tokio_postgres::tls::TlsStream for Stream<S> {
    /// Channel binding of the TLS session; none for a plaintext stream.
    fn channel_binding(&self) -> ChannelBinding {
        match self.session() {
            Some(session) => channel_binding(session),
            None => ChannelBinding::none(),
        }
    }
}

/// A stream pgtls already negotiated, handed to tokio-postgres as its "TLS" stream so that
/// it takes channel binding from it and sends no `SSLRequest` of its own.
#[derive(Debug, Clone, Copy)]
struct AlreadyNegotiated;

impl<S> TlsConnect<Stream<S>> for AlreadyNegotiated
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = std::future::Ready<Result<Stream<S>, io::Error>>;

    fn connect(self, stream: Stream<S>) -> Self::Future {
        std::future::ready(Ok(stream))
    }
}

/// The transport [`connect`] opens: TCP, or a Unix-domain socket.
#[derive(Debug)]
#[non_exhaustive]
pub enum Socket {
    /// TCP.
    Tcp(TcpStream),
    /// A Unix-domain socket (never TLS, as in libpq).
    #[cfg(unix)]
    Unix(UnixStream),
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The connection half [`connect`] returns: spawn it.
pub type Connection = ::tokio_postgres::Connection<Stream<Socket>, Stream<Socket>>;

/// Why [`connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The settings cannot be used (no host, mismatched host/hostaddr/port counts,
    /// verify-full without a host name).
    Config(Box<dyn std::error::Error + Send + Sync>),
    /// Every host failed; this is the last host's failure, with its attempts.
    Failed(Box<Failed>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(err) => write!(f, "{err}"),
            Error::Failed(failed) => write!(f, "{failed}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(err) => Some(err.as_ref()),
            Error::Failed(failed) => Some(failed.as_ref()),
        }
    }
}

impl Error {
    /// The pgtls error behind the failure (libpq's wording), if it was one.
    pub fn pgtls_error(&self) -> Option<&crate::Error> {
        match self {
            Error::Failed(failed) => match &failed.error {
                ConnectError::Tls(err) => Some(err),
                _ => None,
            },
            Error::Config(_) => None,
        }
    }

    /// The tokio-postgres error of a startup that failed for good (authentication,
    /// channel binding), if it was one.
    pub fn postgres_error(&self) -> Option<&::tokio_postgres::Error> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = match self {
            Error::Failed(failed) => Some(&failed.error),
            Error::Config(_) => None,
        };
        while let Some(err) = source {
            if let Some(pg) = err.downcast_ref::<::tokio_postgres::Error>() {
                return Some(pg);
            }
            source = err.source();
        }
        None
    }
}

/// Connects like libpq: for each host of `pg` (in order), runs pgtls's plan for the
/// sslmode of `tls` — reconnecting for `prefer` after a failed handshake and for `allow`
/// after a rejected plaintext startup — and lets tokio-postgres do the startup and
/// authentication on the negotiated stream. See the module docs for what of `pg` is
/// honoured.
///
/// Over TLS, tokio-postgres gets the session's channel binding, so
/// `channel_binding=require` and SCRAM-SHA-256-PLUS work.
///
/// # Errors
/// [`Error::Config`] for unusable settings; [`Error::Failed`] with the last host's error
/// in libpq's wording and its attempts.
pub async fn connect(
    pg: &::tokio_postgres::Config,
    tls: &Config,
) -> Result<(Client, Connection), Error> {
    connect_candidates(candidates(pg, tls)?, pg).await
}

/// The servers [`connect`] tries for `pg`'s hosts, with `tls` adapted to each host name.
fn candidates(pg: &::tokio_postgres::Config, tls: &Config) -> Result<Vec<Candidate>, Error> {
    let hosts = pg.get_hosts();
    let hostaddrs = pg.get_hostaddrs();
    let ports = pg.get_ports();
    if hosts.is_empty() && hostaddrs.is_empty() {
        return Err(Error::Config("both host and hostaddr are missing".into()));
    }
    if !hosts.is_empty() && !hostaddrs.is_empty() && hosts.len() != hostaddrs.len() {
        return Err(Error::Config(
            format!(
                "could not match {} host names to {} hostaddr values",
                hosts.len(),
                hostaddrs.len()
            )
            .into(),
        ));
    }
    let count = hosts.len().max(hostaddrs.len());
    if ports.len() > 1 && ports.len() != count {
        return Err(Error::Config(
            format!(
                "could not match {} port numbers to {} hosts",
                ports.len(),
                count
            )
            .into(),
        ));
    }
    let mut candidates = Vec::with_capacity(count);
    for i in 0..count {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let (name, target, transport) = match (hosts.get(i), hostaddrs.get(i)) {
            (host, Some(addr)) => {
                let name = match host {
                    Some(Host::Tcp(name)) => name.clone(),
                    _ => String::new(),
                };
                (name, Target::Tcp(addr.to_string()), Transport::Tcp)
            }
            (Some(Host::Tcp(name)), None) => {
                (name.clone(), Target::Tcp(name.clone()), Transport::Tcp)
            }
            #[cfg(unix)]
            (Some(Host::Unix(dir)), None) => (
                String::new(),
                Target::Unix(dir.join(format!(".s.PGSQL.{port}"))),
                Transport::UnixSocket,
            ),
            (None, None) => continue,
        };
        let config = if name == tls.host() {
            Ok(tls.clone())
        } else {
            tls.with_host(&name)
        };
        candidates.push(Candidate {
            target,
            port,
            transport,
            // tokio-postgres's own config carries the password.
            password: None,
            config,
        });
    }
    Ok(candidates)
}

/// [`connect`] from libpq settings ([`crate::libpq`]): the hosts, ports, `hostaddr`s,
/// `connect_timeout`, user, database, password, `application_name`, `options` and
/// `channel_binding` of `settings`, with one pgtls [`Config`] per host
/// ([`Settings::to_configs`]). Unix-socket hosts are reached without TLS, as in libpq.
///
/// # Errors
/// [`Error::Config`] when the TLS files cannot be used (libpq's messages), else as
/// [`connect`].
pub async fn connect_settings(settings: &Settings) -> Result<(Client, Connection), Error> {
    let (candidates, pg) = settings_candidates(settings)?;
    connect_candidates(candidates, &pg).await
}

/// The servers [`connect_settings`] tries, and tokio-postgres's startup settings.
fn settings_candidates(
    settings: &Settings,
) -> Result<(Vec<Candidate>, ::tokio_postgres::Config), Error> {
    let targets = settings
        .to_configs()
        .map_err(|err| Error::Config(Box::new(err)))?;
    let pg = startup_config(settings)?;
    let candidates = targets
        .into_iter()
        .map(|(host, config)| Candidate {
            target: match host.unix_socket_path() {
                #[cfg(unix)]
                Some(path) => Target::Unix(path.into()),
                _ => Target::Tcp(host.connect_host().to_owned()),
            },
            port: host.port(),
            transport: host.transport(),
            // libpq's password file, per host, when no password was given.
            password: settings.password_for(&host),
            config: Ok(config),
        })
        .collect();
    Ok((candidates, pg))
}

/// [`connect_settings`] from a libpq connection string (`key=value` or URI), with the
/// process environment's `PG*` defaults, as `PQconnectdb` does.
///
/// ```no_run
/// # async fn run() -> Result<(), pgtls::tokio_postgres::Error> {
/// let (client, connection) = pgtls::tokio_postgres::connect_conninfo(
///     "host=db.example.com user=app sslmode=verify-full sslrootcert=/etc/ssl/pg-root.crt",
/// )
/// .await?;
/// tokio::spawn(connection);
/// # drop(client); Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Config`] for a string or environment libpq would refuse (its messages),
/// else as [`connect_settings`].
pub async fn connect_conninfo(conninfo: &str) -> Result<(Client, Connection), Error> {
    let settings = settings_from(conninfo)?;
    connect_settings(&settings).await
}

/// Cancels the query running on the connection behind `token` (from
/// `Client::cancel_token`) the way libpq 17+ does: a `CancelRequest` over a new
/// connection to `pg`'s hosts negotiated with the same settings as [`connect`] — TLS when
/// the sslmode says so, with its fallbacks and its verification. tokio-postgres's own
/// `CancelToken::cancel_query` cannot do this for clients made by [`connect`] (it has no
/// socket to reconnect to).
///
/// With several hosts the request goes to the first one that takes the connection, as
/// the plan would connect now: pass a `pg` with the client's own host alone when the
/// hosts may differ.
///
/// ```no_run
/// # async fn run(pg: tokio_postgres::Config, tls: pgtls::Config) -> Result<(), pgtls::tokio_postgres::Error> {
/// let (client, connection) = pgtls::tokio_postgres::connect(&pg, &tls).await?;
/// tokio::spawn(connection);
/// let token = client.cancel_token();
/// tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await });
/// pgtls::tokio_postgres::cancel_query(&pg, &tls, &token).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`connect`]: the cancel connection could not be made.
pub async fn cancel_query(
    pg: &::tokio_postgres::Config,
    tls: &Config,
    token: &CancelToken,
) -> Result<(), Error> {
    run_candidates(candidates(pg, tls)?, pg, |_, stream| {
        send_cancel(token, stream)
    })
    .await
}

/// [`cancel_query`] for a client made by [`connect_settings`] or [`connect_conninfo`],
/// with the same libpq settings.
///
/// # Errors
/// As [`connect_settings`].
pub async fn cancel_query_settings(settings: &Settings, token: &CancelToken) -> Result<(), Error> {
    let (candidates, pg) = settings_candidates(settings)?;
    run_candidates(candidates, &pg, |_, stream| send_cancel(token, stream)).await
}

/// Sends the `CancelRequest` of `token` over a stream pgtls negotiated.
async fn send_cancel<S>(token: &CancelToken, stream: Stream<S>) -> Result<(), StartupError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    token
        .cancel_query_raw(stream, AlreadyNegotiated)
        .await
        .map_err(classify)
}

/// Parses and resolves a connection string against the process environment.
fn settings_from(conninfo: &str) -> Result<Settings, Error> {
    ConnParams::parse(conninfo)
        .and_then(|params| params.resolve(&Environment::from_process_env()))
        .map_err(|err| Error::Config(Box::new(err)))
}

/// tokio-postgres's settings for the startup: user, database, password,
/// `application_name`, `options`, `channel_binding`, `connect_timeout`. No hosts and no
/// sslmode (set by the caller).
fn startup_config(settings: &Settings) -> Result<::tokio_postgres::Config, Error> {
    let mut pg = ::tokio_postgres::Config::new();
    pg.user(settings.user()).dbname(settings.dbname());
    if let Some(password) = settings.password() {
        pg.password(password);
    }
    if let Some(name) = settings.application_name() {
        pg.application_name(name);
    }
    if let Some(options) = settings.options() {
        pg.options(options);
    }
    if let Some(timeout) = settings.connect_timeout() {
        pg.connect_timeout(timeout);
    }
    pg.channel_binding(match settings.channel_binding() {
        LibpqChannelBinding::Disable => PgChannelBinding::Disable,
        LibpqChannelBinding::Prefer => PgChannelBinding::Prefer,
        LibpqChannelBinding::Require => PgChannelBinding::Require,
    });
    Ok(pg)
}

/// One server to try: where, and with which pgtls settings.
struct Candidate {
    target: Target,
    port: u16,
    transport: Transport,
    /// The password for this host (explicit, or from the password file), if any.
    password: Option<String>,
    config: Result<Config, ConfigError>,
}

/// [`run_candidates`] with tokio-postgres's startup and authentication.
async fn connect_candidates(
    candidates: Vec<Candidate>,
    pg: &::tokio_postgres::Config,
) -> Result<(Client, Connection), Error> {
    run_candidates(candidates, pg, startup).await
}

/// libpq's host loop: each candidate in order, the plan on each with `run` as the
/// driver's part, the next one when libpq would move on.
async fn run_candidates<T, U, UF>(
    candidates: Vec<Candidate>,
    pg: &::tokio_postgres::Config,
    mut run: U,
) -> Result<T, Error>
where
    U: FnMut(::tokio_postgres::Config, Stream<Socket>) -> UF,
    UF: Future<Output = Result<T, StartupError>>,
{
    let timeout = pg.get_connect_timeout().copied();
    let mut last = None;
    for candidate in candidates {
        let config = match candidate.config {
            // Resumed sessions are kept per port (a no-op without session resumption).
            Ok(config) => config.with_port(candidate.port),
            Err(err) => {
                last = Some(Error::Config(Box::new(err)));
                continue;
            }
        };
        let plan = Plan::new(config.sslmode(), config.negotiation(), candidate.transport);
        let (target, port) = (&candidate.target, candidate.port);
        let mut pg = pg.clone();
        if let Some(password) = &candidate.password {
            pg.password(password);
        }
        let pg = &pg;
        let result = crate::tokio::connect_with_plan(
            &config,
            plan,
            timeout,
            || open(target, port),
            |stream| run(pg.clone(), stream),
        )
        .await;
        match result {
            Ok(connected) => return Ok(connected.startup),
            Err(failed) => {
                let next = failed.try_next_host;
                last = Some(Error::Failed(failed));
                if !next {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::Config("no usable host".into())))
}

/// Where [`connect`] opens connections.
enum Target {
    Tcp(String),
    #[cfg(unix)]
    Unix(std::path::PathBuf),
}

async fn open(target: &Target, port: u16) -> io::Result<Socket> {
    // libpq's words: the resolver's failure, or connect()'s with libpq's hint.
    let connect_failure = |err: io::Error, unix_socket| {
        io::Error::new(err.kind(), connect_failure_text(&err, unix_socket))
    };
    match target {
        Target::Tcp(host) => {
            let mut last = None;
            let addrs = ::tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|err| io::Error::new(err.kind(), host_lookup_failure_text(host, &err)))?;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => {
                        stream.set_nodelay(true)?;
                        return Ok(Socket::Tcp(stream));
                    }
                    Err(err) => last = Some(connect_failure(err, false)),
                }
            }
            Err(last.unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("could not translate host name \"{host}\" to address"),
                )
            }))
        }
        #[cfg(unix)]
        Target::Unix(path) => Ok(Socket::Unix(
            UnixStream::connect(path)
                .await
                .map_err(|err| connect_failure(err, true))?,
        )),
    }
}

/// tokio-postgres's startup and authentication over a stream pgtls negotiated, for
/// callers that run [`crate::tokio::connect`] over their own transports: the `startup`
/// callback of that function, with `pg`'s user, database, password, `channel_binding`
/// (its hosts and sslmode are not used). Over TLS, tokio-postgres gets the session's
/// channel binding.
///
/// A server ErrorResponse comes back as [`StartupError::Rejected`] (so `allow`/`prefer`
/// retry as libpq), a transport error as [`StartupError::Io`], anything else (e.g.
/// `channel_binding=require` unmet) as [`StartupError::Fatal`] holding the
/// `tokio_postgres::Error`.
///
/// # Errors
/// As above.
pub async fn startup<S>(
    mut pg: ::tokio_postgres::Config,
    stream: Stream<S>,
) -> Result<(Client, ::tokio_postgres::Connection<Stream<S>, Stream<S>>), StartupError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if stream.is_tls() {
        // tokio-postgres then calls `AlreadyNegotiated::connect` at once (no SSLRequest)
        // and treats the stream as TLS: channel binding comes from it.
        pg.ssl_mode(PgSslMode::Require)
            .ssl_negotiation(PgSslNegotiation::Direct);
    } else {
        pg.ssl_mode(PgSslMode::Disable);
    }
    pg.connect_raw(stream, AlreadyNegotiated)
        .await
        .map_err(classify)
}

/// libpq's view of a failed startup: a server ErrorResponse may be retried with another
/// method; a transport error ends the attempt; anything else is final.
fn classify(err: ::tokio_postgres::Error) -> StartupError {
    if let Some(db) = err.as_db_error() {
        return StartupError::Rejected {
            sqlstate: Some(db.code().code().to_owned()),
            message: format!("{}:  {}", db.severity(), db.message()),
        };
    }
    let io_kind = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    match io_kind {
        Some(kind) => StartupError::Io(io::Error::new(kind, err)),
        None => StartupError::Fatal(Box::new(err)),
    }
}
