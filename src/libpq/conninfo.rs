//! Connection strings: libpq's `key=value` form and `postgresql://` URIs
//! (`conninfo_parse`, `conninfo_uri_parse_options`, `conninfo_uri_decode` in
//! `fe-connect.c`), and the way back to a `key=value` string.

use std::fmt;
use std::str::FromStr;

use super::env::Environment;
use super::error::SettingsError;
use super::params::Settings;

/// One libpq keyword: its name and the environment variable that supplies its default.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keyword {
    pub(crate) name: &'static str,
    pub(crate) env: Option<&'static str>,
    /// Shown as `*` by libpq's connection dialogs: hidden in `Debug` output.
    pub(crate) secret: bool,
}

const fn kw(name: &'static str, env: Option<&'static str>) -> Keyword {
    Keyword {
        name,
        env,
        secret: false,
    }
}

const fn secret(name: &'static str, env: Option<&'static str>) -> Keyword {
    Keyword {
        name,
        env,
        secret: true,
    }
}

/// libpq 18's `PQconninfoOptions`, in its order (the order used when rendering).
pub(crate) const KEYWORDS: &[Keyword] = &[
    kw("service", Some("PGSERVICE")),
    kw("user", Some("PGUSER")),
    secret("password", Some("PGPASSWORD")),
    kw("passfile", Some("PGPASSFILE")),
    kw("channel_binding", Some("PGCHANNELBINDING")),
    kw("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    kw("dbname", Some("PGDATABASE")),
    kw("host", Some("PGHOST")),
    kw("hostaddr", Some("PGHOSTADDR")),
    kw("port", Some("PGPORT")),
    kw("client_encoding", Some("PGCLIENTENCODING")),
    kw("options", Some("PGOPTIONS")),
    kw("application_name", Some("PGAPPNAME")),
    kw("fallback_application_name", None),
    kw("keepalives", None),
    kw("keepalives_idle", None),
    kw("keepalives_interval", None),
    kw("keepalives_count", None),
    kw("tcp_user_timeout", None),
    kw("sslmode", Some("PGSSLMODE")),
    kw("sslnegotiation", Some("PGSSLNEGOTIATION")),
    kw("sslcompression", Some("PGSSLCOMPRESSION")),
    kw("sslcert", Some("PGSSLCERT")),
    kw("sslkey", Some("PGSSLKEY")),
    kw("sslcertmode", Some("PGSSLCERTMODE")),
    secret("sslpassword", None),
    kw("sslrootcert", Some("PGSSLROOTCERT")),
    kw("sslcrl", Some("PGSSLCRL")),
    kw("sslcrldir", Some("PGSSLCRLDIR")),
    kw("sslsni", Some("PGSSLSNI")),
    kw("requirepeer", Some("PGREQUIREPEER")),
    kw("require_auth", Some("PGREQUIREAUTH")),
    kw("min_protocol_version", Some("PGMINPROTOCOLVERSION")),
    kw("max_protocol_version", Some("PGMAXPROTOCOLVERSION")),
    kw("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    kw("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    kw("gssencmode", Some("PGGSSENCMODE")),
    kw("krbsrvname", Some("PGKRBSRVNAME")),
    kw("gsslib", Some("PGGSSLIB")),
    kw("gssdelegation", Some("PGGSSDELEGATION")),
    kw("replication", None),
    kw("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    kw("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
    kw("scram_client_key", None),
    kw("scram_server_key", None),
    kw("oauth_issuer", None),
    kw("oauth_client_id", None),
    secret("oauth_client_secret", None),
    kw("oauth_scope", None),
    kw("sslkeylogfile", None),
];

fn keyword_index(name: &str) -> Option<usize> {
    KEYWORDS.iter().position(|k| k.name == name)
}

/// A libpq connection string, parsed: the keywords it sets and their values, exactly as
/// written (after unquoting and percent-decoding), nothing validated yet.
///
/// Both of libpq's forms are accepted:
///
/// - `key=value` pairs separated by whitespace; spaces around `=` are allowed; a value
///   may be single-quoted (`'a value'`), and `\'` / `\\` escape a quote or a backslash
///   inside or outside quotes.
/// - `postgresql://` or `postgres://` URIs:
///   `postgresql://[user[:password]@][host][:port][,host[:port]...][/dbname][?key=value&...]`
///   with percent-encoding in every part, `[::1]` for IPv6 addresses, and the JDBC-style
///   `ssl=true` meaning `sslmode=require`.
///
/// The keywords are libpq 18's (every keyword it knows is accepted and kept, even those
/// pgtls does not act on, such as `options`, `keepalives` or `target_session_attrs`).
/// The legacy `requiressl=1` is stored as `sslmode=require` and any other `requiressl`
/// value as `sslmode=prefer`, as libpq does. A later setting of a keyword replaces an
/// earlier one.
///
/// Values are checked later, by [`ConnParams::resolve`], which also applies the
/// environment's defaults (`PGSSLMODE`, `PGHOST`, ...).
///
/// ```
/// use pgtls::libpq::ConnParams;
/// # fn main() -> Result<(), pgtls::libpq::SettingsError> {
/// let params = ConnParams::parse("host=db.example.com port = 5433 sslmode=verify-full \
///                                 application_name='my app'")?;
/// assert_eq!(params.get("port"), Some("5433"));
/// assert_eq!(params.get("application_name"), Some("my app"));
///
/// let uri = ConnParams::parse("postgresql://alice:s%40cret@[::1]:5433,db2/shop?ssl=true")?;
/// assert_eq!(uri.get("user"), Some("alice"));
/// assert_eq!(uri.get("password"), Some("s@cret"));
/// assert_eq!(uri.get("host"), Some("::1,db2"));
/// assert_eq!(uri.get("port"), Some("5433,"));
/// assert_eq!(uri.get("dbname"), Some("shop"));
/// assert_eq!(uri.get("sslmode"), Some("require"));
///
/// let err = ConnParams::parse("host=db sslmod=require").unwrap_err();
/// assert_eq!(err.to_string(), "invalid connection option \"sslmod\"");
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConnParams {
    values: Vec<Option<String>>,
}

impl Default for ConnParams {
    fn default() -> Self {
        ConnParams {
            values: vec![None; KEYWORDS.len()],
        }
    }
}

impl fmt::Debug for ConnParams {
    /// Lists the keywords that are set; passwords and secrets show as `*****`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (keyword, value) in KEYWORDS.iter().zip(&self.values) {
            if let Some(value) = value {
                if keyword.secret {
                    map.entry(&keyword.name, &"*****");
                } else {
                    map.entry(&keyword.name, value);
                }
            }
        }
        map.finish()
    }
}

impl FromStr for ConnParams {
    type Err = SettingsError;

    /// Same as [`ConnParams::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnParams::parse(s)
    }
}

impl ConnParams {
    /// No keyword set.
    pub fn new() -> Self {
        ConnParams::default()
    }

    /// Parses a connection string in either form (a URI if it starts with
    /// `postgresql://` or `postgres://`, else `key=value` pairs). As in C, the string ends
    /// at a NUL character if it holds one.
    ///
    /// # Errors
    /// libpq's messages, e.g. `missing "=" after "host" in connection info string`,
    /// `unterminated quoted string in connection info string`,
    /// `invalid connection option "foo"`, `invalid URI query parameter: "foo"`,
    /// `invalid percent-encoded token: "%zz"`.
    pub fn parse(connection_string: &str) -> Result<Self, SettingsError> {
        let s = connection_string
            .split('\0')
            .next()
            .unwrap_or(connection_string);
        match uri_prefix_length(s) {
            Some(prefix) => parse_uri(s, prefix),
            None => parse_key_value(s),
        }
    }

    /// Whether `keyword` is one libpq knows (`requiressl` counts: it sets `sslmode`).
    pub fn is_keyword(keyword: &str) -> bool {
        keyword == "requiressl" || keyword_index(keyword).is_some()
    }

    /// The value of `keyword`, if set.
    pub fn get(&self, keyword: &str) -> Option<&str> {
        let index = keyword_index(keyword)?;
        self.values[index].as_deref()
    }

    /// Sets `keyword`, as if `keyword='value'` were appended to the string
    /// (`requiressl` is translated to `sslmode`).
    ///
    /// # Errors
    /// `invalid connection option "<keyword>"`, or a value holding a NUL byte.
    pub fn set(&mut self, keyword: &str, value: impl Into<String>) -> Result<(), SettingsError> {
        let value = value.into();
        if value.contains('\0') {
            return Err(SettingsError::NulByte {
                keyword: keyword.to_owned(),
            });
        }
        self.store(keyword, value)
            .map_err(|()| SettingsError::InvalidOption {
                keyword: keyword.to_owned(),
            })
    }

    /// Unsets `keyword` and returns its value.
    pub fn remove(&mut self, keyword: &str) -> Option<String> {
        let index = keyword_index(keyword)?;
        self.values[index].take()
    }

    /// The keywords that are set, with their values, in libpq's keyword order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        KEYWORDS
            .iter()
            .zip(&self.values)
            .filter_map(|(keyword, value)| value.as_deref().map(|v| (keyword.name, v)))
    }

    /// Whether no keyword is set.
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    /// Renders the settings as a `key=value` connection string that
    /// [`ConnParams::parse`] reads back to the same settings (values are single-quoted
    /// when they are empty or hold whitespace, a quote or a backslash). Passwords are
    /// included.
    ///
    /// ```
    /// use pgtls::libpq::ConnParams;
    /// # fn main() -> Result<(), pgtls::libpq::SettingsError> {
    /// let mut params = ConnParams::new();
    /// params.set("host", "db.example.com")?;
    /// params.set("application_name", "it's mine")?;
    /// let rendered = params.to_connection_string();
    /// assert_eq!(rendered, r"host=db.example.com application_name='it\'s mine'");
    /// assert_eq!(ConnParams::parse(&rendered)?, params);
    /// # Ok(()) }
    /// ```
    pub fn to_connection_string(&self) -> String {
        let mut out = String::new();
        for (keyword, value) in self.iter() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(keyword);
            out.push('=');
            push_value(&mut out, value);
        }
        out
    }

    /// Fills the keywords not set here from the service (`service` or `PGSERVICE`, looked
    /// up in `PGSERVICEFILE` or `~/.pg_service.conf`, then in
    /// `PGSYSCONFDIR/pg_service.conf`), then from the environment, and validates
    /// everything, with libpq's rules and messages: see [`Settings`]. The password file
    /// is not read here: see [`Settings::password_for`].
    ///
    /// # Errors
    /// The first problem libpq would report, in libpq's order: the service
    /// (`definition of service "x" not found`, `syntax error in service file "<path>",
    /// line <n>`, ...), then host/port counts, the user, `channel_binding`, `sslmode`,
    /// `sslnegotiation`, `sslrootcert=system`, the protocol versions, `sslcertmode`,
    /// `gssencmode`, ...
    pub fn resolve(&self, env: &Environment) -> Result<Settings, SettingsError> {
        Settings::resolve(self, env)
    }

    /// libpq's `conninfo_storeval`: `requiressl` becomes `sslmode`; `Err` for an
    /// unknown keyword.
    fn store(&mut self, keyword: &str, value: String) -> Result<(), ()> {
        let (keyword, value) = if keyword == "requiressl" {
            let mode = if value.starts_with('1') {
                "require"
            } else {
                "prefer"
            };
            ("sslmode", mode.to_owned())
        } else {
            (keyword, value)
        };
        let index = keyword_index(keyword).ok_or(())?;
        self.values[index] = Some(value);
        Ok(())
    }

    pub(crate) fn get_index(&self, index: usize) -> Option<&str> {
        self.values.get(index).and_then(|v| v.as_deref())
    }

    pub(crate) fn set_index(&mut self, index: usize, value: String) {
        if let Some(slot) = self.values.get_mut(index) {
            *slot = Some(value);
        }
    }
}

/// C's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .bytes()
            .any(|b| is_space(b) || b == b'\\' || b == b'\'')
}

fn push_value(out: &mut String, value: &str) {
    if !needs_quotes(value) {
        out.push_str(value);
        return;
    }
    out.push('\'');
    for c in value.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

fn bytes_to_string(bytes: Vec<u8>) -> String {
    // Only ASCII delimiters and backslashes are removed, so the bytes stay UTF-8; the
    // lossy path is never taken but keeps this total.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `conninfo_parse`: whitespace-separated `key=value` pairs.
fn parse_key_value(s: &str) -> Result<ConnParams, SettingsError> {
    let b = s.as_bytes();
    let len = b.len();
    let mut params = ConnParams::new();
    let mut i = 0;
    while i < len {
        if is_space(b[i]) {
            i += 1;
            continue;
        }
        let name_start = i;
        while i < len && b[i] != b'=' && !is_space(b[i]) {
            i += 1;
        }
        let name = bytes_to_string(b[name_start..i].to_vec());
        while i < len && is_space(b[i]) {
            i += 1;
        }
        if i >= len || b[i] != b'=' {
            return Err(SettingsError::MissingEquals { keyword: name });
        }
        i += 1;
        while i < len && is_space(b[i]) {
            i += 1;
        }
        let mut value = Vec::new();
        if i < len && b[i] == b'\'' {
            i += 1;
            loop {
                if i >= len {
                    return Err(SettingsError::UnterminatedQuote);
                }
                match b[i] {
                    b'\\' => {
                        i += 1;
                        if i < len {
                            value.push(b[i]);
                            i += 1;
                        }
                    }
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < len {
                match b[i] {
                    c if is_space(c) => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        i += 1;
                        if i < len {
                            value.push(b[i]);
                            i += 1;
                        }
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        }
        params
            .store(&name, bytes_to_string(value))
            .map_err(|()| SettingsError::InvalidOption { keyword: name })?;
    }
    Ok(params)
}

fn uri_prefix_length(s: &str) -> Option<usize> {
    ["postgresql://", "postgres://"]
        .into_iter()
        .find(|prefix| s.starts_with(prefix))
        .map(str::len)
}

/// `conninfo_uri_parse_options`.
fn parse_uri(uri: &str, prefix: usize) -> Result<ConnParams, SettingsError> {
    let b = uri.as_bytes();
    let len = b.len();
    let at = |i: usize| b.get(i).copied();
    let mut params = ConnParams::new();
    let start = prefix;
    let mut p = start;

    // user[:password]@ — only if an '@' comes before any '/'.
    let mut q = start;
    while q < len && b[q] != b'@' && b[q] != b'/' {
        q += 1;
    }
    if at(q) == Some(b'@') {
        let mut e = start;
        while e < q && b[e] != b':' {
            e += 1;
        }
        let user = &uri[start..e];
        if !user.is_empty() {
            store_decoded(&mut params, "user", user)?;
        }
        if e < q {
            let password = &uri[e + 1..q];
            if !password.is_empty() {
                store_decoded(&mut params, "password", password)?;
            }
        }
        p = q + 1;
    }

    // host[:port] pairs separated by commas.
    let mut hosts = String::new();
    let mut ports = String::new();
    let mut terminator;
    loop {
        let host;
        if at(p) == Some(b'[') {
            let host_start = p + 1;
            p = host_start;
            while p < len && b[p] != b']' {
                p += 1;
            }
            if p >= len {
                return Err(SettingsError::UriUnterminatedIpv6 {
                    uri: uri.to_owned(),
                });
            }
            if p == host_start {
                return Err(SettingsError::UriEmptyIpv6 {
                    uri: uri.to_owned(),
                });
            }
            host = &uri[host_start..p];
            p += 1;
            if let Some(c) = at(p) {
                if !matches!(c, b':' | b'/' | b'?' | b',') {
                    return Err(SettingsError::UriUnexpectedCharacter {
                        character: uri[p..].chars().next().unwrap_or('?'),
                        position: p + 1,
                        uri: uri.to_owned(),
                    });
                }
            }
        } else {
            let host_start = p;
            while p < len && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                p += 1;
            }
            host = &uri[host_start..p];
        }
        terminator = at(p);
        hosts.push_str(host);
        if terminator == Some(b':') {
            p += 1;
            let port_start = p;
            while p < len && !matches!(b[p], b'/' | b'?' | b',') {
                p += 1;
            }
            terminator = at(p);
            ports.push_str(&uri[port_start..p]);
        }
        if terminator != Some(b',') {
            break;
        }
        p += 1;
        hosts.push(',');
        ports.push(',');
    }
    if !hosts.is_empty() {
        store_decoded(&mut params, "host", &hosts)?;
    }
    if !ports.is_empty() {
        store_decoded(&mut params, "port", &ports)?;
    }

    // /dbname
    if terminator.is_some() && terminator != Some(b'?') {
        p += 1;
        let db_start = p;
        while p < len && b[p] != b'?' {
            p += 1;
        }
        terminator = at(p);
        let dbname = &uri[db_start..p];
        if !dbname.is_empty() {
            store_decoded(&mut params, "dbname", dbname)?;
        }
    }

    // ?key=value&...
    if terminator.is_some() {
        parse_query(&uri[p + 1..], &mut params)?;
    }
    Ok(params)
}

fn store_decoded(
    params: &mut ConnParams,
    keyword: &'static str,
    raw: &str,
) -> Result<(), SettingsError> {
    let value = uri_decode(raw)?;
    params
        .store(keyword, value)
        .map_err(|()| SettingsError::InvalidOption {
            keyword: keyword.to_owned(),
        })
}

/// `conninfo_uri_parse_params`.
fn parse_query(query: &str, params: &mut ConnParams) -> Result<(), SettingsError> {
    let b = query.as_bytes();
    let len = b.len();
    let mut p = 0;
    while p < len {
        let start = p;
        let mut equals: Option<usize> = None;
        let (raw_keyword, raw_value) = loop {
            if p < len && b[p] == b'=' {
                if let Some(first) = equals {
                    return Err(SettingsError::UriExtraEquals {
                        param: query[start..first].to_owned(),
                    });
                }
                equals = Some(p);
                p += 1;
            } else if p >= len || b[p] == b'&' {
                let end = p;
                if p < len {
                    p += 1;
                }
                let Some(first) = equals else {
                    return Err(SettingsError::UriMissingEquals {
                        param: query[start..end].to_owned(),
                    });
                };
                break (&query[start..first], &query[first + 1..end]);
            } else {
                p += 1;
            }
        };
        let keyword = uri_decode(raw_keyword)?;
        let value = uri_decode(raw_value)?;
        let (keyword, value) = if keyword == "ssl" && value == "true" {
            ("sslmode".to_owned(), "require".to_owned())
        } else {
            (keyword, value)
        };
        params
            .store(&keyword, value)
            .map_err(|()| SettingsError::InvalidUriQueryParameter { keyword })?;
    }
    Ok(())
}

fn hex_digit(b: Option<u8>) -> Option<u8> {
    match b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `conninfo_uri_decode` (libpq 18): percent-decoding; leading and trailing spaces are
/// dropped, spaces inside are an error.
fn uri_decode(raw: &str) -> Result<String, SettingsError> {
    let b = raw.as_bytes();
    let len = b.len();
    let mut i = 0;
    while i < len && b[i] == b' ' {
        i += 1;
    }
    let mut out = Vec::with_capacity(len);
    while i < len && b[i] != b' ' {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hi = hex_digit(b.get(i + 1).copied());
        let lo = hex_digit(b.get(i + 2).copied());
        let (Some(hi), Some(lo)) = (hi, lo) else {
            return Err(SettingsError::InvalidPercentEncoding {
                value: raw.to_owned(),
            });
        };
        let c = (hi << 4) | lo;
        if c == 0 {
            return Err(SettingsError::PercentEncodedNul {
                value: raw.to_owned(),
            });
        }
        out.push(c);
        i += 3;
    }
    while i < len && b[i] == b' ' {
        i += 1;
    }
    if i < len {
        return Err(SettingsError::UnexpectedSpaces {
            value: raw.to_owned(),
        });
    }
    String::from_utf8(out).map_err(|_| SettingsError::NotUtf8 {
        value: raw.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> ConnParams {
        ConnParams::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> String {
        match ConnParams::parse(s) {
            Ok(p) => panic!("{s:?} parsed: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn key_value_basics() {
        let p = parse("  host=db.example.com   port = 5433\tdbname =shop user= alice ");
        assert_eq!(p.get("host"), Some("db.example.com"));
        assert_eq!(p.get("port"), Some("5433"));
        assert_eq!(p.get("dbname"), Some("shop"));
        assert_eq!(p.get("user"), Some("alice"));
        assert_eq!(p.get("password"), None);
        assert!(parse("").is_empty());
        assert!(parse(" \t\n ").is_empty());
    }

    #[test]
    fn key_value_quotes_and_escapes() {
        let p = parse(r"application_name='my \'app\' \\ here' password=a\ b\\c options=''");
        assert_eq!(p.get("application_name"), Some(r"my 'app' \ here"));
        assert_eq!(p.get("password"), Some(r"a b\c"));
        assert_eq!(p.get("options"), Some(""));
        // A quote in the middle of an unquoted value is an ordinary character.
        assert_eq!(parse("password=it's").get("password"), Some("it's"));
        // A closing quote ends the value; the next keyword may follow at once.
        let p = parse("host='a'port=5");
        assert_eq!(p.get("host"), Some("a"));
        assert_eq!(p.get("port"), Some("5"));
        // Blanks after '=' are skipped, so an empty unquoted value swallows the next word.
        assert_eq!(parse("host= port=5").get("host"), Some("port=5"));
        assert_eq!(parse("host=").get("host"), Some(""));
        // Later settings win.
        assert_eq!(parse("port=1 port=2").get("port"), Some("2"));
        // Non-ASCII survives escapes.
        assert_eq!(parse(r"user=\été").get("user"), Some("été"));
    }

    #[test]
    fn key_value_errors_in_libpq_words() {
        assert_eq!(
            err("host"),
            "missing \"=\" after \"host\" in connection info string"
        );
        assert_eq!(
            err("host db"),
            "missing \"=\" after \"host\" in connection info string"
        );
        assert_eq!(
            err("host=x port"),
            "missing \"=\" after \"port\" in connection info string"
        );
        assert_eq!(
            err("password='abc"),
            "unterminated quoted string in connection info string"
        );
        assert_eq!(
            err(r"password='abc\'"),
            "unterminated quoted string in connection info string"
        );
        assert_eq!(err("foo=bar"), "invalid connection option \"foo\"");
        assert_eq!(err("=bar"), "invalid connection option \"\"");
        assert_eq!(
            err("SSLMODE=require"),
            "invalid connection option \"SSLMODE\""
        );
    }

    #[test]
    fn nul_ends_the_string() {
        let p = parse("host=a\0 foo=bar");
        assert_eq!(p.get("host"), Some("a"));
        let mut p = ConnParams::new();
        assert_eq!(
            p.set("host", "a\0b").unwrap_err().to_string(),
            "value for connection option \"host\" contains a NUL byte"
        );
    }

    #[test]
    fn requiressl_becomes_sslmode() {
        assert_eq!(parse("requiressl=1").get("sslmode"), Some("require"));
        assert_eq!(parse("requiressl=1x").get("sslmode"), Some("require"));
        assert_eq!(parse("requiressl=0").get("sslmode"), Some("prefer"));
        assert_eq!(
            parse("sslmode=verify-full requiressl=0").get("sslmode"),
            Some("prefer")
        );
        assert_eq!(
            parse("postgresql://h?requiressl=1").get("sslmode"),
            Some("require")
        );
        assert!(ConnParams::is_keyword("requiressl"));
        assert!(ConnParams::is_keyword("keepalives_idle"));
        assert!(!ConnParams::is_keyword("ssl"));
    }

    #[test]
    fn every_libpq_keyword_is_accepted() {
        for keyword in KEYWORDS {
            let p = parse(&format!("{}=x", keyword.name));
            assert_eq!(p.get(keyword.name), Some("x"));
        }
    }

    #[test]
    fn uri_full_form() {
        let p = parse("postgresql://alice:pa%3Ass@db.example.com:5433/shop?sslmode=verify-full&application_name=my%20app");
        assert_eq!(p.get("user"), Some("alice"));
        assert_eq!(p.get("password"), Some("pa:ss"));
        assert_eq!(p.get("host"), Some("db.example.com"));
        assert_eq!(p.get("port"), Some("5433"));
        assert_eq!(p.get("dbname"), Some("shop"));
        assert_eq!(p.get("sslmode"), Some("verify-full"));
        assert_eq!(p.get("application_name"), Some("my app"));
    }

    #[test]
    fn uri_short_forms() {
        assert!(parse("postgresql://").is_empty());
        assert!(parse("postgres://").is_empty());
        let p = parse("postgres://host");
        assert_eq!(p.get("host"), Some("host"));
        let p = parse("postgresql:///db");
        assert_eq!(p.get("host"), None);
        assert_eq!(p.get("dbname"), Some("db"));
        let p = parse("postgresql://:5433");
        assert_eq!(p.get("host"), None);
        assert_eq!(p.get("port"), Some("5433"));
        let p = parse("postgresql://user@");
        assert_eq!(p.get("user"), Some("user"));
        let p = parse("postgresql://:pw@h");
        assert_eq!(p.get("user"), None);
        assert_eq!(p.get("password"), Some("pw"));
        let p = parse("postgresql://h/?");
        assert_eq!(p.get("dbname"), None);
        let p = parse("postgresql://h/a/b");
        assert_eq!(p.get("dbname"), Some("a/b"));
        let p = parse("postgresql://h?dbname=x");
        assert_eq!(p.get("dbname"), Some("x"));
        // An '@' after the first '/' is not a user designator.
        let p = parse("postgresql://h/db@x");
        assert_eq!(p.get("user"), None);
        assert_eq!(p.get("dbname"), Some("db@x"));
        // The password runs to the first '@'.
        let p = parse("postgresql://u:p@ss@host");
        assert_eq!(p.get("password"), Some("p"));
        assert_eq!(p.get("host"), Some("ss@host"));
    }

    #[test]
    fn uri_ipv6_and_host_lists() {
        let p = parse("postgresql://[::1]:5433/db");
        assert_eq!(p.get("host"), Some("::1"));
        assert_eq!(p.get("port"), Some("5433"));
        let p = parse("postgresql://[2001:db8::1]");
        assert_eq!(p.get("host"), Some("2001:db8::1"));
        assert_eq!(p.get("port"), None);
        let p = parse("postgresql://h1:5432,[::1]:5433,h3/db");
        assert_eq!(p.get("host"), Some("h1,::1,h3"));
        assert_eq!(p.get("port"), Some("5432,5433,"));
        assert_eq!(p.get("dbname"), Some("db"));
        let p = parse("postgresql://h1,h2?sslmode=require");
        assert_eq!(p.get("host"), Some("h1,h2"));
        assert_eq!(p.get("port"), Some(","));
        assert_eq!(p.get("sslmode"), Some("require"));
        // Percent-encoded host lists and Unix-socket paths.
        let p = parse("postgresql://%2Fvar%2Frun%2Fpostgresql/db");
        assert_eq!(p.get("host"), Some("/var/run/postgresql"));
    }

    #[test]
    fn uri_query_parameters() {
        let p = parse("postgresql://h?ssl=true");
        assert_eq!(p.get("sslmode"), Some("require"));
        assert_eq!(
            err("postgresql://h?ssl=false"),
            "invalid URI query parameter: \"ssl\""
        );
        assert_eq!(
            err("postgresql://h?foo=bar"),
            "invalid URI query parameter: \"foo\""
        );
        let p = parse("postgresql://h?host=other&port=7");
        assert_eq!(p.get("host"), Some("other"));
        assert_eq!(p.get("port"), Some("7"));
        let p = parse("postgresql://h?ssl%6Dode=require&options=-c%20x%3Dy");
        assert_eq!(p.get("sslmode"), Some("require"));
        assert_eq!(p.get("options"), Some("-c x=y"));
        let p = parse("postgresql://h?sslmode=");
        assert_eq!(p.get("sslmode"), Some(""));
        // Leading and trailing spaces are dropped (libpq 18).
        let p = parse("postgresql://h?sslmode= require ");
        assert_eq!(p.get("sslmode"), Some("require"));
    }

    #[test]
    fn uri_errors_in_libpq_words() {
        assert_eq!(
            err("postgresql://[::1"),
            "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"postgresql://[::1\""
        );
        assert_eq!(
            err("postgresql://[]:5432"),
            "IPv6 host address may not be empty in URI: \"postgresql://[]:5432\""
        );
        assert_eq!(
            err("postgresql://[::1]x"),
            "unexpected character \"x\" at position 19 in URI (expected \":\" or \"/\"): \"postgresql://[::1]x\""
        );
        assert_eq!(
            err("postgresql://h?sslmode"),
            "missing key/value separator \"=\" in URI query parameter: \"sslmode\""
        );
        assert_eq!(
            err("postgresql://h?&port=1"),
            "missing key/value separator \"=\" in URI query parameter: \"\""
        );
        // A trailing '&' ends the list quietly, as in libpq.
        assert_eq!(parse("postgresql://h?port=1&").get("port"), Some("1"));
        assert_eq!(
            err("postgresql://h?sslmode=a=b"),
            "extra key/value separator \"=\" in URI query parameter: \"sslmode\""
        );
        assert_eq!(
            err("postgresql://h?password=%zz"),
            "invalid percent-encoded token: \"%zz\""
        );
        assert_eq!(
            err("postgresql://us%2er%4@h"),
            "invalid percent-encoded token: \"us%2er%4\""
        );
        assert_eq!(
            err("postgresql://h/db%00"),
            "forbidden value %00 in percent-encoded value: \"db%00\""
        );
        assert_eq!(
            err("postgresql://h?application_name=a b"),
            "unexpected spaces found in \"a b\", use percent-encoded spaces (%20) instead"
        );
        assert_eq!(
            err("postgresql://h/%ff"),
            "percent-decoded value is not valid UTF-8: \"%ff\""
        );
    }

    #[test]
    fn rendering_quotes_what_needs_it() {
        let mut p = ConnParams::new();
        p.set("host", "h").unwrap();
        p.set("password", "").unwrap();
        p.set("options", "-c a=b").unwrap();
        p.set("user", "'x").unwrap();
        p.set("dbname", r"a\b").unwrap();
        assert_eq!(
            p.to_connection_string(),
            r"user='\'x' password='' dbname='a\\b' host=h options='-c a=b'"
        );
        assert_eq!(parse(&p.to_connection_string()), p);
        assert_eq!(
            format!("{p:?}"),
            r#"{"user": "'x", "password": "*****", "dbname": "a\\b", "host": "h", "options": "-c a=b"}"#
        );
    }

    #[test]
    fn editing_and_iterating() {
        let mut p: ConnParams = "host=h port=1".parse().unwrap();
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            vec![("host", "h"), ("port", "1")]
        );
        p.set("requiressl", "1").unwrap();
        assert_eq!(p.get("sslmode"), Some("require"));
        assert_eq!(p.remove("port").as_deref(), Some("1"));
        assert_eq!(p.remove("port"), None);
        assert_eq!(p.remove("nonsense"), None);
        assert_eq!(p.get("nonsense"), None);
        assert_eq!(
            p.set("nonsense", "x").unwrap_err().to_string(),
            "invalid connection option \"nonsense\""
        );
        assert_eq!(p.to_connection_string(), "host=h sslmode=require");
    }

    fn params_strategy() -> impl Strategy<Value = ConnParams> {
        let keyword = (0..KEYWORDS.len()).prop_map(|i| KEYWORDS[i].name);
        let value = "[^\u{0}]{0,12}";
        proptest::collection::vec((keyword, value), 0..8).prop_map(|pairs| {
            let mut p = ConnParams::new();
            for (k, v) in pairs {
                p.set(k, v).unwrap();
            }
            p
        })
    }

    proptest! {
        #[test]
        fn render_then_parse_is_identity(p in params_strategy()) {
            let rendered = p.to_connection_string();
            prop_assert_eq!(ConnParams::parse(&rendered).unwrap(), p);
        }

        #[test]
        fn parsing_never_panics(s in ".{0,64}") {
            let _ = ConnParams::parse(&s);
            let _ = ConnParams::parse(&format!("postgresql://{s}"));
        }

        #[test]
        fn uri_shaped_input_never_panics(s in "[a-z@:/?&=%\\[\\],0-9 ]{0,40}") {
            let _ = ConnParams::parse(&format!("postgres://{s}"));
            let _ = ConnParams::parse(&s);
        }
    }
}
