//! TEMPORARY stub on main until the chain branch lands.
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::CertificateDer;
use rustls::DigitallySignedStruct;
pub(crate) fn verify_tls12_signature(
    m: &[u8],
    c: &CertificateDer<'_>,
    d: &DigitallySignedStruct,
    a: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls12_signature(m, c, d, a)
}
pub(crate) fn verify_tls13_signature(
    m: &[u8],
    c: &CertificateDer<'_>,
    d: &DigitallySignedStruct,
    a: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(m, c, d, a)
}
