//! [`Environment`]: where libpq's defaults come from, injectable so that tests never
//! touch the process environment.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The environment libpq reads its defaults from: environment variables (`PGHOST`,
/// `PGSSLMODE`, ...), the operating-system user name (the default `user`), the home
/// directory (where `~/.postgresql/root.crt`, `~/.pg_service.conf` and `~/.pgpass` live),
/// and two places libpq has compiled in: the system configuration directory (where
/// `pg_service.conf` is looked for when `PGSYSCONFDIR` is unset) and the Unix-socket
/// directory used when no host is given ([`DEFAULT_SOCKET_DIR`]). They are Debian's libpq
/// 15's and can be changed with [`Environment::with_sysconfdir`] and
/// [`Environment::with_default_socket_dir`], to act as a libpq built differently
/// (upstream's builds use `/tmp` for the socket). Only
/// [`Environment::from_process_env`] starts with a system configuration directory
/// ([`DEFAULT_SYSCONFDIR`]): an environment built by hand reads no system file unless
/// it sets `PGSYSCONFDIR` or calls [`Environment::with_sysconfdir`].
///
/// [`Environment::from_process_env`] reads the real ones, the way libpq does; the other
/// constructors build one by hand, for tests or for programs that keep their settings
/// elsewhere.
///
/// ```
/// use pgtls::libpq::{ConnParams, Environment};
/// # fn main() -> Result<(), pgtls::libpq::SettingsError> {
/// let env = Environment::from_vars([("PGSSLMODE", "require"), ("PGHOST", "db.example.com")])
///     .with_os_user("alice");
/// let settings = ConnParams::parse("port=5433")?.resolve(&env)?;
/// assert_eq!(settings.sslmode(), pgtls::SslMode::Require);
/// assert_eq!(settings.hosts()[0].host(), "db.example.com");
/// assert_eq!(settings.user(), "alice");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Environment {
    lookup: Lookup,
    os_user: Result<String, String>,
    home: Option<PathBuf>,
    sysconfdir: Option<PathBuf>,
    socket_dir: String,
}

/// Where libpq looks for `pg_service.conf` when `PGSYSCONFDIR` is unset: Debian's libpq
/// 15 was built with `/etc/postgresql-common` (`pg_config --sysconfdir`).
pub const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// The Unix-socket directory libpq connects to when neither `host`, `hostaddr` nor
/// `PGHOST` is given: Debian's `/var/run/postgresql` (upstream builds use `/tmp`). A
/// platform without Unix-domain sockets uses `localhost` instead, as libpq does there.
#[cfg(unix)]
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The host libpq connects to when neither `host`, `hostaddr` nor `PGHOST` is given; on
/// platforms without Unix-domain sockets libpq uses `localhost`.
#[cfg(not(unix))]
pub const DEFAULT_SOCKET_DIR: &str = "localhost";

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("os_user", &self.os_user)
            .field("home", &self.home)
            .field("sysconfdir", &self.sysconfdir)
            .field("socket_dir", &self.socket_dir)
            .finish_non_exhaustive()
    }
}

const NO_USER: &str = "could not determine the local user name";

impl Environment {
    /// No variables, no OS user (the `user` keyword must then be given), no home
    /// directory (the `~/.postgresql` defaults are quietly absent).
    pub fn empty() -> Self {
        Environment {
            lookup: Arc::new(|_| None),
            os_user: Err(NO_USER.to_owned()),
            home: None,
            sysconfdir: None,
            socket_dir: DEFAULT_SOCKET_DIR.to_owned(),
        }
    }

    /// Variables from `lookup`. The home directory is `lookup("HOME")` when that is set
    /// and not empty; the OS user is unknown until [`Environment::with_os_user`].
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        let home = lookup("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        Environment {
            lookup: Arc::new(lookup),
            os_user: Err(NO_USER.to_owned()),
            home,
            sysconfdir: None,
            socket_dir: DEFAULT_SOCKET_DIR.to_owned(),
        }
    }

    /// Variables from a list of pairs (see [`Environment::from_fn`]).
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Environment::from_fn(move |name| map.get(name).cloned())
    }

    /// The process's environment, as libpq reads it: variables from `std::env` (a
    /// variable whose value is not UTF-8 counts as unset), the user name of the effective
    /// user ID from the password database, and the home directory from `HOME`, or from
    /// the password database when `HOME` is unset or empty.
    pub fn from_process_env() -> Self {
        let mut env = Environment::from_fn(|name| std::env::var(name).ok())
            .with_sysconfdir(DEFAULT_SYSCONFDIR);
        let account = process_account();
        if env.home.is_none() {
            env.home = account.as_ref().ok().and_then(|a| a.1.clone());
        }
        env.os_user = account.map(|a| a.0);
        env
    }

    /// Sets the operating-system user name (libpq's default for `user`).
    pub fn with_os_user(mut self, user: impl Into<String>) -> Self {
        self.os_user = Ok(user.into());
        self
    }

    /// Sets or clears the home directory (where `.postgresql/` is looked for).
    pub fn with_home(mut self, home: Option<PathBuf>) -> Self {
        self.home = home;
        self
    }

    /// Sets the compiled-in system configuration directory (used when `PGSYSCONFDIR` is
    /// unset; [`DEFAULT_SYSCONFDIR`] for [`Environment::from_process_env`], none for
    /// the other constructors).
    pub fn with_sysconfdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.sysconfdir = Some(dir.into());
        self
    }

    /// Sets the compiled-in default Unix-socket directory (default
    /// [`DEFAULT_SOCKET_DIR`]): the host when none is given, and the directory the
    /// password file's `localhost` also matches.
    pub fn with_default_socket_dir(mut self, dir: impl Into<String>) -> Self {
        self.socket_dir = dir.into();
        self
    }

    /// Where `pg_service.conf` is looked for: `PGSYSCONFDIR` when set, else the
    /// compiled-in directory, if any.
    pub fn sysconfdir(&self) -> Option<PathBuf> {
        self.var("PGSYSCONFDIR")
            .map(PathBuf::from)
            .or_else(|| self.sysconfdir.clone())
    }

    /// The default Unix-socket directory (see [`Environment::with_default_socket_dir`]).
    pub fn default_socket_dir(&self) -> &str {
        &self.socket_dir
    }

    /// The value of an environment variable.
    pub fn var(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The operating-system user name, or why it is unknown.
    pub fn os_user(&self) -> Result<&str, &str> {
        match &self.os_user {
            Ok(user) => Ok(user),
            Err(message) => Err(message),
        }
    }

    /// The home directory, if known.
    pub fn home(&self) -> Option<&std::path::Path> {
        self.home.as_deref()
    }
}

/// The effective user's name and home directory (`pg_fe_getauthname`,
/// `pqGetHomeDirectory`), with libpq's message when the lookup fails.
#[cfg(unix)]
fn process_account() -> Result<(String, Option<PathBuf>), String> {
    use nix::unistd::{Uid, User};
    let uid = Uid::effective();
    match User::from_uid(uid) {
        Ok(Some(user)) => Ok((user.name, Some(user.dir))),
        Ok(None) => Err(format!("local user with ID {uid} does not exist")),
        Err(err) => Err(format!("could not look up local user ID {uid}: {err}")),
    }
}

#[cfg(not(unix))]
fn process_account() -> Result<(String, Option<PathBuf>), String> {
    match std::env::var("USERNAME") {
        Ok(name) if !name.is_empty() => Ok((
            name,
            std::env::var("APPDATA")
                .ok()
                .map(|d| PathBuf::from(d).join("postgresql")),
        )),
        _ => Err(NO_USER.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vars_reads_home_and_variables() {
        let env = Environment::from_vars([("HOME", "/h"), ("PGPORT", "1")]);
        assert_eq!(env.home(), Some(std::path::Path::new("/h")));
        assert_eq!(env.var("PGPORT").as_deref(), Some("1"));
        assert_eq!(env.var("PGHOST"), None);
        assert!(env.os_user().is_err());
        let env = Environment::from_vars([("HOME", "")]);
        assert_eq!(env.home(), None);
    }

    #[test]
    fn empty_has_nothing() {
        let env = Environment::empty();
        assert_eq!(env.home(), None);
        assert_eq!(env.var("HOME"), None);
        assert_eq!(env.os_user(), Err(NO_USER));
        let env = env.with_os_user("bob").with_home(Some("/x".into()));
        assert_eq!(env.os_user(), Ok("bob"));
        assert_eq!(env.home(), Some(std::path::Path::new("/x")));
    }

    #[test]
    fn compiled_in_directories_default_to_debians_and_can_be_changed() {
        let env = Environment::empty();
        assert_eq!(env.sysconfdir(), None);
        assert_eq!(env.default_socket_dir(), DEFAULT_SOCKET_DIR);
        let env = env
            .with_sysconfdir("/etc/x")
            .with_default_socket_dir("/tmp");
        assert_eq!(env.sysconfdir(), Some(PathBuf::from("/etc/x")));
        assert_eq!(env.default_socket_dir(), "/tmp");
        // PGSYSCONFDIR beats the compiled-in directory.
        let env = Environment::from_vars([("PGSYSCONFDIR", "/srv/pg")]).with_sysconfdir("/etc/x");
        assert_eq!(env.sysconfdir(), Some(PathBuf::from("/srv/pg")));
        // The process environment has Debian's directory unless PGSYSCONFDIR is set.
        let process = Environment::from_process_env();
        if std::env::var_os("PGSYSCONFDIR").is_none() {
            assert_eq!(
                process.sysconfdir(),
                Some(PathBuf::from(DEFAULT_SYSCONFDIR))
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_process_account_is_found() {
        // Reads the password database only; the process environment is not consulted.
        let (name, _home) = process_account().unwrap();
        assert!(!name.is_empty());
    }
}
