//! Decoding certificates with x509-cert and der: the certificate as pgtls reads it (RFC 5280's
//! structure with OpenSSL's tolerance: any serial-number length, UTCTime years 1950–1969) and
//! the conversions every reader shares.

use der::asn1::{Any, BitString, GeneralizedTime};
use der::{Decode, Encode, Reader, Sequence, SliceReader, Tag, Tagged};
use x509_cert::certificate::Raw;
use x509_cert::crl::CertificateList;
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::Time;
use x509_cert::Version;

/// A decoded X.509 certificate (RFC 5280, section 4.1).
#[derive(Clone, Debug, Sequence)]
pub(crate) struct Certificate {
    /// The signed part.
    pub(crate) tbs_certificate: TbsCertificate,
    /// The outer signatureAlgorithm.
    pub(crate) signature_algorithm: AlgorithmIdentifierOwned,
    /// The signature bits.
    pub(crate) signature: BitString,
}

/// A TBSCertificate, with x509-cert's field types except the validity (see [`Validity`]) and
/// the serial number (no length limit, as in OpenSSL).
#[derive(Clone, Debug, Sequence)]
pub(crate) struct TbsCertificate {
    /// `[0] EXPLICIT Version DEFAULT v1`.
    #[asn1(context_specific = "0", default = "Default::default")]
    pub(crate) version: Version,
    /// CertificateSerialNumber.
    pub(crate) serial_number: SerialNumber<Raw>,
    /// The inner signature AlgorithmIdentifier.
    pub(crate) signature: AlgorithmIdentifierOwned,
    /// issuer.
    pub(crate) issuer: Name,
    /// validity.
    pub(crate) validity: Validity,
    /// subject.
    pub(crate) subject: Name,
    /// subjectPublicKeyInfo.
    pub(crate) subject_public_key_info: SubjectPublicKeyInfoOwned,
    /// `[1] IMPLICIT UniqueIdentifier OPTIONAL`.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) issuer_unique_id: Option<BitString>,
    /// `[2] IMPLICIT UniqueIdentifier OPTIONAL`.
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) subject_unique_id: Option<BitString>,
    /// `[3] EXPLICIT Extensions OPTIONAL`.
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub(crate) extensions: Option<Extensions>,
}

/// A certificate's validity, each time kept as read: x509-cert's `Time` starts in 1970, while
/// OpenSSL reads earlier times (a UTCTime year 50–69 is 1950–1969), and so does
/// [`Validity::to_unix`].
#[derive(Clone, Debug, Sequence)]
pub(crate) struct Validity {
    /// notBefore.
    pub(crate) not_before: Any,
    /// notAfter.
    pub(crate) not_after: Any,
}

impl Validity {
    /// (notBefore, notAfter) as seconds since the Unix epoch; `None` if either is not a
    /// UTCTime or GeneralizedTime in DER.
    pub(crate) fn to_unix(&self) -> Option<(i64, i64)> {
        Some((
            time_from_any(&self.not_before)?,
            time_from_any(&self.not_after)?,
        ))
    }
}

/// Seconds in 400 Gregorian years (146,097 days): the calendar repeats after them.
const GREGORIAN_CYCLE_SECONDS: i64 = 146_097 * 86_400;

/// A UTCTime or GeneralizedTime as seconds since the Unix epoch. x509-cert's times start in
/// 1970; an earlier one (UTCTime years 50–69 are 1950–1969) is read 400 years later, where the
/// calendar repeats (same weekdays and leap years), and moved back.
fn time_from_any(time: &Any) -> Option<i64> {
    if let Ok(time) = Time::from_der(&time.to_der().ok()?) {
        return Some(time_to_unix(time));
    }
    let year_digits = match time.tag() {
        Tag::UtcTime => 2,
        Tag::GeneralizedTime => 4,
        _ => return None,
    };
    let (year, rest) = time.value().split_at_checked(year_digits)?;
    if !year.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year: u16 = std::str::from_utf8(year).ok()?.parse().ok()?;
    let year = match year_digits {
        2 if year >= 50 => 1900 + year,
        2 => 2000 + year,
        _ => year,
    };
    if year >= 1970 {
        return None;
    }
    let shifted = [format!("{:04}", year + 400).as_bytes(), rest].concat();
    let header = [
        u8::from(Tag::GeneralizedTime),
        u8::try_from(shifted.len()).ok()?,
    ];
    let later = GeneralizedTime::from_der(&[&header[..], &shifted].concat()).ok()?;
    Some(time_to_unix(Time::GeneralTime(later)) - GREGORIAN_CYCLE_SECONDS)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A time of this tag and text, decoded.
    fn seconds(tag: Tag, text: &str) -> Option<i64> {
        time_from_any(&Any::new(tag, text.as_bytes()).expect("any"))
    }

    #[test]
    fn times_from_1950_on_are_read_like_openssl() {
        assert_eq!(seconds(Tag::UtcTime, "500101000000Z"), Some(-631_152_000));
        assert_eq!(seconds(Tag::UtcTime, "691231235959Z"), Some(-1));
        assert_eq!(seconds(Tag::UtcTime, "700101000000Z"), Some(0));
        assert_eq!(seconds(Tag::UtcTime, "491231235959Z"), Some(2_524_607_999));
        assert_eq!(
            seconds(Tag::GeneralizedTime, "19650101000000Z"),
            Some(-157_766_400)
        );
        assert_eq!(
            seconds(Tag::GeneralizedTime, "19600229120000Z"),
            Some(-310_478_400)
        );
        assert_eq!(
            seconds(Tag::GeneralizedTime, "21000101000000Z"),
            Some(4_102_444_800)
        );
    }

    #[test]
    fn malformed_times_are_refused() {
        assert_eq!(seconds(Tag::UtcTime, "5001010000Z"), None);
        assert_eq!(seconds(Tag::UtcTime, "650230000000Z"), None);
        assert_eq!(seconds(Tag::UtcTime, "+50101000000Z"), None);
        assert_eq!(seconds(Tag::GeneralizedTime, "19650101000000.5Z"), None);
        assert_eq!(seconds(Tag::UtcTime, "6"), None);
        assert_eq!(seconds(Tag::OctetString, "500101000000Z"), None);
    }
}
