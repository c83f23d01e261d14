//! TLS 1.3's key schedule with each HKDF-Extract computed once.
//!
//! rustls asks a suite's [`Hkdf`] to extract a pseudorandom key (PRK) and then expands
//! several secrets from it. aws-lc-rs's `hkdf::Salt::extract` is lazy: it keeps the salt and
//! the input keying material and runs the whole HKDF (extract *and* expand) again for every
//! expansion, so each handshake computes the same HMAC extract once per derived secret.
//! Profiles of resumed connections (BENCHMARKS.md, "Resumption and the chain cache") put that
//! repeated work at about half of the key schedule's hashing.
//!
//! [`ExtractOnce`] wraps a suite's `Hkdf` and computes the extract itself, once, as RFC 5869
//! defines it — `PRK = HMAC-Hash(salt, IKM)`, through the same provider's
//! [`Hkdf::hmac_sign`] — and then hands the PRK to the provider's own
//! [`Hkdf::expander_for_okm`], whose expansions use it directly. The key schedule's output is
//! bit for bit the provider's (a unit test compares both over salts and secrets of every
//! length TLS uses); only the number of times the extract runs changes. Nothing here
//! implements a hash, an HMAC or HKDF-Expand: those stay the provider's.
//!
//! The wrapped suites are made once per provider suite and kept for the life of the process
//! (rustls needs `&'static` suites): one small allocation per distinct TLS 1.3 suite the
//! process uses, a handful in practice.

use std::sync::Mutex;

use rustls::crypto::tls13::{Hkdf, HkdfExpander, OkmBlock};
use rustls::crypto::{hmac, CryptoProvider};
use rustls::{CipherSuiteCommon, SupportedCipherSuite, Tls13CipherSuite};

/// A suite's [`Hkdf`] whose extracts run once (see the module docs).
struct ExtractOnce {
    /// The provider's HKDF: its HMAC and its expander do all the hashing.
    inner: &'static dyn Hkdf,
    /// The suite hash's output length: the length of the all-zero salt and input RFC 5869
    /// and TLS 1.3 use when none is given.
    hash_len: usize,
}

impl Hkdf for ExtractOnce {
    fn extract_from_zero_ikm(&self, salt: Option<&[u8]>) -> Box<dyn HkdfExpander> {
        let zeroes = [0u8; OkmBlock::MAX_LEN];
        self.extract_from_secret(salt, &zeroes[..self.hash_len])
    }

    fn extract_from_secret(&self, salt: Option<&[u8]>, secret: &[u8]) -> Box<dyn HkdfExpander> {
        let zeroes = [0u8; OkmBlock::MAX_LEN];
        let salt = salt.unwrap_or(&zeroes[..self.hash_len]);
        if salt.len() > OkmBlock::MAX_LEN {
            // An HMAC key longer than any block the provider's `hmac_sign` takes: leave it
            // to the provider (TLS 1.3 never uses one).
            return self.inner.extract_from_secret(Some(salt), secret);
        }
        let prk = self.inner.hmac_sign(&OkmBlock::new(salt), secret);
        self.inner.expander_for_okm(&OkmBlock::new(prk.as_ref()))
    }

    fn expander_for_okm(&self, okm: &OkmBlock) -> Box<dyn HkdfExpander> {
        self.inner.expander_for_okm(okm)
    }

    fn hmac_sign(&self, key: &OkmBlock, message: &[u8]) -> hmac::Tag {
        self.inner.hmac_sign(key, message)
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

/// The suites wrapped so far: (address of the provider's suite, its wrapped copy).
static WRAPPED: Mutex<Vec<(usize, &'static Tls13CipherSuite)>> = Mutex::new(Vec::new());

/// `suite` with its HKDF wrapped in [`ExtractOnce`]; the same `&'static` copy every time
/// for the same provider suite. TLS 1.2 suites are returned as they are.
fn wrap(suite: SupportedCipherSuite) -> SupportedCipherSuite {
    let SupportedCipherSuite::Tls13(original) = suite else {
        return suite;
    };
    let address = original as *const Tls13CipherSuite as usize;
    // The vector is only ever pushed to, so a panic elsewhere cannot leave it inconsistent.
    let mut wrapped = WRAPPED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, copy)) = wrapped.iter().find(|(a, _)| *a == address) {
        return SupportedCipherSuite::Tls13(copy);
    }
    // Already ours (a provider built from one of our wrapped suites): keep it.
    if wrapped
        .iter()
        .any(|(_, copy)| std::ptr::eq(*copy, original))
    {
        return suite;
    }
    let hkdf: &'static ExtractOnce = Box::leak(Box::new(ExtractOnce {
        inner: original.hkdf_provider,
        hash_len: original.common.hash_provider.output_len(),
    }));
    let copy: &'static Tls13CipherSuite = Box::leak(Box::new(Tls13CipherSuite {
        common: CipherSuiteCommon {
            suite: original.common.suite,
            hash_provider: original.common.hash_provider,
            confidentiality_limit: original.common.confidentiality_limit,
        },
        hkdf_provider: hkdf,
        aead_alg: original.aead_alg,
        quic: original.quic,
    }));
    wrapped.push((address, copy));
    SupportedCipherSuite::Tls13(copy)
}

/// `provider` with every TLS 1.3 suite's extracts computed once (see the module docs);
/// the same suites, in the same order.
pub(crate) fn extract_once(mut provider: CryptoProvider) -> CryptoProvider {
    provider.cipher_suites = provider.cipher_suites.into_iter().map(wrap).collect();
    provider
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(deprecated)] // ring's default provider, deprecated in rustls 0.23.48
    fn providers() -> Vec<CryptoProvider> {
        [
            #[cfg(feature = "aws-lc-rs")]
            rustls::crypto::aws_lc_rs::default_provider(),
            #[cfg(feature = "ring")]
            rustls::crypto::ring::default_provider(),
        ]
        .into_iter()
        .collect()
    }

    fn tls13_suites(provider: &CryptoProvider) -> Vec<&'static Tls13CipherSuite> {
        provider
            .cipher_suites
            .iter()
            .filter_map(|suite| match suite {
                SupportedCipherSuite::Tls13(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_key_schedule_outputs_are_the_providers() {
        for provider in providers() {
            let originals = tls13_suites(&provider);
            let wrapped = tls13_suites(&extract_once(CryptoProvider::clone(&provider)));
            assert_eq!(originals.len(), wrapped.len());
            assert!(!originals.is_empty());
            for (original, ours) in originals.iter().zip(&wrapped) {
                assert_eq!(original.common.suite, ours.common.suite);
                assert!(!std::ptr::eq(original.hkdf_provider, ours.hkdf_provider));
                let hash_len = original.common.hash_provider.output_len();
                let salts: [Option<Vec<u8>>; 4] = [
                    None,
                    Some(Vec::new()),
                    Some((0..hash_len as u8).collect()),
                    Some(vec![0x5a; OkmBlock::MAX_LEN + 1]),
                ];
                for salt in &salts {
                    let salt = salt.as_deref();
                    for secret_len in [0, 1, hash_len, 200] {
                        let secret: Vec<u8> = (0..secret_len).map(|i| (i * 7) as u8).collect();
                        let info: [&[u8]; 2] = [b"tls13 ", b"c hs traffic"];
                        let a = original.hkdf_provider.extract_from_secret(salt, &secret);
                        let b = ours.hkdf_provider.extract_from_secret(salt, &secret);
                        assert_eq!(
                            a.expand_block(&info).as_ref(),
                            b.expand_block(&info).as_ref()
                        );
                        let (mut long_a, mut long_b) = ([0u8; 100], [0u8; 100]);
                        a.expand_slice(&info, &mut long_a).unwrap();
                        b.expand_slice(&info, &mut long_b).unwrap();
                        assert_eq!(long_a, long_b);
                        assert_eq!(a.hash_len(), b.hash_len());
                    }
                    let a = original.hkdf_provider.extract_from_zero_ikm(salt);
                    let b = ours.hkdf_provider.extract_from_zero_ikm(salt);
                    assert_eq!(
                        a.expand_block(&[b"x"]).as_ref(),
                        b.expand_block(&[b"x"]).as_ref()
                    );
                }
                assert_eq!(ours.hkdf_provider.fips(), original.hkdf_provider.fips());
            }
        }
    }

    #[test]
    fn each_suite_is_wrapped_once_and_tls12_suites_are_kept() {
        for provider in providers() {
            let first = extract_once(CryptoProvider::clone(&provider));
            let second = extract_once(CryptoProvider::clone(&provider));
            let again = extract_once(CryptoProvider::clone(&first));
            for ((a, b), c) in first
                .cipher_suites
                .iter()
                .zip(&second.cipher_suites)
                .zip(&again.cipher_suites)
            {
                match (a, b, c) {
                    (
                        SupportedCipherSuite::Tls13(a),
                        SupportedCipherSuite::Tls13(b),
                        SupportedCipherSuite::Tls13(c),
                    ) => {
                        assert!(std::ptr::eq(*a, *b));
                        assert!(std::ptr::eq(*a, *c));
                    }
                    (
                        SupportedCipherSuite::Tls12(a),
                        SupportedCipherSuite::Tls12(b),
                        SupportedCipherSuite::Tls12(c),
                    ) => {
                        assert!(std::ptr::eq(*a, *b));
                        assert!(std::ptr::eq(*a, *c));
                    }
                    _ => panic!("the suite order changed"),
                }
            }
            assert_eq!(first.cipher_suites.len(), provider.cipher_suites.len());
        }
    }
}
