//! Distinguished names compared like OpenSSL's `X509_NAME_cmp`: the canonical form
//! (`x509_name_canon`), string-type conversion and INTEGER normalisation.

use x509_cert::der::asn1::Any;
use x509_cert::der::{Decode, Tagged};
use x509_cert::name::{Name as X509Name, RelativeDistinguishedName};

use crate::verify::signature::TAG_SEQUENCE;

/// A distinguished name in OpenSSL's canonical form (`x509_name_canon`), so that equality is
/// `X509_NAME_cmp() == 0`.
///
/// Each attribute value of a string type (UTF8, BMP, Universal, Printable, T61, IA5, Visible) is
/// converted to UTF-8, leading and trailing whitespace is removed, inner whitespace runs become
/// one space and ASCII letters are lowered; other values are kept as they are with their tag.
/// Attributes of a multi-valued RDN are sorted. Every RDN is encoded self-delimiting, so a
/// byte-prefix of the encoding is an RDN-prefix (used by directoryName constraints).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) struct Name {
    /// Concatenated canonical RDN encodings.
    pub(super) canonical: Vec<u8>,
    /// Number of attribute-value pairs (`X509_NAME_entry_count`).
    pub(super) entries: usize,
}

impl Name {
    /// Canonicalises a parsed name; `None` when a string value cannot be converted (OpenSSL then
    /// fails to decode the certificate).
    pub(crate) fn from_x509(name: &X509Name) -> Option<Self> {
        let mut out = Self::default();
        for rdn in name.0.iter() {
            out.push_rdn(rdn)?;
        }
        Some(out)
    }

    /// Canonicalises the *contents* of a Name SEQUENCE (as in a `TrustAnchor`'s subject).
    pub(crate) fn from_contents(contents: &[u8]) -> Option<Self> {
        let der = wrap_sequence(contents);
        Self::from_x509(&X509Name::from_der(&der).ok()?)
    }

    /// This name with one more RDN appended (a `nameRelativeToCRLIssuer` made absolute).
    pub(crate) fn with_rdn(&self, rdn: &RelativeDistinguishedName) -> Option<Self> {
        let mut out = self.clone();
        out.push_rdn(rdn)?;
        Some(out)
    }

    /// Appends one RDN's canonical, self-delimiting encoding.
    pub(super) fn push_rdn(&mut self, rdn: &RelativeDistinguishedName) -> Option<()> {
        let mut attributes = Vec::new();
        for attribute in rdn.0.iter() {
            let value = canonical_value(&attribute.value)?;
            let mut encoded = Vec::new();
            push_len_prefixed(&mut encoded, attribute.oid.as_bytes());
            push_len_prefixed(&mut encoded, &value);
            attributes.push(encoded);
        }
        attributes.sort();
        self.entries += attributes.len();
        let mut rdn_bytes = Vec::new();
        for attribute in &attributes {
            push_len_prefixed(&mut rdn_bytes, attribute);
        }
        push_len_prefixed(&mut self.canonical, &rdn_bytes);
        Some(())
    }

    /// Number of attribute-value pairs.
    pub(crate) fn entry_count(&self) -> usize {
        self.entries
    }

    /// Whether this name's RDNs are a leading subsequence of `other`'s (`nc_dn`).
    pub(super) fn is_prefix_of(&self, other: &Name) -> bool {
        other.canonical.starts_with(&self.canonical)
    }
}

/// Appends `bytes` preceded by its length as four big-endian octets.
pub(super) fn push_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Wraps `contents` in a DER SEQUENCE header.
pub(super) fn wrap_sequence(contents: &[u8]) -> Vec<u8> {
    let mut out = vec![TAG_SEQUENCE];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// Universal tags whose values OpenSSL canonicalises (`ASN1_MASK_CANON`).
pub(super) const CANON_STRING_TAGS: [u32; 7] = [12, 30, 28, 19, 20, 22, 26];

/// Encodes one attribute value canonically: `0x0c` + canonical UTF-8 for string types, or the
/// class, constructed bit, tag number and raw contents for anything else.
pub(super) fn canonical_value(value: &Any) -> Option<Vec<u8>> {
    let tag = value.tag();
    let number = u32::from(tag.number().value());
    if tag.is_universal() && CANON_STRING_TAGS.contains(&number) {
        let utf8 = string_to_utf8(number, value.value())?;
        let mut out = vec![0x0c];
        out.extend_from_slice(&canonicalize_text(&utf8));
        return Some(out);
    }
    // The identifier octet carries the class, the constructed bit and the tag number.
    let mut out = vec![0xff, tag.octet()];
    out.extend_from_slice(value.value());
    Some(out)
}

/// Converts an ASN.1 string's contents to UTF-8 like `ASN1_STRING_to_UTF8`: UTF8String is
/// validated, BMPString is 2 bytes per character, UniversalString 4, and the one-byte types
/// (Printable, T61, IA5, Visible) are read as Latin-1.
pub(crate) fn string_to_utf8(tag: u32, data: &[u8]) -> Option<Vec<u8>> {
    match tag {
        12 => std::str::from_utf8(data)
            .ok()
            .map(|s| s.as_bytes().to_vec()),
        30 => code_points_to_utf8(data, 2),
        28 => code_points_to_utf8(data, 4),
        _ => Some(latin1_to_utf8(data)),
    }
}

/// Decodes fixed-width big-endian code points and encodes them as UTF-8.
pub(super) fn code_points_to_utf8(data: &[u8], width: usize) -> Option<Vec<u8>> {
    if data.len() % width != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(width) {
        let cp = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        push_utf8(&mut out, cp)?;
    }
    Some(out)
}

/// Reads each byte as a Latin-1 character and encodes it as UTF-8.
pub(super) fn latin1_to_utf8(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for b in data {
        // Latin-1 code points are always valid.
        let _ = push_utf8(&mut out, u32::from(*b));
    }
    out
}

/// UTF-8-encodes one code point (surrogates included, as OpenSSL does); `None` above U+10FFFF.
pub(super) fn push_utf8(out: &mut Vec<u8>, cp: u32) -> Option<()> {
    match cp {
        0..=0x7f => out.push(cp as u8),
        0x80..=0x7ff => out.extend_from_slice(&[0xc0 | (cp >> 6) as u8, 0x80 | (cp & 0x3f) as u8]),
        0x800..=0xffff => out.extend_from_slice(&[
            0xe0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ]),
        0x1_0000..=0x10_ffff => out.extend_from_slice(&[
            0xf0 | (cp >> 18) as u8,
            0x80 | ((cp >> 12) & 0x3f) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ]),
        _ => return None,
    }
    Some(())
}

/// OpenSSL's `asn1_string_canon` text step: trim ASCII whitespace, collapse inner runs to one
/// space, lower ASCII letters, copy non-ASCII bytes unchanged.
pub(super) fn canonicalize_text(text: &[u8]) -> Vec<u8> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = text.iter().position(|b| !is_space(b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |p| p + 1);
    let mut out = Vec::with_capacity(end - start);
    let mut in_space = false;
    for b in &text[start..end] {
        if is_space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b.to_ascii_lowercase());
            in_space = false;
        }
    }
    out
}

/// Strips redundant leading sign octets from an INTEGER's contents so that equal values compare
/// equal (`ASN1_INTEGER_cmp`).
pub(crate) fn normalize_integer(raw: &[u8]) -> Vec<u8> {
    let mut s = raw;
    while s.len() > 1 && ((s[0] == 0x00 && s[1] & 0x80 == 0) || (s[0] == 0xff && s[1] & 0x80 != 0))
    {
        s = &s[1..];
    }
    s.to_vec()
}
