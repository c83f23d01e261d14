//! Host-name verification for `sslmode=verify-full`, following libpq's rules.
//!
//! libpq (`fe-secure-common.c`, `fe-secure-openssl.c`) does not use RFC 6125 matching; it has its
//! own rules, reproduced here:
//!
//! - The subjectAltName entries are walked in certificate order. Every dNSName is compared with
//!   `host` as a name, even when `host` is an IP address. Every iPAddress is compared byte-wise
//!   with the address `host` parses to (glibc `inet_aton`, then `inet_pton(AF_INET6)`). An
//!   iPAddress that is neither 4 nor 16 bytes long is an error, whatever `host` is. Entries of
//!   other types (URI, e-mail, ...) are skipped: they are neither compared nor counted.
//! - The walk stops at the first match, and at the first error (an embedded NUL or a bad
//!   address length), so an entry after a match is never looked at.
//! - The subject's first Common Name is compared only when no subjectAltName of the host's type
//!   exists (dNSName for a name, iPAddress for an IP address), and always as a name: a CN of
//!   `192.0.2.1` does not match the host `192.000.002.001`.
//! - A name matches when it equals `host` ignoring ASCII case, or when it is a wildcard `*.rest`
//!   whose `*` covers the leftmost label of `host` (see [`wildcard_matches`]). No trailing-dot
//!   normalisation.
//! - On a mismatch the error names the first name examined (an iPAddress printed as PostgreSQL
//!   prints addresses) and how many other names were examined.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use x509_cert::der::asn1::AnyRef;
use x509_cert::der::{Decode, Tagged};

use super::chain::oid;
use super::x509::{decode_certificate, Certificate};

/// Why the server certificate does not vouch for the host name, worded as libpq words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostNameError {
    /// `host` is empty: verify-full has nothing to compare the certificate with.
    HostMissing,
    /// A dNSName or the Common Name contains a NUL byte (the CVE-2009-4034 attack).
    EmbeddedNull,
    /// An iPAddress subjectAltName is neither 4 (IPv4) nor 16 (IPv6) bytes long.
    InvalidIpAddressLength {
        /// The length of the address in the certificate, in bytes.
        length: usize,
    },
    /// No name in the certificate matches the host.
    Mismatch {
        /// The first name examined, as text.
        first_name: String,
        /// How many names were examined besides the first.
        other_names: usize,
        /// The host the certificate was checked against.
        host: String,
    },
    /// The certificate has no dNSName or iPAddress subjectAltName to examine and no usable
    /// Common Name.
    NoNames,
    /// The certificate, or its subjectAltName extension, could not be parsed.
    UnparsableCertificate {
        /// What the parser reported.
        reason: String,
    },
}

impl fmt::Display for HostNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HostMissing => {
                f.write_str("host name must be specified for a verified SSL connection")
            }
            Self::EmbeddedNull => f.write_str("SSL certificate's name contains embedded null"),
            Self::InvalidIpAddressLength { length } => write!(
                f,
                "certificate contains IP address with invalid length {length}"
            ),
            Self::Mismatch {
                first_name,
                other_names,
                host,
            } => write_mismatch(f, first_name, *other_names, host),
            Self::NoNames => {
                f.write_str("could not get server's host name from server certificate")
            }
            Self::UnparsableCertificate { reason } => write!(
                f,
                "could not parse server certificate to verify its host name: {reason}"
            ),
        }
    }
}

impl std::error::Error for HostNameError {}

/// Writes libpq's mismatch message, with its English singular/plural forms of "other name".
fn write_mismatch(
    f: &mut fmt::Formatter<'_>,
    first_name: &str,
    other_names: usize,
    host: &str,
) -> fmt::Result {
    match other_names {
        0 => write!(
            f,
            "server certificate for \"{first_name}\" does not match host name \"{host}\""
        ),
        1 => write!(
            f,
            "server certificate for \"{first_name}\" (and 1 other name) does not match host name \"{host}\""
        ),
        n => write!(
            f,
            "server certificate for \"{first_name}\" (and {n} other names) does not match host name \"{host}\""
        ),
    }
}

/// Checks the server's leaf certificate (DER) against `host` exactly as libpq's verify-full does.
pub(crate) fn check_host_name(end_entity_der: &[u8], host: &str) -> Result<(), HostNameError> {
    if host.is_empty() {
        return Err(HostNameError::HostMissing);
    }
    let certificate = parse_certificate(end_entity_der)?;
    let names = certificate_names(&certificate)?;
    match_certificate_names(&names, host)
}

/// libpq's "is this host an IP address" test: glibc's `inet_aton` (which accepts the legacy
/// forms `192.000.002.001`, `0xC0.0.2.1`, `3221225985`, `1.2.3`, and trailing white space
/// followed by anything), then `inet_pton(AF_INET6)`. Returns the address.
pub(crate) fn parse_host_ip(host: &str) -> Option<IpAddr> {
    parse_ipv4_like_inet_aton(host)
        .map(IpAddr::V4)
        .or_else(|| parse_ipv6_like_inet_pton(host).map(IpAddr::V6))
}

/// libpq's SNI rule: send SNI only when `host` is not empty, not made only of digits and dots,
/// and contains no `:`.
pub(crate) fn sni_allowed(host: &str) -> bool {
    let only_digits_and_dots = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    !host.is_empty() && !only_digits_and_dots && !host.contains(':')
}

/// One subjectAltName entry as libpq's verification sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AltName<'a> {
    /// A dNSName, as the raw bytes of its IA5String.
    Dns(&'a [u8]),
    /// An iPAddress, as the raw bytes of its OCTET STRING (any length).
    Ip(&'a [u8]),
    /// Any other type (URI, e-mail, directory name, ...): skipped.
    Other,
}

impl AltName<'_> {
    /// Whether this entry is of the host's type, which rules out the Common Name fallback.
    fn is_of_host_type(self, host_is_ip: bool) -> bool {
        match self {
            Self::Dns(_) => !host_is_ip,
            Self::Ip(_) => host_is_ip,
            Self::Other => false,
        }
    }
}

/// The names of a certificate that libpq's verify-full looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CertificateNames<'a> {
    /// The subjectAltName entries, in certificate order.
    alt_names: Vec<AltName<'a>>,
    /// The raw value bytes of the subject's first Common Name, whatever its string type.
    first_common_name: Option<&'a [u8]>,
}

/// Parses a whole DER certificate, refusing trailing bytes.
fn parse_certificate(der: &[u8]) -> Result<Certificate, HostNameError> {
    decode_certificate(der).map_err(|reason| HostNameError::UnparsableCertificate { reason })
}

/// Extracts the subjectAltName entries and the first Common Name. A repeated subjectAltName
/// extension, or one that is not a SEQUENCE of tagged values, is an error.
fn certificate_names(certificate: &Certificate) -> Result<CertificateNames<'_>, HostNameError> {
    let unparsable = |reason: &str| HostNameError::UnparsableCertificate {
        reason: format!("subjectAltName extension: {reason}"),
    };
    let tbs = &certificate.tbs_certificate;
    let mut alt_name_extensions = tbs
        .extensions
        .iter()
        .flatten()
        .filter(|extension| extension.extn_id.as_bytes() == oid::SUBJECT_ALT_NAME);
    let alt_names = match alt_name_extensions.next() {
        None => Vec::new(),
        Some(_) if alt_name_extensions.next().is_some() => {
            return Err(unparsable("repeated"));
        }
        Some(extension) => {
            let entries = Vec::<AnyRef<'_>>::from_der(extension.extn_value.as_bytes())
                .map_err(|error| unparsable(&error.to_string()))?;
            entries.into_iter().map(alt_name).collect()
        }
    };
    let first_common_name = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|attribute| attribute.oid.as_bytes() == oid::COMMON_NAME)
        .map(|attribute| attribute.value.value());
    Ok(CertificateNames {
        alt_names,
        first_common_name,
    })
}

/// Classifies one GeneralName by its tag, keeping a dNSName's or iPAddress's bytes whatever
/// they are, as OpenSSL keeps them.
fn alt_name(name: AnyRef<'_>) -> AltName<'_> {
    const DNS_NAME_TAG: u8 = 2;
    const IP_ADDRESS_TAG: u8 = 7;
    let tag = name.tag();
    if !tag.is_context_specific() || tag.is_constructed() {
        return AltName::Other;
    }
    match tag.number().value() {
        DNS_NAME_TAG => AltName::Dns(name.value()),
        IP_ADDRESS_TAG => AltName::Ip(name.value()),
        _ => AltName::Other,
    }
}

/// The names examined so far: the first one's text and how many there were.
#[derive(Debug, Default)]
struct ExaminedNames {
    /// The first name examined and the count of all names examined.
    first_and_count: Option<(String, usize)>,
}

impl ExaminedNames {
    /// Records one more examined name, keeping the text of the first.
    fn record(&mut self, shown: String) {
        match &mut self.first_and_count {
            Some((_, count)) => *count += 1,
            None => self.first_and_count = Some((shown, 1)),
        }
    }

    /// The error libpq reports when none of the examined names matched.
    fn into_mismatch_error(self, host: &str) -> HostNameError {
        match self.first_and_count {
            None => HostNameError::NoNames,
            Some((first_name, count)) => HostNameError::Mismatch {
                first_name,
                other_names: count.saturating_sub(1),
                host: host.to_owned(),
            },
        }
    }
}

/// libpq's walk over the certificate's names (`pgtls_verify_peer_name_matches_certificate_guts`).
fn match_certificate_names(names: &CertificateNames<'_>, host: &str) -> Result<(), HostNameError> {
    if host.is_empty() {
        return Err(HostNameError::HostMissing);
    }
    let host_ip = parse_host_ip(host);
    let mut examined = ExaminedNames::default();
    let mut check_common_name = true;
    for &alt in &names.alt_names {
        if alt.is_of_host_type(host_ip.is_some()) {
            check_common_name = false;
        }
        let (matched, shown) = match alt {
            AltName::Dns(name) => (name_matches(name, host)?, name_as_text(name)),
            AltName::Ip(address) => ip_address_matches(address, host_ip)?,
            AltName::Other => continue,
        };
        examined.record(shown);
        if matched {
            return Ok(());
        }
    }
    if check_common_name {
        if let Some(common_name) = names.first_common_name {
            let matched = name_matches(common_name, host)?;
            examined.record(name_as_text(common_name));
            if matched {
                return Ok(());
            }
        }
    }
    Err(examined.into_mismatch_error(host))
}

/// Compares a certificate name with the host: exact (ASCII case-insensitive) or wildcard.
/// A name containing NUL is an error, not a mismatch.
fn name_matches(name: &[u8], host: &str) -> Result<bool, HostNameError> {
    if name.contains(&0) {
        return Err(HostNameError::EmbeddedNull);
    }
    let host = host.as_bytes();
    Ok(name.eq_ignore_ascii_case(host) || wildcard_matches(name, host))
}

/// libpq's `wildcard_certificate_match`. The pattern must be `*.` followed by at least one
/// byte; its part after `*` must end the host (ASCII case-insensitive); the bytes the `*`
/// covers must be non-empty and hold no `.`, except that libpq's test lets the last covered
/// byte be a `.`: `*.w.x` matches `a.w.x` and, as in libpq, also `a..w.x` and `..w.x`, but
/// not `w.x`, `.w.x` or `a.b.w.x`.
fn wildcard_matches(pattern: &[u8], host: &[u8]) -> bool {
    let Some(suffix) = pattern.strip_prefix(b"*") else {
        return false;
    };
    if pattern.len() < 3 || !suffix.starts_with(b".") || pattern.len() > host.len() {
        return false;
    }
    let covered_len = host.len() - suffix.len();
    let (covered, host_suffix) = host.split_at(covered_len);
    let covered_before_last = covered.get(..covered_len - 1).unwrap_or_default();
    host_suffix.eq_ignore_ascii_case(suffix) && !covered_before_last.contains(&b'.')
}

/// The text libpq shows for a name taken from the certificate.
fn name_as_text(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// Compares an iPAddress entry with the host's address; returns whether it matched and the
/// address as text. The length must be 4 or 16 whatever the host is.
fn ip_address_matches(
    address: &[u8],
    host_ip: Option<IpAddr>,
) -> Result<(bool, String), HostNameError> {
    if let Ok(octets) = <[u8; 4]>::try_from(address) {
        let address = Ipv4Addr::from(octets);
        return Ok((host_ip == Some(IpAddr::V4(address)), address.to_string()));
    }
    if let Ok(octets) = <[u8; 16]>::try_from(address) {
        let matched = host_ip == Some(IpAddr::V6(Ipv6Addr::from(octets)));
        return Ok((matched, format_ipv6_like_postgres(octets)));
    }
    Err(HostNameError::InvalidIpAddressLength {
        length: address.len(),
    })
}

/// Formats an IPv6 address as PostgreSQL's `pg_inet_net_ntop` does: lower-case hex, the
/// longest run (the first if tied) of two or more zero groups as `::`, and the last 32 bits
/// in dotted form for IPv4-compatible (`::a.b.c.d`) and IPv4-mapped (`::ffff:a.b.c.d`)
/// addresses.
fn format_ipv6_like_postgres(octets: [u8; 16]) -> String {
    let address = Ipv6Addr::from(octets);
    let groups = address.segments();
    let zero_run = longest_zero_run(&groups);
    let mut text = String::new();
    for (index, group) in groups.iter().enumerate() {
        if let Some((start, len)) = zero_run {
            if (start..start + len).contains(&index) {
                if index == start {
                    text.push(':');
                }
                continue;
            }
        }
        if index != 0 {
            text.push(':');
        }
        if index == 6 && ends_in_embedded_ipv4(&groups, zero_run) {
            let [.., a, b, c, d] = octets;
            text.push_str(&Ipv4Addr::new(a, b, c, d).to_string());
            return text;
        }
        // Writing to a String cannot fail.
        let _ = write!(text, "{group:x}");
    }
    if zero_run.is_some_and(|(start, len)| start + len == groups.len()) {
        text.push(':');
    }
    text
}

/// The longest run of zero groups (start, length), the first among equals, if at least two long.
fn longest_zero_run(groups: &[u16; 8]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut current: Option<(usize, usize)> = None;
    for (index, &group) in groups.iter().enumerate() {
        if group == 0 {
            current = Some(current.map_or((index, 1), |(start, len)| (start, len + 1)));
        } else {
            current = None;
        }
        if let Some((start, len)) = current {
            if best.is_none_or(|(_, best_len)| len > best_len) {
                best = Some((start, len));
            }
        }
    }
    best.filter(|&(_, len)| len >= 2)
}

/// PostgreSQL's test for printing the last 32 bits as dotted IPv4: the zero run starts the
/// address and is 6 groups long (IPv4-compatible), or 5 groups followed by `ffff` (IPv4-mapped).
fn ends_in_embedded_ipv4(groups: &[u16; 8], zero_run: Option<(usize, usize)>) -> bool {
    match zero_run {
        Some((0, 6)) => true,
        Some((0, 5)) => groups.get(5) == Some(&0xffff),
        _ => false,
    }
}

/// glibc's `inet_aton`: one to four parts separated by dots, each a C integer (`0x` hex,
/// leading `0` octal, else decimal) starting with a digit; all parts but the last are bytes,
/// the last fills the remaining bytes; the text may go on after a white-space character.
fn parse_ipv4_like_inet_aton(host: &str) -> Option<Ipv4Addr> {
    let mut rest = host.as_bytes();
    let mut leading_bytes: Vec<u8> = Vec::with_capacity(3);
    let last_part = loop {
        let (value, after_number) = parse_c_unsigned(rest)?;
        match after_number.split_first() {
            Some((b'.', after_dot)) => {
                if leading_bytes.len() == 3 {
                    return None;
                }
                leading_bytes.push(u8::try_from(value).ok()?);
                rest = after_dot;
            }
            _ => {
                rest = after_number;
                break value;
            }
        }
    };
    if !rest.first().is_none_or(|&b| is_c_space(b)) {
        return None;
    }
    let max_last_part = u32::MAX >> (8 * leading_bytes.len());
    if last_part > max_last_part {
        return None;
    }
    let leading = leading_bytes
        .iter()
        .zip([24, 16, 8])
        .fold(0u32, |acc, (&byte, shift)| acc | u32::from(byte) << shift);
    Some(Ipv4Addr::from(leading | last_part))
}

/// C's `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// `strtoul(text, &end, 0)` as `inet_aton` uses it: the text must start with a digit; the
/// value must fit in 32 bits. Returns the value and the text after the number.
fn parse_c_unsigned(text: &[u8]) -> Option<(u32, &[u8])> {
    if !text.first()?.is_ascii_digit() {
        return None;
    }
    let (radix, digits) = match text {
        [b'0', b'x' | b'X', rest @ ..] if rest.first().is_some_and(u8::is_ascii_hexdigit) => {
            (16, rest)
        }
        [b'0', ..] => (8, text),
        _ => (10, text),
    };
    let digit_count = digits
        .iter()
        .take_while(|&&b| char::from(b).is_digit(radix))
        .count();
    let (number, rest) = digits.split_at(digit_count);
    let value = number.iter().try_fold(0u32, |acc, &b| {
        let digit = char::from(b).to_digit(radix)?;
        acc.checked_mul(radix)?.checked_add(digit)
    })?;
    Some((value, rest))
}

/// glibc's `inet_pton(AF_INET6)`: eight groups of one to four hex digits separated by `:`, the
/// last two of which may be written as a dotted IPv4 address; one `::` may stand for one or
/// more zero groups. No zone index, no brackets, no white space.
fn parse_ipv6_like_inet_pton(host: &str) -> Option<Ipv6Addr> {
    let (head, tail) = match host.split_once("::") {
        Some((head, tail)) => (parse_ipv6_groups(head, false)?, Some(tail)),
        None => (parse_ipv6_groups(host, true)?, None),
    };
    let groups = match tail {
        None => head,
        Some(tail) => {
            let tail = parse_ipv6_groups(tail, true)?;
            if head.len() + tail.len() > 7 {
                return None;
            }
            let zeros = vec![0u16; 8 - head.len() - tail.len()];
            [head, zeros, tail].concat()
        }
    };
    let groups: [u16; 8] = groups.try_into().ok()?;
    Some(Ipv6Addr::from(groups))
}

/// Parses `:`-separated hex groups (an empty text is no group); when `ipv4_may_end` is set
/// the last one may be a dotted IPv4 address, which counts as two groups.
fn parse_ipv6_groups(text: &str, ipv4_may_end: bool) -> Option<Vec<u16>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    let parts: Vec<&str> = text.split(':').collect();
    let (last, leading) = parts.split_last()?;
    let mut groups = leading
        .iter()
        .map(|part| parse_hex_group(part))
        .collect::<Option<Vec<u16>>>()?;
    match parse_hex_group(last) {
        Some(group) => groups.push(group),
        None if ipv4_may_end && groups.len() <= 6 => {
            let [a, b, c, d] = parse_ipv4_like_inet_pton(last)?.octets();
            groups.extend([u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])]);
        }
        None => return None,
    }
    (groups.len() <= 8).then_some(groups)
}

/// One IPv6 group: one to four hex digits.
fn parse_hex_group(text: &str) -> Option<u16> {
    let valid = (1..=4).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| u16::from_str_radix(text, 16).ok()).flatten()
}

/// glibc's `inet_pton(AF_INET)`: exactly four decimal parts 0–255, no leading zeros.
fn parse_ipv4_like_inet_pton(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    let octets: [&str; 4] = parts.try_into().ok()?;
    let mut bytes = [0u8; 4];
    for (byte, part) in bytes.iter_mut().zip(octets) {
        let digits_only = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits_only || (part.len() > 1 && part.starts_with('0')) {
            return None;
        }
        *byte = part.parse().ok()?;
    }
    Some(Ipv4Addr::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rcgen::string::BmpString;
    use rcgen::{
        CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, KeyPair, SanType,
    };

    /// GeneralName tag of rfc822Name (an e-mail address).
    const RFC822_NAME: u8 = 1;
    /// GeneralName tag of dNSName.
    const DNS_NAME: u8 = 2;
    /// GeneralName tag of uniformResourceIdentifier.
    const URI: u8 = 6;
    /// GeneralName tag of iPAddress.
    const IP_ADDRESS: u8 = 7;

    /// A DER TLV with a definite length (short or two-byte long form).
    fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match u8::try_from(content.len()) {
            Ok(len) if len < 0x80 => out.push(len),
            _ => {
                let len = u16::try_from(content.len()).expect("test content under 64 KiB");
                out.push(0x82);
                out.extend(len.to_be_bytes());
            }
        }
        out.extend_from_slice(content);
        out
    }

    /// A subject whose only attribute is a UTF8String Common Name (or no attribute at all).
    fn subject(common_name: Option<&str>) -> DistinguishedName {
        let mut name = DistinguishedName::new();
        if let Some(common_name) = common_name {
            name.push(DnType::CommonName, common_name);
        }
        name
    }

    /// A self-signed ECDSA P-256 certificate with this subject and these subjectAltNames.
    fn certificate_with(subject: DistinguishedName, alt_names: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        params.subject_alt_names = alt_names;
        self_signed(params)
    }

    /// Signs the parameters with a fresh P-256 key and returns the DER.
    fn self_signed(params: CertificateParams) -> Vec<u8> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key generation");
        params
            .self_signed(&key)
            .expect("certificate")
            .der()
            .to_vec()
    }

    /// A certificate with an optional CN and these subjectAltNames.
    fn certificate(common_name: Option<&str>, alt_names: Vec<SanType>) -> Vec<u8> {
        certificate_with(subject(common_name), alt_names)
    }

    /// A certificate whose subjectAltName extension is written byte by byte: each entry is a
    /// primitive context-specific GeneralName `[tag]` with these content bytes.
    fn certificate_with_raw_alt_names(
        common_name: Option<&str>,
        entries: &[(u8, &[u8])],
    ) -> Vec<u8> {
        let names: Vec<u8> = entries
            .iter()
            .flat_map(|&(tag, content)| der_tlv(0x80 | tag, content))
            .collect();
        let extension = CustomExtension::from_oid_content(&[2, 5, 29, 17], der_tlv(0x30, &names));
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(common_name);
        params.custom_extensions = vec![extension];
        self_signed(params)
    }

    /// A dNSName subjectAltName.
    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().expect("IA5 name"))
    }

    /// An iPAddress subjectAltName.
    fn ip(address: &str) -> SanType {
        SanType::IpAddress(address.parse().expect("IP address"))
    }

    /// A uniformResourceIdentifier subjectAltName.
    fn uri(uri: &str) -> SanType {
        SanType::URI(uri.try_into().expect("IA5 URI"))
    }

    /// The error message of a failed check, or "ok".
    fn outcome(der: &[u8], host: &str) -> String {
        match check_host_name(der, host) {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.to_string(),
        }
    }

    /// libpq's message for a mismatch with a single name examined.
    fn mismatch(first: &str, host: &str) -> String {
        format!("server certificate for \"{first}\" does not match host name \"{host}\"")
    }

    #[test]
    fn exact_dns_name_matches() {
        let der = certificate(None, vec![dns("db.example.com")]);
        assert_eq!(outcome(&der, "db.example.com"), "ok");
        assert_eq!(
            outcome(&der, "db.example.org"),
            mismatch("db.example.com", "db.example.org")
        );
    }

    #[test]
    fn dns_names_compare_ascii_case_insensitively() {
        let der = certificate(None, vec![dns("DB.Example.COM")]);
        assert_eq!(outcome(&der, "db.example.com"), "ok");
        assert_eq!(outcome(&der, "Db.eXample.Com"), "ok");
    }

    #[test]
    fn wildcard_covers_exactly_one_leftmost_label() {
        let der = certificate(None, vec![dns("*.w.x")]);
        assert_eq!(outcome(&der, "a.w.x"), "ok");
        assert_eq!(outcome(&der, "ABC.W.X"), "ok");
        assert_eq!(outcome(&der, "a.b.w.x"), mismatch("*.w.x", "a.b.w.x"));
        assert_eq!(outcome(&der, "w.x"), mismatch("*.w.x", "w.x"));
        assert_eq!(outcome(&der, ".w.x"), mismatch("*.w.x", ".w.x"));
    }

    #[test]
    fn wildcard_rules_match_libpq() {
        // (name in certificate, host, libpq's answer); checked against libpq's own
        // wildcard_certificate_match compiled from fe-secure-common.c.
        let cases = [
            ("*.w.x", "a.w.x", true),
            ("*.w.x", "a-b.w.x", true),
            ("*.w.x", "a.b.w.x", false),
            ("*.w.x", "w.x", false),
            ("*.w.x", ".w.x", false),
            ("*.w.x", "a.w.y", false),
            ("*.w.x", "*.w.x", true),
            // libpq's dot test lets the last byte the `*` covers be a dot.
            ("*.w.x", "a..w.x", true),
            ("*.w.x", "..w.x", true),
            ("*.w.x", "ab..w.x", true),
            ("*.w.x", "a.b..w.x", false),
            ("*", "a", false),
            ("*", "*", true),
            ("*.", "a.", false),
            ("*.x", "a.x", true),
            ("a*.w.x", "ab.w.x", false),
            ("a*.w.x", "a*.w.x", true),
            ("w.*.x", "w.a.x", false),
            ("*.*.x", "a.b.x", false),
            ("*.*.x", "a.*.x", true),
            ("*w.x", "aw.x", false),
            ("**.x", "a.x", false),
        ];
        for (name, host, expected) in cases {
            assert_eq!(
                name_matches(name.as_bytes(), host),
                Ok(expected),
                "{name} vs {host}"
            );
        }
    }

    #[test]
    fn wildcard_not_leftmost_or_partial_does_not_match_in_a_certificate() {
        let der = certificate(None, vec![dns("a*.w.x"), dns("w.*.x"), dns("*")]);
        assert_eq!(
            outcome(&der, "ab.w.x"),
            "server certificate for \"a*.w.x\" (and 2 other names) does not match host name \"ab.w.x\""
        );
        assert_eq!(outcome(&der, "*"), "ok");
    }

    #[test]
    fn no_trailing_dot_normalisation() {
        let der = certificate(None, vec![dns("db.example.com")]);
        assert_eq!(
            outcome(&der, "db.example.com."),
            mismatch("db.example.com", "db.example.com.")
        );
        let der = certificate(None, vec![dns("db.example.com.")]);
        assert_eq!(
            outcome(&der, "db.example.com"),
            mismatch("db.example.com.", "db.example.com")
        );
        assert_eq!(outcome(&der, "db.example.com."), "ok");
    }

    #[test]
    fn ipv4_address_matches_byte_wise_including_legacy_forms() {
        let der = certificate(None, vec![ip("192.0.2.1")]);
        for host in [
            "192.0.2.1",
            "192.000.002.001",
            "0xC0.0.2.1",
            "3221225985",
            "0300.0.2.1",
            "192.0.513",
        ] {
            assert_eq!(outcome(&der, host), "ok", "{host}");
        }
        assert_eq!(
            outcome(&der, "192.0.2.2"),
            mismatch("192.0.2.1", "192.0.2.2")
        );
        assert_eq!(
            outcome(&der, "::ffff:192.0.2.1"),
            mismatch("192.0.2.1", "::ffff:192.0.2.1")
        );
    }

    #[test]
    fn ipv6_address_matches_byte_wise_including_compressed_forms() {
        let der = certificate(None, vec![ip("2001:db8::1")]);
        for host in [
            "2001:db8::1",
            "2001:DB8:0:0:0:0:0:1",
            "2001:0db8:0000::0001",
            "2001:db8::0:1",
        ] {
            assert_eq!(outcome(&der, host), "ok", "{host}");
        }
        assert_eq!(
            outcome(&der, "2001:db8::2"),
            mismatch("2001:db8::1", "2001:db8::2")
        );
        assert_eq!(
            outcome(&der, "[2001:db8::1]"),
            mismatch("2001:db8::1", "[2001:db8::1]")
        );
        let mapped = certificate(None, vec![ip("::ffff:192.0.2.1")]);
        assert_eq!(outcome(&mapped, "::ffff:c000:201"), "ok");
        assert_eq!(
            outcome(&mapped, "192.0.2.1"),
            mismatch("::ffff:192.0.2.1", "192.0.2.1")
        );
        // IPv4-compatible addresses are printed the PostgreSQL way, not Rust's (`::c000:201`).
        let compatible = certificate(None, vec![ip("::192.0.2.1")]);
        assert_eq!(outcome(&compatible, "::c000:201"), "ok");
        assert_eq!(outcome(&compatible, "::1"), mismatch("::192.0.2.1", "::1"));
    }

    #[test]
    fn ip_address_entry_is_never_matched_by_a_name_host() {
        let der = certificate(None, vec![ip("127.0.0.1")]);
        assert_eq!(
            outcome(&der, "localhost"),
            mismatch("127.0.0.1", "localhost")
        );
    }

    #[test]
    fn common_name_used_for_name_host_when_only_ip_alt_names() {
        let der = certificate(Some("db.example.com"), vec![ip("192.0.2.1")]);
        assert_eq!(outcome(&der, "db.example.com"), "ok");
        assert_eq!(
            outcome(&der, "other.example"),
            "server certificate for \"192.0.2.1\" (and 1 other name) does not match host name \"other.example\""
        );
    }

    #[test]
    fn common_name_ignored_for_name_host_when_a_dns_alt_name_exists() {
        let der = certificate(Some("db.example.com"), vec![dns("a.example")]);
        assert_eq!(
            outcome(&der, "db.example.com"),
            mismatch("a.example", "db.example.com")
        );
    }

    #[test]
    fn ip_host_compares_dns_alt_names_as_strings_and_falls_back_to_common_name() {
        let der = certificate(Some("192.0.2.1"), vec![dns("db.example.com")]);
        assert_eq!(outcome(&der, "192.0.2.1"), "ok");
        assert_eq!(
            outcome(&der, "192.000.002.001"),
            "server certificate for \"db.example.com\" (and 1 other name) does not match host name \"192.000.002.001\""
        );
        let der = certificate(Some("db.example.com"), vec![dns("192.0.2.1")]);
        assert_eq!(outcome(&der, "192.0.2.1"), "ok");
        assert_eq!(
            outcome(&der, "0xC0.0.2.1"),
            "server certificate for \"192.0.2.1\" (and 1 other name) does not match host name \"0xC0.0.2.1\""
        );
    }

    #[test]
    fn common_name_ignored_for_ip_host_when_an_ip_alt_name_exists() {
        let der = certificate(Some("192.0.2.1"), vec![ip("192.0.2.2")]);
        assert_eq!(
            outcome(&der, "192.0.2.1"),
            mismatch("192.0.2.2", "192.0.2.1")
        );
    }

    #[test]
    fn common_name_compared_as_a_string_not_an_address() {
        let der = certificate(Some("192.0.2.1"), vec![]);
        assert_eq!(outcome(&der, "192.0.2.1"), "ok");
        assert_eq!(
            outcome(&der, "192.000.002.001"),
            mismatch("192.0.2.1", "192.000.002.001")
        );
    }

    #[test]
    fn common_name_alone() {
        let der = certificate(Some("db.example.com"), vec![]);
        assert_eq!(outcome(&der, "DB.example.com"), "ok");
        assert_eq!(
            outcome(&der, "db2.example.com"),
            mismatch("db.example.com", "db2.example.com")
        );
        let wildcard = certificate(Some("*.example.com"), vec![]);
        assert_eq!(outcome(&wildcard, "db.example.com"), "ok");
    }

    #[test]
    fn first_common_name_is_the_one_used() {
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "first.example");
        name.push(DnType::CustomDnType(vec![2, 5, 4, 3]), "second.example");
        let der = certificate_with(name, vec![]);
        assert_eq!(outcome(&der, "first.example"), "ok");
        assert_eq!(
            outcome(&der, "second.example"),
            mismatch("first.example", "second.example")
        );
    }

    #[test]
    fn bmp_string_common_name_is_compared_as_raw_bytes_like_openssl() {
        // libpq takes the CN's raw ASN1_STRING bytes: UCS-2 "localhost" has NUL bytes.
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            DnValue::BmpString(BmpString::try_from("localhost").expect("BMP")),
        );
        let der = certificate_with(name, vec![]);
        assert_eq!(
            outcome(&der, "localhost"),
            "SSL certificate's name contains embedded null"
        );
    }

    #[test]
    fn mismatch_message_counts_other_names() {
        let der = certificate(
            None,
            vec![
                dns("a.example"),
                ip("192.0.2.1"),
                dns("b.example"),
                ip("2001:db8::1"),
            ],
        );
        assert_eq!(
            outcome(&der, "c.example"),
            "server certificate for \"a.example\" (and 3 other names) does not match host name \"c.example\""
        );
        let der = certificate(
            Some("cn.example"),
            vec![ip("2001:db8::1"), ip("::ffff:10.0.0.1")],
        );
        assert_eq!(
            outcome(&der, "c.example"),
            "server certificate for \"2001:db8::1\" (and 2 other names) does not match host name \"c.example\""
        );
    }

    #[test]
    fn other_alt_name_types_are_skipped_and_do_not_block_the_common_name() {
        let der = certificate(
            Some("db.example.com"),
            vec![
                uri("https://db.example.com/"),
                SanType::Rfc822Name("dba@example.com".try_into().expect("IA5")),
            ],
        );
        assert_eq!(outcome(&der, "db.example.com"), "ok");
        assert_eq!(
            outcome(&der, "other.example"),
            mismatch("db.example.com", "other.example")
        );
        let without_common_name = certificate(None, vec![uri("https://db.example.com/")]);
        assert_eq!(
            outcome(&without_common_name, "db.example.com"),
            "could not get server's host name from server certificate"
        );
    }

    #[test]
    fn no_names_at_all() {
        let der = certificate(None, vec![]);
        assert_eq!(
            outcome(&der, "db.example.com"),
            "could not get server's host name from server certificate"
        );
        let empty_extension = certificate_with_raw_alt_names(None, &[]);
        assert_eq!(
            outcome(&empty_extension, "192.0.2.1"),
            "could not get server's host name from server certificate"
        );
    }

    #[test]
    fn empty_host_is_refused_before_looking_at_the_certificate() {
        assert_eq!(
            outcome(b"not a certificate", ""),
            "host name must be specified for a verified SSL connection"
        );
    }

    #[test]
    fn embedded_null_is_an_error_unless_an_earlier_name_matched() {
        let der = certificate_with_raw_alt_names(
            Some("db.example.com"),
            &[
                (DNS_NAME, b"evil.example\0.db.example.com"),
                (DNS_NAME, b"db.example.com"),
            ],
        );
        assert_eq!(
            outcome(&der, "db.example.com"),
            "SSL certificate's name contains embedded null"
        );
        let der = certificate_with_raw_alt_names(
            None,
            &[
                (DNS_NAME, b"db.example.com"),
                (DNS_NAME, b"evil.example\0.db.example.com"),
            ],
        );
        assert_eq!(outcome(&der, "db.example.com"), "ok");
        assert_eq!(
            outcome(&der, "x.example"),
            "SSL certificate's name contains embedded null"
        );
    }

    #[test]
    fn ip_address_of_invalid_length_is_an_error_even_for_a_name_host() {
        let der = certificate_with_raw_alt_names(
            None,
            &[
                (IP_ADDRESS, &[192, 0, 2, 1, 0]),
                (DNS_NAME, b"db.example.com"),
            ],
        );
        assert_eq!(
            outcome(&der, "db.example.com"),
            "certificate contains IP address with invalid length 5"
        );
        assert_eq!(
            outcome(&der, "192.0.2.1"),
            "certificate contains IP address with invalid length 5"
        );
        let der = certificate_with_raw_alt_names(
            None,
            &[(DNS_NAME, b"db.example.com"), (IP_ADDRESS, &[])],
        );
        assert_eq!(outcome(&der, "db.example.com"), "ok");
        assert_eq!(
            outcome(&der, "x.example"),
            "certificate contains IP address with invalid length 0"
        );
    }

    #[test]
    fn raw_alt_names_of_other_types_are_skipped() {
        let der = certificate_with_raw_alt_names(
            Some("db.example.com"),
            &[
                (URI, b"db.example.com"),
                (RFC822_NAME, b"db.example.com"),
                (IP_ADDRESS, &[10, 0, 0, 1]),
            ],
        );
        assert_eq!(outcome(&der, "db.example.com"), "ok");
        assert_eq!(
            outcome(&der, "10.0.0.2"),
            "server certificate for \"10.0.0.1\" does not match host name \"10.0.0.2\""
        );
    }

    #[test]
    fn non_utf8_dns_name_is_compared_as_raw_bytes() {
        let der = certificate_with_raw_alt_names(None, &[(DNS_NAME, b"db\xff.example")]);
        assert_eq!(
            outcome(&der, "db.example"),
            mismatch("db\u{fffd}.example", "db.example")
        );
    }

    #[test]
    fn unparsable_certificates_are_errors() {
        assert!(outcome(b"", "db.example.com")
            .starts_with("could not parse server certificate to verify its host name: "));
        let der = certificate(Some("db.example.com"), vec![]);
        let mut with_trailing = der.clone();
        with_trailing.push(0);
        assert_eq!(
            outcome(&with_trailing, "db.example.com"),
            "could not parse server certificate to verify its host name: 1 bytes after the certificate"
        );
        let truncated = der.get(..der.len() - 1).expect("non-empty");
        assert!(
            outcome(truncated, "db.example.com").starts_with("could not parse server certificate")
        );
    }

    #[test]
    fn duplicate_alt_name_extensions_are_refused() {
        let san = |name: &[u8]| {
            CustomExtension::from_oid_content(
                &[2, 5, 29, 17],
                der_tlv(0x30, &der_tlv(0x80 | DNS_NAME, name)),
            )
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(None);
        params.custom_extensions = vec![san(b"a.example"), san(b"b.example")];
        let der = self_signed(params);
        assert!(
            outcome(&der, "a.example").starts_with("could not parse server certificate to verify its host name: subjectAltName extension: "),
            "{}",
            outcome(&der, "a.example")
        );
    }

    #[test]
    fn error_display_covers_every_variant() {
        let cases = [
            (
                HostNameError::HostMissing,
                "host name must be specified for a verified SSL connection",
            ),
            (
                HostNameError::EmbeddedNull,
                "SSL certificate's name contains embedded null",
            ),
            (
                HostNameError::InvalidIpAddressLength { length: 3 },
                "certificate contains IP address with invalid length 3",
            ),
            (
                HostNameError::Mismatch {
                    first_name: "a".into(),
                    other_names: 0,
                    host: "h".into(),
                },
                "server certificate for \"a\" does not match host name \"h\"",
            ),
            (
                HostNameError::Mismatch {
                    first_name: "a".into(),
                    other_names: 1,
                    host: "h".into(),
                },
                "server certificate for \"a\" (and 1 other name) does not match host name \"h\"",
            ),
            (
                HostNameError::Mismatch {
                    first_name: "a".into(),
                    other_names: 2,
                    host: "h".into(),
                },
                "server certificate for \"a\" (and 2 other names) does not match host name \"h\"",
            ),
            (
                HostNameError::NoNames,
                "could not get server's host name from server certificate",
            ),
            (
                HostNameError::UnparsableCertificate { reason: "r".into() },
                "could not parse server certificate to verify its host name: r",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn sni_is_sent_only_for_names() {
        let cases = [
            ("localhost", true),
            ("db-1.example", true),
            ("123abc", true),
            ("0xC0.0.2.1", true),
            ("127.0.0.1", false),
            ("1.2.3", false),
            ("3221225985", false),
            ("::1", false),
            ("fe80::1%eth0", false),
            ("host:5432", false),
            ("", false),
        ];
        for (host, expected) in cases {
            assert_eq!(sni_allowed(host), expected, "{host:?}");
        }
    }

    #[test]
    fn host_ip_parsing_follows_glibc_inet_aton() {
        // Expected values obtained from glibc's inet_aton on the same strings.
        let v4 = |a, b, c, d| Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
        let cases = [
            ("192.0.2.1", v4(192, 0, 2, 1)),
            ("192.000.002.001", v4(192, 0, 2, 1)),
            ("0xC0.0.2.1", v4(192, 0, 2, 1)),
            ("0XC0.0.2.1", v4(192, 0, 2, 1)),
            ("0300.0.2.1", v4(192, 0, 2, 1)),
            ("3221225985", v4(192, 0, 2, 1)),
            ("1.2.3", v4(1, 2, 0, 3)),
            ("1.2", v4(1, 0, 0, 2)),
            ("1.256", v4(1, 0, 1, 0)),
            ("1.65536", v4(1, 1, 0, 0)),
            ("4294967295", v4(255, 255, 255, 255)),
            ("0xffffffff", v4(255, 255, 255, 255)),
            ("037777777777", v4(255, 255, 255, 255)),
            ("00000000000000000000000000001", v4(0, 0, 0, 1)),
            ("192.0.2.1 junk", v4(192, 0, 2, 1)),
            ("192.0.2.1\t", v4(192, 0, 2, 1)),
            ("192.0.2.1\x0b", v4(192, 0, 2, 1)),
            ("1.2.65536", None),
            ("4294967296", None),
            ("040000000000", None),
            ("256.0.0.1", None),
            ("1.2.3.256", None),
            ("1.2.3.4.5", None),
            ("192.0.2.1.", None),
            (" 192.0.2.1", None),
            ("+1.2.3.4", None),
            ("08", None),
            ("0x", None),
            ("0x.1.2.3", None),
            ("1..2", None),
            (".1.2.3", None),
            ("1.2.3.4x", None),
            ("\u{661}.2.3.4", None),
            ("", None),
            ("localhost", None),
        ];
        for (host, expected) in cases {
            assert_eq!(parse_host_ip(host), expected, "{host:?}");
        }
    }

    #[test]
    fn host_ip_parsing_follows_glibc_inet_pton6() {
        // Expected values obtained from glibc's inet_pton(AF_INET6) on the same strings.
        let v6 = |text: &str| Some(IpAddr::V6(text.parse().expect("valid IPv6")));
        let cases = [
            ("::", v6("::")),
            ("::1", v6("::1")),
            ("1::", v6("1::")),
            ("0001::", v6("1::")),
            ("1:2:3:4:5:6:7:8", v6("1:2:3:4:5:6:7:8")),
            ("1:2:3:4:5:6:7::", v6("1:2:3:4:5:6:7:0")),
            ("::2:3:4:5:6:7:8", v6("0:2:3:4:5:6:7:8")),
            ("::1.2.3.4", v6("::102:304")),
            ("::ffff:192.0.2.1", v6("::ffff:c000:201")),
            ("1:2:3:4:5:6:1.2.3.4", v6("1:2:3:4:5:6:102:304")),
            ("1:2:3:4:5::1.2.3.4", v6("1:2:3:4:5:0:102:304")),
            ("2001:DB8::1", v6("2001:db8::1")),
            ("1:2:3:4:5:6:7:8::", None),
            ("1::2:3:4:5:6:7:8", None),
            ("::ffff:01.2.3.4", None),
            ("1:2:3:4:5:6:7:1.2.3.4", None),
            ("1:2:3:4:5:6::1.2.3.4", None),
            ("::1.2.3.4:5", None),
            ("::1.2.3", None),
            (":::", None),
            ("1::2::3", None),
            (":1::", None),
            ("1:", None),
            ("12345::", None),
            ("fe80::1%eth0", None),
            ("[::1]", None),
            ("::1 ", None),
        ];
        for (host, expected) in cases {
            assert_eq!(parse_host_ip(host), expected, "{host:?}");
        }
    }

    #[test]
    fn ipv6_text_in_messages_follows_postgres_inet_net_ntop() {
        // Expected values obtained from PostgreSQL's pg_inet_net_ntop on the same addresses.
        let cases = [
            ("::", "::"),
            ("::1", "::1"),
            ("::2", "::2"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::0.1.0.2", "::0.1.0.2"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
            ("2001:db8::1", "2001:db8::1"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
            ("1::", "1::"),
            ("ABCD:EF01::", "abcd:ef01::"),
        ];
        for (address, expected) in cases {
            let address: Ipv6Addr = address.parse().expect("valid IPv6");
            assert_eq!(
                format_ipv6_like_postgres(address.octets()),
                expected,
                "{address}"
            );
        }
    }

    /// A fixed certificate to mutate in the property tests.
    fn sample_certificate() -> &'static [u8] {
        static SAMPLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        SAMPLE.get_or_init(|| {
            certificate(
                Some("db.example.com"),
                vec![dns("*.example.com"), ip("192.0.2.1"), ip("2001:db8::1")],
            )
        })
    }

    /// An arbitrary subjectAltName entry for the matching walk.
    fn any_alt_name() -> impl Strategy<Value = (u8, Vec<u8>)> {
        (0u8..3, proptest::collection::vec(any::<u8>(), 0..20))
    }

    proptest! {
        #[test]
        fn canonical_addresses_parse_to_themselves(v4 in any::<u32>(), v6 in any::<u128>()) {
            let v4 = Ipv4Addr::from(v4);
            let v6 = Ipv6Addr::from(v6);
            prop_assert_eq!(parse_host_ip(&v4.to_string()), Some(IpAddr::V4(v4)));
            prop_assert_eq!(parse_host_ip(&v6.to_string()), Some(IpAddr::V6(v6)));
            prop_assert_eq!(parse_host_ip(&format_ipv6_like_postgres(v6.octets())), Some(IpAddr::V6(v6)));
        }

        #[test]
        fn wildcard_matches_one_label_but_not_two(
            label in "[a-zA-Z0-9-]{1,12}",
            other in "[a-z0-9-]{1,12}",
            suffix in "[a-z0-9-]{1,8}(\\.[a-z0-9-]{1,8}){0,3}",
        ) {
            let pattern = format!("*.{suffix}");
            prop_assert_eq!(name_matches(pattern.as_bytes(), &format!("{label}.{suffix}")), Ok(true));
            prop_assert_eq!(name_matches(pattern.as_bytes(), &format!("{other}.{label}.{suffix}")), Ok(false));
            prop_assert_eq!(name_matches(pattern.as_bytes(), &suffix), Ok(false));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), host in "\\PC{0,20}") {
            let _ = check_host_name(&bytes, &host);
        }

        #[test]
        fn mutated_certificate_never_panics(index in any::<prop::sample::Index>(), byte in any::<u8>(), host in "[a-z0-9.:]{1,20}") {
            let mut der = sample_certificate().to_vec();
            let position = index.index(der.len());
            if let Some(target) = der.get_mut(position) {
                *target = byte;
            }
            let _ = check_host_name(&der, &host);
        }

        #[test]
        fn matching_walk_never_panics(
            alt_names in proptest::collection::vec(any_alt_name(), 0..6),
            common_name in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            host in "\\PC{0,20}",
        ) {
            let names = CertificateNames {
                alt_names: alt_names
                    .iter()
                    .map(|(kind, bytes)| match kind {
                        0 => AltName::Dns(bytes),
                        1 => AltName::Ip(bytes),
                        _ => AltName::Other,
                    })
                    .collect(),
                first_common_name: common_name.as_deref(),
            };
            let _ = match_certificate_names(&names, &host);
        }
    }
}
