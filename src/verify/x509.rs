//! Decoding certificates with x509-cert: the certificate type pgtls reads (no limit on the
//! serial number's length, as in OpenSSL) and the conversions every reader shares.

use x509_cert::certificate::{CertificateInner, Raw};
use x509_cert::crl::CertificateList;
use x509_cert::der::{Decode, Reader, SliceReader};
use x509_cert::time::Time;

/// A decoded X.509 certificate, without RFC 5280's serial-number checks (OpenSSL has none).
pub(crate) type Certificate = CertificateInner<Raw>;

/// Decodes one whole DER certificate; the error says what is wrong, trailing bytes included.
pub(crate) fn decode_certificate(der: &[u8]) -> Result<Certificate, String> {
    let (certificate, rest) = decode_certificate_prefix(der)?;
    if rest != 0 {
        return Err(format!("{rest} bytes after the certificate"));
    }
    Ok(certificate)
}

/// Decodes the DER certificate at the start of `der`, with the number of bytes after it.
pub(crate) fn decode_certificate_prefix(der: &[u8]) -> Result<(Certificate, u32), String> {
    let mut reader = SliceReader::new(der).map_err(|error| error.to_string())?;
    let certificate = Certificate::decode(&mut reader).map_err(|error| error.to_string())?;
    Ok((certificate, u32::from(reader.remaining_len())))
}

/// Decodes the DER CRL at the start of `der`, with the number of bytes after it.
pub(crate) fn decode_crl_prefix(der: &[u8]) -> Result<(CertificateList, u32), String> {
    let mut reader = SliceReader::new(der).map_err(|error| error.to_string())?;
    let crl = CertificateList::decode(&mut reader).map_err(|error| error.to_string())?;
    Ok((crl, u32::from(reader.remaining_len())))
}

/// A certificate or CRL time as seconds since the Unix epoch.
pub(crate) fn time_to_unix(time: Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}
