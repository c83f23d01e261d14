//! Client-certificate verification for the server side, the way a PostgreSQL server's OpenSSL
//! does it.
//!
//! The PostgreSQL server loads `ssl_ca_file` with `SSL_CTX_load_verify_locations` (self-signed
//! certificates are the trust anchors, the others only help build paths), sends the file's
//! subjects as the acceptable CA list (`SSL_load_client_CA_file`), requests a certificate
//! without requiring one (`SSL_VERIFY_PEER`, no `SSL_VERIFY_FAIL_IF_NO_PEER_CERT`: pg_hba's
//! `clientcert` decides later), and, when `ssl_crl_file`/`ssl_crl_dir` loaded, checks CRLs
//! for every certificate (`X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL`). OpenSSL judges
//! the chain with the `ssl_client` purpose: the same path building, X.509 v1 acceptance,
//! security-level-2 key sizes and revocation as the client side ([`super::chain`]), with
//! clientAuth instead of serverAuth in extendedKeyUsage.
//!
//! A failure is turned into the TLS alert OpenSSL sends for it (`ssl_x509err2alert`), through
//! the [`rustls::CertificateError`] that rustls maps to that alert:
//!
//! | OpenSSL alert | reasons | rustls error |
//! |---|---|---|
//! | unknown_ca | no issuer, self-signed, chain too long, invalid CA, path length, no CRL | `UnknownIssuer` |
//! | certificate_revoked | certificate revoked | `Revoked` |
//! | certificate_expired | certificate has expired, CRL has expired | `Expired` |
//! | bad_certificate | not yet valid, CRL not yet valid, key too weak, explicit EC parameters, unparsable | `BadEncoding` |
//! | decrypt_error | certificate or CRL signature failure (and algorithms the provider lacks) | `BadSignature` |
//! | unsupported_certificate | unsuitable certificate purpose | `InvalidPurpose` |
//! | certificate_unknown | everything else (critical extensions, name constraints, CRL scope…) | `Other`, carrying the failure |
//!
//! (The table is OpenSSL's `x509table`; revoked, unknown-CA and serverAuth-only client
//! certificates were checked against `openssl s_server -verify_return_error` of OpenSSL 3.0.)
//!
//! The rustls variant only selects the alert. The OpenSSL reason and depth, which the
//! PostgreSQL server logs ("Client certificate verification failed at depth 0: certificate
//! revoked."), are kept in a [`ClientCertFailure`]: carried inside `CertificateError::Other`
//! for certificate_unknown, and for every failure recorded for the calling thread, where
//! [`take_client_cert_failure`] picks it up right after the rustls call that failed (rustls
//! calls the verifier synchronously from `process_new_packets`, on the caller's thread).

use std::cell::RefCell;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, DistinguishedName, OtherError,
    SignatureScheme,
};

use super::chain::{ChainError, Purpose, TrustStore};
use super::signature;
use crate::error::ConfigError;

/// Why a client certificate was rejected: OpenSSL's reason, its depth and the alert sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientCertFailure {
    /// The `X509_V_ERR_*` reason; [`ChainError::as_str`] is OpenSSL's text.
    pub(crate) error: ChainError,
    /// Depth of the certificate concerned in the built chain (0 = the client's own).
    pub(crate) depth: usize,
    /// The alert OpenSSL sends for it (`ssl_x509err2alert`).
    pub(crate) alert: AlertDescription,
}

impl ClientCertFailure {
    /// The failure for an OpenSSL reason at a depth.
    pub(crate) fn new(error: ChainError, depth: usize) -> Self {
        Self {
            error,
            depth,
            alert: alert_for(error),
        }
    }

    /// OpenSSL's reason text (`X509_verify_cert_error_string`), e.g. `certificate revoked`.
    pub(crate) fn reason(&self) -> &'static str {
        self.error.as_str()
    }

    /// The first line PostgreSQL's `verify_cb` logs for it.
    pub(crate) fn server_log_detail(&self) -> String {
        format!(
            "Client certificate verification failed at depth {}: {}.",
            self.depth,
            self.reason()
        )
    }

    /// The failure carried in a rustls error made by this verifier (certificate_unknown
    /// failures only; the others are found with [`take_client_cert_failure`]).
    #[cfg(test)]
    pub(crate) fn carried_by(err: &rustls::Error) -> Option<Self> {
        match err {
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                other.0.downcast_ref::<Self>().copied()
            }
            _ => None,
        }
    }

    /// The rustls error whose alert is OpenSSL's.
    fn into_rustls(self) -> rustls::Error {
        let cert_error = match self.alert {
            AlertDescription::UnknownCA => CertificateError::UnknownIssuer,
            AlertDescription::CertificateRevoked => CertificateError::Revoked,
            AlertDescription::CertificateExpired => CertificateError::Expired,
            AlertDescription::BadCertificate => CertificateError::BadEncoding,
            AlertDescription::DecryptError => CertificateError::BadSignature,
            AlertDescription::UnsupportedCertificate => CertificateError::InvalidPurpose,
            _ => CertificateError::Other(OtherError(Arc::new(self))),
        };
        rustls::Error::InvalidCertificate(cert_error)
    }
}

impl fmt::Display for ClientCertFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (depth {})", self.reason(), self.depth)
    }
}

impl StdError for ClientCertFailure {}

/// OpenSSL's `ssl_x509err2alert` for the reasons pgtls reports.
fn alert_for(error: ChainError) -> AlertDescription {
    use ChainError as E;
    match error {
        E::UnableToGetIssuerCertLocally
        | E::UnableToGetIssuerCert
        | E::DepthZeroSelfSignedCert
        | E::SelfSignedCertInChain
        | E::CertChainTooLong
        | E::InvalidCa
        | E::PathLengthExceeded
        | E::UnableToGetCrl => AlertDescription::UnknownCA,
        E::CertRevoked => AlertDescription::CertificateRevoked,
        E::CertHasExpired | E::CrlHasExpired => AlertDescription::CertificateExpired,
        E::CertNotYetValid
        | E::CrlNotYetValid
        | E::EeKeyTooSmall
        | E::CaKeyTooSmall
        | E::EcKeyExplicitParams
        | E::UnparsableCertificate => AlertDescription::BadCertificate,
        E::CertSignatureFailure | E::CrlSignatureFailure | E::UnsupportedSignatureAlgorithm => {
            AlertDescription::DecryptError
        }
        E::InvalidPurpose => AlertDescription::UnsupportedCertificate,
        // Not in OpenSSL's table (X509_V_ERR_UNSPECIFIED is, as internal_error, which a rustls
        // verifier cannot send): certificate_unknown.
        E::UnhandledCriticalExtension
        | E::ProxyCertificatesNotAllowed
        | E::UnhandledCriticalCrlExtension
        | E::KeyUsageNoCrlSign
        | E::DifferentCrlScope
        | E::PermittedViolation
        | E::ExcludedViolation
        | E::UnsupportedConstraintType
        | E::UnsupportedNameSyntax
        | E::Unspecified => AlertDescription::CertificateUnknown,
    }
}

thread_local! {
    /// The outcome of the last client-certificate verification on this thread.
    static LAST_FAILURE: RefCell<Option<ClientCertFailure>> = const { RefCell::new(None) };
}

/// The failure of the last client-certificate verification on this thread, if it failed;
/// cleared by the call. Call it right after the rustls call that returned the error.
pub(crate) fn take_client_cert_failure() -> Option<ClientCertFailure> {
    LAST_FAILURE.with(|slot| slot.borrow_mut().take())
}

/// Records the outcome of one verification for [`take_client_cert_failure`].
fn record(outcome: Option<ClientCertFailure>) {
    LAST_FAILURE.with(|slot| *slot.borrow_mut() = outcome);
}

/// The PostgreSQL server's client-certificate verifier (see the module docs).
#[derive(Debug)]
pub(crate) struct PostgresClientVerifier {
    /// `ssl_ca_file`'s certificates and the CRLs, with the `ssl_client` purpose.
    store: TrustStore,
    /// Subjects of `ssl_ca_file`, in file order, without repeats.
    hints: Vec<DistinguishedName>,
    /// The provider's signature algorithms.
    algorithms: WebPkiSupportedAlgorithms,
}

impl PostgresClientVerifier {
    /// A verifier over an already built store (its purpose is set to `ssl_client`).
    pub(crate) fn new(
        store: TrustStore,
        ca_certs: &[CertificateDer<'_>],
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Self {
        Self {
            store: store.with_purpose(Purpose::SslClient),
            hints: hint_subjects(ca_certs),
            algorithms,
        }
    }
}

/// The subjects of the CA file (`SSL_load_client_CA_file`: every certificate, repeats dropped).
fn hint_subjects(ca_certs: &[CertificateDer<'_>]) -> Vec<DistinguishedName> {
    use x509_cert::der::Encode;
    let mut hints: Vec<DistinguishedName> = Vec::new();
    for der in ca_certs {
        let Ok(cert) = super::x509::decode_certificate(der.as_ref()) else {
            continue;
        };
        let Ok(subject) = cert.tbs_certificate.subject.to_der() else {
            continue;
        };
        let subject = DistinguishedName::from(subject);
        if !hints.iter().any(|h| h.as_ref() == subject.as_ref()) {
            hints.push(subject);
        }
    }
    hints
}

impl ClientCertVerifier for PostgresClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let outcome = self
            .store
            .verify_chain_detailed(end_entity, intermediates, now, &self.algorithms)
            .map_err(|failure| ClientCertFailure::new(failure.error, failure.depth));
        record(outcome.err());
        outcome
            .map(|()| ClientCertVerified::assertion())
            .map_err(ClientCertFailure::into_rustls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Builds the verifier from `ssl_ca_file`'s certificates and the CRLs of `ssl_crl_file` /
/// `ssl_crl_dir` (CRL checking on when any CRL is given; see [`super::client_verifier_with_crl_check`]).
pub(crate) fn build(
    ca_certs: &[CertificateDer<'static>],
    crls: &[CertificateRevocationListDer<'static>],
    crl_check: Option<bool>,
    provider: &Arc<CryptoProvider>,
) -> Result<PostgresClientVerifier, ConfigError> {
    let store = super::store_from_root_file(ca_certs, crls, crl_check)?;
    Ok(PostgresClientVerifier::new(
        store,
        ca_certs,
        provider.signature_verification_algorithms,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
        ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
        RevokedCertParams, SerialNumber,
    };
    use std::time::Duration;
    use time::OffsetDateTime;

    /// A CA or leaf made with rcgen.
    struct Made {
        params: CertificateParams,
        key: KeyPair,
        der: CertificateDer<'static>,
    }

    impl Made {
        fn issuer(&self) -> Issuer<'_, &KeyPair> {
            Issuer::from_params(&self.params, &self.key)
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn unix_now() -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(now().unix_timestamp() as u64))
    }

    fn ca(cn: &str) -> Made {
        let mut params = CertificateParams::new(Vec::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now() - time::Duration::days(1);
        params.not_after = now() + time::Duration::days(30);
        let key = KeyPair::generate().expect("key");
        let der = params.self_signed(&key).expect("sign").der().clone();
        Made { params, key, der }
    }

    /// A client certificate for `user`, with `eku` and a validity window around now.
    fn client(
        issuer: &Made,
        user: &str,
        eku: &[ExtendedKeyUsagePurpose],
        expired: bool,
        serial: u64,
    ) -> Made {
        let mut params = CertificateParams::new(Vec::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, user);
        params.extended_key_usages = eku.to_vec();
        params.serial_number = Some(SerialNumber::from(serial));
        let (from, to) = if expired {
            (
                now() - time::Duration::days(10),
                now() - time::Duration::days(1),
            )
        } else {
            (
                now() - time::Duration::days(1),
                now() + time::Duration::days(10),
            )
        };
        params.not_before = from;
        params.not_after = to;
        let key = KeyPair::generate().expect("key");
        let der = params
            .signed_by(&key, &issuer.issuer())
            .expect("sign")
            .der()
            .clone();
        Made { params, key, der }
    }

    fn crl(issuer: &Made, revoked: &[u64]) -> CertificateRevocationListDer<'static> {
        let params = CertificateRevocationListParams {
            this_update: now() - time::Duration::hours(1),
            next_update: now() + time::Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|&serial| RevokedCertParams {
                    serial_number: SerialNumber::from(serial),
                    revocation_time: now() - time::Duration::hours(1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&issuer.issuer())
            .expect("crl")
            .der()
            .clone()
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    fn verifier(
        ca_certs: &[CertificateDer<'static>],
        crls: &[CertificateRevocationListDer<'static>],
    ) -> Arc<dyn ClientCertVerifier> {
        super::super::client_verifier_with_crl_check(ca_certs, crls, None, &provider())
            .expect("verifier")
    }

    /// Verifies `leaf` and returns the rustls error and the recorded failure.
    fn reject(
        verifier: &Arc<dyn ClientCertVerifier>,
        leaf: &Made,
    ) -> (rustls::Error, ClientCertFailure) {
        let err = verifier
            .verify_client_cert(&leaf.der, &[], unix_now())
            .expect_err("a rejection was expected");
        let failure = take_client_cert_failure().expect("recorded failure");
        (err, failure)
    }

    const CLIENT_AUTH: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ClientAuth];

    #[test]
    fn a_client_certificate_from_the_ca_is_accepted() {
        let root = ca("client ca");
        let verifier = verifier(std::slice::from_ref(&root.der), &[]);
        for eku in [CLIENT_AUTH, &[]] {
            let leaf = client(&root, "alice", eku, false, 7);
            let verified = verifier.verify_client_cert(&leaf.der, &[], unix_now());
            assert!(verified.is_ok(), "{verified:?}");
            assert_eq!(take_client_cert_failure(), None);
        }
        assert!(verifier.offer_client_auth());
        assert!(!verifier.client_auth_mandatory());
    }

    #[test]
    fn the_ca_file_subjects_are_the_hints() {
        let (a, b) = (ca("first ca"), ca("second ca"));
        let verifier = verifier(&[a.der.clone(), b.der.clone(), a.der.clone()], &[]);
        let hints = verifier.root_hint_subjects();
        assert_eq!(hints.len(), 2);
        let (_, parsed) = x509_parser::parse_x509_certificate(&a.der).expect("parse");
        assert_eq!(hints[0].as_ref(), parsed.subject().as_raw());
    }

    #[test]
    fn a_revoked_certificate_is_refused_with_certificate_revoked() {
        let root = ca("client ca");
        let leaf = client(&root, "mallory", CLIENT_AUTH, false, 42);
        let verifier = verifier(std::slice::from_ref(&root.der), &[crl(&root, &[42])]);
        let (err, failure) = reject(&verifier, &leaf);
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::Revoked)
        );
        assert_eq!(failure, ClientCertFailure::new(ChainError::CertRevoked, 0));
        assert_eq!(failure.alert, AlertDescription::CertificateRevoked);
        assert_eq!(
            failure.server_log_detail(),
            "Client certificate verification failed at depth 0: certificate revoked."
        );
        // A CRL that lists another serial: fine.
        let verifier = super::super::client_verifier_with_crl_check(
            std::slice::from_ref(&root.der),
            &[crl(&root, &[43])],
            None,
            &provider(),
        )
        .expect("verifier");
        assert!(verifier
            .verify_client_cert(&leaf.der, &[], unix_now())
            .is_ok());
    }

    #[test]
    fn an_expired_certificate_is_refused_with_certificate_expired() {
        let root = ca("client ca");
        let leaf = client(&root, "bob", CLIENT_AUTH, true, 9);
        let (err, failure) = reject(&verifier(std::slice::from_ref(&root.der), &[]), &leaf);
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::Expired)
        );
        assert_eq!(failure.reason(), "certificate has expired");
        assert_eq!(failure.alert, AlertDescription::CertificateExpired);
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused_with_unknown_ca() {
        let (trusted, other) = (ca("trusted ca"), ca("other ca"));
        let leaf = client(&other, "eve", CLIENT_AUTH, false, 5);
        let (err, failure) = reject(&verifier(std::slice::from_ref(&trusted.der), &[]), &leaf);
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        assert_eq!(failure.reason(), "unable to get local issuer certificate");
        assert_eq!(failure.alert, AlertDescription::UnknownCA);
    }

    #[test]
    fn a_server_auth_only_certificate_is_refused_as_unsuitable() {
        let root = ca("client ca");
        let leaf = client(
            &root,
            "srv",
            &[ExtendedKeyUsagePurpose::ServerAuth],
            false,
            3,
        );
        let (err, failure) = reject(&verifier(std::slice::from_ref(&root.der), &[]), &leaf);
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose)
        );
        assert_eq!(failure.reason(), "unsuitable certificate purpose");
        assert_eq!(failure.alert, AlertDescription::UnsupportedCertificate);
    }

    #[test]
    fn crls_are_required_for_every_certificate_once_loaded() {
        let root = ca("client ca");
        let other = ca("unrelated ca");
        let leaf = client(&root, "carol", CLIENT_AUTH, false, 11);
        let (err, failure) = reject(
            &verifier(std::slice::from_ref(&root.der), &[crl(&other, &[])]),
            &leaf,
        );
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        assert_eq!(failure.reason(), "unable to get certificate CRL");
    }

    #[test]
    fn certificate_unknown_failures_carry_the_reason() {
        let failure = ClientCertFailure::new(ChainError::PermittedViolation, 1);
        assert_eq!(failure.alert, AlertDescription::CertificateUnknown);
        let err = failure.into_rustls();
        assert_eq!(ClientCertFailure::carried_by(&err), Some(failure));
        assert_eq!(
            AlertDescription::from(match err {
                rustls::Error::InvalidCertificate(e) => e,
                other => panic!("{other:?}"),
            }),
            AlertDescription::CertificateUnknown
        );
    }

    #[test]
    fn every_alert_is_the_one_rustls_sends_for_the_error() {
        for error in [
            ChainError::UnableToGetIssuerCertLocally,
            ChainError::CertRevoked,
            ChainError::CertHasExpired,
            ChainError::CertNotYetValid,
            ChainError::CertSignatureFailure,
            ChainError::InvalidPurpose,
            ChainError::ExcludedViolation,
            ChainError::EeKeyTooSmall,
        ] {
            let failure = ClientCertFailure::new(error, 0);
            let rustls::Error::InvalidCertificate(cert_error) = failure.into_rustls() else {
                panic!("{error:?}");
            };
            assert_eq!(
                AlertDescription::from(cert_error),
                failure.alert,
                "{error:?}"
            );
        }
    }

    #[test]
    fn an_x509_v1_client_certificate_is_accepted() {
        let root = ca("client ca");
        let v3 = client(&root, "legacy", &[], false, 21);
        let v1 = crate::verify::chain::test_support::make_v1(&v3.der, &root.key);
        let verified =
            verifier(std::slice::from_ref(&root.der), &[]).verify_client_cert(&v1, &[], unix_now());
        assert!(verified.is_ok(), "{verified:?}");
    }

    /// Runs a real rustls handshake in memory between a server using `verifier` and a client
    /// presenting `leaf`; returns the server's and the client's errors.
    fn handshake(
        verifier: Arc<dyn ClientCertVerifier>,
        leaf: &Made,
    ) -> (Option<rustls::Error>, Option<rustls::Error>) {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let key_der =
            |m: &Made| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(m.key.serialize_der()));
        let server_ca = ca("server ca");
        let server_leaf = client(&server_ca, "db.example.com", &[], false, 1);
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_leaf.der.clone()], key_der(&server_leaf))
            .expect("server config");
        let accept_any = crate::verify::LibpqVerifier::new(
            crate::verify::ChainPolicy::Nothing,
            None,
            provider().signature_verification_algorithms,
        );
        let client_config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(accept_any))
            .with_client_auth_cert(vec![leaf.der.clone()], key_der(leaf))
            .expect("client config");
        let name = rustls::pki_types::ServerName::try_from("db.example.com").expect("name");
        let mut client =
            rustls::ClientConnection::new(Arc::new(client_config), name).expect("client");
        let mut server = rustls::ServerConnection::new(Arc::new(server_config)).expect("server");
        let (mut server_err, mut client_err) = (None, None);
        for _ in 0..8 {
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).expect("client write");
            let mut input = &bytes[..];
            while !input.is_empty() && server_err.is_none() {
                server.read_tls(&mut input).expect("server read");
                server_err = server.process_new_packets().err();
            }
            let mut bytes = Vec::new();
            server.write_tls(&mut bytes).expect("server write");
            let mut input = &bytes[..];
            while !input.is_empty() && client_err.is_none() {
                client.read_tls(&mut input).expect("client read");
                client_err = client.process_new_packets().err();
            }
            if client_err.is_some() || !(client.is_handshaking() || server.is_handshaking()) {
                break;
            }
        }
        (server_err, client_err)
    }

    #[test]
    fn in_a_rustls_handshake_the_client_gets_openssl_s_alert() {
        let root = ca("client ca");
        let good = client(&root, "alice", CLIENT_AUTH, false, 76);
        let revoked = client(&root, "mallory", CLIENT_AUTH, false, 77);
        let make = || verifier(std::slice::from_ref(&root.der), &[crl(&root, &[77])]);

        assert_eq!(handshake(make(), &good), (None, None));
        assert_eq!(take_client_cert_failure(), None);

        let (server_err, client_err) = handshake(make(), &revoked);
        assert_eq!(
            server_err,
            Some(rustls::Error::InvalidCertificate(CertificateError::Revoked))
        );
        assert_eq!(
            client_err,
            Some(rustls::Error::AlertReceived(
                AlertDescription::CertificateRevoked
            ))
        );
        let failure = take_client_cert_failure().expect("recorded on this thread");
        assert_eq!(failure, ClientCertFailure::new(ChainError::CertRevoked, 0));
        assert_eq!(take_client_cert_failure(), None, "taken once");
    }

    #[test]
    fn a_bad_ca_file_is_a_config_error() {
        let bad = [CertificateDer::from(vec![0x30, 0x00])];
        assert!(
            super::super::client_verifier_with_crl_check(&bad, &[], None, &provider()).is_err()
        );
    }
}
