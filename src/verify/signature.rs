//! Signature checks through the caller's rustls crypto provider.
//!
//! rustls' own helpers (`rustls::crypto::verify_tls12_signature` and friends) parse the peer's
//! certificate with webpki, which rejects X.509 v1 certificates. PostgreSQL's documented recipe
//! (`openssl req -new …; openssl x509 -req …`) produces v1 certificates, and libpq (OpenSSL)
//! accepts them, so this module re-implements the same checks on top of x509-cert while keeping
//! the cryptography in the provider (`WebPkiSupportedAlgorithms`), so the crate stays
//! provider-agnostic.
//!
//! Algorithm identifiers are compared as the DER *contents* of an `AlgorithmIdentifier` (the OID
//! plus any parameters, without the outer SEQUENCE header), which is what
//! [`SignatureVerificationAlgorithm::public_key_alg_id`] and
//! [`SignatureVerificationAlgorithm::signature_alg_id`] return. This keeps the ECDSA curve
//! parameter and RSA's NULL parameter exact.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{CertificateError, DigitallySignedStruct, Error, PeerMisbehaved, SignatureScheme};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm};

/// DER tag of a SEQUENCE.
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
/// DER tag of a BIT STRING.
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
/// DER tag of an OBJECT IDENTIFIER.
const TAG_OID: u8 = 0x06;
/// DER encoding of an ASN.1 NULL.
const DER_NULL: [u8; 2] = [0x05, 0x00];

/// One DER element: its (single-byte) tag, its contents and its whole encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet.
    pub(crate) tag: u8,
    /// The contents octets.
    pub(crate) value: &'a [u8],
    /// The complete encoding (identifier, length and contents).
    pub(crate) raw: &'a [u8],
}

/// Reads one DER element from the front of `input`; returns it and the rest.
///
/// Only low tag numbers (below 31) and definite lengths of up to four length octets are accepted;
/// everything else yields `None`. Never panics.
pub(crate) fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let header_len = input.len() - rest.len();
    let (value, remaining) = rest.split_at(len);
    let raw = &input[..header_len + len];
    Some((Tlv { tag, value, raw }, remaining))
}

/// Reads one element that must carry `tag`.
pub(crate) fn expect_tlv(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
    read_tlv(input).filter(|(tlv, _)| tlv.tag == tag)
}

/// The three parts of a signed X.509 object (certificate or CRL).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SignedParts<'a> {
    /// The complete encoding of the to-be-signed part (the signed bytes).
    pub(crate) tbs: &'a [u8],
    /// The contents of the outer `signatureAlgorithm` AlgorithmIdentifier.
    pub(crate) signature_alg: &'a [u8],
    /// The contents of the `signature` AlgorithmIdentifier inside the to-be-signed part.
    pub(crate) inner_signature_alg: &'a [u8],
    /// The signature value (BIT STRING contents without the unused-bits octet).
    pub(crate) signature: &'a [u8],
}

/// Splits `SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }` as used by certificates and CRLs.
///
/// Trailing bytes after the outer SEQUENCE and signatures with unused bits are rejected.
pub(crate) fn split_signed(der: &[u8]) -> Option<SignedParts<'_>> {
    let (outer, trailing) = expect_tlv(der, TAG_SEQUENCE)?;
    if !trailing.is_empty() {
        return None;
    }
    let (tbs, rest) = expect_tlv(outer.value, TAG_SEQUENCE)?;
    let (alg, rest) = expect_tlv(rest, TAG_SEQUENCE)?;
    let (sig, rest) = expect_tlv(rest, TAG_BIT_STRING)?;
    if !rest.is_empty() {
        return None;
    }
    Some(SignedParts {
        tbs: tbs.raw,
        signature_alg: alg.value,
        inner_signature_alg: tbs_signature_alg(tbs.value)?,
        signature: bit_string_bytes(sig.value)?,
    })
}

impl SignedParts<'_> {
    /// Whether the outer and the inner AlgorithmIdentifier are the same (`X509_ALGOR_cmp`:
    /// OID and parameters, an absent parameter differing from NULL). OpenSSL's `X509_verify`
    /// fails a certificate's signature when they are not (RFC 5280 §4.1.1.2); OpenSSL 3.0's
    /// `X509_CRL_verify` does not compare them, so neither does the CRL check.
    pub(crate) fn signature_algs_match(&self) -> bool {
        self.signature_alg == self.inner_signature_alg
    }
}

/// The `signature` AlgorithmIdentifier's contents from a TBSCertificate's or TBSCertList's
/// contents: the first SEQUENCE, after at most the version and the serial number.
fn tbs_signature_alg(tbs_contents: &[u8]) -> Option<&[u8]> {
    let mut rest = tbs_contents;
    for _ in 0..3 {
        let (field, after) = read_tlv(rest)?;
        if field.tag == TAG_SEQUENCE {
            return Some(field.value);
        }
        rest = after;
    }
    None
}

/// A SubjectPublicKeyInfo split into the AlgorithmIdentifier contents and the key bits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SplitSpki<'a> {
    /// Contents of the `algorithm` AlgorithmIdentifier (OID and parameters).
    pub(crate) alg_id: &'a [u8],
    /// The `subjectPublicKey` BIT STRING contents without the unused-bits octet.
    pub(crate) key: &'a [u8],
}

/// Splits a DER `SubjectPublicKeyInfo` (with its outer SEQUENCE); `None` when malformed.
pub(crate) fn split_spki(spki_der: &[u8]) -> Option<SplitSpki<'_>> {
    let (outer, trailing) = expect_tlv(spki_der, TAG_SEQUENCE)?;
    if !trailing.is_empty() {
        return None;
    }
    let (alg, rest) = expect_tlv(outer.value, TAG_SEQUENCE)?;
    let (key, rest) = expect_tlv(rest, TAG_BIT_STRING)?;
    if !rest.is_empty() {
        return None;
    }
    Some(SplitSpki {
        alg_id: alg.value,
        key: bit_string_bytes(key.value)?,
    })
}

/// Returns the bits of a BIT STRING's contents, requiring zero unused bits (as webpki does).
fn bit_string_bytes(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first() {
        Some((0, bits)) => Some(bits),
        _ => None,
    }
}

/// Why a signature over signed data (certificate or CRL) could not be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignedDataError {
    /// The issuer's SubjectPublicKeyInfo could not be decoded.
    BadIssuerKey,
    /// No provider algorithm has this signature algorithm identifier.
    UnsupportedAlgorithm,
    /// The provider knows the signature algorithm, but not for this kind of public key.
    UnsupportedForPublicKey,
    /// The signature does not verify.
    BadSignature,
}

/// Checks that `signature` over `signed_data` (a certificate's or a CRL's TBS) was made with
/// `signature_alg` (raw AlgorithmIdentifier contents) by the key in `issuer_spki` (a complete DER
/// SubjectPublicKeyInfo), using only the provider's algorithms (`algs.all`).
///
/// Mirrors webpki's `verify_signed_data`: every provider algorithm whose signature identifier
/// matches is tried; one whose public-key identifier differs from the key is skipped.
pub(crate) fn verify_signed_data(
    algs: &WebPkiSupportedAlgorithms,
    issuer_spki: &[u8],
    signature_alg: &[u8],
    signed_data: &[u8],
    signature: &[u8],
) -> Result<(), SignedDataError> {
    let spki = split_spki(issuer_spki).ok_or(SignedDataError::BadIssuerKey)?;
    let presented = normalize_signature_alg(signature_alg);
    let mut key_mismatch = false;
    for alg in algs
        .all
        .iter()
        .filter(|alg| alg.signature_alg_id().as_ref() == presented.as_slice())
    {
        match verify_with(*alg, &spki, signed_data, signature) {
            Err(VerifyFailure::KeyMismatch) => key_mismatch = true,
            Err(VerifyFailure::BadSignature) => return Err(SignedDataError::BadSignature),
            Ok(()) => return Ok(()),
        }
    }
    Err(if key_mismatch {
        SignedDataError::UnsupportedForPublicKey
    } else {
        SignedDataError::UnsupportedAlgorithm
    })
}

/// OIDs (DER contents) of RSA PKCS#1 v1.5 signature algorithms whose parameters must be NULL.
const RSA_PKCS1_SIGNATURE_OIDS: [&[u8]; 4] = [
    // sha256WithRSAEncryption, sha384…, sha512…, sha224…
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e],
];

/// OID (DER contents) prefix of `ecdsa-with-SHA2` algorithms (1.2.840.10045.4.3).
const ECDSA_SHA2_OID_PREFIX: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];

/// Brings a certificate/CRL signature AlgorithmIdentifier to the form the provider lists.
///
/// OpenSSL ignores the parameters of RSA PKCS#1 and ECDSA signature algorithms, so it accepts
/// `sha256WithRSAEncryption` without its NULL parameter and `ecdsa-with-SHA256` with a stray NULL.
/// The provider identifiers are exact (NULL present for RSA, absent for ECDSA), so those two
/// encodings are normalised before comparison. Everything else (notably RSA-PSS parameters) must
/// match byte for byte, as in webpki.
fn normalize_signature_alg(alg: &[u8]) -> Vec<u8> {
    let Some((oid, params)) = expect_tlv(alg, TAG_OID) else {
        return alg.to_vec();
    };
    let is_rsa_pkcs1 = RSA_PKCS1_SIGNATURE_OIDS.contains(&oid.value);
    let is_ecdsa = oid.value.starts_with(ECDSA_SHA2_OID_PREFIX);
    if is_rsa_pkcs1 && params.is_empty() {
        let mut out = oid.raw.to_vec();
        out.extend_from_slice(&DER_NULL);
        return out;
    }
    if is_ecdsa && params == DER_NULL {
        return oid.raw.to_vec();
    }
    alg.to_vec()
}

/// Why one provider algorithm did not accept a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VerifyFailure {
    /// The algorithm is for another kind of public key.
    KeyMismatch,
    /// The signature is invalid (or the key bits are malformed).
    BadSignature,
}

/// Verifies with one provider algorithm after checking that it is meant for this key.
fn verify_with(
    alg: &dyn SignatureVerificationAlgorithm,
    spki: &SplitSpki<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyFailure> {
    if alg.public_key_alg_id().as_ref() != spki.alg_id {
        return Err(VerifyFailure::KeyMismatch);
    }
    alg.verify_signature(spki.key, message, signature)
        .map_err(|_| VerifyFailure::BadSignature)
}

/// TLS 1.2 handshake signature check against the leaf's public key; works for v1 certificates.
///
/// Same semantics and errors as `rustls::crypto::verify_tls12_signature`: the scheme must have a
/// known signature algorithm, be in `algs.mapping`, and any mapped algorithm whose public-key
/// identifier matches the certificate's key may verify it.
pub(crate) fn verify_tls12_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algs: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, Error> {
    if !scheme_has_known_algorithm(dss.scheme) {
        return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let possible = convert_scheme(algs, dss.scheme)?;
    let spki_der = leaf_spki(cert)?;
    let spki = split_spki(&spki_der).ok_or(CertificateError::BadEncoding)?;
    let mut mismatch = None;
    for alg in possible {
        match verify_with(*alg, &spki, message, dss.signature()) {
            Err(VerifyFailure::KeyMismatch) => mismatch = Some(*alg),
            Err(VerifyFailure::BadSignature) => return Err(CertificateError::BadSignature.into()),
            Ok(()) => return Ok(HandshakeSignatureValid::assertion()),
        }
    }
    Err(match mismatch {
        Some(alg) => key_mismatch_error(alg, &spki),
        // Only reachable with an empty mapping entry; rustls reports the deprecated variant.
        #[allow(deprecated)]
        None => CertificateError::UnsupportedSignatureAlgorithm.into(),
    })
}

/// TLS 1.3 handshake signature check against the leaf's public key; works for v1 certificates.
///
/// Same semantics and errors as `rustls::crypto::verify_tls13_signature`: the scheme must be
/// allowed in TLS 1.3 and only the first algorithm mapped to it is used.
pub(crate) fn verify_tls13_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algs: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, Error> {
    if !scheme_supported_in_tls13(dss.scheme) {
        return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let alg = *convert_scheme(algs, dss.scheme)?
        .first()
        .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    let spki_der = leaf_spki(cert)?;
    let spki = split_spki(&spki_der).ok_or(CertificateError::BadEncoding)?;
    match verify_with(alg, &spki, message, dss.signature()) {
        Ok(()) => Ok(HandshakeSignatureValid::assertion()),
        Err(VerifyFailure::KeyMismatch) => Err(key_mismatch_error(alg, &spki)),
        Err(VerifyFailure::BadSignature) => Err(CertificateError::BadSignature.into()),
    }
}

/// The error rustls reports when the scheme's algorithm is for another kind of key.
fn key_mismatch_error(alg: &dyn SignatureVerificationAlgorithm, spki: &SplitSpki<'_>) -> Error {
    CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
        signature_algorithm_id: alg.signature_alg_id().as_ref().to_vec(),
        public_key_algorithm_id: spki.alg_id.to_vec(),
    }
    .into()
}

/// The provider algorithms mapped to `scheme` (the first matching mapping entry).
fn convert_scheme(
    algs: &WebPkiSupportedAlgorithms,
    scheme: SignatureScheme,
) -> Result<&'static [&'static dyn SignatureVerificationAlgorithm], Error> {
    algs.mapping
        .iter()
        .find(|(mapped, _)| *mapped == scheme)
        .map(|(_, algs)| *algs)
        .ok_or_else(|| PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into())
}

/// Whether rustls knows the signature algorithm behind `scheme` (its `SignatureScheme::algorithm`).
fn scheme_has_known_algorithm(scheme: SignatureScheme) -> bool {
    matches!(
        scheme,
        SignatureScheme::RSA_PKCS1_SHA1
            | SignatureScheme::RSA_PKCS1_SHA256
            | SignatureScheme::RSA_PKCS1_SHA384
            | SignatureScheme::RSA_PKCS1_SHA512
            | SignatureScheme::RSA_PSS_SHA256
            | SignatureScheme::RSA_PSS_SHA384
            | SignatureScheme::RSA_PSS_SHA512
            | SignatureScheme::ECDSA_SHA1_Legacy
            | SignatureScheme::ECDSA_NISTP256_SHA256
            | SignatureScheme::ECDSA_NISTP384_SHA384
            | SignatureScheme::ECDSA_NISTP521_SHA512
            | SignatureScheme::ED25519
            | SignatureScheme::ED448
    )
}

/// Whether `scheme` may be used for TLS 1.3 handshake signatures (rustls'
/// `SignatureScheme::supported_in_tls13`, RFC 8446 §4.2.3): a denylist of legacy hashes
/// (none, MD5, SHA-1, SHA-224) and of the RSA-PKCS#1, DSA and anonymous signature algorithms.
fn scheme_supported_in_tls13(scheme: SignatureScheme) -> bool {
    let [hash, sign] = u16::from(scheme).to_be_bytes();
    let legacy_hash = matches!(hash, 0..=3);
    let legacy_sign = matches!(sign, 0..=2);
    !legacy_hash && !legacy_sign
}

/// Extracts the DER SubjectPublicKeyInfo of the end-entity certificate.
fn leaf_spki(cert: &CertificateDer<'_>) -> Result<Vec<u8>, Error> {
    use x509_cert::der::Encode;
    super::x509::decode_certificate(cert.as_ref())
        .ok()
        .and_then(|parsed| parsed.tbs_certificate.subject_public_key_info.to_der().ok())
        .ok_or_else(|| CertificateError::BadEncoding.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::chain::test_support::{make_v1, sign_with};
    use rcgen::{CertificateParams, KeyPair};
    use rustls::crypto::aws_lc_rs::default_provider;
    use rustls::internal::msgs::codec::{Codec, Reader};

    /// The aws-lc-rs provider's algorithms, as the integrator will pass them.
    fn algs() -> WebPkiSupportedAlgorithms {
        default_provider().signature_verification_algorithms
    }

    /// Builds a `DigitallySignedStruct` the way it arrives on the wire.
    fn dss(scheme: SignatureScheme, sig: &[u8]) -> DigitallySignedStruct {
        let mut bytes = u16::from(scheme).to_be_bytes().to_vec();
        let len = u16::try_from(sig.len()).expect("short signature");
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(sig);
        DigitallySignedStruct::read(&mut Reader::init(&bytes)).expect("valid encoding")
    }

    /// A self-issued v1 certificate for `key` (what `openssl x509 -req` would produce).
    fn v1_cert_for(key: &KeyPair) -> CertificateDer<'static> {
        let params = CertificateParams::new(vec!["db.example".to_string()]).expect("params");
        let v3 = params.self_signed(key).expect("self-signed");
        make_v1(v3.der(), key)
    }

    /// Generates a key, a v1 certificate for it and a signature over `message` with `scheme`.
    fn signed_by_v1(
        alg: &'static rcgen::SignatureAlgorithm,
        scheme: SignatureScheme,
        message: &[u8],
    ) -> (CertificateDer<'static>, Vec<u8>) {
        let key = KeyPair::generate_for(alg).expect("keygen");
        let cert = v1_cert_for(&key);
        let sig = sign_with(&key, scheme, message);
        (cert, sig)
    }

    /// A 2048-bit RSA key pair (rcgen needs the explicit RSA generator).
    fn rsa_key() -> KeyPair {
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .expect("rsa keygen")
    }

    #[test]
    fn v1_cert_really_is_v1_and_webpki_rejects_it() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let cert = v1_cert_for(&key);
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).expect("parses");
        assert_eq!(parsed.version().0, 0);
        assert!(parsed.extensions().is_empty());
        let sig = sign_with(&key, SignatureScheme::ECDSA_NISTP256_SHA256, b"m");
        let d = dss(SignatureScheme::ECDSA_NISTP256_SHA256, &sig);
        let err = rustls::crypto::verify_tls13_signature(b"m", &cert, &d, &algs()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidCertificate(CertificateError::Other(_)))
                && format!("{err:?}").contains("UnsupportedCertVersion"),
            "{err:?}"
        );
        assert!(verify_tls13_signature(b"m", &cert, &d, &algs()).is_ok());
    }

    #[test]
    fn tls13_ecdsa_p256_with_v1_leaf() {
        let scheme = SignatureScheme::ECDSA_NISTP256_SHA256;
        let (cert, sig) = signed_by_v1(&rcgen::PKCS_ECDSA_P256_SHA256, scheme, b"hello");
        assert!(verify_tls13_signature(b"hello", &cert, &dss(scheme, &sig), &algs()).is_ok());
        let err = verify_tls13_signature(b"hellO", &cert, &dss(scheme, &sig), &algs());
        assert_eq!(
            err.unwrap_err(),
            Error::InvalidCertificate(CertificateError::BadSignature)
        );
    }

    #[test]
    fn tls13_ed25519_with_v1_leaf() {
        let scheme = SignatureScheme::ED25519;
        let (cert, sig) = signed_by_v1(&rcgen::PKCS_ED25519, scheme, b"transcript");
        assert!(verify_tls13_signature(b"transcript", &cert, &dss(scheme, &sig), &algs()).is_ok());
        assert!(verify_tls12_signature(b"transcript", &cert, &dss(scheme, &sig), &algs()).is_ok());
        let mut bad = sig.clone();
        bad[0] ^= 1;
        let err = verify_tls13_signature(b"transcript", &cert, &dss(scheme, &bad), &algs());
        assert_eq!(
            err.unwrap_err(),
            Error::InvalidCertificate(CertificateError::BadSignature)
        );
    }

    #[test]
    fn rsa_pss_with_v1_leaf_in_both_versions() {
        let key = rsa_key();
        let cert = v1_cert_for(&key);
        for scheme in [
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PSS_SHA384,
            SignatureScheme::RSA_PSS_SHA512,
        ] {
            let sig = sign_with(&key, scheme, b"pss");
            assert!(verify_tls13_signature(b"pss", &cert, &dss(scheme, &sig), &algs()).is_ok());
            assert!(verify_tls12_signature(b"pss", &cert, &dss(scheme, &sig), &algs()).is_ok());
            let err = verify_tls12_signature(b"psS", &cert, &dss(scheme, &sig), &algs());
            assert_eq!(
                err.unwrap_err(),
                Error::InvalidCertificate(CertificateError::BadSignature)
            );
        }
    }

    #[test]
    fn rsa_pkcs1_only_in_tls12() {
        let key = rsa_key();
        let cert = v1_cert_for(&key);
        let scheme = SignatureScheme::RSA_PKCS1_SHA256;
        let sig = sign_with(&key, scheme, b"pkcs1");
        assert!(verify_tls12_signature(b"pkcs1", &cert, &dss(scheme, &sig), &algs()).is_ok());
        let err = verify_tls13_signature(b"pkcs1", &cert, &dss(scheme, &sig), &algs());
        assert_eq!(
            err.unwrap_err(),
            Error::PeerMisbehaved(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)
        );
    }

    #[test]
    fn scheme_for_other_key_type_is_a_key_mismatch() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let cert = v1_cert_for(&key);
        let d = dss(SignatureScheme::ED25519, &[0u8; 64]);
        let ours = verify_tls13_signature(b"m", &cert, &d, &algs()).unwrap_err();
        let ed25519_alg = convert_scheme(&algs(), SignatureScheme::ED25519).expect("mapped")[0];
        let spki_der = leaf_spki(&cert).expect("spki");
        let spki = split_spki(&spki_der).expect("split");
        assert_eq!(ours, key_mismatch_error(ed25519_alg, &spki));
        assert!(matches!(
            ours,
            Error::InvalidCertificate(
                CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
            )
        ));
        // Same answer as rustls itself gives for a v3 certificate of the same key.
        let v3 = CertificateParams::new(vec!["db.example".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let theirs = rustls::crypto::verify_tls13_signature(b"m", v3.der(), &d, &algs());
        assert_eq!(ours, theirs.unwrap_err());
        let ours12 = verify_tls12_signature(b"m", &cert, &d, &algs()).unwrap_err();
        let theirs12 = rustls::crypto::verify_tls12_signature(b"m", v3.der(), &d, &algs());
        assert_eq!(ours12, theirs12.unwrap_err());
    }

    #[test]
    fn unknown_or_unmapped_schemes_are_unadvertised() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let cert = v1_cert_for(&key);
        let unadvertised =
            Error::PeerMisbehaved(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme);
        let unknown = dss(SignatureScheme::Unknown(0x0a0a), &[1, 2, 3]);
        assert_eq!(
            verify_tls12_signature(b"m", &cert, &unknown, &algs()).unwrap_err(),
            unadvertised
        );
        assert_eq!(
            verify_tls13_signature(b"m", &cert, &unknown, &algs()).unwrap_err(),
            unadvertised
        );
        // ECDSA with SHA-1 is known but not mapped by the provider.
        let sha1 = dss(SignatureScheme::ECDSA_SHA1_Legacy, &[1, 2, 3]);
        assert_eq!(
            verify_tls12_signature(b"m", &cert, &sha1, &algs()).unwrap_err(),
            unadvertised
        );
    }

    #[test]
    fn garbage_certificate_is_bad_encoding() {
        let d = dss(SignatureScheme::ED25519, &[0u8; 64]);
        let cert = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert_eq!(
            verify_tls13_signature(b"m", &cert, &d, &algs()).unwrap_err(),
            Error::InvalidCertificate(CertificateError::BadEncoding)
        );
    }

    #[test]
    fn tls13_scheme_denylist_matches_rustls() {
        assert!(!scheme_supported_in_tls13(
            SignatureScheme::RSA_PKCS1_SHA256
        ));
        assert!(!scheme_supported_in_tls13(
            SignatureScheme::ECDSA_SHA1_Legacy
        ));
        assert!(scheme_supported_in_tls13(
            SignatureScheme::ECDSA_NISTP256_SHA256
        ));
        assert!(scheme_supported_in_tls13(SignatureScheme::RSA_PSS_SHA256));
        assert!(scheme_supported_in_tls13(SignatureScheme::ED25519));
    }

    #[test]
    fn signed_data_checks_key_and_algorithm() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let cert = CertificateParams::new(vec!["x.example".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let parts = split_signed(cert.der()).expect("split");
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).expect("parse");
        let spki = parsed.public_key().raw;
        let ok = verify_signed_data(
            &algs(),
            spki,
            parts.signature_alg,
            parts.tbs,
            parts.signature,
        );
        assert_eq!(ok, Ok(()));
        let mut tbs = parts.tbs.to_vec();
        let last = tbs.len() - 1;
        tbs[last] ^= 1;
        let bad = verify_signed_data(&algs(), spki, parts.signature_alg, &tbs, parts.signature);
        assert_eq!(bad, Err(SignedDataError::BadSignature));
        // ecdsa-with-SHA1 is not offered by the provider.
        let sha1 = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
        let unsupported = verify_signed_data(&algs(), spki, &sha1, parts.tbs, parts.signature);
        assert_eq!(unsupported, Err(SignedDataError::UnsupportedAlgorithm));
        // An RSA signature algorithm against an ECDSA key.
        let rsa = rustls_pki_types::alg_id::RSA_PKCS1_SHA256;
        let mismatch = verify_signed_data(&algs(), spki, rsa.as_ref(), parts.tbs, parts.signature);
        assert_eq!(mismatch, Err(SignedDataError::UnsupportedForPublicKey));
        let bad_key = verify_signed_data(&algs(), &[0x30, 0x00], &sha1, parts.tbs, &[]);
        assert_eq!(bad_key, Err(SignedDataError::BadIssuerKey));
    }

    #[test]
    fn signature_alg_normalisation() {
        let rsa = rustls_pki_types::alg_id::RSA_PKCS1_SHA256;
        let bare_oid = &rsa.as_ref()[..rsa.as_ref().len() - 2];
        assert_eq!(normalize_signature_alg(bare_oid), rsa.as_ref());
        let ecdsa = rustls_pki_types::alg_id::ECDSA_SHA256;
        let mut with_null = ecdsa.as_ref().to_vec();
        with_null.extend_from_slice(&DER_NULL);
        assert_eq!(normalize_signature_alg(&with_null), ecdsa.as_ref());
        let pss = rustls_pki_types::alg_id::RSA_PSS_SHA256;
        assert_eq!(normalize_signature_alg(pss.as_ref()), pss.as_ref());
    }

    proptest::proptest! {
        #[test]
        fn der_helpers_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = read_tlv(&bytes);
            let _ = split_signed(&bytes);
            let _ = split_spki(&bytes);
            let _ = normalize_signature_alg(&bytes);
            let _ = verify_signed_data(&algs(), &bytes, &bytes, &bytes, &bytes);
            let d = dss(SignatureScheme::ED25519, &bytes);
            let cert = CertificateDer::from(bytes.clone());
            proptest::prop_assert!(verify_tls13_signature(&bytes, &cert, &d, &algs()).is_err());
        }
    }

    #[test]
    fn tlv_reader_never_panics_on_short_input() {
        let inputs: [&[u8]; 7] = [
            &[],
            &[0x30],
            &[0x30, 0x81],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x02, 0x00],
            &[0x1f, 0x00],
            &[0x30, 0x80, 0x00, 0x00],
        ];
        for input in inputs {
            assert!(read_tlv(input).is_none(), "{input:?}");
        }
        let (tlv, rest) = read_tlv(&[0x04, 0x82, 0x00, 0x01, 0xaa, 0xbb]).expect("long form");
        assert_eq!((tlv.tag, tlv.value, rest), (0x04, &[0xaa][..], &[0xbb][..]));
    }
}
