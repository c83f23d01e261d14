//! The files libpq reads when it starts TLS (`initialize_SSL` in
//! `fe-secure-openssl.c`): root certificates, CRLs, the client certificate and key,
//! with the `~/.postgresql/` defaults, and the key-log file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::KeyLog;

use super::error::SettingsError;
use super::params::Settings;
use crate::{ConfigError, RootCertificates, SslCertMode};

const ROOT_CERT_FILE: &str = "root.crt";
const ROOT_CRL_FILE: &str = "root.crl";
const USER_CERT_FILE: &str = "postgresql.crt";
const USER_KEY_FILE: &str = "postgresql.key";

/// What the TLS files held, read the way libpq reads them.
///
/// - **Roots**: `sslrootcert`, else `~/.postgresql/root.crt`, used if it exists. A PEM
///   bundle (every `CERTIFICATE` block; `X509 CRL` blocks in it count as CRLs), or —
///   a pgtls extension, libpq reads PEM only — one DER certificate. `system` loads the
///   platform store. A missing file is an error only under verify-ca / verify-full
///   (libpq's `root certificate file "..." does not exist`); a file that exists but
///   cannot be read or parsed is always an error.
/// - **CRLs**, only with a root *file*: `sslcrl` and/or `sslcrldir`, else
///   `~/.postgresql/root.crl`. A CRL file that cannot be loaded (missing, unreadable,
///   malformed) is silently ignored, and then no CRL is used at all, as with OpenSSL.
///   `sslcrldir` is OpenSSL's hashed directory: pgtls loads the regular files named
///   like `openssl rehash` names CRLs (`<8 hex digits>.r<n>`) that parse as CRLs (PEM
///   or DER), and skips the rest, as libpq never reads them.
/// - **Client certificate** (unless `sslcertmode=disable`): `sslcert`, else
///   `~/.postgresql/postgresql.crt`; absent = no client certificate. A PEM chain (leaf
///   first) or one DER certificate.
/// - **Client key**, only with a certificate: `sslkey`, else
///   `~/.postgresql/postgresql.key`. It must be a regular file with mode 0600 or less
///   (0640 or less if owned by root). PEM or DER: PKCS#1 (`RSA PRIVATE KEY`), SEC1
///   (`EC PRIVATE KEY`), PKCS#8 (`PRIVATE KEY`), or encrypted PKCS#8
///   (`ENCRYPTED PRIVATE KEY`, PBES2) decrypted with `sslpassword`. Legacy
///   OpenSSL-encrypted PEM (`Proc-Type: 4,ENCRYPTED`) is not supported: convert it with
///   `openssl pkcs8 -topk8`. Where libpq would prompt on the terminal for a missing
///   password, pgtls fails.
///
/// Without a home directory the `~/.postgresql/` defaults are quietly absent.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The trust source for [`crate::ConfigBuilder::root_certificates`].
    pub roots: RootCertificates,
    /// The root file that was loaded, if any.
    pub root_file: Option<PathBuf>,
    /// CRLs for [`crate::ConfigBuilder::crls`].
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// Whether libpq would have switched CRL checking on (a CRL file loaded, or any
    /// `sslcrldir` given), even if no CRL was found.
    pub crl_checking: bool,
    /// The client certificate chain and its key.
    pub client_certificate: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// The client certificate file that was loaded, if any.
    pub cert_file: Option<PathBuf>,
    /// The client key file that was loaded, if any.
    pub key_file: Option<PathBuf>,
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// `strerror`'s text: the `io::Error` message without Rust's ` (os error N)`.
fn io_reason(err: &io::Error) -> String {
    super::transport::os_error_text(err)
}

fn setting<'a>(settings: &'a Settings, keyword: &str) -> Option<&'a str> {
    settings.params().get(keyword).filter(|v| !v.is_empty())
}

pub(crate) fn load(settings: &Settings) -> Result<TlsFiles, SettingsError> {
    let in_home = |name: &str| settings.home().map(|h| h.join(".postgresql").join(name));
    let mut files = TlsFiles::default();

    // Root certificates.
    let rootcert = setting(settings, "sslrootcert");
    let root_path = match rootcert {
        Some(value) => Some(PathBuf::from(value)),
        None => in_home(ROOT_CERT_FILE),
    };
    if rootcert == Some("system") {
        files.roots = system_roots()?;
    } else if let Some(path) = root_path.as_ref().filter(|p| fs::metadata(p).is_ok()) {
        let (certs, crls_in_root) =
            read_root_file(path).map_err(|reason| SettingsError::RootCertificateFile {
                path: shown(path),
                reason,
            })?;
        files.roots = RootCertificates::Certificates(certs);
        files.root_file = Some(path.clone());

        let crl_file = setting(settings, "sslcrl").map(PathBuf::from);
        let crl_dir = setting(settings, "sslcrldir").map(PathBuf::from);
        let crl_file = match (&crl_file, &crl_dir) {
            (None, None) => in_home(ROOT_CRL_FILE),
            _ => crl_file,
        };
        if crl_file.is_some() || crl_dir.is_some() {
            if let Some(mut crls) = load_crls(crl_file.as_deref(), crl_dir.as_deref()) {
                crls.extend(crls_in_root);
                files.crls = crls;
                files.crl_checking = true;
            }
        }
    } else if settings.sslmode().requires_verification() {
        return Err(match root_path {
            None => SettingsError::NoHomeForRootCertificate,
            Some(path) => SettingsError::Config(ConfigError::NoRootCertificates {
                path: Some(shown(&path)),
            }),
        });
    }

    // Client certificate and key.
    if settings.ssl_cert_mode() == SslCertMode::Disable {
        return Ok(files);
    }
    let Some(cert_path) = setting(settings, "sslcert")
        .map(PathBuf::from)
        .or_else(|| in_home(USER_CERT_FILE))
    else {
        return Ok(files);
    };
    match fs::metadata(&cert_path) {
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(files);
        }
        Err(err) => {
            return Err(SettingsError::CertificateFileOpen {
                path: shown(&cert_path),
                reason: io_reason(&err),
            })
        }
        Ok(_) => {}
    }
    let chain =
        read_certificate_chain(&cert_path).map_err(|reason| SettingsError::CertificateFile {
            path: shown(&cert_path),
            reason,
        })?;

    let key_path = match setting(settings, "sslkey") {
        Some(value) => {
            if let Some((engine, _key)) = value.split_once(':') {
                return Err(SettingsError::EngineUnsupported {
                    engine: engine.to_owned(),
                });
            }
            PathBuf::from(value)
        }
        None => match in_home(USER_KEY_FILE) {
            Some(path) => path,
            // libpq then has a certificate without a key and fails the pair check.
            None => {
                return Err(SettingsError::KeyMismatch {
                    path: String::new(),
                    reason: "no private key assigned".to_owned(),
                })
            }
        },
    };
    let key = load_key_file(&key_path, settings.params().get("sslpassword"))?;
    files.client_certificate = Some((chain, key));
    files.cert_file = Some(cert_path);
    files.key_file = Some(key_path);
    Ok(files)
}

#[cfg(feature = "system-roots")]
fn system_roots() -> Result<RootCertificates, SettingsError> {
    Ok(RootCertificates::system()?)
}

#[cfg(not(feature = "system-roots"))]
fn system_roots() -> Result<RootCertificates, SettingsError> {
    Err(ConfigError::FeatureDisabled("system-roots").into())
}

fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

fn check_certificate(der: &[u8]) -> Result<(), String> {
    crate::verify::x509::decode_certificate_prefix(der)
        .map(|_| ())
        .map_err(|e| format!("malformed certificate: {e}"))
}

fn check_crl(der: &[u8]) -> bool {
    crate::verify::x509::decode_crl_prefix(der).is_ok()
}

/// A root file: its certificates and the CRLs it may hold.
type RootFile = (
    Vec<CertificateDer<'static>>,
    Vec<CertificateRevocationListDer<'static>>,
);

fn read_root_file(path: &Path) -> Result<RootFile, String> {
    let data = fs::read(path).map_err(|e| io_reason(&e))?;
    if !looks_like_pem(&data) {
        check_certificate(&data).map_err(|_| {
            "no certificate or crl found (expected PEM, or one DER certificate)".to_owned()
        })?;
        return Ok((vec![CertificateDer::from(data)], Vec::new()));
    }
    let mut certs = Vec::new();
    let mut crls = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&data) {
        match section.map_err(|e| e.to_string())? {
            (SectionKind::Certificate, der) => {
                check_certificate(&der)?;
                certs.push(CertificateDer::from(der));
            }
            (SectionKind::Crl, der) => {
                if !check_crl(&der) {
                    return Err("malformed CRL".to_owned());
                }
                crls.push(CertificateRevocationListDer::from(der));
            }
            _ => {}
        }
    }
    if certs.is_empty() && crls.is_empty() {
        return Err("no certificate or crl found".to_owned());
    }
    Ok((certs, crls))
}

fn read_certificate_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = fs::read(path).map_err(|e| io_reason(&e))?;
    if !looks_like_pem(&data) {
        check_certificate(&data).map_err(|_| {
            "no certificate found (expected PEM, or one DER certificate)".to_owned()
        })?;
        return Ok(vec![CertificateDer::from(data)]);
    }
    let mut chain = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&data) {
        let cert = cert.map_err(|e| e.to_string())?;
        check_certificate(&cert)?;
        chain.push(cert);
    }
    if chain.is_empty() {
        return Err("no certificate found".to_owned());
    }
    Ok(chain)
}

/// The CRLs of one file, or `None` when it cannot be loaded (OpenSSL's
/// `X509_load_cert_crl_file`: a PEM file with at least one certificate or CRL; pgtls
/// also takes one DER CRL).
fn read_crl_file(path: &Path) -> Option<Vec<CertificateRevocationListDer<'static>>> {
    let data = fs::read(path).ok()?;
    if !looks_like_pem(&data) {
        return check_crl(&data).then(|| vec![CertificateRevocationListDer::from(data)]);
    }
    let mut crls = Vec::new();
    let mut objects = 0;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&data) {
        match section.ok()? {
            (SectionKind::Crl, der) => {
                if !check_crl(&der) {
                    return None;
                }
                crls.push(CertificateRevocationListDer::from(der));
                objects += 1;
            }
            (SectionKind::Certificate, _) => objects += 1,
            _ => {}
        }
    }
    (objects > 0).then_some(crls)
}

/// `X509_STORE_load_locations(file, dir)`: `None` if the file fails (then nothing is
/// used); a directory always "loads", whatever it holds.
fn load_crls(
    file: Option<&Path>,
    dir: Option<&Path>,
) -> Option<Vec<CertificateRevocationListDer<'static>>> {
    let mut crls = Vec::new();
    if let Some(file) = file {
        crls.extend(read_crl_file(file)?);
    }
    if let Some(dir) = dir {
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        for path in paths {
            // OpenSSL's hashed-directory lookup only ever opens `<issuer hash>.r<n>`.
            let hashed = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(is_hashed_crl_name);
            if hashed && fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                if let Some(found) = read_crl_file(&path) {
                    crls.extend(found);
                }
            }
        }
    }
    Some(crls)
}

/// `XXXXXXXX.rN`: the names OpenSSL's `X509_LOOKUP_hash_dir` looks CRLs up by (eight
/// lowercase hex digits of the issuer-name hash, `.r`, a decimal sequence number), as
/// `openssl rehash` / `c_rehash` create them. Other files in an `sslcrldir` are never read
/// by libpq.
fn is_hashed_crl_name(name: &str) -> bool {
    let Some((hash, seq)) = name.split_once(".r") else {
        return false;
    };
    hash.len() == 8
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && !seq.is_empty()
        && seq.bytes().all(|b| b.is_ascii_digit())
}

/// libpq's checks on the key file, then the key itself.
fn load_key_file(
    path: &Path,
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, SettingsError> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(SettingsError::KeyFileMissing { path: shown(path) })
        }
        Err(err) => {
            return Err(SettingsError::KeyFileStat {
                path: shown(path),
                reason: io_reason(&err),
            })
        }
    };
    if !metadata.is_file() {
        return Err(SettingsError::KeyFileNotRegular { path: shown(path) });
    }
    if !key_permissions_ok(&metadata) {
        return Err(SettingsError::KeyFilePermissions { path: shown(path) });
    }
    let key_error = |reason: String| SettingsError::KeyFile {
        path: shown(path),
        reason,
    };
    let data = fs::read(path).map_err(|e| key_error(io_reason(&e)))?;
    parse_private_key(&data, password).map_err(key_error)
}

/// Mode 0600 or less, or 0640 or less for a root-owned file (libpq's rule; not checked
/// where Unix permissions do not exist).
#[cfg(unix)]
fn key_permissions_ok(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let forbidden = if metadata.uid() == 0 { 0o037 } else { 0o077 };
    metadata.mode() & forbidden == 0
}

#[cfg(not(unix))]
fn key_permissions_ok(_metadata: &fs::Metadata) -> bool {
    true
}

const KEY_LABELS: [&str; 4] = [
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
];

/// One PEM block: its label, whether it had RFC 1421 headers, its base64 text.
#[derive(Debug)]
struct PemBlock {
    label: String,
    has_headers: bool,
    base64: String,
}

/// The first PEM block that holds a private key (other blocks, such as certificates or
/// `EC PARAMETERS`, are skipped, as OpenSSL's `PEM_read_bio_PrivateKey` does).
fn first_key_block(data: &[u8]) -> Result<Option<PemBlock>, String> {
    let mut current: Option<PemBlock> = None;
    for raw_line in data.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(raw_line);
        let line = line.trim();
        match &mut current {
            None => {
                if let Some(label) = line
                    .strip_prefix("-----BEGIN ")
                    .and_then(|rest| rest.strip_suffix("-----"))
                {
                    current = Some(PemBlock {
                        label: label.to_owned(),
                        has_headers: false,
                        base64: String::new(),
                    });
                }
            }
            Some(block) => {
                if let Some(rest) = line.strip_prefix("-----END ") {
                    if rest.strip_suffix("-----") != Some(block.label.as_str()) {
                        return Err(format!("bad end line for \"{}\" PEM block", block.label));
                    }
                    let done = current.take();
                    if let Some(block) = done {
                        if block.label.ends_with("PRIVATE KEY") {
                            return Ok(Some(block));
                        }
                    }
                } else if line.contains(':') {
                    block.has_headers = true;
                } else {
                    block.base64.push_str(line);
                }
            }
        }
    }
    match current {
        Some(block) => Err(format!(
            "missing end line for \"{}\" PEM block",
            block.label
        )),
        None => Ok(None),
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padding = 0;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => continue,
            _ => return None,
        };
        if padding > 0 {
            return None;
        }
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (padding <= 2).then_some(out)
}

const NO_KEY: &str =
    "no private key found (expected PEM or DER: PKCS#1, SEC1, PKCS#8 or encrypted PKCS#8)";

/// Parses a private key file's contents: PEM first, then DER (as libpq tries
/// `SSL_FILETYPE_PEM`, then `SSL_FILETYPE_ASN1`).
pub(crate) fn parse_private_key(
    data: &[u8],
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, String> {
    if looks_like_pem(data) {
        let block = first_key_block(data)?.ok_or_else(|| NO_KEY.to_owned())?;
        if block.has_headers {
            return Err(format!(
                "legacy encrypted PEM (\"{}\" with Proc-Type/DEK-Info headers) is not supported; convert the key with \"openssl pkcs8 -topk8\"",
                block.label
            ));
        }
        let der = base64_decode(&block.base64)
            .ok_or_else(|| format!("bad base64 data in \"{}\" PEM block", block.label))?;
        return match block.label.as_str() {
            "PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs8(der.into())),
            "RSA PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs1(der.into())),
            "EC PRIVATE KEY" => Ok(PrivateKeyDer::Sec1(der.into())),
            "ENCRYPTED PRIVATE KEY" => decrypt_pkcs8(&der, password),
            other => Err(format!(
                "unsupported private key type \"{other}\" (supported: {})",
                KEY_LABELS.join(", ")
            )),
        };
    }
    if let Ok(encrypted) = pkcs8::EncryptedPrivateKeyInfo::try_from(data) {
        return decrypt(encrypted, password);
    }
    match PrivateKeyDer::try_from(data) {
        Ok(key) => Ok(key.clone_key()),
        Err(_) => Err(NO_KEY.to_owned()),
    }
}

fn decrypt_pkcs8(der: &[u8], password: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(der)
        .map_err(|e| format!("malformed encrypted private key: {e}"))?;
    decrypt(encrypted, password)
}

fn decrypt(
    encrypted: pkcs8::EncryptedPrivateKeyInfo<'_>,
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, String> {
    let password = password.unwrap_or("");
    let wrong = || {
        if password.is_empty() {
            "the key is encrypted and no sslpassword was given".to_owned()
        } else {
            "bad decrypt (wrong sslpassword?)".to_owned()
        }
    };
    let document = match encrypted.decrypt(password) {
        Ok(document) => document,
        // pkcs5 0.7 reports a bad padding after decryption as `EncryptFailed`.
        Err(pkcs8::Error::EncryptedPrivateKey(
            pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed,
        )) => return Err(wrong()),
        Err(pkcs8::Error::EncryptedPrivateKey(err)) => {
            return Err(format!("cannot decrypt the key: {err}"))
        }
        Err(_) => return Err(wrong()),
    };
    // A wrong password may still unpad correctly; the result must then be a key.
    if pkcs8::PrivateKeyInfo::try_from(document.as_bytes()).is_err() {
        return Err(wrong());
    }
    Ok(PrivateKeyDer::Pkcs8(document.as_bytes().to_vec().into()))
}

/// `sslkeylogfile`: NSS key-log lines appended to a file created with mode 0600.
/// Failures are ignored (libpq only records a warning).
#[derive(Debug)]
pub(crate) struct KeyLogToFile {
    path: PathBuf,
}

impl KeyLogToFile {
    pub(crate) fn new(path: impl Into<PathBuf>) -> Self {
        KeyLogToFile { path: path.into() }
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

impl KeyLog for KeyLogToFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let mut line =
            String::with_capacity(label.len() + 2 * (client_random.len() + secret.len()) + 3);
        line.push_str(label);
        line.push(' ');
        push_hex(&mut line, client_random);
        line.push(' ');
        push_hex(&mut line, secret);
        line.push('\n');
        let mut options = fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        if let Ok(mut file) = options.open(&self.path) {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_rejects_garbage() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVs bG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("aGV*bG8=").is_none());
        assert!(base64_decode("aG=Vs").is_none());
    }

    #[test]
    fn io_reasons_read_like_strerror() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(io_reason(&err), "No such file or directory");
        let err = io::Error::other("plain");
        assert_eq!(io_reason(&err), "plain");
    }

    #[test]
    fn key_blocks_skip_other_sections() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\
                    -----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                    -----BEGIN EC PRIVATE KEY-----\r\naGVs\r\nbG8=\r\n-----END EC PRIVATE KEY-----\r\n";
        let block = first_key_block(pem).unwrap().unwrap();
        assert_eq!(block.label, "EC PRIVATE KEY");
        assert_eq!(base64_decode(&block.base64).unwrap(), b"hello");
        assert!(first_key_block(b"-----BEGIN PRIVATE KEY-----\nAAAA\n")
            .unwrap_err()
            .contains("missing end line"));
        assert!(first_key_block(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        )
        .unwrap_err()
        .contains("bad end line"));
    }

    #[test]
    fn key_parsing_errors_are_messages() {
        assert_eq!(parse_private_key(b"", None).unwrap_err(), NO_KEY);
        assert_eq!(
            parse_private_key(b"\x30\x03\x02\x01", None).unwrap_err(),
            NO_KEY
        );
        assert_eq!(
            parse_private_key(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                None
            )
            .unwrap_err(),
            NO_KEY
        );
        let legacy = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(parse_private_key(legacy, Some("pw"))
            .unwrap_err()
            .starts_with("legacy encrypted PEM"));
        let dsa = b"-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n";
        assert!(parse_private_key(dsa, None)
            .unwrap_err()
            .starts_with("unsupported private key type \"DSA PRIVATE KEY\""));
    }

    #[test]
    fn key_log_lines_are_nss_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        let log = KeyLogToFile::new(&path);
        log.log("CLIENT_RANDOM", &[0x01, 0xab], &[0xff]);
        log.log("X", &[], &[0]);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "CLIENT_RANDOM 01ab ff\nX  00\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
        // An unwritable location is ignored.
        KeyLogToFile::new(dir.path().join("no/such/dir/keys.log")).log("X", &[1], &[2]);
    }
}
