//! [`Settings`]: a connection string plus the environment, validated the way libpq's
//! `conninfo_add_defaults` and `pqConnectOptions2` do, and turned into one
//! [`Config`] per host.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::conninfo::{ConnParams, KEYWORDS};
use super::env::Environment;
use super::error::SettingsError;
use super::files::{self, KeyLogToFile, TlsFiles};
use super::passfile::{self, LookupKey, PasswordFileLookup};
use super::service;
use crate::plan::Transport;
use crate::{
    Config, ConfigBuilder, ConfigError, SessionResumption, SslCertMode, SslMode, SslNegotiation,
    TlsVersion,
};

/// The host libpq uses when neither `host`, `hostaddr` nor `PGHOST` is given, unless
/// the [`Environment`] says otherwise ([`Environment::with_default_socket_dir`]): on
/// Unix, Debian's libpq 15 socket directory `/var/run/postgresql` (upstream builds use
/// `/tmp`), where libpq never uses TLS; `localhost` elsewhere.
pub const DEFAULT_HOST: &str = super::env::DEFAULT_SOCKET_DIR;

/// libpq's default port.
pub const DEFAULT_PORT: u16 = 5432;

/// libpq's `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChannelBinding {
    /// Never use channel binding.
    Disable,
    /// Use it when TLS is up and the server offers `SCRAM-SHA-256-PLUS` (the default).
    #[default]
    Prefer,
    /// Fail unless the server authenticates with channel binding.
    Require,
}

impl ChannelBinding {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelBinding::Disable => "disable",
            ChannelBinding::Prefer => "prefer",
            ChannelBinding::Require => "require",
        }
    }
}

impl fmt::Display for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// libpq's `gssencmode`. pgtls has no GSSAPI: it acts as a libpq built without it, so
/// the default is `disable`, `prefer` behaves as `disable`, and `require` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GssEncMode {
    /// No GSSAPI encryption (the default here).
    #[default]
    Disable,
    /// GSSAPI encryption if possible: never possible with pgtls.
    Prefer,
    /// GSSAPI encryption required: rejected by [`ConnParams::resolve`].
    Require,
}

impl GssEncMode {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            GssEncMode::Disable => "disable",
            GssEncMode::Prefer => "prefer",
            GssEncMode::Require => "require",
        }
    }
}

impl fmt::Display for GssEncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One server to try, as libpq pairs the comma-separated `host`, `hostaddr` and `port`
/// lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostTarget {
    host: String,
    hostaddr: Option<String>,
    port: u16,
    /// The port as written (libpq matches password-file lines against this text);
    /// empty when defaulted.
    port_text: String,
}

impl HostTarget {
    /// The host name as written (libpq's `host`): used for SNI and verify-full's
    /// host-name check. Empty when only `hostaddr` was given for this entry; the default
    /// socket directory ([`DEFAULT_HOST`] unless the [`Environment`] changed it) when
    /// neither was.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The numeric address to connect to instead of resolving `host`, if given.
    pub fn hostaddr(&self) -> Option<&str> {
        self.hostaddr.as_deref()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What to connect to: `hostaddr` when given (no name resolution), else `host`.
    pub fn connect_host(&self) -> &str {
        self.hostaddr.as_deref().unwrap_or(&self.host)
    }

    /// Whether this entry names a Unix-domain socket (a `host` starting with `/` or
    /// `@`, and no `hostaddr`). libpq never uses TLS on one.
    pub fn is_unix_socket(&self) -> bool {
        self.hostaddr.is_none() && is_unix_socket_path(&self.host)
    }

    /// The transport for [`crate::plan::Plan::new`].
    pub fn transport(&self) -> Transport {
        if self.is_unix_socket() {
            Transport::UnixSocket
        } else {
            Transport::Tcp
        }
    }

    /// For a Unix-socket entry, the socket file: `<dir>/.s.PGSQL.<port>`.
    pub fn unix_socket_path(&self) -> Option<String> {
        self.is_unix_socket()
            .then(|| format!("{}/.s.PGSQL.{}", self.host, self.port))
    }
}

fn is_unix_socket_path(host: &str) -> bool {
    host.starts_with('/') || host.starts_with('@')
}

/// Settings resolved from a connection string and an [`Environment`], validated with
/// libpq's rules; built by [`ConnParams::resolve`].
///
/// What libpq reads from files (root certificates, CRLs, the client certificate and
/// key) is read only by [`Settings::load_tls_files`] and [`Settings::to_configs`], as
/// libpq reads them only when it starts TLS.
///
/// ```
/// use pgtls::libpq::{ConnParams, Environment};
/// use pgtls::SslMode;
/// # fn main() -> Result<(), pgtls::libpq::SettingsError> {
/// let settings = ConnParams::parse("host=db1,db2 port=5432,5433 user=app sslmode=require \
///                                   connect_timeout=10")?
///     .resolve(&Environment::empty())?;
/// assert_eq!(settings.sslmode(), SslMode::Require);
/// assert_eq!(settings.dbname(), "app");
/// assert_eq!(settings.connect_timeout(), Some(std::time::Duration::from_secs(10)));
/// let targets = settings.to_configs()?; // one pgtls::Config per host
/// assert_eq!(targets[1].0.host(), "db2");
/// assert_eq!(targets[1].0.port(), 5433);
/// assert_eq!(targets[1].1.host(), "db2");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Settings {
    params: ConnParams,
    hosts: Vec<HostTarget>,
    user: String,
    dbname: String,
    channel_binding: ChannelBinding,
    sslmode: SslMode,
    negotiation: SslNegotiation,
    certmode: SslCertMode,
    sni: bool,
    min_version: Option<TlsVersion>,
    max_version: Option<TlsVersion>,
    gssencmode: GssEncMode,
    connect_timeout: Option<Duration>,
    home: Option<PathBuf>,
    default_socket_dir: String,
    session_resumption: SessionResumption,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("params", &self.params)
            .field("hosts", &self.hosts)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .field("negotiation", &self.negotiation)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// A keyword's value when it is set and not empty (libpq's `x && x[0]` tests).
fn non_empty<'a>(params: &'a ConnParams, keyword: &str) -> Option<&'a str> {
    params.get(keyword).filter(|v| !v.is_empty())
}

fn count_elements(list: &str) -> usize {
    list.split(',').count()
}

/// libpq's `pqParseIntParam`: optional blanks, an optional sign, decimal digits that
/// fit a C `int`, optional blanks.
pub(crate) fn parse_int(value: &str, keyword: &'static str) -> Result<i32, SettingsError> {
    let invalid = || SettingsError::InvalidInteger {
        keyword,
        value: value.to_owned(),
    };
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
    let trimmed = value.trim_start_matches(is_space);
    let (negative, rest) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, tail) = rest.split_at(digits_end);
    if digits.is_empty() || !tail.chars().all(is_space) {
        return Err(invalid());
    }
    let mut number: i64 = 0;
    for d in digits.bytes() {
        number = number * 10 + i64::from(d - b'0');
        if number > i64::from(i32::MAX) + 1 {
            return Err(invalid());
        }
    }
    let number = if negative { -number } else { number };
    i32::try_from(number).map_err(|_| invalid())
}

impl Settings {
    pub(crate) fn resolve(
        given: &ConnParams,
        env: &Environment,
    ) -> Result<Settings, SettingsError> {
        // Connection string > service file > environment > defaults.
        let mut given = given.clone();
        service::apply_service(&mut given, env)?;
        let params = apply_environment(&given, env);

        // Hosts, in pqConnectOptions2's order.
        let hostaddr_list = non_empty(&params, "hostaddr");
        let host_list = non_empty(&params, "host");
        let count = match (hostaddr_list, host_list) {
            (Some(addrs), _) => count_elements(addrs),
            (None, Some(hosts)) => count_elements(hosts),
            (None, None) => 1,
        };
        let hostaddrs: Vec<Option<String>> = match hostaddr_list {
            Some(addrs) => addrs
                .split(',')
                .map(|a| (!a.is_empty()).then(|| a.to_owned()))
                .collect(),
            None => vec![None; count],
        };
        let names: Vec<String> = match host_list {
            Some(hosts) => {
                if count_elements(hosts) != count {
                    return Err(SettingsError::HostCountMismatch {
                        hosts: count_elements(hosts),
                        hostaddrs: count,
                    });
                }
                hosts.split(',').map(str::to_owned).collect()
            }
            None => vec![String::new(); count],
        };
        let ports: Vec<String> = match non_empty(&params, "port") {
            Some(list) => {
                let ports: Vec<String> = list.split(',').map(str::to_owned).collect();
                if ports.len() == 1 {
                    vec![ports[0].clone(); count]
                } else if ports.len() == count {
                    ports
                } else {
                    return Err(SettingsError::PortCountMismatch {
                        ports: ports.len(),
                        hosts: count,
                    });
                }
            }
            None => vec![String::new(); count],
        };

        let user = match non_empty(&params, "user") {
            Some(user) => user.to_owned(),
            None => env
                .os_user()
                .map_err(|message| SettingsError::UnknownUser(message.to_owned()))?
                .to_owned(),
        };
        let dbname = non_empty(&params, "dbname").unwrap_or(&user).to_owned();

        let channel_binding = match params.get("channel_binding") {
            None | Some("prefer") => ChannelBinding::Prefer,
            Some("disable") => ChannelBinding::Disable,
            Some("require") => ChannelBinding::Require,
            Some(other) => return Err(invalid_value("channel_binding", other)),
        };

        let system_roots = params.get("sslrootcert") == Some("system");
        let sslmode = match params.get("sslmode") {
            Some(mode) => mode
                .parse::<SslMode>()
                .map_err(|_| invalid_value("sslmode", mode))?,
            None if system_roots => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        let negotiation = match params.get("sslnegotiation") {
            Some(value) => value
                .parse::<SslNegotiation>()
                .map_err(|_| invalid_value("sslnegotiation", value))?,
            None => SslNegotiation::Postgres,
        };
        if negotiation == SslNegotiation::Direct && !sslmode.requires_tls() {
            return Err(ConfigError::WeakModeWithDirect(sslmode.as_str().to_owned()).into());
        }
        if system_roots && sslmode != SslMode::VerifyFull {
            return Err(ConfigError::WeakModeWithSystemRoots(sslmode.as_str().to_owned()).into());
        }

        let min_version = protocol_version(&params, "ssl_min_protocol_version", Some("TLSv1.2"))?;
        let max_version = protocol_version(&params, "ssl_max_protocol_version", None)?;
        if let (Some(min), Some(max)) = (min_version, max_version) {
            if min > max {
                return Err(ConfigError::InvalidVersionRange.into());
            }
        }

        let certmode = match params.get("sslcertmode") {
            Some(value) => value
                .parse::<SslCertMode>()
                .map_err(|_| invalid_value("sslcertmode", value))?,
            None => SslCertMode::Allow,
        };

        let gssencmode = match params.get("gssencmode") {
            None | Some("disable") => GssEncMode::Disable,
            Some("prefer") => GssEncMode::Prefer,
            Some("require") => return Err(ConfigError::GssEncryptionUnsupported.into()),
            Some(other) => return Err(invalid_value("gssencmode", other)),
        };

        if let Some(value) = params.get("target_session_attrs") {
            const ALLOWED: [&str; 6] = [
                "any",
                "read-write",
                "read-only",
                "primary",
                "standby",
                "prefer-standby",
            ];
            if !ALLOWED.contains(&value) {
                return Err(invalid_value("target_session_attrs", value));
            }
        }
        if let Some(value) = params.get("load_balance_hosts") {
            if value != "disable" && value != "random" {
                return Err(invalid_value("load_balance_hosts", value));
            }
        }

        // What libpq checks only when it connects: connect_timeout, then each port.
        let connect_timeout = match params.get("connect_timeout") {
            Some(value) => {
                let seconds = parse_int(value, "connect_timeout")?;
                u64::try_from(seconds)
                    .ok()
                    .filter(|s| *s > 0)
                    .map(Duration::from_secs)
            }
            None => None,
        };
        let mut hosts = Vec::with_capacity(count);
        for ((name, hostaddr), port_text) in names.into_iter().zip(hostaddrs).zip(ports) {
            let port = port_text.clone();
            let port = if port.is_empty() {
                DEFAULT_PORT
            } else {
                let number = parse_int(&port, "port")?;
                u16::try_from(number)
                    .ok()
                    .filter(|p| *p >= 1)
                    .ok_or(SettingsError::InvalidPort { value: port })?
            };
            let host = if name.is_empty() && hostaddr.is_none() {
                env.default_socket_dir().to_owned()
            } else {
                name
            };
            hosts.push(HostTarget {
                host,
                hostaddr,
                port,
                port_text,
            });
        }

        let sni = params.get("sslsni").is_none_or(|v| v.starts_with('1'));
        let session_resumption = session_resumption_from(env)?;
        Ok(Settings {
            params,
            hosts,
            user,
            dbname,
            channel_binding,
            sslmode,
            negotiation,
            certmode,
            sni,
            min_version,
            max_version,
            gssencmode,
            connect_timeout,
            home: env.home().map(Path::to_path_buf),
            default_socket_dir: env.default_socket_dir().to_owned(),
            session_resumption,
        })
    }

    /// The connection string's settings merged with the environment's (what libpq
    /// would report for the connection, minus compiled-in defaults).
    /// [`ConnParams::to_connection_string`] on it gives a string that needs no
    /// environment.
    pub fn params(&self) -> &ConnParams {
        &self.params
    }

    /// The servers to try, in order. libpq with `load_balance_hosts=random` shuffles
    /// them; that is left to the caller.
    pub fn hosts(&self) -> &[HostTarget] {
        &self.hosts
    }

    /// The user name (`user`, `PGUSER`, else the operating-system user).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database (`dbname`, `PGDATABASE`, else the user name).
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The password given as a setting (`password`, `PGPASSWORD`, or a service file);
    /// see [`Settings::password_for`] for libpq's fallback to the password file.
    pub fn password(&self) -> Option<&str> {
        non_empty(&self.params, "password")
    }

    /// The password file libpq reads when no password is given: `passfile` (or
    /// `PGPASSFILE`, or a service file's `passfile`), else `~/.pgpass`; `None` without a
    /// home directory.
    pub fn password_file(&self) -> Option<String> {
        match non_empty(&self.params, "passfile") {
            Some(path) => Some(path.to_owned()),
            None => self
                .home
                .as_ref()
                .map(|home| format!("{}/.pgpass", home.display())),
        }
    }

    /// Looks `target` up in the [password file](Settings::password_file), as libpq's
    /// `passwordFromFile` does, whether or not a password was given.
    ///
    /// The key is the host name (`hostaddr` when the entry has no name), the port, the
    /// database and the user. A Unix-socket entry for the default socket directory is
    /// looked up as `localhost`. The port is compared as written (`port=05432` does not
    /// match a `5432` line), `5432` when none was given.
    ///
    /// A file with group or world access, or that is not a plain file, is refused with
    /// libpq's warning (libpq prints it on standard error and goes on without a
    /// password); a missing file is [`PasswordFileLookup::NotFound`].
    pub fn password_file_lookup(&self, target: &HostTarget) -> PasswordFileLookup {
        let Some(path) = self.password_file() else {
            return PasswordFileLookup::NotFound;
        };
        let mut host = if target.host.is_empty() {
            target.hostaddr.as_deref().unwrap_or_default()
        } else {
            &target.host
        };
        if host.is_empty() || (is_unix_socket_path(host) && host == self.default_socket_dir) {
            host = "localhost";
        }
        let port = if target.port_text.is_empty() {
            DEFAULT_PORT.to_string()
        } else {
            target.port_text.clone()
        };
        passfile::lookup(
            &path,
            &LookupKey {
                host,
                port: &port,
                dbname: &self.dbname,
                user: &self.user,
            },
        )
    }

    /// The password to authenticate to `target` with, as libpq chooses it: the given
    /// [`password`](Settings::password) when there is one, else the password file's
    /// (see [`Settings::password_file_lookup`], whose warning this drops).
    ///
    /// ```
    /// use pgtls::libpq::{ConnParams, Environment};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let file = dir.path().join("pgpass");
    /// std::fs::write(&file, "db.example.com:*:shop:app:s3cr\\:et\n")?;
    /// # #[cfg(unix)]
    /// # {
    /// use std::os::unix::fs::PermissionsExt as _;
    /// std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
    /// let settings = ConnParams::parse("host=db.example.com dbname=shop user=app")?
    ///     .resolve(&Environment::from_vars([("PGPASSFILE", file.display().to_string())]))?;
    /// let target = &settings.hosts()[0];
    /// assert_eq!(settings.password_for(target).as_deref(), Some("s3cr:et"));
    /// # }
    /// # Ok(()) }
    /// ```
    pub fn password_for(&self, target: &HostTarget) -> Option<String> {
        if let Some(password) = self.password() {
            return Some(password.to_owned());
        }
        match self.password_file_lookup(target) {
            PasswordFileLookup::Found(password) => Some(password),
            _ => None,
        }
    }

    /// The application name to send: `application_name` (or `PGAPPNAME`), else
    /// `fallback_application_name`.
    pub fn application_name(&self) -> Option<&str> {
        self.params
            .get("application_name")
            .or_else(|| self.params.get("fallback_application_name"))
    }

    /// Command-line options for the server (`options` / `PGOPTIONS`).
    pub fn options(&self) -> Option<&str> {
        non_empty(&self.params, "options")
    }

    /// `connect_timeout`: `None` when unset, zero or negative (no limit). libpq 18
    /// applies it per host and address as given; libpq 17 and older raised 1 to 2
    /// seconds.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// `channel_binding`.
    pub fn channel_binding(&self) -> ChannelBinding {
        self.channel_binding
    }

    /// The effective `sslmode` (`verify-full` when unset and `sslrootcert=system`).
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// `sslnegotiation`.
    pub fn ssl_negotiation(&self) -> SslNegotiation {
        self.negotiation
    }

    /// `sslcertmode`.
    pub fn ssl_cert_mode(&self) -> SslCertMode {
        self.certmode
    }

    /// `sslsni`: on unless the value does not start with `1` (libpq's test).
    pub fn sslsni(&self) -> bool {
        self.sni
    }

    /// `ssl_min_protocol_version` (default TLSv1.2; `None` when set to the empty string).
    pub fn ssl_min_protocol_version(&self) -> Option<TlsVersion> {
        self.min_version
    }

    /// `ssl_max_protocol_version` (default none).
    pub fn ssl_max_protocol_version(&self) -> Option<TlsVersion> {
        self.max_version
    }

    /// `gssencmode` (never `require`: that is refused when resolving).
    pub fn gssencmode(&self) -> GssEncMode {
        self.gssencmode
    }

    /// The home directory the `~/.postgresql/` defaults are taken from, if known.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }

    /// Reads the TLS files the way libpq's `initialize_SSL` does: see [`TlsFiles`].
    ///
    /// # Errors
    /// Missing root file under verify-ca/verify-full, unreadable or malformed files, a
    /// key file with group or world access, a wrong `sslpassword`: libpq's messages,
    /// naming the file.
    pub fn load_tls_files(&self) -> Result<TlsFiles, SettingsError> {
        files::load(self)
    }

    /// Session resumption for the [`Config`]s built from these settings, a pgtls
    /// extension that libpq lacks (libpq never resumes): see
    /// [`ConfigBuilder::session_resumption`] for where a session is offered and what a
    /// resumed handshake skips. It is not a connection-string keyword (psql would reject
    /// the string); besides this method, the environment variable
    /// `PGTLS_SESSION_RESUMPTION=on` (or `1`; `off`, `0` or empty: disabled) turns it on.
    /// Sessions live in the configs: keep the ones [`Settings::to_configs`] returned and
    /// connect again with them.
    ///
    /// ```
    /// use pgtls::libpq::{ConnParams, Environment};
    /// use pgtls::SessionResumption;
    /// # fn main() -> Result<(), pgtls::libpq::SettingsError> {
    /// let settings = ConnParams::parse("host=pooler.example.com port=6432 user=app sslmode=require")?
    ///     .resolve(&Environment::empty())?
    ///     .with_session_resumption(SessionResumption::in_memory());
    /// let targets = settings.to_configs()?;
    /// assert_eq!(targets[0].1.port(), Some(6432));
    /// assert!(targets[0].1.resumes_sessions());
    /// # Ok(()) }
    /// ```
    pub fn with_session_resumption(mut self, resumption: SessionResumption) -> Settings {
        self.session_resumption = resumption;
        self
    }

    /// Session resumption ([`Settings::with_session_resumption`]; disabled by default).
    pub fn session_resumption(&self) -> SessionResumption {
        self.session_resumption
    }

    /// One [`Config`] per host, sharing the parsed roots, CRLs and client key: see
    /// [`Settings::to_configs_with`].
    ///
    /// # Errors
    /// As [`Settings::load_tls_files`], plus the core's checks
    /// ([`ConfigError`]), e.g. verify-full for a host given only as `hostaddr`.
    pub fn to_configs(&self) -> Result<Vec<(HostTarget, Config)>, SettingsError> {
        self.to_configs_with(|builder| builder)
    }

    /// One [`Config`] per host, after `customize` has had its say on the builder (a
    /// crypto provider, a clock, ...).
    ///
    /// Files are read only when TLS may be used: under `sslmode=disable` none is opened
    /// (as libpq, which never starts TLS then). `sslkeylogfile` appends NSS key-log lines
    /// to that file (created with mode 0600); write failures are ignored.
    ///
    /// libpq reads the files when a TLS attempt starts, so under `allow`/`prefer` a broken
    /// key file makes libpq fall back to plaintext; pgtls reports it here, before any
    /// connection.
    ///
    /// # Errors
    /// As [`Settings::to_configs`].
    pub fn to_configs_with(
        &self,
        customize: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
    ) -> Result<Vec<(HostTarget, Config)>, SettingsError> {
        // libpq reads its TLS files when a TLS attempt starts; under allow/prefer a file
        // that cannot be used fails that attempt (and the plan falls back), it does not
        // fail the connection up front.
        let mut setup_error = None;
        let files = match self.sslmode {
            SslMode::Disable => TlsFiles::default(),
            SslMode::Allow | SslMode::Prefer => match self.load_tls_files() {
                Ok(files) => files,
                Err(err) => {
                    setup_error = Some(err.to_string());
                    TlsFiles::default()
                }
            },
            _ => self.load_tls_files()?,
        };
        let mut builder = Config::builder()
            .sslmode(self.sslmode)
            .negotiation(self.negotiation)
            .certmode(self.certmode)
            .sni(self.sni)
            .min_protocol_version(self.min_version.unwrap_or(TlsVersion::Tls1_0))
            .max_protocol_version(self.max_version)
            .root_certificates(files.roots.clone())
            .crls(files.crls.clone())
            .crl_check(files.crl_checking)
            .port(self.hosts[0].port())
            .session_resumption(self.session_resumption);
        let key_file = files.key_file.clone();
        let cert_file = files.cert_file.clone();
        let root_file = files.root_file.clone();
        if let Some((chain, key)) = files.client_certificate {
            builder = builder.client_certificate(chain, key);
        }
        if let Some(path) = non_empty(&self.params, "sslkeylogfile") {
            builder = builder.key_log(Arc::new(KeyLogToFile::new(path)));
        }
        if let Some(message) = setup_error {
            builder = builder.tls_setup_error(message);
        }
        let builder = customize(builder);
        let map_err = |err: ConfigError| -> SettingsError {
            let shown = |p: &Option<PathBuf>| {
                p.as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            };
            match err {
                ConfigError::BadCredential {
                    what: "private key",
                    reason,
                } if reason == "certificate does not match private key" => {
                    SettingsError::KeyMismatch {
                        path: shown(&key_file),
                        reason: "key values mismatch".to_owned(),
                    }
                }
                ConfigError::BadCredential {
                    what: "private key",
                    reason,
                } if key_file.is_some() => SettingsError::KeyFile {
                    path: shown(&key_file),
                    reason,
                },
                ConfigError::BadCredential {
                    what: "client certificate",
                    reason,
                } if cert_file.is_some() => SettingsError::CertificateFile {
                    path: shown(&cert_file),
                    reason,
                },
                ConfigError::BadCredential {
                    what: "root certificate",
                    reason,
                } if root_file.is_some() => SettingsError::RootCertificateFile {
                    path: shown(&root_file),
                    reason,
                },
                other => SettingsError::Config(other),
            }
        };
        let weak = matches!(self.sslmode, SslMode::Allow | SslMode::Prefer);
        let fallback = weak.then(|| builder.clone());
        let first = match builder.host(self.hosts[0].host()).build() {
            Ok(config) => config,
            // A key that does not match its certificate, or a credential rustls cannot
            // load: libpq fails the TLS attempt (initialize_SSL), so allow/prefer go on.
            Err(err @ ConfigError::BadCredential { .. }) if fallback.is_some() => fallback
                .unwrap_or_default()
                .host(self.hosts[0].host())
                .tls_setup_error(map_err(err).to_string())
                .build()
                .map_err(map_err)?,
            Err(err) => return Err(map_err(err)),
        };
        let mut out = Vec::with_capacity(self.hosts.len());
        for (i, target) in self.hosts.iter().enumerate() {
            let config = if i == 0 {
                first.clone()
            } else {
                first.with_host(target.host())?.with_port(target.port())
            };
            out.push((target.clone(), config));
        }
        Ok(out)
    }
}

fn invalid_value(keyword: &'static str, value: &str) -> SettingsError {
    SettingsError::InvalidValue {
        keyword,
        value: value.to_owned(),
    }
}

/// `PGTLS_SESSION_RESUMPTION`: pgtls's own variable (never a connection-string keyword).
fn session_resumption_from(env: &Environment) -> Result<SessionResumption, SettingsError> {
    match env.var("PGTLS_SESSION_RESUMPTION").as_deref() {
        None | Some("" | "off" | "0") => Ok(SessionResumption::disabled()),
        Some("on" | "1") => Ok(SessionResumption::in_memory()),
        Some(other) => Err(invalid_value("PGTLS_SESSION_RESUMPTION", other)),
    }
}

/// libpq's `sslVerifyProtocolVersion`: empty means unset.
fn protocol_version(
    params: &ConnParams,
    keyword: &'static str,
    default: Option<&str>,
) -> Result<Option<TlsVersion>, SettingsError> {
    match params.get(keyword).or(default) {
        None | Some("") => Ok(None),
        Some(value) => TlsVersion::parse_for(keyword, value)
            .map(Some)
            .map_err(|_| SettingsError::InvalidProtocolVersion {
                keyword,
                value: value.to_owned(),
            }),
    }
}

/// libpq's `conninfo_add_defaults` without the service file: each keyword the string
/// did not set takes its environment variable; `PGREQUIRESSL=1` stands for
/// `PGSSLMODE=require`.
fn apply_environment(given: &ConnParams, env: &Environment) -> ConnParams {
    let mut params = given.clone();
    for (index, keyword) in KEYWORDS.iter().enumerate() {
        if params.get_index(index).is_some() {
            continue;
        }
        if let Some(value) = keyword.env.and_then(|name| env.var(name)) {
            params.set_index(index, value.split('\0').next().unwrap_or("").to_owned());
            continue;
        }
        if keyword.name == "sslmode" && env.var("PGREQUIRESSL").is_some_and(|v| v.starts_with('1'))
        {
            params.set_index(index, "require".to_owned());
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment::empty().with_os_user("osuser")
    }

    fn resolve(s: &str) -> Result<Settings, SettingsError> {
        ConnParams::parse(s).unwrap().resolve(&env())
    }

    fn resolve_err(s: &str) -> String {
        match resolve(s) {
            Ok(settings) => panic!("{s:?} resolved: {settings:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn hosts(s: &str) -> Vec<(String, Option<String>, u16)> {
        resolve(s)
            .unwrap()
            .hosts()
            .iter()
            .map(|h| {
                (
                    h.host().to_owned(),
                    h.hostaddr().map(str::to_owned),
                    h.port(),
                )
            })
            .collect()
    }

    #[test]
    fn defaults() {
        let s = resolve("").unwrap();
        assert_eq!(s.sslmode(), SslMode::Prefer);
        assert_eq!(s.ssl_negotiation(), SslNegotiation::Postgres);
        assert_eq!(s.ssl_cert_mode(), SslCertMode::Allow);
        assert!(s.sslsni());
        assert_eq!(s.ssl_min_protocol_version(), Some(TlsVersion::Tls1_2));
        assert_eq!(s.ssl_max_protocol_version(), None);
        assert_eq!(s.channel_binding(), ChannelBinding::Prefer);
        assert_eq!(s.gssencmode(), GssEncMode::Disable);
        assert_eq!(s.connect_timeout(), None);
        assert_eq!(s.user(), "osuser");
        assert_eq!(s.dbname(), "osuser");
        assert_eq!(s.password(), None);
        assert_eq!(s.application_name(), None);
        assert_eq!(hosts(""), vec![(DEFAULT_HOST.into(), None, 5432)]);
        assert_eq!(s.hosts()[0].connect_host(), DEFAULT_HOST);
    }

    #[cfg(unix)]
    #[test]
    fn the_default_host_is_the_socket_directory_without_tls() {
        let s = resolve("sslmode=require").unwrap();
        let target = &s.hosts()[0];
        assert_eq!(target.host(), "/var/run/postgresql");
        assert_eq!(target.transport(), Transport::UnixSocket);
        assert_eq!(
            target.unix_socket_path().as_deref(),
            Some("/var/run/postgresql/.s.PGSQL.5432")
        );
        // sslmode is not acted on over a socket: the plan goes straight to plaintext.
        let configs = s.to_configs().unwrap();
        let plan = crate::plan::Plan::new(
            SslMode::Require,
            SslNegotiation::Postgres,
            target.transport(),
        );
        assert_eq!(
            plan.poll_step(),
            crate::plan::Step::Connect(crate::plan::Method::Plaintext)
        );
        assert_eq!(configs[0].1.sslmode(), SslMode::Require);
        // The directory is overridable; a non-path default means TCP.
        let env = env().with_default_socket_dir("/tmp");
        let s = ConnParams::parse("").unwrap().resolve(&env).unwrap();
        assert_eq!(
            s.hosts()[0].unix_socket_path().as_deref(),
            Some("/tmp/.s.PGSQL.5432")
        );
        let env = env.with_default_socket_dir("localhost");
        let s = ConnParams::parse("").unwrap().resolve(&env).unwrap();
        assert_eq!(s.hosts()[0].transport(), Transport::Tcp);
        // PGHOST and empty list entries.
        let env = Environment::from_vars([("PGHOST", "h")]).with_os_user("u");
        let s = ConnParams::parse("").unwrap().resolve(&env).unwrap();
        assert_eq!(s.hosts()[0].host(), "h");
    }

    #[test]
    fn no_user_anywhere_is_an_error() {
        let err = ConnParams::parse("host=h")
            .unwrap()
            .resolve(&Environment::empty())
            .unwrap_err();
        assert_eq!(err.to_string(), "could not determine the local user name");
        assert!(ConnParams::parse("user=u")
            .unwrap()
            .resolve(&Environment::empty())
            .is_ok());
    }

    #[test]
    fn host_lists_pair_as_libpq() {
        assert_eq!(
            hosts("host=a,b,c port=1,2,3"),
            vec![
                ("a".into(), None, 1),
                ("b".into(), None, 2),
                ("c".into(), None, 3)
            ]
        );
        assert_eq!(
            hosts("host=a,b port=7"),
            vec![("a".into(), None, 7), ("b".into(), None, 7)]
        );
        assert_eq!(
            hosts("host=a,,b port=1,,3"),
            vec![
                ("a".into(), None, 1),
                (DEFAULT_HOST.into(), None, 5432),
                ("b".into(), None, 3)
            ]
        );
        assert_eq!(
            hosts("host=db.example.com hostaddr=192.0.2.1"),
            vec![("db.example.com".into(), Some("192.0.2.1".into()), 5432)]
        );
        assert_eq!(
            hosts("hostaddr=192.0.2.1,192.0.2.2"),
            vec![
                ("".into(), Some("192.0.2.1".into()), 5432),
                ("".into(), Some("192.0.2.2".into()), 5432)
            ]
        );
        assert_eq!(
            hosts("host=a,b hostaddr=,192.0.2.2"),
            vec![
                ("a".into(), None, 5432),
                ("b".into(), Some("192.0.2.2".into()), 5432)
            ]
        );
        let s = resolve("host=x hostaddr=192.0.2.9").unwrap();
        assert_eq!(s.hosts()[0].connect_host(), "192.0.2.9");
        let s = resolve("postgresql://[::1]:5433,other/db").unwrap();
        assert_eq!(s.hosts()[0].host(), "::1");
        assert_eq!(s.hosts()[0].port(), 5433);
        assert_eq!(s.hosts()[1].host(), "other");
        assert_eq!(s.hosts()[1].port(), 5432);
    }

    #[test]
    fn unix_socket_hosts() {
        let s = resolve("host=/var/run/postgresql,@abstract,tcp port=5433").unwrap();
        let h = s.hosts();
        assert!(h[0].is_unix_socket());
        assert_eq!(h[0].transport(), Transport::UnixSocket);
        assert_eq!(
            h[0].unix_socket_path().as_deref(),
            Some("/var/run/postgresql/.s.PGSQL.5433")
        );
        assert!(h[1].is_unix_socket());
        assert!(!h[2].is_unix_socket());
        assert_eq!(h[2].unix_socket_path(), None);
        let s = resolve("host=/tmp hostaddr=127.0.0.1").unwrap();
        assert!(!s.hosts()[0].is_unix_socket());
    }

    #[test]
    fn count_mismatches_in_libpq_words() {
        assert_eq!(
            resolve_err("host=a,b,c port=1,2"),
            "could not match 2 port numbers to 3 hosts"
        );
        assert_eq!(
            resolve_err("host=a port=1,2"),
            "could not match 2 port numbers to 1 hosts"
        );
        assert_eq!(
            resolve_err("host=a,b hostaddr=192.0.2.1"),
            "could not match 2 host names to 1 hostaddr values"
        );
        assert_eq!(
            resolve_err("host=a hostaddr=192.0.2.1,192.0.2.2"),
            "could not match 1 host names to 2 hostaddr values"
        );
    }

    #[test]
    fn integers_as_pq_parse_int_param() {
        assert_eq!(parse_int(" 42 ", "port").unwrap(), 42);
        assert_eq!(parse_int("+7", "port").unwrap(), 7);
        assert_eq!(parse_int("-7", "port").unwrap(), -7);
        assert_eq!(parse_int("2147483647", "port").unwrap(), i32::MAX);
        assert_eq!(parse_int("-2147483648", "port").unwrap(), i32::MIN);
        for bad in [
            "",
            " ",
            "x",
            "1x",
            "0x10",
            "2147483648",
            "99999999999999999999",
            "- 1",
            "1 2",
        ] {
            assert_eq!(
                parse_int(bad, "connect_timeout").unwrap_err().to_string(),
                format!(
                    "invalid integer value \"{bad}\" for connection option \"connect_timeout\""
                ),
            );
        }
        assert_eq!(
            resolve_err("port=abc"),
            "invalid integer value \"abc\" for connection option \"port\""
        );
        assert_eq!(resolve_err("port=0"), "invalid port number: \"0\"");
        assert_eq!(resolve_err("port=65536"), "invalid port number: \"65536\"");
        assert_eq!(resolve("port=65535").unwrap().hosts()[0].port(), 65535);
        assert_eq!(
            resolve_err("host=a,b port=1,x"),
            "invalid integer value \"x\" for connection option \"port\""
        );
    }

    #[test]
    fn connect_timeout_values() {
        let t = |s: &str| resolve(s).unwrap().connect_timeout();
        assert_eq!(t("connect_timeout=10"), Some(Duration::from_secs(10)));
        assert_eq!(t("connect_timeout=1"), Some(Duration::from_secs(1)));
        assert_eq!(t("connect_timeout=0"), None);
        assert_eq!(t("connect_timeout=-5"), None);
        assert_eq!(
            resolve_err("connect_timeout=ten"),
            "invalid integer value \"ten\" for connection option \"connect_timeout\""
        );
        assert_eq!(
            resolve_err("connect_timeout="),
            "invalid integer value \"\" for connection option \"connect_timeout\""
        );
    }

    #[test]
    fn value_errors_in_libpq_words() {
        assert_eq!(
            resolve_err("sslmode=Require"),
            "invalid sslmode value: \"Require\""
        );
        assert_eq!(resolve_err("sslmode="), "invalid sslmode value: \"\"");
        assert_eq!(
            resolve_err("channel_binding=yes"),
            "invalid channel_binding value: \"yes\""
        );
        assert_eq!(
            resolve_err("sslnegotiation=fast"),
            "invalid sslnegotiation value: \"fast\""
        );
        assert_eq!(
            resolve_err("sslcertmode=x"),
            "invalid sslcertmode value: \"x\""
        );
        assert_eq!(
            resolve_err("gssencmode=maybe"),
            "invalid gssencmode value: \"maybe\""
        );
        assert_eq!(
            resolve_err("target_session_attrs=master"),
            "invalid target_session_attrs value: \"master\""
        );
        assert_eq!(
            resolve_err("load_balance_hosts=on"),
            "invalid load_balance_hosts value: \"on\""
        );
        assert_eq!(
            resolve_err("ssl_min_protocol_version=TLSv1.4"),
            "invalid \"ssl_min_protocol_version\" value: \"TLSv1.4\""
        );
        assert_eq!(
            resolve_err("ssl_max_protocol_version=SSLv3"),
            "invalid \"ssl_max_protocol_version\" value: \"SSLv3\""
        );
        assert_eq!(
            resolve_err("ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=tlsv1.2"),
            "invalid SSL protocol version range"
        );
        assert_eq!(
            resolve_err("sslnegotiation=direct"),
            "weak sslmode \"prefer\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")"
        );
        assert_eq!(
            resolve_err("sslrootcert=system sslmode=require"),
            "weak sslmode \"require\" may not be used with sslrootcert=system (use \"verify-full\")"
        );
        let err = resolve("gssencmode=require").unwrap_err();
        assert!(matches!(
            err,
            SettingsError::Config(ConfigError::GssEncryptionUnsupported)
        ));
    }

    #[test]
    fn validation_follows_libpq_order() {
        // channel_binding is checked before sslmode, sslmode before the versions.
        assert_eq!(
            resolve_err("sslmode=x channel_binding=y"),
            "invalid channel_binding value: \"y\""
        );
        assert_eq!(
            resolve_err("ssl_min_protocol_version=x sslmode=y"),
            "invalid sslmode value: \"y\""
        );
        // Host counts come before everything else.
        assert_eq!(
            resolve_err("sslmode=x host=a port=1,2"),
            "could not match 2 port numbers to 1 hosts"
        );
    }

    #[test]
    fn tls_settings() {
        let s = resolve(
            "sslmode=verify-ca sslnegotiation=direct sslcertmode=require sslsni=0 \
             ssl_min_protocol_version=tlsv1.3 ssl_max_protocol_version=TLSv1.3 \
             channel_binding=require gssencmode=prefer",
        )
        .unwrap();
        assert_eq!(s.sslmode(), SslMode::VerifyCa);
        assert_eq!(s.ssl_negotiation(), SslNegotiation::Direct);
        assert_eq!(s.ssl_cert_mode(), SslCertMode::Require);
        assert!(!s.sslsni());
        assert_eq!(s.ssl_min_protocol_version(), Some(TlsVersion::Tls1_3));
        assert_eq!(s.ssl_max_protocol_version(), Some(TlsVersion::Tls1_3));
        assert_eq!(s.channel_binding(), ChannelBinding::Require);
        assert_eq!(s.gssencmode(), GssEncMode::Prefer);
        // sslsni is on when the value starts with '1', as libpq tests it.
        assert!(resolve("sslsni=1").unwrap().sslsni());
        assert!(resolve("sslsni=1yes").unwrap().sslsni());
        assert!(!resolve("sslsni=yes").unwrap().sslsni());
        // An empty version means no bound.
        let s = resolve("ssl_min_protocol_version='' ssl_max_protocol_version=TLSv1").unwrap();
        assert_eq!(s.ssl_min_protocol_version(), None);
        assert_eq!(s.ssl_max_protocol_version(), Some(TlsVersion::Tls1_0));
        // sslrootcert=system makes verify-full the default.
        assert_eq!(
            resolve("sslrootcert=system").unwrap().sslmode(),
            SslMode::VerifyFull
        );
    }

    #[test]
    fn environment_fills_what_the_string_left_out() {
        let env = Environment::from_vars([
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGPASSWORD", "envpass"),
            ("PGDATABASE", "envdb"),
            ("PGAPPNAME", "envapp"),
            ("PGCONNECT_TIMEOUT", "7"),
            ("PGSSLMODE", "require"),
            ("PGSSLNEGOTIATION", "direct"),
            ("PGSSLCERTMODE", "disable"),
            ("PGSSLSNI", "0"),
            ("PGSSLMINPROTOCOLVERSION", "TLSv1.3"),
            ("PGCHANNELBINDING", "disable"),
            ("PGGSSENCMODE", "prefer"),
            ("PGSSLROOTCERT", "/nonexistent/root.crt"),
        ]);
        let s = ConnParams::parse("").unwrap().resolve(&env).unwrap();
        assert_eq!(s.hosts()[0].host(), "envhost");
        assert_eq!(s.hosts()[0].port(), 6000);
        assert_eq!(s.user(), "envuser");
        assert_eq!(s.password(), Some("envpass"));
        assert_eq!(s.dbname(), "envdb");
        assert_eq!(s.application_name(), Some("envapp"));
        assert_eq!(s.connect_timeout(), Some(Duration::from_secs(7)));
        assert_eq!(s.sslmode(), SslMode::Require);
        assert_eq!(s.ssl_negotiation(), SslNegotiation::Direct);
        assert_eq!(s.ssl_cert_mode(), SslCertMode::Disable);
        assert!(!s.sslsni());
        assert_eq!(s.ssl_min_protocol_version(), Some(TlsVersion::Tls1_3));
        assert_eq!(s.channel_binding(), ChannelBinding::Disable);
        assert_eq!(s.gssencmode(), GssEncMode::Prefer);
        assert_eq!(s.params().get("sslrootcert"), Some("/nonexistent/root.crt"));

        // The string beats the environment, even with an empty value.
        let s = ConnParams::parse("host=strhost port=1 sslmode=verify-full sslrootcert=''")
            .unwrap()
            .resolve(&env)
            .unwrap();
        assert_eq!(s.hosts()[0].host(), "strhost");
        assert_eq!(s.hosts()[0].port(), 1);
        assert_eq!(s.sslmode(), SslMode::VerifyFull);
        assert_eq!(s.params().get("sslrootcert"), Some(""));
        // An empty user in the string is "not given": libpq then asks the OS, not PGUSER.
        assert!(matches!(
            ConnParams::parse("user=").unwrap().resolve(&env),
            Err(SettingsError::UnknownUser(_))
        ));

        // A bad environment value fails as libpq does.
        let env = Environment::from_vars([("PGSSLMODE", "bogus")]).with_os_user("u");
        assert_eq!(
            ConnParams::parse("")
                .unwrap()
                .resolve(&env)
                .unwrap_err()
                .to_string(),
            "invalid sslmode value: \"bogus\""
        );
        assert!(ConnParams::parse("sslmode=disable")
            .unwrap()
            .resolve(&env)
            .is_ok());
    }

    #[test]
    fn pgrequiressl_and_system_roots_defaults() {
        let with = |vars: &[(&str, &str)], s: &str| {
            let env = Environment::from_vars(vars.iter().copied()).with_os_user("u");
            ConnParams::parse(s)
                .unwrap()
                .resolve(&env)
                .map(|s| s.sslmode())
        };
        assert_eq!(
            with(&[("PGREQUIRESSL", "1")], "").unwrap(),
            SslMode::Require
        );
        assert_eq!(with(&[("PGREQUIRESSL", "0")], "").unwrap(), SslMode::Prefer);
        assert_eq!(
            with(&[("PGREQUIRESSL", "1"), ("PGSSLMODE", "allow")], "").unwrap(),
            SslMode::Allow
        );
        assert_eq!(
            with(&[("PGREQUIRESSL", "1")], "sslmode=disable").unwrap(),
            SslMode::Disable
        );
        // sslrootcert=system from the environment also strengthens the default...
        assert_eq!(
            with(&[("PGSSLROOTCERT", "system")], "").unwrap(),
            SslMode::VerifyFull
        );
        // ...but not a mode that was set, nor one that PGREQUIRESSL supplied.
        assert_eq!(
            with(&[("PGSSLROOTCERT", "system")], "sslmode=prefer")
                .unwrap_err()
                .to_string(),
            "weak sslmode \"prefer\" may not be used with sslrootcert=system (use \"verify-full\")"
        );
        assert!(with(&[("PGSSLROOTCERT", "system"), ("PGREQUIRESSL", "1")], "").is_err());
    }

    #[test]
    fn merged_params_render_without_the_environment() {
        let env =
            Environment::from_vars([("PGHOST", "h"), ("PGSSLMODE", "require")]).with_os_user("u");
        let s = ConnParams::parse("port=5").unwrap().resolve(&env).unwrap();
        assert_eq!(
            s.params().to_connection_string(),
            "host=h port=5 sslmode=require"
        );
    }

    #[test]
    fn configs_per_host() {
        let s = resolve("host=a,b,192.0.2.1 sslmode=require sslsni=1").unwrap();
        let configs = s.to_configs().unwrap();
        assert_eq!(configs.len(), 3);
        assert_eq!(configs[0].1.host(), "a");
        assert_eq!(configs[1].1.host(), "b");
        assert!(configs[1].1.sends_sni());
        assert!(!configs[2].1.sends_sni());
        assert_eq!(configs[2].1.sslmode(), SslMode::Require);
        assert!(!configs[0].1.verifies_chain());
    }

    #[test]
    fn startup_values() {
        let s =
            resolve("options='-c search_path=x' fallback_application_name=fb password=pw").unwrap();
        assert_eq!(s.options(), Some("-c search_path=x"));
        assert_eq!(s.application_name(), Some("fb"));
        assert_eq!(s.password(), Some("pw"));
        let s = resolve("application_name=app fallback_application_name=fb password=''").unwrap();
        assert_eq!(s.application_name(), Some("app"));
        assert_eq!(s.password(), None);
        assert!(!format!("{s:?}").contains("pw"));
    }

    #[test]
    fn precedence_string_then_service_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("services.conf");
        std::fs::write(
            &file,
            "[svc]\nhost=svchost\nport=6000\nsslmode=verify-full\npassword=svcpw\n",
        )
        .unwrap();
        let env = Environment::from_vars([
            ("PGSERVICEFILE", file.display().to_string().as_str()),
            ("PGPORT", "7000"),
            ("PGSSLMODE", "disable"),
            ("PGUSER", "envuser"),
        ]);
        let s = ConnParams::parse("service=svc port=5000")
            .unwrap()
            .resolve(&env)
            .unwrap();
        assert_eq!(s.hosts()[0].host(), "svchost");
        assert_eq!(s.hosts()[0].port(), 5000);
        assert_eq!(s.sslmode(), SslMode::VerifyFull);
        assert_eq!(s.user(), "envuser");
        assert_eq!(s.password(), Some("svcpw"));
        // An empty value in the string still counts as given.
        let s = ConnParams::parse("service=svc host=''")
            .unwrap()
            .resolve(&env.clone().with_default_socket_dir("/sock"))
            .unwrap();
        assert_eq!(s.hosts()[0].host(), "/sock");
        // A service file's bad value fails as the string's would.
        std::fs::write(&file, "[svc]\nsslmode=bogus\n").unwrap();
        assert_eq!(
            ConnParams::parse("service=svc")
                .unwrap()
                .resolve(&env)
                .unwrap_err()
                .to_string(),
            "invalid sslmode value: \"bogus\""
        );
        assert_eq!(
            ConnParams::parse("service=other")
                .unwrap()
                .resolve(&env)
                .unwrap_err()
                .to_string(),
            "definition of service \"other\" not found"
        );
    }

    #[cfg(unix)]
    #[test]
    fn password_file_lookups() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_path_buf();
        let pgpass = home.join(".pgpass");
        std::fs::write(
            &pgpass,
            "localhost:5432:*:u:local\n\
             db\\:x:*:*:u:escaped\\:host\n\
             192.0.2.1:*:*:u:byaddr\n\
             *:5433:shop:*:wild\n",
        )
        .unwrap();
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = env()
            .with_home(Some(home.clone()))
            .with_default_socket_dir("/sock");
        let password = |conninfo: &str| {
            let s = ConnParams::parse(conninfo).unwrap().resolve(&env).unwrap();
            s.hosts()
                .iter()
                .map(|t| s.password_for(t))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ConnParams::parse("")
                .unwrap()
                .resolve(&env)
                .unwrap()
                .password_file(),
            Some(format!("{}/.pgpass", home.display()))
        );
        // The default socket directory and an empty host look up "localhost"; another
        // socket directory does not.
        assert_eq!(password("user=u"), vec![Some("local".into())]);
        assert_eq!(password("user=u host=/sock"), vec![Some("local".into())]);
        // The port as written, as libpq compares it.
        assert_eq!(password("user=u port=5432"), vec![Some("local".into())]);
        assert_eq!(password("user=u port=05432"), vec![None]);
        assert_eq!(password("user=u host=/other"), vec![None]);
        assert_eq!(
            password("user=u host=localhost"),
            vec![Some("local".into())]
        );
        assert_eq!(
            password("user=u host=db:x"),
            vec![Some("escaped:host".into())]
        );
        assert_eq!(
            password("user=u hostaddr=192.0.2.1"),
            vec![Some("byaddr".into())]
        );
        assert_eq!(
            password("user=v host=a,b port=5433,5432 dbname=shop"),
            vec![Some("wild".into()), None]
        );
        // An explicit password wins; the file is not needed then.
        assert_eq!(
            password("user=u password=given"),
            vec![Some("given".into())]
        );
        // passfile names another file.
        let other = home.join("other");
        std::fs::write(&other, "*:*:*:*:other\n").unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
        let conninfo = format!("user=u passfile={}", other.display());
        assert_eq!(password(&conninfo), vec![None]);
        let s = ConnParams::parse(&conninfo).unwrap().resolve(&env).unwrap();
        assert_eq!(
            s.password_file_lookup(&s.hosts()[0]),
            PasswordFileLookup::Refused(format!(
                "WARNING: password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                other.display()
            ))
        );
    }

    proptest::proptest! {
        #[test]
        fn resolving_never_panics(s in ".{0,64}") {
            if let Ok(params) = ConnParams::parse(&s) {
                let _ = params.resolve(&env());
            }
        }

        #[test]
        fn resolving_keyword_soup_never_panics(
            pairs in proptest::collection::vec((0..KEYWORDS.len(), "[ -~]{0,8}"), 0..6)
        ) {
            let mut params = ConnParams::new();
            for (index, value) in pairs {
                params.set(KEYWORDS[index].name, value).unwrap();
            }
            let _ = params.resolve(&env());
        }
    }

    #[test]
    fn session_resumption_is_pgtls_own_setting_and_scopes_each_port() {
        let settings = resolve("host=a,b port=5432,6432 sslmode=require").unwrap();
        assert_eq!(settings.session_resumption(), SessionResumption::disabled());
        let targets = settings.to_configs().unwrap();
        assert!(!targets[0].1.resumes_sessions());
        assert_eq!(targets[1].1.port(), Some(6432));
        let targets = settings
            .with_session_resumption(SessionResumption::in_memory())
            .to_configs()
            .unwrap();
        assert_eq!(
            (targets[0].1.port(), targets[1].1.port()),
            (Some(5432), Some(6432))
        );
        assert!(targets.iter().all(|(_, config)| config.resumes_sessions()));
        let with = |value: &str| {
            let env = Environment::from_vars([("PGTLS_SESSION_RESUMPTION", value)])
                .with_os_user("osuser");
            ConnParams::parse("host=a sslmode=require")
                .unwrap()
                .resolve(&env)
        };
        for on in ["on", "1"] {
            assert!(with(on).unwrap().session_resumption().is_enabled());
        }
        for off in ["off", "0", ""] {
            assert!(!with(off).unwrap().session_resumption().is_enabled());
        }
        assert_eq!(
            with("yes").unwrap_err().to_string(),
            "invalid PGTLS_SESSION_RESUMPTION value: \"yes\""
        );
        // Not a connection-string keyword.
        assert!(ConnParams::parse("host=a session_resumption=on").is_err());
    }
}
