//! Differential: the generated chains of `verifier` judged by pgtls (verify-ca) and by
//! the system OpenSSL's `X509_verify_cert` set up as libpq sets it up.
//!
//! - pgtls accepts, OpenSSL rejects: a finding; the target panics with both verdicts
//!   (libFuzzer saves the input). Known deliberate differences are filtered first
//!   (see [`deliberate_difference`]).
//! - pgtls rejects, OpenSSL accepts, or both reject for different reasons: collected,
//!   not a crash. The first input of each reason pair is written to
//!   `fuzz/differential/<pgtls reason>__<openssl reason>.txt` and every pair is counted
//!   on stderr, so each can be fixed or listed as a documented difference.
#![no_main]

#[path = "../common/generated_chain.rs"]
mod generated_chain;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use generated_chain::GeneratedChain;
use openssl::ssl::{SslContext, SslFiletype, SslMethod};
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509PurposeId, X509StoreContext, X509};

/// OpenSSL's verdict: `Err(reason)` in `X509_verify_cert_error_string`'s words.
type Verdict = Result<(), String>;

/// The security level an `SSL_CTX` gets on this machine (openssl.cnf and the build's
/// default), which libpq leaves alone: `X509_verify_cert` then checks key sizes and
/// signature digests against it (the `auth_level` OpenSSL copies from the SSL).
fn machine_security_level() -> i32 {
    static LEVEL: OnceLock<i32> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let ctx = SslContext::builder(SslMethod::tls_client())
            .expect("an SSL_CTX")
            .build();
        let level = i32::try_from(ctx.security_level()).expect("a small level");
        eprintln!("verifier_openssl: the machine's OpenSSL security level is {level}");
        level
    })
}

/// A per-process file for the CRLs (libpq loads `sslcrl` through a file lookup).
fn crl_file() -> PathBuf {
    std::env::temp_dir().join(format!("pgtls-fuzz-crls-{}.pem", std::process::id()))
}

fn pem(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut body = String::new();
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                body.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                body.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// `X509_verify_cert` as libpq's client runs it: an X509_STORE with the root file's
/// certificates, the CRLs through a file lookup plus `CRL_CHECK | CRL_CHECK_ALL` when
/// any loaded, purpose `ssl_server` (trust follows the purpose), default depth, no
/// X509_STRICT, no partial chains, the machine's security level; the untrusted stack is
/// the whole peer chain, leaf first, as OpenSSL's TLS client passes it. The time is the
/// generator's fixed "now". `Err` from the outer result: the setup failed (libpq would
/// fail before the handshake).
fn openssl_verdict(chain: &GeneratedChain) -> Result<Verdict, String> {
    let setup = |e: openssl::error::ErrorStack| format!("setup: {e}");
    let mut store = X509StoreBuilder::new().map_err(setup)?;
    let mut param = X509VerifyParam::new().map_err(setup)?;
    param.set_time(chain.now_unix as libc_time_t);
    param.set_auth_level(machine_security_level());
    store.set_param(&param).map_err(setup)?;
    store
        .set_purpose(X509PurposeId::SSL_SERVER)
        .map_err(setup)?;
    for der in &chain.root_file {
        let cert = X509::from_der(der).map_err(setup)?;
        store.add_cert(cert).map_err(setup)?;
    }
    if !chain.crls.is_empty() {
        let path = crl_file();
        let text: String = chain.crls.iter().map(|c| pem("X509 CRL", c)).collect();
        std::fs::write(&path, text).map_err(|e| format!("setup: {e}"))?;
        let lookup = store.add_lookup(X509Lookup::file()).map_err(setup)?;
        lookup
            .load_crl_file(&path, SslFiletype::PEM)
            .map_err(setup)?;
        store
            .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
            .map_err(setup)?;
    }
    let store = store.build();
    let leaf = X509::from_der(&chain.end_entity).map_err(|e| format!("leaf: {e}"))?;
    let mut untrusted = Stack::new().map_err(setup)?;
    untrusted.push(leaf.clone()).map_err(setup)?;
    for der in &chain.intermediates {
        // A certificate OpenSSL cannot parse ends the TLS handshake before verification.
        let cert = X509::from_der(der).map_err(|e| format!("intermediate: {e}"))?;
        untrusted.push(cert).map_err(setup)?;
    }
    let mut ctx = X509StoreContext::new().map_err(setup)?;
    ctx.init(&store, &leaf, &untrusted, |c| {
        let ok = c.verify_cert()?;
        Ok(if ok {
            Ok(())
        } else {
            Err(c.error().error_string().to_owned())
        })
    })
    .map_err(setup)
}

/// `time_t` as the openssl crate takes it.
#[allow(non_camel_case_types)]
type libc_time_t = i64;

/// Known, deliberate differences where pgtls accepts what OpenSSL rejects: `Some(why)`
/// filters the case out (it is neither a crash nor collected). Each one is listed in the
/// crate docs and BEHAVIOUR.md (#deliberate-differences) with a test that pins it.
fn deliberate_difference(chain: &GeneratedChain, _openssl_reason: &str) -> Option<&'static str> {
    // The alternative-path search: among several certificates *the server sent* that
    // could have issued a certificate, pgtls tries each one where OpenSSL takes the first
    // and does not backtrack (`alternative_path_when_first_candidate_fails`). Root-file
    // lookups follow OpenSSL exactly, so only presented certificates sharing a subject
    // qualify.
    let mut subjects: Vec<Vec<u8>> = chain
        .intermediates
        .iter()
        .filter(|c| !chain.root_file.contains(c))
        .filter_map(|c| generated_chain::subject_of(c))
        .collect();
    let all = subjects.len();
    subjects.sort();
    subjects.dedup();
    (subjects.len() < all)
        .then_some("pgtls tries every presented issuer candidate (OpenSSL takes the first)")
}

/// Counts of reason pairs seen, printed now and then.
fn tally() -> &'static Mutex<HashMap<String, u64>> {
    static TALLY: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    TALLY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn file_name_part(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(80)
        .collect()
}

/// Records a pgtls-rejects case: counted, and the first input per pair written out.
fn collect(kind: &str, pgtls: &str, openssl: &str, chain: &GeneratedChain, data: &[u8]) {
    let key = format!(
        "{kind}__{}__{}",
        file_name_part(pgtls::fuzz::chain_error_reason(pgtls)),
        file_name_part(openssl)
    );
    let mut tally = tally().lock().unwrap_or_else(|e| e.into_inner());
    let count = tally.entry(key.clone()).or_insert(0);
    *count += 1;
    if *count > 1 {
        return;
    }
    eprintln!("verifier_openssl: new difference {key}");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("differential");
    let path = dir.join(format!("{key}.txt"));
    if path.exists() {
        return;
    }
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::File::create(&path) {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(
            f,
            "kind: {kind}\npgtls: {pgtls}\nopenssl: {openssl}\ninput (hex): {hex}\nchain: {}",
            chain.description
        );
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(chain) = generated_chain::generate(data) else {
        return;
    };
    let pgtls_verdict = pgtls::fuzz::verify_chain(&chain.input()).map(|v| v.verify_ca);
    let openssl = openssl_verdict(&chain);
    match (&pgtls_verdict, &openssl) {
        (Ok(Ok(())), Ok(Ok(()))) => {}
        (Ok(Ok(())), Ok(Err(reason))) | (Ok(Ok(())), Err(reason)) => {
            if deliberate_difference(&chain, reason).is_none() {
                panic!(
                    "pgtls accepts what OpenSSL rejects\n  pgtls verify-ca: accepted\n  \
                     OpenSSL X509_verify_cert: {reason}\n  chain: {}",
                    chain.description
                );
            }
        }
        (Ok(Err(ours)), Ok(Ok(()))) => collect("pgtls_rejects", ours, "accepted", &chain, data),
        (Err(ours), Ok(Ok(()))) => collect("pgtls_setup_fails", ours, "accepted", &chain, data),
        (Ok(Err(ours)), Ok(Err(theirs))) => {
            if pgtls::fuzz::chain_error_reason(ours) != theirs {
                collect("reason_differs", ours, theirs, &chain, data);
            }
        }
        (Ok(Err(_)) | Err(_), Err(_)) | (Err(_), Ok(Err(_))) => {}
    }
});
