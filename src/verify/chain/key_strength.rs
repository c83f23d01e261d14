//! OpenSSL's key-strength rule for verified chains: security level 2.
//!
//! libpq passes the `SSL`'s security level to `X509_verify_cert` as the verification
//! *authentication level*; Debian's and most distributions' OpenSSL 3 build with level 2, which
//! asks every key of the verified chain for at least 112 bits of security
//! (`check_key_level` in `x509_vfy.c`, `minbits_table[1]`):
//!
//! - the leaf's key is checked first, before the chain is even built, and fails as
//!   "EE certificate key too weak" at depth 0 (whatever else is wrong with the chain);
//! - every certificate above it, **the trust anchor included**, is checked after the extension
//!   checks and fails as "CA certificate key too weak" at its depth.
//!
//! How many bits a key is worth is OpenSSL 3.0's `EVP_PKEY_get_security_bits`:
//!
//! | key | secure at level 2 when |
//! |---|---|
//! | RSA, RSA-PSS | modulus of at least 1963 bits (SP 800-56B's estimate rounded to a multiple of 8 reaches 112 there; measured with `openssl verify -auth_level 2`) |
//! | DSA | p of at least 2048 bits and q of at least 224 (`BN_security_bits`) |
//! | EC | a curve of at least 224 bits (`ec_security_bits`: half the order's bits) |
//! | Ed25519, Ed448, X25519, X448 | always (128 and 224 bits) |
//! | anything else | never (OpenSSL cannot load the key, and an unloadable key is not secure) |
//!
//! The EC curve size is read from the public point's length (the field size, which equals the
//! order's size for every standard curve), so named and explicit curves are judged alike.
//!
//! The rule only applies when a chain is verified: without a root source libpq uses
//! `SSL_VERIFY_NONE`, and OpenSSL 3.0 then completes the handshake with a weak server key
//! (checked with `openssl s_client` against an RSA-1024 server at level 2), so pgtls does not
//! check there either.

use super::errors::{ChainError, ChainFailure};
use super::oid;
use super::path::Link;
use crate::verify::signature::{expect_tlv, split_spki, TAG_SEQUENCE};

/// DER tag of an INTEGER.
const TAG_INTEGER: u8 = 0x02;
/// DER tag of an OBJECT IDENTIFIER.
const TAG_OID: u8 = 0x06;

/// Smallest RSA modulus OpenSSL 3.0 rates at 112 bits of security.
const MIN_RSA_MODULUS_BITS: usize = 1963;
/// Smallest DSA prime p for 112 bits (`BN_security_bits`).
const MIN_DSA_P_BITS: usize = 2048;
/// Smallest DSA subgroup order q for 112 bits (half of it is the security).
const MIN_DSA_Q_BITS: usize = 224;
/// Smallest EC curve for 112 bits.
const MIN_EC_BITS: usize = 224;

/// id-X25519 (1.3.101.110) and id-X448 (1.3.101.111) contents.
const X25519: &[u8] = &[0x2b, 0x65, 0x6e];
/// id-X448 contents.
const X448: &[u8] = &[0x2b, 0x65, 0x6f];

/// Whether a DER SubjectPublicKeyInfo has at least 112 bits of security (OpenSSL's level 2).
///
/// A malformed or unknown key is not secure, as in OpenSSL.
pub(crate) fn meets_security_level_2(spki_der: &[u8]) -> bool {
    let Some(spki) = split_spki(spki_der) else {
        return false;
    };
    let Some((alg_oid, params)) = expect_tlv(spki.alg_id, TAG_OID) else {
        return false;
    };
    let alg = alg_oid.value;
    if alg == [oid::PKCS1_ARC, &[0x01]].concat() || alg == [oid::PKCS1_ARC, &[0x0a]].concat() {
        rsa_modulus_bits(spki.key).is_some_and(|bits| bits >= MIN_RSA_MODULUS_BITS)
    } else if alg == [oid::DSA_ARC, &[0x01]].concat() {
        dsa_group_bits(params).is_some_and(|(p, q)| p >= MIN_DSA_P_BITS && q >= MIN_DSA_Q_BITS)
    } else if alg == [oid::X962_ARC, &[0x02, 0x01]].concat() {
        ec_field_bits(spki.key).is_some_and(|bits| bits >= MIN_EC_BITS)
    } else {
        [oid::ED25519, oid::ED448, X25519, X448].contains(&alg)
    }
}

/// Bits of a DER INTEGER's contents read as an unsigned number (leading zeros ignored).
fn unsigned_bits(contents: &[u8]) -> usize {
    let significant = contents.iter().skip_while(|b| **b == 0);
    let rest = significant.clone().count();
    match significant.copied().next() {
        None => 0,
        Some(first) => (rest - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

/// The modulus size of an `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_modulus_bits(key: &[u8]) -> Option<usize> {
    let (seq, _) = expect_tlv(key, TAG_SEQUENCE)?;
    let (modulus, _) = expect_tlv(seq.value, TAG_INTEGER)?;
    Some(unsigned_bits(modulus.value))
}

/// The sizes of p and q from `Dss-Parms ::= SEQUENCE { p INTEGER, q INTEGER, g INTEGER }`
/// (absent parameters: `None`, which OpenSSL rates as insecure too).
fn dsa_group_bits(params: &[u8]) -> Option<(usize, usize)> {
    let (seq, _) = expect_tlv(params, TAG_SEQUENCE)?;
    let (p, rest) = expect_tlv(seq.value, TAG_INTEGER)?;
    let (q, _) = expect_tlv(rest, TAG_INTEGER)?;
    Some((unsigned_bits(p.value), unsigned_bits(q.value)))
}

/// The field size of an EC public point (`04 X Y` uncompressed, `02/03 X` compressed).
fn ec_field_bits(point: &[u8]) -> Option<usize> {
    match point.split_first()? {
        (4, coordinates) if coordinates.len() % 2 == 0 => Some(coordinates.len() / 2 * 8),
        (2 | 3, x) => Some(x.len() * 8),
        _ => None,
    }
}

/// `check_auth_level` at security level 2: every key above the leaf, the trust anchor's (or bare
/// anchor's) included (the leaf's was checked before the chain was built).
pub(super) fn check_ca_key_strength(path: &[Link<'_>]) -> Result<(), ChainFailure> {
    match path
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, link)| !meets_security_level_2(link.spki()))
    {
        Some((depth, _)) => Err(ChainFailure::at(ChainError::CaKeyTooSmall, depth)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    /// The SPKI of a committed fixture certificate (`tests/fixtures/weak_keys`).
    fn fixture_spki(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/weak_keys/{name}.pem",
            env!("CARGO_MANIFEST_DIR")
        );
        let cert = CertificateDer::from_pem_file(&path).expect("fixture");
        crate::verify::subject_public_key_info(&cert).expect("spki")
    }

    #[test]
    fn fixture_keys_are_judged_like_openssl_3_0_at_level_2() {
        for (name, secure) in [
            ("leaf-rsa1024", false),
            ("leaf-rsa1962", false),
            ("leaf-rsa1963", true),
            ("leaf-rsa2048", true),
            ("leaf-p192", false),
            ("leaf-p224", true),
            ("leaf-p256", true),
            ("weak-root", false),
            ("root", true),
        ] {
            assert_eq!(
                meets_security_level_2(&fixture_spki(name)),
                secure,
                "{name}"
            );
        }
    }

    #[test]
    fn ed25519_keys_are_secure() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        assert!(meets_security_level_2(&spki));
    }

    #[test]
    fn malformed_and_unknown_keys_are_not_secure() {
        assert!(!meets_security_level_2(&[]));
        assert!(!meets_security_level_2(&[0x30, 0x03, 0x02, 0x01, 0x00]));
        // SEQUENCE { SEQUENCE { OID 1.2.3 }, BIT STRING { 0 } }
        let unknown = [
            0x30, 0x09, 0x30, 0x04, 0x06, 0x02, 0x2a, 0x03, 0x03, 0x01, 0x00,
        ];
        assert!(!meets_security_level_2(&unknown));
    }

    #[test]
    fn integer_sizes_ignore_leading_zeros() {
        assert_eq!(unsigned_bits(&[]), 0);
        assert_eq!(unsigned_bits(&[0, 0]), 0);
        assert_eq!(unsigned_bits(&[0, 0x80, 0]), 16);
        assert_eq!(unsigned_bits(&[0x01, 0xff]), 9);
    }
}
