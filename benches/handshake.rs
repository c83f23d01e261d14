//! Handshake cost in instructions (callgrind): pgtls versus a bare rustls `ClientConnection`
//! driving the same TLS 1.3 handshake in memory against the same rustls server, certificate
//! and key; the SSLRequest exchange alone; and the handshake's own cryptography.
//! `pgtls-verify-full` verifies the chain in full on every handshake (verified-chain cache
//! off), `pgtls-verify-full-cached` is the default, where every measured handshake presents
//! a chain the cache already holds (PostgreSQL never resumes, so that is a reconnect).
//!
//! `cargo bench --bench handshake` runs every variant under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=*bench_client_side*`,
//! so only the client's calls are counted (server work, setup and warm-up are not), and prints
//! a markdown table. `cargo bench --bench handshake -- run VARIANT` runs one variant natively
//! (what valgrind executes).
//!
//! Certificates come from `target/bench/certs` (or `$PGTLS_BENCH_CERTS`), generated on first
//! use, so every process shares one server key.

#[path = "common/mod.rs"]
mod common;

use std::process::Command;

use common::{Buffers, Material, PgtlsClient, RustlsClient};
use pgtls::plan::Method;
use pgtls::rustls::crypto::SupportedKxGroup;
use pgtls::rustls::pki_types::SignatureVerificationAlgorithm;
use pgtls::rustls::{NamedGroup, SignatureScheme};
use pgtls::{Negotiated, Negotiation, Output};

const WARMUP: usize = 3;
const MEASURED: u64 = 20;

/// The only function callgrind collects in: every client-side call goes through it.
#[inline(never)]
fn bench_client_side(f: &mut dyn FnMut()) {
    // Distinct bodies, so that the linker cannot fold the two functions into one.
    std::hint::black_box(1u8);
    f()
}

/// The warm-up path: the same work, not collected.
#[inline(never)]
fn warm_client_side(f: &mut dyn FnMut()) {
    std::hint::black_box(2u8);
    f()
}

/// One iteration: gets the buffers and the function every client call must go through.
type Work<'a> = dyn FnMut(&mut Buffers, &mut dyn FnMut(&mut dyn FnMut())) + 'a;

const VARIANTS: &[(&str, &str)] = &[
    (
        "pgtls-none",
        "pgtls, sslmode=require, no roots (SSLRequest + TLS 1.3)",
    ),
    (
        "rustls-none",
        "bare rustls, any-cert verifier that checks the signature",
    ),
    (
        "pgtls-verify-full",
        "pgtls, sslmode=verify-full (SSLRequest + TLS 1.3)",
    ),
    (
        "pgtls-verify-full-cached",
        "pgtls, sslmode=verify-full, chain from the verified-chain cache (the default)",
    ),
    (
        "rustls-webpki",
        "bare rustls, WebPkiServerVerifier, same root",
    ),
    ("sslrequest", "pgtls SSLRequest exchange alone (answer N)"),
    (
        "crypto-none",
        "crypto floor: X25519 keygen + agree, 1 ECDSA P-256 verify",
    ),
    (
        "crypto-full",
        "crypto floor: X25519 keygen + agree, 2 ECDSA P-256 verifies",
    ),
    (
        "crypto-pg",
        "crypto floor with PostgreSQL ≤ 17's only group: P-256 keygen + ECDH, 2 ECDSA P-256 verifies",
    ),
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("run") => run(args.get(1).map(String::as_str).unwrap_or("")),
        _ => orchestrate(),
    }
}

fn run(variant: &str) {
    let material = Material::load_or_generate(&Material::default_dir());
    let server = material.server_config();
    let mut bufs = Buffers::default();
    let iterations = |bufs: &mut Buffers, work: &mut Work| {
        for _ in 0..WARMUP {
            work(bufs, &mut warm_client_side);
        }
        for _ in 0..MEASURED {
            work(bufs, &mut bench_client_side);
        }
    };
    match variant {
        "pgtls-none" | "pgtls-verify-full" | "pgtls-verify-full-cached" => {
            let config = match variant {
                "pgtls-none" => material.pgtls_no_roots(),
                "pgtls-verify-full" => verify_full_without_cache(&material),
                _ => material.pgtls_verify_full(),
            };
            iterations(&mut bufs, &mut |bufs, on_client| {
                let mut client = None;
                on_client(&mut || client = Some(PgtlsClient::new(&config)));
                let mut client = client.expect("client");
                drop(common::handshake(
                    &mut client,
                    &server,
                    bufs,
                    true,
                    on_client,
                ));
                let mut client = Some(client);
                on_client(&mut || drop(client.take().expect("client").into_session()));
            });
        }
        "rustls-none" | "rustls-webpki" => {
            let config = if variant == "rustls-none" {
                material.rustls_no_roots()
            } else {
                material.rustls_webpki()
            };
            iterations(&mut bufs, &mut |bufs, on_client| {
                let mut client = None;
                on_client(&mut || client = Some(RustlsClient::new(&config)));
                let mut client = client.expect("client");
                drop(common::handshake(
                    &mut client,
                    &server,
                    bufs,
                    false,
                    on_client,
                ));
                let mut client = Some(client);
                on_client(&mut || drop(client.take()));
            });
        }
        "sslrequest" => {
            let config = material.pgtls_no_roots();
            iterations(&mut bufs, &mut |bufs, on_client| {
                on_client(&mut || ssl_request_refused(&config, &mut bufs.client_out));
            });
        }
        "crypto-none" | "crypto-full" | "crypto-pg" => {
            let verifies = if variant == "crypto-none" { 1 } else { 2 };
            let group = if variant == "crypto-pg" {
                NamedGroup::secp256r1
            } else {
                NamedGroup::X25519
            };
            let floor = CryptoFloor::new(&material, group);
            iterations(&mut bufs, &mut |_, on_client| {
                let peer = floor.group.start().expect("server share");
                let peer_public = peer.pub_key().to_vec();
                on_client(&mut || floor.client_side(&peer_public, verifies));
            });
        }
        other => {
            eprintln!("unknown variant {other:?}; one of:");
            for (name, _) in VARIANTS {
                eprintln!("  {name}");
            }
            std::process::exit(2);
        }
    }
}

/// `Material::pgtls_verify_full` with the verified-chain cache off: every handshake verifies
/// the chain in full.
fn verify_full_without_cache(material: &Material) -> pgtls::Config {
    pgtls::Config::builder()
        .sslmode(pgtls::SslMode::VerifyFull)
        .host(common::HOST)
        .root_certificates(pgtls::RootCertificates::from_pem(&material.ca_pem).expect("roots"))
        .crypto_provider(common::provider())
        .key_exchange_groups(&common::rustls_group_order())
        .verified_chain_cache(0)
        .build()
        .expect("pgtls config")
}

/// SSLRequest out, `N` in, the outcome taken: the whole pre-TLS exchange.
fn ssl_request_refused(config: &pgtls::Config, buf: &mut [u8]) {
    let mut negotiation = Negotiation::new(config, Method::SslRequest).expect("negotiation");
    loop {
        match negotiation.poll_output_slice(buf).expect("poll") {
            Output::Transmit(_) => continue,
            Output::Receive => {
                negotiation.handle_input(b"N").expect("N");
            }
            Output::Done => break,
        }
    }
    assert!(matches!(
        negotiation.into_negotiated(),
        Ok(Negotiated::SslRefused)
    ));
}

/// The handshake's unavoidable public-key work on the client, through the same provider.
struct CryptoFloor {
    group: &'static dyn SupportedKxGroup,
    algorithm: &'static dyn SignatureVerificationAlgorithm,
    message: Vec<u8>,
    signature: Vec<u8>,
    public_key: Vec<u8>,
}

impl CryptoFloor {
    fn new(material: &Material, group: NamedGroup) -> CryptoFloor {
        let provider = common::provider();
        let group = *provider
            .kx_groups
            .iter()
            .find(|g| g.name() == group)
            .expect("key exchange group");
        let key = provider
            .key_provider
            .load_private_key(material.key.clone_key())
            .expect("key");
        let signer = key
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .expect("P-256 key");
        // TLS 1.3 CertificateVerify input: 64 spaces, context string, 0, transcript hash.
        let mut message = vec![0x20u8; 64];
        message.extend_from_slice(b"TLS 1.3, server CertificateVerify\0");
        message.extend_from_slice(&[0x5a; 48]);
        let signature = signer.sign(&message).expect("sign");
        let spki = key.public_key().expect("public key");
        // A P-256 SubjectPublicKeyInfo ends with the 65-byte uncompressed point.
        let public_key = spki.as_ref()[spki.as_ref().len() - 65..].to_vec();
        let algorithm = provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == SignatureScheme::ECDSA_NISTP256_SHA256)
            .map(|(_, algs)| algs[0])
            .expect("ECDSA P-256");
        CryptoFloor {
            group,
            algorithm,
            message,
            signature,
            public_key,
        }
    }

    fn client_side(&self, peer_public: &[u8], verifies: usize) {
        let share = self.group.start().expect("client share");
        std::hint::black_box(share.pub_key());
        let secret = share.complete(peer_public).expect("agree");
        std::hint::black_box(secret.secret_bytes());
        for _ in 0..verifies {
            self.algorithm
                .verify_signature(&self.public_key, &self.message, &self.signature)
                .expect("signature");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Orchestration: one callgrind run per variant
// ---------------------------------------------------------------------------------------------

fn orchestrate() {
    let exe = std::env::current_exe().expect("current exe");
    let out_dir = common::target_dir().join("bench").join("callgrind");
    std::fs::create_dir_all(&out_dir).expect("callgrind dir");
    // Generate the certificates once, before any measured process.
    let _ = Material::load_or_generate(&Material::default_dir());
    let mut results = Vec::new();
    for (name, what) in VARIANTS {
        let out = out_dir.join(format!("handshake-{name}.out"));
        let status = Command::new("valgrind")
            .args([
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=*bench_client_side*",
            ])
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(&exe)
            .args(["run", name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("valgrind (install valgrind)");
        assert!(status.success(), "callgrind run of {name} failed");
        let total = callgrind_total(&out);
        results.push((*name, *what, total / MEASURED));
    }
    let get = |n: &str| {
        results
            .iter()
            .find(|(name, _, _)| *name == n)
            .map(|r| r.2)
            .expect("variant")
    };
    println!("### Handshake, client instructions (callgrind, per handshake, mean of {MEASURED} after {WARMUP} warm-up)\n");
    println!("| variant | instructions | ratio |");
    println!("|---|---:|---|");
    let ratio = |a: &str, b: &str| format!("{:.3} × {b}", get(a) as f64 / get(b) as f64);
    for (name, what, ir) in &results {
        let r = match *name {
            "pgtls-none" => format!(
                "{} (target ≤ 1.05); {:.2} × crypto-none",
                ratio("pgtls-none", "rustls-none"),
                get("pgtls-none") as f64 / get("crypto-none") as f64
            ),
            "pgtls-verify-full" => format!(
                "{} (target ≤ 1.05); {:.2} × crypto-full",
                ratio("pgtls-verify-full", "rustls-webpki"),
                get("pgtls-verify-full") as f64 / get("crypto-full") as f64
            ),
            "pgtls-verify-full-cached" => format!(
                "{}; {:.2} × crypto-none; saves {} per handshake",
                ratio("pgtls-verify-full-cached", "pgtls-verify-full"),
                get("pgtls-verify-full-cached") as f64 / get("crypto-none") as f64,
                common::thousands(
                    get("pgtls-verify-full").saturating_sub(get("pgtls-verify-full-cached"))
                )
            ),
            "rustls-none" => format!(
                "{:.2} × crypto-none",
                get("rustls-none") as f64 / get("crypto-none") as f64
            ),
            "rustls-webpki" => format!(
                "{:.2} × crypto-full",
                get("rustls-webpki") as f64 / get("crypto-full") as f64
            ),
            "sslrequest" => format!(
                "{:.4} × pgtls-none",
                get("sslrequest") as f64 / get("pgtls-none") as f64
            ),
            _ => String::new(),
        };
        println!("| `{name}`: {what} | {} | {r} |", common::thousands(*ir));
    }
    println!();
    println!(
        "Profiles: `callgrind_annotate {}/handshake-<variant>.out`.",
        out_dir.display()
    );
}

/// The collected instruction count of a callgrind output file.
fn callgrind_total(path: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("callgrind output");
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("callgrind summary line")
}
