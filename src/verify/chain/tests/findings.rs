//! Regression tests for the differential fuzz findings against OpenSSL
//! (`fuzz/findings/0[1-4]-*.md`): each chain is built here and judged by pgtls and, when the
//! tool is installed, by `openssl verify` with libpq's settings.

use super::*;

/// `ecdsa-with-SHA256` AlgorithmIdentifier contents (what rcgen's P-256 keys sign with).
const ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// `ecdsa-with-SHA384` AlgorithmIdentifier contents.
const ECDSA_SHA384: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
/// `sha256WithRSAEncryption` with NULL parameters.
const RSA_SHA256: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];

/// `alg` followed by explicit NULL parameters.
fn with_null(alg: &[u8]) -> Vec<u8> {
    [alg, &[0x05, 0x00]].concat()
}

/// Re-signs a certificate or CRL with `signer` after setting its TBS `signature` field to
/// `inner` and its outer signatureAlgorithm to `outer` (the signature over the new TBS is
/// valid: only the labels disagree).
fn relabel(signed: &[u8], inner: &[u8], outer: &[u8], signer: &KeyPair) -> Vec<u8> {
    let parts = split_signed(signed).expect("signed structure");
    let (tbs, _) = read_tlv(parts.tbs).expect("tbs");
    let mut fields = Vec::new();
    let mut rest = tbs.value;
    let mut replaced = false;
    while let Some((field, next)) = read_tlv(rest) {
        if field.tag == 0x30 && !replaced {
            fields.extend(der(0x30, inner));
            replaced = true;
        } else {
            fields.extend_from_slice(field.raw);
        }
        rest = next;
    }
    resign(&der(0x30, &fields), outer, signer).as_ref().to_vec()
}

// --- finding 2: inner and outer signature algorithms ------------------------------------

#[test]
fn leaf_with_differing_signature_algorithm_fields_fails_its_signature() {
    let root = self_signed(ca("Test Root"));
    let l = issue(leaf("db.example.com"), &root);
    for (inner, outer) in [
        (ECDSA_SHA384.to_vec(), ECDSA_SHA256.to_vec()),
        (with_null(ECDSA_SHA256), ECDSA_SHA256.to_vec()),
        (ECDSA_SHA256.to_vec(), with_null(ECDSA_SHA256)),
    ] {
        let mut case = Case::new(&[&root], &[], &l);
        case.leaf = Some(CertificateDer::from(relabel(
            &l.der, &inner, &outer, &root.key,
        )));
        case.expect(Err((ChainError::CertSignatureFailure, 0)));
    }
    // The same labels on both sides still verify.
    let mut same = Case::new(&[&root], &[], &l);
    same.leaf = Some(CertificateDer::from(relabel(
        &l.der,
        ECDSA_SHA256,
        ECDSA_SHA256,
        &root.key,
    )));
    same.expect(Ok(()));
}

#[test]
fn intermediate_with_differing_signature_algorithm_fields_fails_at_its_depth() {
    let (root, inter, l) = three();
    let mut case = Case::new(&[&root], &[&inter], &l);
    case.presented = vec![CertificateDer::from(relabel(
        &inter.der,
        ECDSA_SHA384,
        ECDSA_SHA256,
        &root.key,
    ))];
    case.expect(Err((ChainError::CertSignatureFailure, 1)));
}

#[test]
fn crl_with_differing_signature_algorithm_fields_is_still_usable() {
    // OpenSSL 3.0's X509_CRL_verify does not compare the two fields (checked with
    // `openssl verify -crl_check_all`): only the signature, made with the outer algorithm,
    // counts.
    let root = self_signed(ca("Test Root"));
    let l = issue(leaf("db.example.com"), &root);
    let good = crl(&root, &[]);
    let relabelled = relabel(good.as_ref(), ECDSA_SHA384, ECDSA_SHA256, &root.key);
    let case =
        Case::new(&[&root], &[], &l).crls(vec![CertificateRevocationListDer::from(relabelled)]);
    case.expect(Ok(()));
}

// --- finding 1: two trusted certificates with the same name and key ---------------------

#[test]
fn the_store_issuer_openssl_picks_is_not_backtracked_from() {
    // R and I share subject and key; R labels its TBS signature as RSA, so OpenSSL does not
    // take it as self-signed, yet it "likely issued" the leaf. Root file order decides.
    let key_k = key();
    let params = ca("Shared CA");
    let good = params
        .self_signed(&key_k)
        .expect("self-signed")
        .der()
        .clone();
    let mislabelled = CertificateDer::from(relabel(&good, RSA_SHA256, ECDSA_SHA256, &key_k));
    let issuer = Issuer::from_params(&params, &key_k);
    let l = leaf("db.example.com")
        .signed_by(&key(), &issuer)
        .expect("signed")
        .der()
        .clone();
    let case = |roots: Vec<CertificateDer<'static>>| Case {
        roots,
        leaf: Some(l.clone()),
        ..Case::default()
    };
    case(vec![mislabelled.clone(), good.clone()])
        .expect(Err((ChainError::UnableToGetIssuerCert, 1)));
    case(vec![good, mislabelled]).expect(Ok(()));
}

// --- finding 3: an intermediate in the root file ------------------------------------------

#[test]
fn presented_intermediates_are_not_used_above_a_root_file_certificate() {
    let root = self_signed(ca("Test Root"));
    let i1 = issue(ca("Upper Intermediate"), &root);
    let i2 = issue(ca("Lower Intermediate"), &i1);
    let l = issue(leaf("db.example.com"), &i2);
    // The leaf's issuer is in the root file: OpenSSL searches only the store above it.
    Case::new(&[&root, &i2], &[&i2, &i1], &l).expect(Err((ChainError::UnableToGetIssuerCert, 1)));
    // The top intermediate in the root file: the presented I2 leads to it.
    Case::new(&[&root, &i1], &[&i2, &i1], &l).expect(Ok(()));
}

// --- finding 4: a self-issued leaf in the root file ----------------------------------------

/// `root → I → leaf` where the leaf's subject is `leaf_cn` and I's is `issuer_cn` (the leaf
/// has no SKID, so OpenSSL flags it self-signed when the names compare equal).
fn self_issued_leaf(issuer_cn: &str, leaf_cn: &str) -> (Pki, Pki, Pki) {
    let root = self_signed(ca("Test Root"));
    let inter = issue(ca(issuer_cn), &root);
    let l = issue(leaf(leaf_cn), &inter);
    (root, inter, l)
}

#[test]
fn self_issued_leaf_in_the_root_file_with_its_issuer_is_self_signed() {
    let (root, inter, l) = self_issued_leaf("db.example.com", "db.example.com");
    Case::new(&[&root, &inter, &l], &[&inter], &l)
        .expect(Err((ChainError::DepthZeroSelfSignedCert, 0)));
    // Only the leaf itself in the root file: its exact copy is the trust anchor.
    Case::new(&[&root, &l], &[&inter], &l).expect(Ok(()));
    // Not in the root file: a self-signed leaf is not chained further.
    Case::new(&[&root], &[&inter], &l).expect(Err((ChainError::DepthZeroSelfSignedCert, 0)));
}

#[test]
fn self_issued_leaf_names_compare_canonically() {
    // Case differences do not count (X509_NAME_cmp on the canonical encoding).
    let (root, inter, l) = self_issued_leaf("DB.EXAMPLE.COM", "db.example.com");
    Case::new(&[&root, &inter, &l], &[&inter], &l)
        .expect(Err((ChainError::DepthZeroSelfSignedCert, 0)));
    // Nor does the string type: PrintableString against UTF8String.
    let root = self_signed(ca("Test Root"));
    let mut ip = ca("x");
    ip.distinguished_name = rcgen::DistinguishedName::new();
    ip.distinguished_name.push(
        DnType::CommonName,
        DnValue::PrintableString("db.example.com".try_into().expect("printable")),
    );
    let inter = issue(ip, &root);
    let l = issue(leaf("db.example.com"), &inter);
    Case::new(&[&root, &inter, &l], &[&inter], &l)
        .expect(Err((ChainError::DepthZeroSelfSignedCert, 0)));
}
