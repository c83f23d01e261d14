//! [`SettingsError`]: everything that can go wrong between a connection string and a
//! [`Config`](crate::Config), in libpq's words.

use std::error::Error as StdError;
use std::fmt;

use crate::ConfigError;

/// Why a connection string, the environment or a TLS file cannot be used.
///
/// The [`Display`](fmt::Display) text is libpq's message for the same problem
/// (PostgreSQL 18's wording where versions differ), without the trailing newline.
/// Problems found while building the TLS configuration itself are carried in
/// [`SettingsError::Config`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SettingsError {
    // --- key=value syntax ---
    /// libpq: `missing "=" after "<text>" in connection info string`.
    MissingEquals {
        /// The text read as a keyword.
        keyword: String,
    },
    /// libpq: `unterminated quoted string in connection info string`.
    UnterminatedQuote,
    /// A keyword libpq does not know. libpq: `invalid connection option "<keyword>"`.
    InvalidOption {
        /// The unknown keyword.
        keyword: String,
    },

    // --- URI syntax ---
    /// A query parameter that is not a libpq keyword (nor `ssl=true`).
    /// libpq: `invalid URI query parameter: "<keyword>"`.
    InvalidUriQueryParameter {
        /// The decoded parameter name.
        keyword: String,
    },
    /// libpq: `missing key/value separator "=" in URI query parameter: "<param>"`.
    UriMissingEquals {
        /// The parameter as written.
        param: String,
    },
    /// libpq: `extra key/value separator "=" in URI query parameter: "<param>"`.
    UriExtraEquals {
        /// The parameter as written, up to the second `=`.
        param: String,
    },
    /// libpq: `end of string reached when looking for matching "]" in IPv6 host address in URI: "<uri>"`.
    UriUnterminatedIpv6 {
        /// The whole URI.
        uri: String,
    },
    /// libpq: `IPv6 host address may not be empty in URI: "<uri>"`.
    UriEmptyIpv6 {
        /// The whole URI.
        uri: String,
    },
    /// libpq: `unexpected character "<c>" at position <n> in URI (expected ":" or "/"): "<uri>"`.
    UriUnexpectedCharacter {
        /// The character after `]`.
        character: char,
        /// Its 1-based byte position in the URI.
        position: usize,
        /// The whole URI.
        uri: String,
    },
    /// libpq: `invalid percent-encoded token: "<value>"`.
    InvalidPercentEncoding {
        /// The URI component being decoded, as written.
        value: String,
    },
    /// libpq: `forbidden value %00 in percent-encoded value: "<value>"`.
    PercentEncodedNul {
        /// The URI component being decoded, as written.
        value: String,
    },
    /// libpq 18: `unexpected spaces found in "<value>", use percent-encoded spaces (%20) instead`.
    UnexpectedSpaces {
        /// The URI component being decoded, as written.
        value: String,
    },
    /// pgtls only: a percent-decoded URI component is not UTF-8 (libpq keeps raw bytes;
    /// pgtls keeps settings as Rust strings).
    NotUtf8 {
        /// The URI component being decoded, as written.
        value: String,
    },
    /// pgtls only: a value given through [`ConnParams::set`](super::ConnParams::set) holds
    /// a NUL byte, which no C string (and so no libpq setting) can carry.
    NulByte {
        /// The keyword being set.
        keyword: String,
    },

    // --- values ---
    /// An enumerated keyword with a value libpq does not accept.
    /// libpq: `invalid <keyword> value: "<value>"`.
    InvalidValue {
        /// The keyword (`sslmode`, `channel_binding`, `gssencmode`, ...).
        keyword: &'static str,
        /// The rejected value.
        value: String,
    },
    /// libpq 18: `invalid "<keyword>" value: "<value>"` for `ssl_min_protocol_version` /
    /// `ssl_max_protocol_version` (libpq 15 printed the keyword without quotes).
    InvalidProtocolVersion {
        /// `ssl_min_protocol_version` or `ssl_max_protocol_version`.
        keyword: &'static str,
        /// The rejected value.
        value: String,
    },
    /// libpq: `invalid integer value "<value>" for connection option "<keyword>"`.
    InvalidInteger {
        /// `port` or `connect_timeout`.
        keyword: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A port outside 1..=65535. libpq: `invalid port number: "<value>"`.
    InvalidPort {
        /// The port as written.
        value: String,
    },
    /// libpq: `could not match <n> host names to <m> hostaddr values`.
    HostCountMismatch {
        /// Entries in `host`.
        hosts: usize,
        /// Entries in `hostaddr`.
        hostaddrs: usize,
    },
    /// libpq: `could not match <n> port numbers to <m> hosts`.
    PortCountMismatch {
        /// Entries in `port`.
        ports: usize,
        /// Hosts.
        hosts: usize,
    },
    /// No `user` was given and the operating-system user could not be determined
    /// (libpq: `local user with ID <n> does not exist`, or the lookup's error).
    UnknownUser(String),

    // --- files ---
    /// verify-ca / verify-full, `sslrootcert` unset and no home directory to find
    /// `~/.postgresql/root.crt` in. libpq: `could not get home directory to locate root
    /// certificate file` plus the hint.
    NoHomeForRootCertificate,
    /// libpq: `could not read root certificate file "<path>": <reason>`.
    RootCertificateFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The client certificate exists but could not be examined.
    /// libpq: `could not open certificate file "<path>": <reason>`.
    CertificateFileOpen {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// libpq: `could not read certificate file "<path>": <reason>`.
    CertificateFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// libpq: `certificate present, but not private key file "<path>"`.
    KeyFileMissing {
        /// The key file that does not exist.
        path: String,
    },
    /// libpq: `could not stat private key file "<path>": <reason>`.
    KeyFileStat {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// libpq: `private key file "<path>" is not a regular file`.
    KeyFileNotRegular {
        /// The file.
        path: String,
    },
    /// The key file is readable by others. libpq: `private key file "<path>" has group or
    /// world access; file must have permissions u=rw (0600) or less if owned by the
    /// current user, or permissions u=rw,g=r (0640) or less if owned by root`.
    KeyFilePermissions {
        /// The file.
        path: String,
    },
    /// libpq: `could not load private key file "<path>": <reason>` (unreadable, malformed,
    /// wrong `sslpassword`, unsupported algorithm).
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// libpq: `certificate does not match private key file "<path>": <reason>`.
    KeyMismatch {
        /// The key file.
        path: String,
        /// Why.
        reason: String,
    },
    /// `sslkey=engine:key`: OpenSSL engines are not supported.
    /// Text: `could not load SSL engine "<engine>": OpenSSL engines are not supported by pgtls`.
    EngineUnsupported {
        /// The engine name (before the colon).
        engine: String,
    },

    // --- service files ---
    /// The named service is in no service file.
    /// libpq: `definition of service "<service>" not found`.
    ServiceNotFound {
        /// The service name (`service` or `PGSERVICE`).
        service: String,
    },
    /// A service file that had to be read could not be opened (`PGSERVICEFILE` names a
    /// missing file, or a file is unreadable). libpq: `service file "<path>" not found`.
    ServiceFileNotFound {
        /// The file.
        path: String,
    },
    /// libpq: `line <n> too long in service file "<path>"` (1023 bytes or more, with the
    /// newline).
    ServiceFileLineTooLong {
        /// The file.
        path: String,
        /// The 1-based line number.
        line: usize,
    },
    /// A line of the wanted service without `=`, or with an unknown keyword before it.
    /// libpq: `syntax error in service file "<path>", line <n>`.
    ServiceFileSyntax {
        /// The file.
        path: String,
        /// The 1-based line number.
        line: usize,
    },
    /// A `service=` line inside a service definition. libpq: `nested service
    /// specifications not supported in service file "<path>", line <n>`.
    ServiceFileNestedService {
        /// The file.
        path: String,
        /// The 1-based line number.
        line: usize,
    },

    /// The settings were read but the core rejected them (weak sslmode with
    /// `sslnegotiation=direct`, missing root certificates, `gssencmode=require`, ...).
    Config(ConfigError),
}

const ROOT_HINT: &str = "Either provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.";

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SettingsError as E;
        match self {
            E::MissingEquals { keyword } => write!(
                f,
                "missing \"=\" after \"{keyword}\" in connection info string"
            ),
            E::UnterminatedQuote => {
                f.write_str("unterminated quoted string in connection info string")
            }
            E::InvalidOption { keyword } => write!(f, "invalid connection option \"{keyword}\""),
            E::InvalidUriQueryParameter { keyword } => {
                write!(f, "invalid URI query parameter: \"{keyword}\"")
            }
            E::UriMissingEquals { param } => write!(
                f,
                "missing key/value separator \"=\" in URI query parameter: \"{param}\""
            ),
            E::UriExtraEquals { param } => write!(
                f,
                "extra key/value separator \"=\" in URI query parameter: \"{param}\""
            ),
            E::UriUnterminatedIpv6 { uri } => write!(
                f,
                "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"{uri}\""
            ),
            E::UriEmptyIpv6 { uri } => {
                write!(f, "IPv6 host address may not be empty in URI: \"{uri}\"")
            }
            E::UriUnexpectedCharacter {
                character,
                position,
                uri,
            } => write!(
                f,
                "unexpected character \"{character}\" at position {position} in URI (expected \":\" or \"/\"): \"{uri}\""
            ),
            E::InvalidPercentEncoding { value } => {
                write!(f, "invalid percent-encoded token: \"{value}\"")
            }
            E::PercentEncodedNul { value } => write!(
                f,
                "forbidden value %00 in percent-encoded value: \"{value}\""
            ),
            E::UnexpectedSpaces { value } => write!(
                f,
                "unexpected spaces found in \"{value}\", use percent-encoded spaces (%20) instead"
            ),
            E::NotUtf8 { value } => write!(
                f,
                "percent-decoded value is not valid UTF-8: \"{value}\""
            ),
            E::NulByte { keyword } => write!(
                f,
                "value for connection option \"{keyword}\" contains a NUL byte"
            ),
            E::InvalidValue { keyword, value } => {
                write!(f, "invalid {keyword} value: \"{value}\"")
            }
            E::InvalidProtocolVersion { keyword, value } => {
                write!(f, "invalid \"{keyword}\" value: \"{value}\"")
            }
            E::InvalidInteger { keyword, value } => write!(
                f,
                "invalid integer value \"{value}\" for connection option \"{keyword}\""
            ),
            E::InvalidPort { value } => write!(f, "invalid port number: \"{value}\""),
            E::HostCountMismatch { hosts, hostaddrs } => write!(
                f,
                "could not match {hosts} host names to {hostaddrs} hostaddr values"
            ),
            E::PortCountMismatch { ports, hosts } => {
                write!(f, "could not match {ports} port numbers to {hosts} hosts")
            }
            E::UnknownUser(message) => f.write_str(message),
            E::NoHomeForRootCertificate => write!(
                f,
                "could not get home directory to locate root certificate file\n{ROOT_HINT}"
            ),
            E::RootCertificateFile { path, reason } => {
                write!(f, "could not read root certificate file \"{path}\": {reason}")
            }
            E::CertificateFileOpen { path, reason } => {
                write!(f, "could not open certificate file \"{path}\": {reason}")
            }
            E::CertificateFile { path, reason } => {
                write!(f, "could not read certificate file \"{path}\": {reason}")
            }
            E::KeyFileMissing { path } => write!(
                f,
                "certificate present, but not private key file \"{path}\""
            ),
            E::KeyFileStat { path, reason } => {
                write!(f, "could not stat private key file \"{path}\": {reason}")
            }
            E::KeyFileNotRegular { path } => {
                write!(f, "private key file \"{path}\" is not a regular file")
            }
            E::KeyFilePermissions { path } => write!(
                f,
                "private key file \"{path}\" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root"
            ),
            E::KeyFile { path, reason } => {
                write!(f, "could not load private key file \"{path}\": {reason}")
            }
            E::KeyMismatch { path, reason } => write!(
                f,
                "certificate does not match private key file \"{path}\": {reason}"
            ),
            E::EngineUnsupported { engine } => write!(
                f,
                "could not load SSL engine \"{engine}\": OpenSSL engines are not supported by pgtls"
            ),
            E::ServiceNotFound { service } => {
                write!(f, "definition of service \"{service}\" not found")
            }
            E::ServiceFileNotFound { path } => write!(f, "service file \"{path}\" not found"),
            E::ServiceFileLineTooLong { path, line } => {
                write!(f, "line {line} too long in service file \"{path}\"")
            }
            E::ServiceFileSyntax { path, line } => {
                write!(f, "syntax error in service file \"{path}\", line {line}")
            }
            E::ServiceFileNestedService { path, line } => write!(
                f,
                "nested service specifications not supported in service file \"{path}\", line {line}"
            ),
            E::Config(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl StdError for SettingsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            SettingsError::Config(err) => Some(err),
            _ => None,
        }
    }
}

impl From<ConfigError> for SettingsError {
    fn from(err: ConfigError) -> Self {
        SettingsError::Config(err)
    }
}
