//! `tls-server-end-point` channel binding (RFC 5929, section 4), computed as libpq computes it
//! for `SCRAM-SHA-256-PLUS` (`pgtls_get_peer_certificate_hash` in `fe-secure-openssl.c`).
//!
//! The data is a hash of the server's leaf certificate, exactly as sent (DER). The hash is the
//! one the certificate's own signature algorithm uses, except that MD5 and SHA-1 are replaced by
//! SHA-256. For RSASSA-PSS the hash is the `hashAlgorithm` of the PSS parameters (SHA-1 when
//! absent, hence SHA-256). Signature algorithms without a separate hash (Ed25519, Ed448) and
//! algorithms this crate does not know give an error: the driver then cannot use
//! `SCRAM-SHA-256-PLUS`, as libpq cannot.

use std::fmt;

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512, Sha512_224, Sha512_256};
use x509_cert::der::asn1::{Any, ContextSpecific};
use x509_cert::der::TagNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::verify::x509::{decode_certificate, Certificate};

/// Why the `tls-server-end-point` channel-binding data could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelBindingError {
    /// The server certificate is not a well-formed DER X.509 certificate.
    InvalidCertificate {
        /// What the parser reported.
        reason: String,
    },
    /// The certificate's signature algorithm names no hash that can be used for channel binding:
    /// Ed25519, Ed448, or an algorithm (or hash) this crate does not know.
    UnsupportedSignatureAlgorithm {
        /// The algorithm's name when known, and its object identifier.
        algorithm: String,
    },
    /// The certificate is signed with RSASSA-PSS but its parameters cannot be decoded or name a
    /// hash this crate does not know.
    InvalidPssParameters {
        /// What is wrong with the parameters.
        reason: String,
    },
    /// The server presented no certificate (nothing to bind to).
    NoCertificate,
}

impl fmt::Display for ChannelBindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCertificate => f.write_str("could not get server certificate for channel binding"),
            Self::InvalidCertificate { reason } => write!(
                f,
                "could not parse server certificate for channel binding: {reason}"
            ),
            Self::UnsupportedSignatureAlgorithm { algorithm } => write!(
                f,
                "channel binding is not available for the server certificate's signature algorithm {algorithm}"
            ),
            Self::InvalidPssParameters { reason } => write!(
                f,
                "could not determine server certificate signature algorithm: invalid RSASSA-PSS parameters: {reason}"
            ),
        }
    }
}

impl std::error::Error for ChannelBindingError {}

/// The `tls-server-end-point` channel-binding data for the server's leaf certificate (DER).
///
/// This is the hash of the whole certificate with the hash of its signature algorithm (MD5 and
/// SHA-1 replaced by SHA-256), ready to follow `p=tls-server-end-point,,` in SCRAM's
/// client-final-message.
pub fn tls_server_end_point(end_entity_der: &[u8]) -> Result<Vec<u8>, ChannelBindingError> {
    let certificate = parse_certificate(end_entity_der)?;
    let hash = end_point_hash(&certificate.signature_algorithm)?;
    Ok(hash.digest(end_entity_der))
}

/// Parses a whole DER certificate, refusing trailing bytes.
fn parse_certificate(der: &[u8]) -> Result<Certificate, ChannelBindingError> {
    decode_certificate(der).map_err(|reason| ChannelBindingError::InvalidCertificate { reason })
}

/// A hash function named by a signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureHash {
    /// MD5.
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA-512/224.
    Sha512_224,
    /// SHA-512/256.
    Sha512_256,
}

/// A hash function usable for `tls-server-end-point`: the SHA-2 family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndPointHash {
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA-512/224.
    Sha512_224,
    /// SHA-512/256.
    Sha512_256,
}

impl EndPointHash {
    /// RFC 5929 section 4.1: MD5 and SHA-1 become SHA-256, other hashes are kept.
    fn for_signature_hash(hash: SignatureHash) -> Self {
        match hash {
            SignatureHash::Md5 | SignatureHash::Sha1 | SignatureHash::Sha256 => Self::Sha256,
            SignatureHash::Sha224 => Self::Sha224,
            SignatureHash::Sha384 => Self::Sha384,
            SignatureHash::Sha512 => Self::Sha512,
            SignatureHash::Sha512_224 => Self::Sha512_224,
            SignatureHash::Sha512_256 => Self::Sha512_256,
        }
    }

    /// Hashes `data`.
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha224 => Sha224::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
            Self::Sha512_224 => Sha512_224::digest(data).to_vec(),
            Self::Sha512_256 => Sha512_256::digest(data).to_vec(),
        }
    }
}

/// The object identifier of RSASSA-PSS, whose hash is in its parameters.
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";

/// The object identifier of MGF1, the only mask generation function PSS defines.
const MGF1: &str = "1.2.840.113549.1.1.8";

/// The `tls-server-end-point` hash for a certificate signed with this algorithm.
fn end_point_hash(
    algorithm: &AlgorithmIdentifierOwned,
) -> Result<EndPointHash, ChannelBindingError> {
    hash_for_signature_algorithm(&algorithm.oid.to_string(), algorithm.parameters.as_ref())
        .map(EndPointHash::for_signature_hash)
}

/// The hash a signature algorithm (by dotted OID, with its parameters) signs with.
fn hash_for_signature_algorithm(
    oid: &str,
    parameters: Option<&Any>,
) -> Result<SignatureHash, ChannelBindingError> {
    if oid == RSASSA_PSS {
        return hash_for_pss_parameters(parameters);
    }
    hash_named_by_signature_oid(oid).ok_or_else(|| {
        ChannelBindingError::UnsupportedSignatureAlgorithm {
            algorithm: describe_signature_oid(oid),
        }
    })
}

/// The hash built into a signature algorithm's identifier (RSA PKCS #1 v1.5, ECDSA, DSA),
/// following OpenSSL's table of signature algorithms.
fn hash_named_by_signature_oid(oid: &str) -> Option<SignatureHash> {
    let hash = match oid {
        // md5WithRSAEncryption, and the OIW md5WithRSA.
        "1.2.840.113549.1.1.4" | "1.3.14.3.2.3" => SignatureHash::Md5,
        // sha1WithRSAEncryption, OIW sha1WithRSA, ecdsa-with-SHA1, dsa-with-sha1, OIW dsaWithSHA1.
        "1.2.840.113549.1.1.5"
        | "1.3.14.3.2.29"
        | "1.2.840.10045.4.1"
        | "1.2.840.10040.4.3"
        | "1.3.14.3.2.27" => SignatureHash::Sha1,
        // sha224WithRSAEncryption, ecdsa-with-SHA224, dsa-with-sha224.
        "1.2.840.113549.1.1.14" | "1.2.840.10045.4.3.1" | "2.16.840.1.101.3.4.3.1" => {
            SignatureHash::Sha224
        }
        // sha256WithRSAEncryption, ecdsa-with-SHA256, dsa-with-sha256.
        "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" | "2.16.840.1.101.3.4.3.2" => {
            SignatureHash::Sha256
        }
        // sha384WithRSAEncryption, ecdsa-with-SHA384, id-dsa-with-sha384.
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" | "2.16.840.1.101.3.4.3.3" => {
            SignatureHash::Sha384
        }
        // sha512WithRSAEncryption, ecdsa-with-SHA512, id-dsa-with-sha512.
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" | "2.16.840.1.101.3.4.3.4" => {
            SignatureHash::Sha512
        }
        // sha512-224WithRSAEncryption, sha512-256WithRSAEncryption.
        "1.2.840.113549.1.1.15" => SignatureHash::Sha512_224,
        "1.2.840.113549.1.1.16" => SignatureHash::Sha512_256,
        _ => return None,
    };
    Some(hash)
}

/// A hash algorithm by its own object identifier, as used inside PSS parameters.
fn hash_by_oid(oid: &str) -> Option<SignatureHash> {
    let hash = match oid {
        "1.2.840.113549.2.5" => SignatureHash::Md5,
        "1.3.14.3.2.26" => SignatureHash::Sha1,
        "2.16.840.1.101.3.4.2.4" => SignatureHash::Sha224,
        "2.16.840.1.101.3.4.2.1" => SignatureHash::Sha256,
        "2.16.840.1.101.3.4.2.2" => SignatureHash::Sha384,
        "2.16.840.1.101.3.4.2.3" => SignatureHash::Sha512,
        "2.16.840.1.101.3.4.2.5" => SignatureHash::Sha512_224,
        "2.16.840.1.101.3.4.2.6" => SignatureHash::Sha512_256,
        _ => return None,
    };
    Some(hash)
}

/// The hash of an RSASSA-PSS signature: its `hashAlgorithm` (SHA-1 when absent). Like OpenSSL,
/// the parameters must be present and decodable, name a known hash, use MGF1 over a known
/// hash (the default, MGF1 with SHA-1, when absent), and have the trailer field 1.
fn hash_for_pss_parameters(parameters: Option<&Any>) -> Result<SignatureHash, ChannelBindingError> {
    let invalid = |reason: String| ChannelBindingError::InvalidPssParameters { reason };
    let parameters = parameters.ok_or_else(|| invalid("parameters are missing".to_owned()))?;
    let parameters =
        PssParameters::decode(parameters).map_err(|error| invalid(error.to_string()))?;
    check_pss_mask_generation(&parameters).map_err(invalid)?;
    if parameters.trailer_field != 1 {
        return Err(invalid(format!(
            "trailer field {} instead of 1",
            parameters.trailer_field
        )));
    }
    let hash_oid = parameters.hash_algorithm_oid();
    hash_by_oid(&hash_oid).ok_or_else(|| invalid(format!("unknown hash algorithm {hash_oid}")))
}

/// RSASSA-PSS-params (RFC 4055): what channel binding looks at, absent fields left `None`.
struct PssParameters {
    /// hashAlgorithm (`[0]`; SHA-1 when absent).
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    /// maskGenAlgorithm (`[1]`; MGF1 with SHA-1 when absent).
    mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    /// trailerField (`[3]`; 1 when absent).
    trailer_field: u32,
}

impl PssParameters {
    /// Decodes the parameters SEQUENCE; saltLength (`[2]`) must be a non-negative INTEGER.
    fn decode(parameters: &Any) -> x509_cert::der::Result<Self> {
        parameters.sequence(|reader| {
            let hash_algorithm = ContextSpecific::decode_explicit(reader, TagNumber::N0)?;
            let mask_gen_algorithm = ContextSpecific::decode_explicit(reader, TagNumber::N1)?;
            let _salt_length: Option<ContextSpecific<u32>> =
                ContextSpecific::decode_explicit(reader, TagNumber::N2)?;
            let trailer_field: Option<ContextSpecific<u32>> =
                ContextSpecific::decode_explicit(reader, TagNumber::N3)?;
            Ok(Self {
                hash_algorithm: hash_algorithm.map(|field| field.value),
                mask_gen_algorithm: mask_gen_algorithm.map(|field| field.value),
                trailer_field: trailer_field.map_or(1, |field| field.value),
            })
        })
    }

    /// The hash algorithm's OID in dotted form.
    fn hash_algorithm_oid(&self) -> String {
        self.hash_algorithm
            .as_ref()
            .map_or_else(|| SHA1_OID.to_owned(), |hash| hash.oid.to_string())
    }
}

/// id-sha1, the RSASSA-PSS default hash.
const SHA1_OID: &str = "1.3.14.3.2.26";

fn check_pss_mask_generation(parameters: &PssParameters) -> Result<(), String> {
    let Some(mask) = &parameters.mask_gen_algorithm else {
        return Ok(());
    };
    let mask_oid = mask.oid.to_string();
    if mask_oid != MGF1 {
        return Err(format!("unknown mask generation function {mask_oid}"));
    }
    let mgf1_hash = mask
        .parameters
        .as_ref()
        .ok_or_else(|| "MGF1 parameters: missing".to_owned())?
        .decode_as::<AlgorithmIdentifierOwned>()
        .map_err(|error| format!("MGF1 parameters: {error}"))?
        .oid
        .to_string();
    match hash_by_oid(&mgf1_hash) {
        Some(_) => Ok(()),
        None => Err(format!("unknown MGF1 hash algorithm {mgf1_hash}")),
    }
}

/// A signature algorithm's OID with its name, when it is one worth naming.
fn describe_signature_oid(oid: &str) -> String {
    let name = match oid {
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.3" => "md4WithRSAEncryption",
        "2.16.840.1.101.3.4.3.9" => "ecdsa-with-SHA3-224",
        "2.16.840.1.101.3.4.3.10" => "ecdsa-with-SHA3-256",
        "2.16.840.1.101.3.4.3.11" => "ecdsa-with-SHA3-384",
        "2.16.840.1.101.3.4.3.12" => "ecdsa-with-SHA3-512",
        "2.16.840.1.101.3.4.3.13" => "RSA-with-SHA3-224",
        "2.16.840.1.101.3.4.3.14" => "RSA-with-SHA3-256",
        "2.16.840.1.101.3.4.3.15" => "RSA-with-SHA3-384",
        "2.16.840.1.101.3.4.3.16" => "RSA-with-SHA3-512",
        "1.2.156.10197.1.501" => "SM2-with-SM3",
        _ => return oid.to_owned(),
    };
    format!("{name} ({oid})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rcgen::{CertificateParams, KeyPair};
    use x509_parser::der_parser::asn1_rs::Any;
    use x509_parser::prelude::FromDer;

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

    /// A DER OBJECT IDENTIFIER.
    fn oid(arcs: &[u64]) -> Vec<u8> {
        let (first, rest) = arcs.split_at(2);
        let mut content = Vec::new();
        for arc in std::iter::once(first[0] * 40 + first[1]).chain(rest.iter().copied()) {
            let mut groups = vec![(arc & 0x7f) as u8];
            let mut remaining = arc >> 7;
            while remaining > 0 {
                groups.push((remaining & 0x7f) as u8 | 0x80);
                remaining >>= 7;
            }
            content.extend(groups.iter().rev());
        }
        der_tlv(0x06, &content)
    }

    /// A DER AlgorithmIdentifier with optional (already encoded) parameters.
    fn algorithm_identifier(arcs: &[u64], parameters: Option<&[u8]>) -> Vec<u8> {
        let mut content = oid(arcs);
        content.extend(parameters.unwrap_or_default());
        der_tlv(0x30, &content)
    }

    /// A DER NULL, the usual parameters of a hash or PKCS #1 signature algorithm.
    const NULL: &[u8] = &[0x05, 0x00];
    /// SHA-1's object identifier arcs.
    const SHA1: &[u64] = &[1, 3, 14, 3, 2, 26];
    /// SHA-256's object identifier arcs.
    const SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
    /// SHA-384's object identifier arcs.
    const SHA384: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 2];
    /// SHA-512's object identifier arcs.
    const SHA512: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 3];
    /// MD5's object identifier arcs.
    const MD5: &[u64] = &[1, 2, 840, 113549, 2, 5];
    /// MGF1's object identifier arcs.
    const MGF1_ARCS: &[u64] = &[1, 2, 840, 113549, 1, 1, 8];
    /// RSASSA-PSS's object identifier arcs.
    const PSS: &[u64] = &[1, 2, 840, 113549, 1, 1, 10];

    /// RSASSA-PSS parameters; each field is given already encoded, or left at its default.
    fn pss_parameters(
        hash: Option<&[u64]>,
        mask: Option<Vec<u8>>,
        salt: Option<u8>,
        trailer: Option<u8>,
    ) -> Vec<u8> {
        let mut content = Vec::new();
        if let Some(hash) = hash {
            content.extend(der_tlv(0xa0, &algorithm_identifier(hash, Some(NULL))));
        }
        if let Some(mask) = mask {
            content.extend(der_tlv(0xa1, &mask));
        }
        if let Some(salt) = salt {
            content.extend(der_tlv(0xa2, &der_tlv(0x02, &[salt])));
        }
        if let Some(trailer) = trailer {
            content.extend(der_tlv(0xa3, &der_tlv(0x02, &[trailer])));
        }
        der_tlv(0x30, &content)
    }

    /// MGF1 over this hash, as a maskGenAlgorithm AlgorithmIdentifier.
    fn mgf1(hash: &[u64]) -> Vec<u8> {
        algorithm_identifier(MGF1_ARCS, Some(&algorithm_identifier(hash, Some(NULL))))
    }

    /// A PSS AlgorithmIdentifier with a consistent set of parameters for this hash.
    fn pss_with(hash: &[u64], salt: u8) -> Vec<u8> {
        algorithm_identifier(
            PSS,
            Some(&pss_parameters(
                Some(hash),
                Some(mgf1(hash)),
                Some(salt),
                None,
            )),
        )
    }

    /// A self-signed certificate made by rcgen with a key for this signature algorithm.
    fn certificate_signed_with(algorithm: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = KeyPair::generate_for(algorithm).expect("key generation");
        let params = CertificateParams::new(vec!["db.example.com".to_owned()]).expect("params");
        params
            .self_signed(&key)
            .expect("certificate")
            .der()
            .to_vec()
    }

    /// One RSA (PKCS #1 v1.5, SHA-256) certificate shared by the tests that rewrite it.
    fn rsa_certificate() -> &'static [u8] {
        static RSA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        RSA.get_or_init(|| certificate_signed_with(&rcgen::PKCS_RSA_SHA256))
    }

    /// Splits the first DER TLV off `input`.
    fn split_tlv(input: &[u8]) -> (&[u8], &[u8]) {
        let (rest, _) = Any::from_der(input).expect("a DER TLV");
        input.split_at(input.len() - rest.len())
    }

    /// The certificate with its outer signatureAlgorithm replaced (the signature is then
    /// invalid, which channel binding does not look at).
    fn with_outer_signature_algorithm(der: &[u8], algorithm: &[u8]) -> Vec<u8> {
        let (_, certificate) = Any::from_der(der).expect("certificate SEQUENCE");
        let (tbs, rest) = split_tlv(certificate.data);
        let (_, signature) = split_tlv(rest);
        der_tlv(0x30, &[tbs, algorithm, signature].concat())
    }

    /// The channel-binding data of the RSA certificate signed (nominally) with this algorithm.
    fn end_point_with_algorithm(
        algorithm: &[u8],
    ) -> (Vec<u8>, Result<Vec<u8>, ChannelBindingError>) {
        let der = with_outer_signature_algorithm(rsa_certificate(), algorithm);
        let result = tls_server_end_point(&der);
        (der, result)
    }

    #[test]
    fn ecdsa_p256_sha256_uses_sha256() {
        let der = certificate_signed_with(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(
            tls_server_end_point(&der),
            Ok(Sha256::digest(&der).to_vec())
        );
    }

    #[test]
    fn ecdsa_p384_sha384_uses_sha384() {
        let der = certificate_signed_with(&rcgen::PKCS_ECDSA_P384_SHA384);
        let data = tls_server_end_point(&der).expect("channel binding");
        assert_eq!(data, Sha384::digest(&der).to_vec());
        assert_eq!(data.len(), 48);
    }

    #[test]
    fn ecdsa_p521_sha512_uses_sha512() {
        let der = certificate_signed_with(&rcgen::PKCS_ECDSA_P521_SHA512);
        assert_eq!(
            tls_server_end_point(&der),
            Ok(Sha512::digest(&der).to_vec())
        );
    }

    #[test]
    fn rsa_pkcs1_uses_the_named_hash() {
        let der = rsa_certificate();
        assert_eq!(tls_server_end_point(der), Ok(Sha256::digest(der).to_vec()));
        let der = certificate_signed_with(&rcgen::PKCS_RSA_SHA384);
        assert_eq!(
            tls_server_end_point(&der),
            Ok(Sha384::digest(&der).to_vec())
        );
        let der = certificate_signed_with(&rcgen::PKCS_RSA_SHA512);
        assert_eq!(
            tls_server_end_point(&der),
            Ok(Sha512::digest(&der).to_vec())
        );
    }

    #[test]
    fn ed25519_has_no_channel_binding() {
        let der = certificate_signed_with(&rcgen::PKCS_ED25519);
        let error = tls_server_end_point(&der).expect_err("Ed25519");
        assert_eq!(
            error,
            ChannelBindingError::UnsupportedSignatureAlgorithm {
                algorithm: "Ed25519 (1.3.101.112)".to_owned()
            }
        );
        assert_eq!(
            error.to_string(),
            "channel binding is not available for the server certificate's signature algorithm Ed25519 (1.3.101.112)"
        );
    }

    #[test]
    fn the_outer_signature_algorithm_decides() {
        // The TBS still says sha256WithRSAEncryption; the outer field says SHA-384.
        let (der, result) = end_point_with_algorithm(&algorithm_identifier(
            &[1, 2, 840, 113549, 1, 1, 12],
            Some(NULL),
        ));
        assert_eq!(result, Ok(Sha384::digest(&der).to_vec()));
    }

    #[test]
    fn md5_and_sha1_are_replaced_by_sha256() {
        let replaced: [&[u64]; 6] = [
            &[1, 2, 840, 113549, 1, 1, 4], // md5WithRSAEncryption
            &[1, 3, 14, 3, 2, 3],          // OIW md5WithRSA
            &[1, 2, 840, 113549, 1, 1, 5], // sha1WithRSAEncryption
            &[1, 3, 14, 3, 2, 29],         // OIW sha1WithRSA
            &[1, 2, 840, 10045, 4, 1],     // ecdsa-with-SHA1
            &[1, 2, 840, 10040, 4, 3],     // dsa-with-sha1
        ];
        for arcs in replaced {
            let (der, result) = end_point_with_algorithm(&algorithm_identifier(arcs, Some(NULL)));
            assert_eq!(result, Ok(Sha256::digest(&der).to_vec()), "{arcs:?}");
        }
    }

    #[test]
    fn other_sha2_signature_algorithms_use_their_hash() {
        type ExpectedDigest = fn(&[u8]) -> Vec<u8>;
        let cases: [(&[u64], ExpectedDigest); 6] = [
            (&[1, 2, 840, 113549, 1, 1, 14], |d| {
                Sha224::digest(d).to_vec()
            }),
            (&[1, 2, 840, 10045, 4, 3, 1], |d| Sha224::digest(d).to_vec()),
            (&[2, 16, 840, 1, 101, 3, 4, 3, 2], |d| {
                Sha256::digest(d).to_vec()
            }),
            (&[2, 16, 840, 1, 101, 3, 4, 3, 4], |d| {
                Sha512::digest(d).to_vec()
            }),
            (&[1, 2, 840, 113549, 1, 1, 15], |d| {
                Sha512_224::digest(d).to_vec()
            }),
            (&[1, 2, 840, 113549, 1, 1, 16], |d| {
                Sha512_256::digest(d).to_vec()
            }),
        ];
        for (arcs, expected) in cases {
            let (der, result) = end_point_with_algorithm(&algorithm_identifier(arcs, Some(NULL)));
            assert_eq!(result, Ok(expected(&der)), "{arcs:?}");
        }
    }

    #[test]
    fn algorithms_without_a_usable_hash_are_refused_by_name_and_oid() {
        let cases: [(&[u64], &str); 4] = [
            (&[1, 3, 101, 113], "Ed448 (1.3.101.113)"),
            (
                &[1, 2, 840, 113549, 1, 1, 2],
                "md2WithRSAEncryption (1.2.840.113549.1.1.2)",
            ),
            (
                &[2, 16, 840, 1, 101, 3, 4, 3, 14],
                "RSA-with-SHA3-256 (2.16.840.1.101.3.4.3.14)",
            ),
            (&[1, 2, 3, 4], "1.2.3.4"),
        ];
        for (arcs, algorithm) in cases {
            let (_, result) = end_point_with_algorithm(&algorithm_identifier(arcs, None));
            assert_eq!(
                result,
                Err(ChannelBindingError::UnsupportedSignatureAlgorithm {
                    algorithm: algorithm.to_owned()
                })
            );
        }
    }

    #[test]
    fn rsa_pss_uses_the_hash_in_its_parameters() {
        let (der, result) = end_point_with_algorithm(&pss_with(SHA256, 32));
        assert_eq!(result, Ok(Sha256::digest(&der).to_vec()));
        let (der, result) = end_point_with_algorithm(&pss_with(SHA384, 48));
        assert_eq!(result, Ok(Sha384::digest(&der).to_vec()));
        let (der, result) = end_point_with_algorithm(&pss_with(SHA512, 64));
        assert_eq!(result, Ok(Sha512::digest(&der).to_vec()));
    }

    #[test]
    fn rsa_pss_default_and_weak_hashes_become_sha256() {
        let defaults = algorithm_identifier(PSS, Some(&pss_parameters(None, None, None, None)));
        let (der, result) = end_point_with_algorithm(&defaults);
        assert_eq!(result, Ok(Sha256::digest(&der).to_vec()));
        let explicit_sha1 = algorithm_identifier(
            PSS,
            Some(&pss_parameters(
                Some(SHA1),
                Some(mgf1(SHA1)),
                Some(20),
                Some(1),
            )),
        );
        let (der, result) = end_point_with_algorithm(&explicit_sha1);
        assert_eq!(result, Ok(Sha256::digest(&der).to_vec()));
        let md5 = algorithm_identifier(PSS, Some(&pss_parameters(Some(MD5), None, None, None)));
        let (der, result) = end_point_with_algorithm(&md5);
        assert_eq!(result, Ok(Sha256::digest(&der).to_vec()));
    }

    #[test]
    fn rsa_pss_with_bad_parameters_is_refused() {
        let invalid = |reason: &str| {
            Err(ChannelBindingError::InvalidPssParameters {
                reason: reason.to_owned(),
            })
        };
        let cases = [
            (
                algorithm_identifier(PSS, None),
                invalid("parameters are missing"),
            ),
            (
                algorithm_identifier(
                    PSS,
                    Some(&pss_parameters(Some(&[1, 2, 3, 4]), None, None, None)),
                ),
                invalid("unknown hash algorithm 1.2.3.4"),
            ),
            (
                algorithm_identifier(
                    PSS,
                    Some(&pss_parameters(
                        Some(SHA256),
                        Some(algorithm_identifier(&[1, 2, 3, 5], None)),
                        None,
                        None,
                    )),
                ),
                invalid("unknown mask generation function 1.2.3.5"),
            ),
            (
                algorithm_identifier(
                    PSS,
                    Some(&pss_parameters(
                        Some(SHA256),
                        Some(mgf1(&[1, 2, 3, 6])),
                        None,
                        None,
                    )),
                ),
                invalid("unknown MGF1 hash algorithm 1.2.3.6"),
            ),
            (
                algorithm_identifier(
                    PSS,
                    Some(&pss_parameters(
                        Some(SHA256),
                        Some(mgf1(SHA256)),
                        Some(32),
                        Some(2),
                    )),
                ),
                invalid("trailer field 2 instead of 1"),
            ),
        ];
        for (algorithm, expected) in cases {
            assert_eq!(end_point_with_algorithm(&algorithm).1, expected);
        }
        let not_a_sequence = algorithm_identifier(PSS, Some(NULL));
        assert!(matches!(
            end_point_with_algorithm(&not_a_sequence).1,
            Err(ChannelBindingError::InvalidPssParameters { .. })
        ));
        let negative_salt = algorithm_identifier(
            PSS,
            Some(&pss_parameters(Some(SHA256), None, Some(0xff), None)),
        );
        assert!(matches!(
            end_point_with_algorithm(&negative_salt).1,
            Err(ChannelBindingError::InvalidPssParameters { .. })
        ));
    }

    #[test]
    fn malformed_certificates_are_errors() {
        assert!(matches!(
            tls_server_end_point(b""),
            Err(ChannelBindingError::InvalidCertificate { .. })
        ));
        assert!(matches!(
            tls_server_end_point(b"\x30\x03abc"),
            Err(ChannelBindingError::InvalidCertificate { .. })
        ));
        let mut trailing = rsa_certificate().to_vec();
        trailing.extend([0, 0]);
        assert_eq!(
            tls_server_end_point(&trailing),
            Err(ChannelBindingError::InvalidCertificate {
                reason: "2 bytes after the certificate".to_owned()
            })
        );
    }

    #[test]
    fn error_display_covers_every_variant() {
        let cases = [
            (
                ChannelBindingError::InvalidCertificate { reason: "r".into() },
                "could not parse server certificate for channel binding: r",
            ),
            (
                ChannelBindingError::UnsupportedSignatureAlgorithm { algorithm: "Ed448 (1.3.101.113)".into() },
                "channel binding is not available for the server certificate's signature algorithm Ed448 (1.3.101.113)",
            ),
            (
                ChannelBindingError::InvalidPssParameters { reason: "r".into() },
                "could not determine server certificate signature algorithm: invalid RSASSA-PSS parameters: r",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            prop_assert!(tls_server_end_point(&bytes).is_err());
        }

        #[test]
        fn mutated_certificate_never_panics(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut der = with_outer_signature_algorithm(rsa_certificate(), &pss_with(SHA384, 48));
            let position = index.index(der.len());
            if let Some(target) = der.get_mut(position) {
                *target = byte;
            }
            let _ = tls_server_end_point(&der);
        }
    }
}
