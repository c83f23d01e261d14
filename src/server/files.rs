//! PostgreSQL's server TLS files (`ssl_cert_file`, `ssl_key_file`, `ssl_ca_file`,
//! `ssl_crl_file`, `ssl_crl_dir`) read into a [`ServerTls`], with PostgreSQL's error
//! messages naming the file at fault.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use super::config::{ServerTls, ServerTlsBuilder};
use super::credentials::{certified_key, io_reason, KeyProblem, NO_START_LINE};
use super::error::LoadError;
use crate::config::default_provider;

/// The server's TLS files, as PostgreSQL's `ssl_*` settings name them. Load them with
/// [`ServerTlsFiles::load`] at start-up and again to reload (e.g. on `SIGHUP`, swapping
/// the result in with [`super::SharedAcceptorConfig`]).
///
/// The certificate is not validated (a server does not check its own certificate, so
/// X.509 v1 certificates made by PostgreSQL's documented `openssl x509 -req` recipe are
/// served); the key must be the certificate's.
#[derive(Debug, Clone)]
pub struct ServerTlsFiles {
    cert_file: PathBuf,
    key_file: PathBuf,
    ca_file: Option<PathBuf>,
    crl_file: Option<PathBuf>,
    crl_dir: Option<PathBuf>,
    provider: Option<Arc<CryptoProvider>>,
}

impl ServerTlsFiles {
    /// The certificate chain (PEM, leaf first) and private key (PEM: PKCS#8, PKCS#1 or
    /// SEC1) files.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> ServerTlsFiles {
        ServerTlsFiles {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            ca_file: None,
            crl_file: None,
            crl_dir: None,
            provider: None,
        }
    }

    /// `ssl_ca_file`: request client certificates and check them against these CAs.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> ServerTlsFiles {
        self.ca_file = Some(path.into());
        self
    }

    /// `ssl_crl_file`: CRLs (PEM or DER) for the client CAs.
    pub fn crl_file(mut self, path: impl Into<PathBuf>) -> ServerTlsFiles {
        self.crl_file = Some(path.into());
        self
    }

    /// `ssl_crl_dir`: a directory of CRL files (PEM or DER). Every regular file in it is
    /// read at load time (OpenSSL looks them up by hash name on demand; the result is
    /// the same for a directory made with `openssl rehash`, and a reload picks up
    /// changes).
    pub fn crl_dir(mut self, path: impl Into<PathBuf>) -> ServerTlsFiles {
        self.crl_dir = Some(path.into());
        self
    }

    /// The rustls crypto provider (default: aws-lc-rs, or ring).
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> ServerTlsFiles {
        self.provider = Some(provider);
        self
    }

    /// Reads the files and builds the configuration.
    ///
    /// # Errors
    /// A file cannot be read or holds nothing usable, the key is not the certificate's,
    /// or the configuration cannot be built; the message is PostgreSQL's and names the
    /// file.
    pub fn load(&self) -> Result<ServerTls, LoadError> {
        self.builder()?.build().map_err(LoadError::Config)
    }

    /// Reads the files into a [`ServerTlsBuilder`], for the less common settings.
    ///
    /// # Errors
    /// As [`Self::load`].
    pub fn builder(&self) -> Result<ServerTlsBuilder, LoadError> {
        let provider = match &self.provider {
            Some(provider) => provider.clone(),
            None => default_provider()?,
        };
        let chain = self.read_chain()?;
        let key = self.read_key()?;
        let cert_file = display(&self.cert_file);
        let key_file = display(&self.key_file);
        // Checked here to name the right file; the builder checks again (cheaply).
        certified_key(chain.clone(), key.clone_key(), &provider).map_err(
            |problem| match problem {
                KeyProblem::Certificate(reason) => LoadError::CertificateFile {
                    path: cert_file.clone(),
                    reason,
                },
                KeyProblem::Key(reason) => LoadError::PrivateKeyFile {
                    path: key_file.clone(),
                    reason,
                },
                KeyProblem::Mismatch => LoadError::KeyMismatch {
                    key_file: key_file.clone(),
                    cert_file: cert_file.clone(),
                },
            },
        )?;
        let mut builder = ServerTls::builder(chain, key).crypto_provider(provider);
        if let Some(ca_file) = &self.ca_file {
            builder = builder.client_ca_certificates(read_ca_file(ca_file)?);
            let mut crls = Vec::new();
            if let Some(crl_file) = &self.crl_file {
                crls.extend(read_crl_file(crl_file)?);
            }
            if let Some(crl_dir) = &self.crl_dir {
                crls.extend(read_crl_dir(crl_dir)?);
            }
            // PostgreSQL sets the CRL flags once either setting loaded, CRLs or not.
            let any_crl_setting = self.crl_file.is_some() || self.crl_dir.is_some();
            builder = builder
                .client_crls(crls)
                .client_crl_check(any_crl_setting.then_some(true));
        }
        Ok(builder)
    }

    fn read_chain(&self) -> Result<Vec<CertificateDer<'static>>, LoadError> {
        let error = |reason: String| LoadError::CertificateFile {
            path: display(&self.cert_file),
            reason,
        };
        let pem = std::fs::read(&self.cert_file).map_err(|err| error(io_reason(&err)))?;
        let chain = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| error(err.to_string()))?;
        if chain.is_empty() {
            return Err(error(NO_START_LINE.into()));
        }
        Ok(chain)
    }

    fn read_key(&self) -> Result<PrivateKeyDer<'static>, LoadError> {
        let error = |reason: String| LoadError::PrivateKeyFile {
            path: display(&self.key_file),
            reason,
        };
        let pem = std::fs::read(&self.key_file).map_err(|err| error(io_reason(&err)))?;
        PrivateKeyDer::from_pem_slice(&pem).map_err(|err| match err {
            rustls::pki_types::pem::Error::NoItemsFound => error(NO_START_LINE.into()),
            other => error(other.to_string()),
        })
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let error = |reason: String| LoadError::RootCertificateFile {
        path: display(path),
        reason,
    };
    let pem = std::fs::read(path).map_err(|err| error(io_reason(&err)))?;
    let cas = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| error(err.to_string()))?;
    if cas.is_empty() {
        return Err(error(NO_START_LINE.into()));
    }
    Ok(cas)
}

/// The CRLs of one file: PEM blocks, or one DER CRL.
fn parse_crls(bytes: &[u8]) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    // DER: an ASN.1 SEQUENCE (PEM starts with text).
    if bytes.first() == Some(&0x30) {
        return Ok(vec![CertificateRevocationListDer::from(bytes.to_vec())]);
    }
    let pem = CertificateRevocationListDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| err.to_string())?;
    if pem.is_empty() {
        return Err(NO_START_LINE.into());
    }
    Ok(pem)
}

fn read_crl_file(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, LoadError> {
    let error = |reason: String| LoadError::CrlFile {
        path: display(path),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|err| error(io_reason(&err)))?;
    parse_crls(&bytes).map_err(error)
}

fn read_crl_dir(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, LoadError> {
    let error = |reason: String| LoadError::CrlDirectory {
        path: display(path),
        reason,
    };
    let entries = std::fs::read_dir(path).map_err(|err| error(io_reason(&err)))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|file| file.is_file())
        .collect();
    files.sort();
    let mut crls = Vec::new();
    for file in files {
        // OpenSSL skips what is not a CRL (the directory may hold certificates too).
        if let Ok(bytes) = std::fs::read(&file) {
            crls.extend(parse_crls(&bytes).unwrap_or_default());
        }
    }
    Ok(crls)
}
