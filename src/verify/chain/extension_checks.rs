//! `check_extensions`: critical extensions, proxies, CA-ness (`check_ca`), explicit EC
//! parameters, the `ssl_server` / `ssl_client` purposes and path length constraints.

use super::cert::Cert;
use super::errors::{ChainError, ChainFailure};
use super::path::Link;

/// keyUsage bit for keyCertSign.
pub(super) const KU_KEY_CERT_SIGN: u16 = 1 << 5;

/// keyUsage bits a TLS server key needs one of (`KU_TLS`): digitalSignature, keyEncipherment,
/// keyAgreement.
pub(super) const KU_TLS: u16 = 1 | (1 << 2) | (1 << 4);
/// keyUsage bits a TLS client key needs one of: digitalSignature, keyAgreement.
pub(super) const KU_TLS_CLIENT: u16 = 1 | (1 << 4);

/// The purpose a chain is verified for (`X509_PURPOSE`): what libpq checks of a server, or
/// what the PostgreSQL server checks of a client certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `ssl_server`: libpq verifying the server.
    #[default]
    SslServer,
    /// `ssl_client`: the PostgreSQL server verifying a client certificate.
    SslClient,
}

impl Cert {
    /// OpenSSL's `check_ca`: 0 not a CA, 1 a CA by basicConstraints, 3 a v1 self-signed root,
    /// 4 no basicConstraints but keyUsage with keyCertSign, 5 a Netscape CA type.
    pub(super) fn ca_kind(&self) -> u8 {
        if self
            .ext
            .key_usage
            .is_some_and(|ku| ku & KU_KEY_CERT_SIGN == 0)
        {
            return 0;
        }
        if let Some((ca, _)) = self.ext.basic_constraints {
            return u8::from(ca);
        }
        if self.is_v1 && self.self_signed {
            3
        } else if self.ext.key_usage.is_some() {
            4
        } else if self.ext.ns_cert_type.is_some_and(|ns| ns.any_ca) {
            5
        } else {
            0
        }
    }

    /// The `ssl_server` purpose for the leaf (`check_purpose_ssl_server`, not a CA): EKU (if
    /// any) has serverAuth or SGC, Netscape type (if any) has SSL server, keyUsage (if any) has
    /// digitalSignature, keyEncipherment or keyAgreement. anyExtendedKeyUsage does not count.
    pub(super) fn is_tls_server_leaf(&self) -> bool {
        self.ext.server_eku != Some(false)
            && self.ext.ns_cert_type.is_none_or(|ns| ns.ssl_server)
            && self.ext.key_usage.is_none_or(|ku| ku & KU_TLS != 0)
    }

    /// The `ssl_server` purpose for a CA (`check_ssl_ca`): the EKU (if any) allows TLS servers,
    /// and a CA known only by its Netscape type must be an SSL CA.
    pub(super) fn is_tls_server_ca(&self) -> bool {
        self.ext.server_eku != Some(false) && self.is_ssl_ca()
    }

    /// The `ssl_client` purpose for the leaf (`check_purpose_ssl_client`): EKU (if any) has
    /// clientAuth, keyUsage (if any) has digitalSignature or keyAgreement, Netscape type (if
    /// any) has SSL client.
    pub(super) fn is_tls_client_leaf(&self) -> bool {
        self.ext.client_eku != Some(false)
            && self.ext.key_usage.is_none_or(|ku| ku & KU_TLS_CLIENT != 0)
            && self.ext.ns_cert_type.is_none_or(|ns| ns.ssl_client)
    }

    /// The `ssl_client` purpose for a CA: the EKU (if any) allows TLS clients, and
    /// `check_ssl_ca`.
    pub(super) fn is_tls_client_ca(&self) -> bool {
        self.ext.client_eku != Some(false) && self.is_ssl_ca()
    }

    /// `check_ssl_ca`'s Netscape part: a CA known only by its Netscape type must be an SSL CA.
    pub(super) fn is_ssl_ca(&self) -> bool {
        self.ca_kind() != 5 || self.ext.ns_cert_type.is_some_and(|ns| ns.ssl_ca)
    }

    /// Whether the certificate at this place of a path (leaf or above) fits `purpose`.
    pub(super) fn fits_purpose(&self, purpose: Purpose, is_leaf: bool) -> bool {
        match (purpose, is_leaf) {
            (Purpose::SslServer, true) => self.is_tls_server_leaf(),
            (Purpose::SslServer, false) => self.is_tls_server_ca(),
            (Purpose::SslClient, true) => self.is_tls_client_leaf(),
            (Purpose::SslClient, false) => self.is_tls_client_ca(),
        }
    }
}

/// `check_extensions` for `purpose` (`ssl_server` or `ssl_client`): per certificate from the leaf up, unhandled
/// critical extensions, proxy certificates, CA-ness of issuers (`X509_check_ca`: intermediates
/// need basicConstraints cA; the top may also be a v1 self-signed root, a keyUsage-only or a
/// Netscape CA), explicit EC parameters (chains longer than one), the purpose, and path length
/// constraints (self-issued intermediates not counted).
pub(super) fn check_extensions(path: &[Link<'_>], purpose: Purpose) -> Result<(), ChainFailure> {
    let num = path.len();
    let mut plen: u64 = 0;
    for (i, link) in path.iter().enumerate() {
        let Some(cert) = link.cert() else { continue };
        let fail = |error| Err(ChainFailure::at(error, i));
        if cert.ext.unhandled_critical {
            return fail(ChainError::UnhandledCriticalExtension);
        }
        if cert.ext.proxy {
            return fail(ChainError::ProxyCertificatesNotAllowed);
        }
        if i > 0 {
            let kind = cert.ca_kind();
            if kind == 0 || (i + 1 < num && kind != 1) {
                return fail(ChainError::InvalidCa);
            }
        }
        if num > 1 && cert.ec_explicit_params {
            return fail(ChainError::EcKeyExplicitParams);
        }
        if !cert.fits_purpose(purpose, i == 0) {
            return fail(ChainError::InvalidPurpose);
        }
        if let Some((_, Some(max))) = cert.ext.basic_constraints {
            if i > 1 && plen > u64::from(max) {
                return fail(ChainError::PathLengthExceeded);
            }
        }
        if i > 0 && !cert.self_issued {
            plen += 1;
        }
    }
    Ok(())
}
