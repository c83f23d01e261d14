//! The libpq settings layer against real files: roots, CRLs, client certificates and
//! keys in every format, libpq's default paths under a fake home, and libpq's messages.
//!
//! Every test uses its own temporary home directory through an injected
//! `Environment`; none reads the real HOME or the process environment.

use std::fs;
use std::path::{Path, PathBuf};

use pgtls::libpq::{ConnParams, Environment, Settings, SettingsError};
use pgtls::{ConfigError, RootCertificates, SslMode};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber,
};

use pkcs8::der::pem::LineEnding;

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(not(unix))]
fn chmod(_path: &Path, _mode: u32) {}

#[cfg(unix)]
fn owned_by_root(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().uid() == 0
}

/// A temporary home directory with `.postgresql/` and an environment pointing at it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(".postgresql")).unwrap();
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn dot(&self, name: &str) -> PathBuf {
        self.dir.path().join(".postgresql").join(name)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn env(&self) -> Environment {
        Environment::from_vars([("HOME", self.path().to_str().unwrap())]).with_os_user("tester")
    }

    fn settings(&self, conninfo: &str) -> Settings {
        ConnParams::parse(conninfo)
            .unwrap()
            .resolve(&self.env())
            .unwrap()
    }
}

fn write(path: &Path, data: impl AsRef<[u8]>, mode: u32) {
    fs::write(path, data).unwrap();
    chmod(path, mode);
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
    der: Vec<u8>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        params,
        key,
    }
}

/// A client certificate for `key`, signed by `ca`: (PEM, DER).
fn client_cert(ca: &Ca, key: &KeyPair) -> (String, Vec<u8>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "tester");
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(key, &issuer).unwrap();
    (cert.pem(), cert.der().to_vec())
}

fn crl(ca: &Ca, number: u64) -> (String, Vec<u8>) {
    let now = time::OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - time::Duration::days(1),
        next_update: now + time::Duration::days(30),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let list = params.signed_by(&issuer).unwrap();
    (list.pem().unwrap(), list.der().to_vec())
}

/// The inner key of a PKCS#8 document: PKCS#1 for RSA, SEC1 for EC.
fn inner_key(pkcs8_der: &[u8]) -> Vec<u8> {
    pkcs8::PrivateKeyInfo::try_from(pkcs8_der)
        .unwrap()
        .private_key
        .to_vec()
}

fn pem(label: &'static str, der: &[u8]) -> String {
    pkcs8::der::pem::encode_string(label, LineEnding::LF, der).unwrap()
}

/// Encrypted PKCS#8 (PBES2: PBKDF2-SHA256 + AES-256-CBC), as `openssl pkcs8 -topk8` makes.
fn encrypt(pkcs8_der: &[u8], password: &str) -> Vec<u8> {
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
        2048,
        b"saltsaltsaltsalt",
        &[7u8; 16],
    )
    .unwrap();
    pkcs8::PrivateKeyInfo::try_from(pkcs8_der)
        .unwrap()
        .encrypt_with_params(params, password)
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn err(settings: &Settings) -> SettingsError {
    match settings.to_configs() {
        Ok(_) => panic!("to_configs succeeded for {settings:?}"),
        Err(e) => e,
    }
}

const ROOT_HINT: &str = "Either provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.";

#[test]
fn missing_default_files_are_quietly_ignored() {
    let home = Home::new();
    for mode in ["allow", "prefer", "require"] {
        let settings = home.settings(&format!("host=db sslmode={mode}"));
        let files = settings.load_tls_files().unwrap();
        assert!(matches!(files.roots, RootCertificates::None));
        assert!(files.root_file.is_none());
        assert!(files.crls.is_empty() && !files.crl_checking);
        assert!(files.client_certificate.is_none());
        let configs = settings.to_configs().unwrap();
        assert!(!configs[0].1.verifies_chain());
    }
    // No home directory at all: the same, quietly.
    let env = Environment::empty().with_os_user("tester");
    let settings = ConnParams::parse("host=db sslmode=require")
        .unwrap()
        .resolve(&env)
        .unwrap();
    assert!(settings.to_configs().is_ok());
}

#[test]
fn verify_modes_need_the_root_file_in_libpq_words() {
    let home = Home::new();
    let default_root = home.dot("root.crt");
    for mode in ["verify-ca", "verify-full"] {
        let settings = home.settings(&format!("host=db sslmode={mode}"));
        let e = err(&settings);
        assert!(matches!(
            &e,
            SettingsError::Config(ConfigError::NoRootCertificates { path: Some(p) })
                if p == default_root.to_str().unwrap()
        ));
        assert_eq!(
            e.to_string(),
            format!(
                "root certificate file \"{}\" does not exist\n{ROOT_HINT}",
                default_root.display()
            )
        );
    }
    let explicit = home.file("nowhere/ca.pem");
    let settings = home.settings(&format!(
        "host=db sslmode=verify-full sslrootcert={}",
        explicit.display()
    ));
    assert_eq!(
        err(&settings).to_string(),
        format!(
            "root certificate file \"{}\" does not exist\n{ROOT_HINT}",
            explicit.display()
        )
    );
    // Without a home directory libpq cannot even name the file.
    let env = Environment::empty().with_os_user("tester");
    let settings = ConnParams::parse("host=db sslmode=verify-ca")
        .unwrap()
        .resolve(&env)
        .unwrap();
    assert_eq!(
        err(&settings).to_string(),
        format!("could not get home directory to locate root certificate file\n{ROOT_HINT}")
    );
}

#[test]
fn default_root_file_is_used_when_present() {
    let home = Home::new();
    let ca = ca("Test CA");
    write(&home.dot("root.crt"), &ca.pem, 0o644);
    let settings = home.settings("host=db sslmode=verify-full");
    let files = settings.load_tls_files().unwrap();
    assert_eq!(
        files.root_file.as_deref(),
        Some(home.dot("root.crt").as_path())
    );
    assert!(matches!(&files.roots, RootCertificates::Certificates(c) if c.len() == 1));
    let configs = settings.to_configs().unwrap();
    assert!(configs[0].1.verifies_chain());
    assert_eq!(configs[0].1.sslmode(), SslMode::VerifyFull);
    // prefer with a root file verifies the chain too.
    let configs = home.settings("host=db").to_configs().unwrap();
    assert!(configs[0].1.verifies_chain());
}

#[test]
fn root_files_pem_bundle_der_and_bad_ones() {
    let home = Home::new();
    let (a, b) = (ca("A"), ca("B"));
    let bundle = home.file("bundle.pem");
    write(
        &bundle,
        format!("leading text\n{}\n{}", a.pem, b.pem),
        0o644,
    );
    let settings = home.settings(&format!(
        "sslmode=verify-ca sslrootcert={}",
        bundle.display()
    ));
    let files = settings.load_tls_files().unwrap();
    assert!(matches!(&files.roots, RootCertificates::Certificates(c) if c.len() == 2));

    let der = home.file("root.der");
    write(&der, &a.der, 0o644);
    let settings = home.settings(&format!("sslmode=verify-ca sslrootcert={}", der.display()));
    let files = settings.load_tls_files().unwrap();
    assert!(
        matches!(&files.roots, RootCertificates::Certificates(c) if c[0].as_ref() == a.der.as_slice())
    );

    // A file that exists but is unusable fails the settings under require and stronger;
    // under allow/prefer it fails each TLS attempt instead (libpq reads it only then), so
    // the plan can fall back to plaintext.
    for (name, contents) in [
        ("garbage.pem", b"this is not a certificate".to_vec()),
        ("empty.pem", Vec::new()),
        (
            "key-only.pem",
            KeyPair::generate().unwrap().serialize_pem().into_bytes(),
        ),
        (
            "broken.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        (
            "truncated.pem",
            a.pem.as_bytes()[..a.pem.len() - 30].to_vec(),
        ),
    ] {
        let path = home.file(name);
        write(&path, &contents, 0o644);
        let prefer = home.settings(&format!("sslmode=prefer sslrootcert={}", path.display()));
        let config = &prefer.to_configs().unwrap()[0].1;
        let mut attempt = pgtls::Negotiation::new(config, pgtls::plan::Method::SslRequest).unwrap();
        let mut request = [0u8; 8];
        assert_eq!(
            attempt.poll_output_slice(&mut request).unwrap(),
            pgtls::Output::Transmit(8)
        );
        let deferred = attempt.handle_input(b"S").unwrap_err();
        assert!(deferred.allows_fallback(), "{name}: {deferred}");
        let settings = home.settings(&format!("sslmode=require sslrootcert={}", path.display()));
        let e = err(&settings);
        assert_eq!(deferred.to_string(), e.to_string(), "{name}");
        assert!(
            matches!(&e, SettingsError::RootCertificateFile { path: p, .. } if p == path.to_str().unwrap()),
            "{name}: {e:?}"
        );
        assert!(
            e.to_string().starts_with(&format!(
                "could not read root certificate file \"{}\": ",
                path.display()
            )),
            "{name}: {e}"
        );
    }
    // A directory exists (stat succeeds) but cannot be read as a file.
    let settings = home.settings(&format!(
        "sslmode=require sslrootcert={}",
        home.path().display()
    ));
    assert!(matches!(
        err(&settings),
        SettingsError::RootCertificateFile { .. }
    ));
}

#[test]
fn crls_follow_libpq() {
    let home = Home::new();
    let ca = ca("CRL CA");
    write(&home.dot("root.crt"), &ca.pem, 0o644);
    let (crl1_pem, crl1_der) = crl(&ca, 1);
    let (crl2_pem, _) = crl(&ca, 2);

    // Default ~/.postgresql/root.crl.
    write(&home.dot("root.crl"), &crl1_pem, 0o644);
    let files = home.settings("sslmode=verify-ca").load_tls_files().unwrap();
    assert!(files.crl_checking);
    assert_eq!(files.crls.len(), 1);
    assert_eq!(files.crls[0].as_ref(), crl1_der.as_slice());
    assert!(home.settings("sslmode=verify-ca").to_configs().is_ok());

    // An explicit sslcrl replaces the default; a DER CRL file works too.
    let der_crl = home.file("list.der");
    write(&der_crl, &crl1_der, 0o644);
    let files = home
        .settings(&format!("sslmode=verify-ca sslcrl={}", der_crl.display()))
        .load_tls_files()
        .unwrap();
    assert_eq!(files.crls.len(), 1);

    // A CRL file that cannot be loaded is silently ignored: no CRL at all.
    for bad in ["missing.crl", "garbage.crl"] {
        let path = home.file(bad);
        if bad == "garbage.crl" {
            write(&path, "not a crl", 0o644);
        }
        let settings = home.settings(&format!("sslmode=verify-ca sslcrl={}", path.display()));
        let files = settings.load_tls_files().unwrap();
        assert!(files.crls.is_empty() && !files.crl_checking, "{bad}");
        assert!(settings.to_configs().is_ok());
    }

    // sslcrldir: every parsable CRL file, other files skipped.
    let dir = home.file("crls");
    fs::create_dir(&dir).unwrap();
    write(&dir.join("0a1b2c3d.r0"), &crl1_pem, 0o644);
    write(&dir.join("0a1b2c3d.r1"), &crl2_pem, 0o644);
    write(&dir.join("README"), "notes", 0o644);
    fs::create_dir(dir.join("subdir")).unwrap();
    let files = home
        .settings(&format!("sslmode=verify-ca sslcrldir={}", dir.display()))
        .load_tls_files()
        .unwrap();
    assert!(files.crl_checking);
    assert_eq!(files.crls.len(), 2);

    // A bad sslcrl voids the directory too (OpenSSL stops at the file).
    let files = home
        .settings(&format!(
            "sslmode=verify-ca sslcrl={} sslcrldir={}",
            home.file("missing.crl").display(),
            dir.display()
        ))
        .load_tls_files()
        .unwrap();
    assert!(files.crls.is_empty() && !files.crl_checking);

    // A directory always switches checking on, even when it holds nothing.
    let files = home
        .settings(&format!(
            "sslmode=verify-ca sslcrldir={}",
            home.file("no-such-dir").display()
        ))
        .load_tls_files()
        .unwrap();
    assert!(files.crl_checking && files.crls.is_empty());

    // CRLs are used only with a root file.
    let other = Home::new();
    write(&other.dot("root.crl"), &crl1_pem, 0o644);
    let files = other.settings("sslmode=require").load_tls_files().unwrap();
    assert!(files.crls.is_empty() && !files.crl_checking);
}

/// Writes `cert` and `key` as ~/.postgresql/postgresql.{crt,key} and builds the configs.
fn client_files(home: &Home, cert: &[u8], key: &[u8], extra: &str) -> Result<(), SettingsError> {
    write(&home.dot("postgresql.crt"), cert, 0o644);
    write(&home.dot("postgresql.key"), key, 0o600);
    let settings = home.settings(&format!("host=db sslmode=require {extra}"));
    let files = settings.load_tls_files()?;
    assert!(files.client_certificate.is_some());
    assert_eq!(
        files.key_file.as_deref(),
        Some(home.dot("postgresql.key").as_path())
    );
    settings.to_configs().map(|_| ())
}

#[test]
fn client_keys_in_every_format() {
    let ca = ca("Client CA");
    let ec = KeyPair::generate().unwrap();
    let (ec_cert_pem, ec_cert_der) = client_cert(&ca, &ec);
    let ec_pkcs8 = ec.serialize_der();
    let rsa = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let (rsa_cert_pem, _) = client_cert(&ca, &rsa);
    let rsa_pkcs8 = rsa.serialize_der();

    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "PKCS#8 PEM",
            &ec_cert_pem,
            ec.serialize_pem().into_bytes(),
            "",
        ),
        ("PKCS#8 DER", &ec_cert_pem, ec_pkcs8.clone(), ""),
        (
            "SEC1 PEM",
            &ec_cert_pem,
            pem("EC PRIVATE KEY", &inner_key(&ec_pkcs8)).into_bytes(),
            "",
        ),
        ("SEC1 DER", &ec_cert_pem, inner_key(&ec_pkcs8), ""),
        (
            "PKCS#1 PEM",
            &rsa_cert_pem,
            pem("RSA PRIVATE KEY", &inner_key(&rsa_pkcs8)).into_bytes(),
            "",
        ),
        ("PKCS#1 DER", &rsa_cert_pem, inner_key(&rsa_pkcs8), ""),
        (
            "encrypted PKCS#8 PEM",
            &ec_cert_pem,
            pem("ENCRYPTED PRIVATE KEY", &encrypt(&ec_pkcs8, "s3cret")).into_bytes(),
            "sslpassword=s3cret",
        ),
        (
            "encrypted PKCS#8 DER (RSA)",
            &rsa_cert_pem,
            encrypt(&rsa_pkcs8, "pass word"),
            "sslpassword='pass word'",
        ),
        (
            "key after a certificate in the same file",
            &ec_cert_pem,
            format!("{ec_cert_pem}{}", ec.serialize_pem()).into_bytes(),
            "",
        ),
    ];
    for (name, cert, key, extra) in cases {
        let home = Home::new();
        client_files(&home, cert.as_bytes(), &key, extra).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    // A DER client certificate.
    let home = Home::new();
    client_files(&home, &ec_cert_der, ec.serialize_pem().as_bytes(), "").unwrap();
}

#[test]
fn encrypted_keys_need_the_right_password() {
    let ca = ca("Client CA");
    let key = KeyPair::generate().unwrap();
    let (cert_pem, _) = client_cert(&ca, &key);
    let encrypted = pem(
        "ENCRYPTED PRIVATE KEY",
        &encrypt(&key.serialize_der(), "right"),
    );
    let home = Home::new();
    let key_path = home.dot("postgresql.key");
    for (extra, reason) in [
        ("sslpassword=wrong", "bad decrypt (wrong sslpassword?)"),
        ("", "the key is encrypted and no sslpassword was given"),
    ] {
        let e = client_files(&home, cert_pem.as_bytes(), encrypted.as_bytes(), extra).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "could not load private key file \"{}\": {reason}",
                key_path.display()
            )
        );
    }
    client_files(
        &home,
        cert_pem.as_bytes(),
        encrypted.as_bytes(),
        "sslpassword=right",
    )
    .unwrap();
}

#[cfg(unix)]
#[test]
fn key_file_permissions_as_libpq() {
    let ca = ca("Client CA");
    let key = KeyPair::generate().unwrap();
    let (cert_pem, _) = client_cert(&ca, &key);
    let home = Home::new();
    let key_path = home.dot("postgresql.key");
    write(&home.dot("postgresql.crt"), &cert_pem, 0o644);
    write(&key_path, key.serialize_pem(), 0o600);
    let settings = home.settings("host=db sslmode=require");
    let message = format!(
        "private key file \"{}\" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root",
        key_path.display()
    );
    for mode in [0o600, 0o400] {
        chmod(&key_path, mode);
        assert!(settings.to_configs().is_ok(), "{mode:o}");
    }
    for mode in [0o644, 0o604, 0o660, 0o610, 0o666] {
        chmod(&key_path, mode);
        assert_eq!(err(&settings).to_string(), message, "{mode:o}");
    }
    // 0640 is fine for a root-owned key and not for anyone else's.
    chmod(&key_path, 0o640);
    if owned_by_root(&key_path) {
        assert!(settings.to_configs().is_ok());
    } else {
        assert_eq!(err(&settings).to_string(), message);
    }
}

#[test]
fn client_certificate_problems_name_the_file() {
    let ca = ca("Client CA");
    let key = KeyPair::generate().unwrap();
    let (cert_pem, _) = client_cert(&ca, &key);
    let home = Home::new();
    let cert_path = home.dot("postgresql.crt");
    let key_path = home.dot("postgresql.key");

    // Certificate without a key.
    write(&cert_path, &cert_pem, 0o644);
    let settings = home.settings("host=db sslmode=require");
    assert_eq!(
        err(&settings).to_string(),
        format!(
            "certificate present, but not private key file \"{}\"",
            key_path.display()
        )
    );

    // The key is a directory.
    fs::create_dir(&key_path).unwrap();
    assert_eq!(
        err(&settings).to_string(),
        format!(
            "private key file \"{}\" is not a regular file",
            key_path.display()
        )
    );
    fs::remove_dir(&key_path).unwrap();

    // A key that is no key.
    write(&key_path, "hello", 0o600);
    assert_eq!(
        err(&settings).to_string(),
        format!(
            "could not load private key file \"{}\": no private key found (expected PEM or DER: PKCS#1, SEC1, PKCS#8 or encrypted PKCS#8)",
            key_path.display()
        )
    );

    // A key that parses as PEM but is not a usable key.
    write(
        &key_path,
        pem("PRIVATE KEY", b"\x30\x03\x02\x01\x00"),
        0o600,
    );
    assert!(
        matches!(err(&settings), SettingsError::KeyFile { path, .. } if path == key_path.to_str().unwrap())
    );

    // Someone else's key.
    write(
        &key_path,
        KeyPair::generate().unwrap().serialize_pem(),
        0o600,
    );
    assert_eq!(
        err(&settings).to_string(),
        format!(
            "certificate does not match private key file \"{}\": key values mismatch",
            key_path.display()
        )
    );

    // A certificate file that holds no certificate.
    write(&key_path, key.serialize_pem(), 0o600);
    write(&cert_path, "garbage", 0o644);
    let e = err(&settings);
    assert!(
        e.to_string().starts_with(&format!(
            "could not read certificate file \"{}\": ",
            cert_path.display()
        )),
        "{e}"
    );

    // Explicit sslcert / sslkey paths, and an OpenSSL engine reference.
    let cert2 = home.file("me.crt");
    let key2 = home.file("me.key");
    write(&cert2, &cert_pem, 0o644);
    write(&key2, key.serialize_pem(), 0o600);
    let settings = home.settings(&format!(
        "host=db sslmode=require sslcert={} sslkey={}",
        cert2.display(),
        key2.display()
    ));
    let files = settings.load_tls_files().unwrap();
    assert_eq!(files.cert_file.as_deref(), Some(cert2.as_path()));
    assert_eq!(files.key_file.as_deref(), Some(key2.as_path()));
    let settings = home.settings(&format!(
        "host=db sslmode=require sslcert={} sslkey=pkcs11:token",
        cert2.display()
    ));
    assert_eq!(
        err(&settings).to_string(),
        "could not load SSL engine \"pkcs11\": OpenSSL engines are not supported by pgtls"
    );

    // A path through a regular file (ENOTDIR) counts as "no certificate".
    let settings = home.settings(&format!(
        "host=db sslmode=require sslcert={}/x.crt",
        cert2.display()
    ));
    assert!(settings
        .load_tls_files()
        .unwrap()
        .client_certificate
        .is_none());
}

#[test]
fn files_are_not_read_when_tls_is_off_or_unwanted() {
    let home = Home::new();
    write(&home.dot("postgresql.crt"), "garbage", 0o644);
    write(&home.dot("postgresql.key"), "garbage", 0o666);
    write(&home.dot("root.crt"), "garbage", 0o644);
    // sslmode=disable: libpq never starts TLS, so never reads a file.
    let settings = home.settings("host=db sslmode=disable sslrootcert=/nonexistent/root.crt");
    let configs = settings.to_configs().unwrap();
    assert_eq!(configs[0].1.sslmode(), SslMode::Disable);
    // sslcertmode=disable: no client certificate is read.
    fs::remove_file(home.dot("root.crt")).unwrap();
    let settings = home.settings("host=db sslmode=require sslcertmode=disable");
    let files = settings.load_tls_files().unwrap();
    assert!(files.client_certificate.is_none());
    assert!(settings.to_configs().is_ok());
}

#[test]
fn environment_supplies_file_locations() {
    let home = Home::new();
    let ca = ca("Env CA");
    let root = home.file("env-root.pem");
    write(&root, &ca.pem, 0o644);
    let env = Environment::from_vars([
        ("HOME", home.path().to_str().unwrap()),
        ("PGSSLROOTCERT", root.to_str().unwrap()),
        ("PGSSLMODE", "verify-full"),
        ("PGHOST", "db.example.com"),
    ])
    .with_os_user("tester");
    let settings = ConnParams::parse("").unwrap().resolve(&env).unwrap();
    let files = settings.load_tls_files().unwrap();
    assert_eq!(files.root_file.as_deref(), Some(root.as_path()));
    let configs = settings.to_configs().unwrap();
    assert_eq!(configs[0].1.host(), "db.example.com");
    // The string beats the environment: an explicit root file that does not exist.
    let settings = ConnParams::parse("sslrootcert=/nonexistent/ca.pem")
        .unwrap()
        .resolve(&env)
        .unwrap();
    assert_eq!(
        err(&settings).to_string(),
        format!("root certificate file \"/nonexistent/ca.pem\" does not exist\n{ROOT_HINT}")
    );
}

#[test]
fn one_config_per_host_sharing_the_files() {
    let home = Home::new();
    let ca = ca("Multi CA");
    write(&home.dot("root.crt"), &ca.pem, 0o644);
    let settings = home.settings(
        "postgresql://u@a.example.com:5432,b.example.com:5433,[::1]/db?sslmode=verify-full",
    );
    let configs = settings.to_configs().unwrap();
    let hosts: Vec<(&str, u16)> = configs.iter().map(|(t, _)| (t.host(), t.port())).collect();
    assert_eq!(
        hosts,
        vec![
            ("a.example.com", 5432),
            ("b.example.com", 5433),
            ("::1", 5432)
        ]
    );
    for (target, config) in &configs {
        assert_eq!(config.host(), target.host());
        assert!(config.verifies_chain());
    }
    assert!(configs[1].1.sends_sni());
    assert!(!configs[2].1.sends_sni());

    // verify-full needs a host name for every entry, not only an address.
    let settings =
        home.settings("host=a.example.com, hostaddr=192.0.2.1,192.0.2.2 sslmode=verify-full");
    assert_eq!(settings.hosts()[1].host(), "");
    assert_eq!(
        err(&settings).to_string(),
        "host name must be specified for a verified SSL connection"
    );
    let settings =
        home.settings("host=a.example.com, hostaddr=192.0.2.1,192.0.2.2 sslmode=verify-ca");
    assert_eq!(
        settings.to_configs().unwrap()[1].0.connect_host(),
        "192.0.2.2"
    );
}

#[test]
fn the_users_service_file_supplies_tls_settings() {
    let home = Home::new();
    let root = ca("service root");
    let root_file = home.file("svc-root.crt");
    write(&root_file, &root.pem, 0o644);
    write(
        &home.file(".pg_service.conf"),
        format!(
            "[shop]\nhost=db.example.com\nsslmode=verify-full\nsslrootcert={}\n",
            root_file.display()
        ),
        0o644,
    );
    let settings = home.settings("service=shop");
    assert_eq!(settings.sslmode(), SslMode::VerifyFull);
    assert_eq!(settings.hosts()[0].host(), "db.example.com");
    let files = settings.load_tls_files().unwrap();
    assert_eq!(files.root_file.as_deref(), Some(root_file.as_path()));
    // The system file is read only for services the user's file lacks.
    let sysconf = home.file("etc");
    fs::create_dir(&sysconf).unwrap();
    write(
        &sysconf.join("pg_service.conf"),
        "[shop]\nhost=system.example.com\n[other]\nhost=other.example.com\nsslmode=disable\n",
        0o644,
    );
    let env = home.env().with_sysconfdir(&sysconf);
    let resolve = |conninfo: &str| ConnParams::parse(conninfo).unwrap().resolve(&env);
    assert_eq!(
        resolve("service=shop").unwrap().hosts()[0].host(),
        "db.example.com"
    );
    let other = resolve("service=other").unwrap();
    assert_eq!(other.hosts()[0].host(), "other.example.com");
    assert_eq!(other.sslmode(), SslMode::Disable);
    assert_eq!(
        resolve("service=none").unwrap_err().to_string(),
        "definition of service \"none\" not found"
    );
    // A broken user file fails even when the system file has the service.
    write(&home.file(".pg_service.conf"), "[shop]\nsslmode\n", 0o644);
    assert_eq!(
        resolve("service=shop").unwrap_err().to_string(),
        format!(
            "syntax error in service file \"{}\", line 2",
            home.file(".pg_service.conf").display()
        )
    );
}

#[cfg(unix)]
#[test]
fn the_users_password_file_is_offered_to_drivers() {
    let home = Home::new();
    write(
        &home.file(".pgpass"),
        "db.example.com:5432:*:tester:from\\:file\n",
        0o600,
    );
    let settings = home.settings("host=db.example.com,other.example.com");
    let hosts = settings.hosts();
    assert_eq!(settings.password(), None);
    assert_eq!(
        settings.password_for(&hosts[0]).as_deref(),
        Some("from:file")
    );
    assert_eq!(settings.password_for(&hosts[1]), None);
    // PGPASSWORD (or password=) wins over the file.
    let env = Environment::from_vars([
        ("HOME", home.path().to_str().unwrap()),
        ("PGPASSWORD", "explicit"),
    ])
    .with_os_user("tester");
    let settings = ConnParams::parse("host=db.example.com")
        .unwrap()
        .resolve(&env)
        .unwrap();
    assert_eq!(
        settings.password_for(&settings.hosts()[0]).as_deref(),
        Some("explicit")
    );
    // World-readable: refused.
    chmod(&home.file(".pgpass"), 0o644);
    let settings = home.settings("host=db.example.com");
    assert_eq!(settings.password_for(&settings.hosts()[0]), None);
}
