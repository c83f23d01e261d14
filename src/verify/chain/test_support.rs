//! Certificate factories shared by the verification tests.

use super::super::signature::{read_tlv, split_signed, TAG_BIT_STRING, TAG_SEQUENCE};
use rcgen::{KeyPair, SigningKey};
use rustls::SignatureScheme;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// DER-encodes `contents` under `tag`.
pub(crate) fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
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

/// Re-encodes `v3` as an X.509 v1 certificate (no version, no extensions) and signs it with
/// `signer`, which must be the key of `v3`'s issuer (its TBS signature algorithm is kept).
pub(crate) fn make_v1(v3: &[u8], signer: &KeyPair) -> CertificateDer<'static> {
    let parts = split_signed(v3).expect("signed structure");
    let (tbs, _) = read_tlv(parts.tbs).expect("tbs");
    let mut fields = Vec::new();
    let mut rest = tbs.value;
    while let Some((field, next)) = read_tlv(rest) {
        // Drop [0] version and [3] extensions.
        if field.tag != 0xa0 && field.tag != 0xa3 {
            fields.extend_from_slice(field.raw);
        }
        rest = next;
    }
    let new_tbs = der(TAG_SEQUENCE, &fields);
    resign(&new_tbs, parts.signature_alg, signer)
}

/// Assembles a certificate from a TBS, signing it with `signer` under `signature_alg`.
pub(crate) fn resign(
    tbs: &[u8],
    signature_alg: &[u8],
    signer: &KeyPair,
) -> CertificateDer<'static> {
    let signature = signer.sign(tbs).expect("sign");
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut body = tbs.to_vec();
    body.extend(der(TAG_SEQUENCE, signature_alg));
    body.extend(der(TAG_BIT_STRING, &bits));
    CertificateDer::from(der(TAG_SEQUENCE, &body))
}

/// Signs a TLS handshake message with `key` under `scheme`, through the rustls provider.
pub(crate) fn sign_with(key: &KeyPair, scheme: SignatureScheme, message: &[u8]) -> Vec<u8> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key =
        rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).expect("supported key");
    let signer = signing_key
        .choose_scheme(&[scheme])
        .expect("scheme offered");
    signer.sign(message).expect("signature")
}
