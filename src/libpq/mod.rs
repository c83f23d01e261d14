//! libpq's settings surface: connection strings, environment variables and the
//! `~/.postgresql/` files, turned into [`Config`](crate::Config)s.
//!
//! This layer reads files and (through [`Environment::from_process_env`]) the process
//! environment; the core it feeds does neither.
//!
//! ```no_run
//! use pgtls::libpq::{ConnParams, Environment};
//! # fn main() -> Result<(), pgtls::libpq::SettingsError> {
//! let params = ConnParams::parse("postgresql://app@db.example.com/shop?sslmode=verify-full")?;
//! let settings = params.resolve(&Environment::from_process_env())?;
//! for (target, config) in settings.to_configs()? {
//!     // connect to (target.connect_host(), target.port()) and run config.plan()
//!     # let _ = (target, config);
//! }
//! # Ok(()) }
//! ```
//!
//! Three steps, each with libpq's rules and messages:
//!
//! 1. [`ConnParams::parse`]: the string, in `key=value` or URI form. Syntax and unknown
//!    keywords fail here (`missing "=" after "host" in connection info string`,
//!    `invalid connection option "foo"`, `invalid URI query parameter: "foo"`).
//! 2. [`ConnParams::resolve`]: the service's settings (`service` / `PGSERVICE`, from
//!    `PGSERVICEFILE` or `~/.pg_service.conf`, then `PGSYSCONFDIR/pg_service.conf`) and
//!    then environment defaults for what the string left out
//!    (`PGHOST`, `PGHOSTADDR`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
//!    `PGCONNECT_TIMEOUT`, `PGAPPNAME`, `PGSSLMODE`, `PGSSLNEGOTIATION`, `PGSSLROOTCERT`,
//!    `PGSSLCRL`, `PGSSLCRLDIR`, `PGSSLCERT`, `PGSSLKEY`, `PGSSLCERTMODE`, `PGSSLSNI`,
//!    `PGSSLMINPROTOCOLVERSION`, `PGSSLMAXPROTOCOLVERSION`, `PGCHANNELBINDING`,
//!    `PGGSSENCMODE`, the legacy `PGREQUIRESSL=1`, and the other variables of libpq's
//!    table), then validation: host/port lists, the enumerated values, protocol
//!    versions, integers. The result is a [`Settings`].
//! 3. [`Settings::to_configs`]: reads the TLS files ([`TlsFiles`]) and builds one
//!    [`Config`](crate::Config) per host of [`Settings::hosts`].
//!
//! ## Where pgtls differs from libpq here
//! - The compiled-in directories are Debian's libpq 15's: the default host is the socket
//!   directory [`DEFAULT_HOST`] (`/var/run/postgresql`; upstream's libpq uses `/tmp`) and
//!   `pg_service.conf` is looked for in [`DEFAULT_SYSCONFDIR`] (`/etc/postgresql-common`)
//!   when `PGSYSCONFDIR` is unset (by [`Environment::from_process_env`]; an environment
//!   built by hand has no such directory unless given one). [`Environment::with_default_socket_dir`] and
//!   [`Environment::with_sysconfdir`] change them. As in libpq, a Unix-socket host never
//!   uses TLS, whatever `sslmode` says.
//! - The password file is not read while resolving: a driver asks for it with
//!   [`Settings::password_for`] (or [`Settings::password_file_lookup`], which also gives
//!   libpq's warning for a file with group or world access, where libpq prints it).
//! - Service files are read as libpq 15 and 18 read them (no `servicefile` keyword, no
//!   LDAP lookups).
//! - Keywords pgtls does not act on are kept and, except for `target_session_attrs` and
//!   `load_balance_hosts` (whose values are checked as libpq checks them), not validated.
//! - Values checked by libpq only while connecting (`connect_timeout`, each `port`) are
//!   checked by [`ConnParams::resolve`]; an out-of-range port fails the whole settings
//!   where libpq would skip to the next host.
//! - TLS files are read by [`Settings::to_configs`], before any connection. Under
//!   `allow`/`prefer` a broken file fails each TLS attempt instead (the plan falls back,
//!   as libpq's does); under `require` and stronger it fails the settings at once, where
//!   libpq would fail the first TLS attempt — the same end, but a server answering `N`
//!   is then reported with the file's error rather than
//!   `server does not support SSL, but SSL was required`.
//! - GSSAPI is absent, as in a libpq built without it: `gssencmode` defaults to
//!   `disable`, and `gssencmode=require` fails with
//!   [`ConfigError::GssEncryptionUnsupported`](crate::ConfigError::GssEncryptionUnsupported).
//! - A root or client certificate file may also be one DER certificate (libpq reads PEM
//!   only).
//! - Percent-decoded URI parts must be UTF-8.
//! - Session resumption (libpq never resumes) is pgtls's own setting, never a
//!   connection-string keyword: [`Settings::with_session_resumption`] or the environment
//!   variable `PGTLS_SESSION_RESUMPTION=on`. Off by default.

mod conninfo;
mod env;
mod error;
mod files;
mod params;
pub(crate) mod passfile;
pub(crate) mod service;
mod transport;

pub use conninfo::ConnParams;
pub use env::{Environment, DEFAULT_SOCKET_DIR, DEFAULT_SYSCONFDIR};
pub use error::SettingsError;
pub use files::TlsFiles;
pub use params::{ChannelBinding, GssEncMode, HostTarget, Settings, DEFAULT_HOST, DEFAULT_PORT};
pub use passfile::PasswordFileLookup;
pub use transport::{
    connect_failure_text, host_lookup_failure_text, os_error_text, SOCKET_CONNECT_HINT,
    TCP_CONNECT_HINT,
};
