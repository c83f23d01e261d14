//! [`Environment`]: where libpq's defaults come from, injectable so that tests never
//! touch the process environment.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The environment libpq reads its defaults from: environment variables (`PGHOST`,
/// `PGSSLMODE`, ...), the operating-system user name (the default `user`) and the home
/// directory (where `~/.postgresql/root.crt` and friends live).
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
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("os_user", &self.os_user)
            .field("home", &self.home)
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
        let mut env = Environment::from_fn(|name| std::env::var(name).ok());
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

    #[cfg(unix)]
    #[test]
    fn the_process_account_is_found() {
        // Reads the password database only; the process environment is not consulted.
        let (name, _home) = process_account().unwrap();
        assert!(!name.is_empty());
    }
}
