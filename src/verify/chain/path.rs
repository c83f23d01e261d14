//! Path building: OpenSSL's `build_chain` with trusted-first and no partial chains, and the
//! error it reports for a chain that reaches no anchor. Budget: `MAX_VERIFY_DEPTH`.

use rustls::crypto::WebPkiSupportedAlgorithms;

use super::cert::{likely_issued, Cert};
use super::errors::{ChainError, ChainFailure};
use super::general_name::NameConstraints;
use super::store::{BareAnchor, TrustStore};

/// OpenSSL's default verification depth (`X509_VERIFY_PARAM` depth 100): chains may grow to
/// `MAX_VERIFY_DEPTH + 2` certificates before "certificate chain too long".
pub(super) const MAX_VERIFY_DEPTH: usize = 100;

/// One element of a path: a certificate (with whether it is a trust anchor), or a bare anchor,
/// which can only be the top.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Link<'a> {
    /// A certificate; `trusted` for a self-signed root-file certificate (or an exact copy of one).
    Cert {
        /// The certificate.
        cert: &'a Cert,
        /// Whether it ends the path as a trust anchor.
        trusted: bool,
    },
    /// A subject + key trust anchor.
    Anchor(&'a BareAnchor),
}

impl<'a> Link<'a> {
    /// The certificate, unless this is a bare anchor.
    pub(crate) fn cert(&self) -> Option<&'a Cert> {
        match self {
            Self::Cert { cert, .. } => Some(cert),
            Self::Anchor(_) => None,
        }
    }

    /// Whether the path may end here.
    pub(super) fn is_trusted(&self) -> bool {
        match self {
            Self::Cert { trusted, .. } => *trusted,
            Self::Anchor(_) => true,
        }
    }

    /// The DER SubjectPublicKeyInfo.
    pub(super) fn spki(&self) -> &'a [u8] {
        match self {
            Self::Cert { cert, .. } => &cert.spki,
            Self::Anchor(a) => &a.spki,
        }
    }

    /// Name constraints imposed on everything below.
    pub(super) fn name_constraints(&self) -> Option<&'a NameConstraints> {
        match self {
            Self::Cert { cert, .. } => cert.ext.name_constraints.as_ref(),
            Self::Anchor(a) => a.name_constraints.as_ref(),
        }
    }

    /// Identity for loop detection and path comparison.
    pub(super) fn id(&self) -> *const u8 {
        match self {
            Self::Cert { cert, .. } => cert.der.as_ptr(),
            Self::Anchor(a) => a.spki.as_ptr(),
        }
    }
}

/// One verification: the store, the presented certificates, the time and the algorithms.
pub(super) struct Verifier<'a> {
    /// The trust store.
    pub(super) store: &'a TrustStore,
    /// Parsed presented intermediates, in the order received.
    pub(super) presented: &'a [Cert],
    /// Verification time, seconds since the Unix epoch.
    pub(super) now: i64,
    /// The provider's signature algorithms.
    pub(super) algs: &'a WebPkiSupportedAlgorithms,
}

/// The issuer found in the store for a certificate.
#[derive(Clone, Copy)]
pub(super) enum StoreIssuer<'a> {
    /// A root-file certificate.
    Cert(&'a Cert),
    /// A bare anchor.
    Anchor(&'a BareAnchor),
}

impl<'a> Verifier<'a> {
    /// Whether `cert` is a trust anchor: self-signed and byte-identical to a root-file certificate.
    pub(super) fn is_trusted(&self, cert: &Cert) -> bool {
        cert.self_signed && self.store.trusted_der.contains(&cert.der)
    }

    /// Whether `cert` is one of the store's root-file certificates (not a presented one).
    pub(super) fn in_store(&self, cert: &Cert) -> bool {
        self.store
            .certs
            .as_ptr_range()
            .contains(&std::ptr::from_ref(cert))
    }

    /// A path link for `cert`.
    pub(super) fn link(&self, cert: &'a Cert) -> Link<'a> {
        Link::Cert {
            cert,
            trusted: self.is_trusted(cert),
        }
    }

    /// Picks among likely issuers like `get0_best_issuer_sk`: the first valid now, otherwise the
    /// one expiring last (the first of those on a tie).
    pub(super) fn best_issuer(
        &self,
        candidates: impl Iterator<Item = &'a Cert>,
    ) -> Option<&'a Cert> {
        let mut best: Option<&'a Cert> = None;
        for candidate in candidates {
            if candidate.time_valid(self.now) {
                return Some(candidate);
            }
            if best.is_none_or(|b| candidate.not_after > b.not_after) {
                best = Some(candidate);
            }
        }
        best
    }

    /// Issuer lookup in the store (`X509_STORE_CTX_get1_issuer`), then among bare anchors whose
    /// key type fits.
    pub(super) fn store_issuer(&self, cert: &Cert) -> Option<StoreIssuer<'a>> {
        let store = self.store;
        let certs = store
            .certs_by_subject
            .get(&cert.issuer)
            .into_iter()
            .flatten()
            .map(|&i| &store.certs[i])
            .filter(|c| likely_issued(c, cert));
        if let Some(found) = self.best_issuer(certs) {
            return Some(StoreIssuer::Cert(found));
        }
        store
            .anchors_by_subject
            .get(&cert.issuer)
            .into_iter()
            .flatten()
            .map(|&i| &store.anchors[i])
            .find(|a| {
                !cert.ext.invalid && cert.signed_with.is_some_and(|s| s.matches_key(a.key_kind))
            })
            .map(StoreIssuer::Anchor)
    }

    /// OpenSSL's `build_chain` with trusted-first and no partial chains.
    pub(super) fn build(&self, leaf: &'a Cert) -> Result<Vec<Link<'a>>, ChainFailure> {
        let mut chain = vec![Link::Cert {
            cert: leaf,
            trusted: false,
        }];
        let mut num_untrusted = 1;
        let mut pool: Vec<&'a Cert> = self.presented.iter().collect();
        let mut search_untrusted = true;
        while let Some(current) = chain.last().and_then(Link::cert) {
            let too_long = chain.len() > MAX_VERIFY_DEPTH + 1;
            match (!too_long).then(|| self.store_issuer(current)).flatten() {
                // A self-signed certificate is trusted only through an exact copy in the store;
                // anything else with its name is a mimic and ignored.
                Some(StoreIssuer::Cert(issuer))
                    if current.self_signed && issuer.der == current.der && issuer.self_signed =>
                {
                    chain.pop();
                    chain.push(self.link(issuer));
                    return Ok(chain);
                }
                Some(StoreIssuer::Cert(_)) if current.self_signed => {}
                Some(StoreIssuer::Cert(issuer)) => {
                    let link = self.link(issuer);
                    chain.push(link);
                    search_untrusted = false;
                    if link.is_trusted() {
                        return Ok(chain);
                    }
                    continue;
                }
                Some(StoreIssuer::Anchor(anchor)) => {
                    chain.push(Link::Anchor(anchor));
                    return Ok(chain);
                }
                None => {}
            }
            if !search_untrusted {
                break;
            }
            let next = if current.self_signed || too_long {
                None
            } else {
                self.untrusted_issuer(&pool, current, &chain)
            };
            match next {
                Some(issuer) => {
                    pool.retain(|c| !std::ptr::eq(*c, issuer));
                    chain.push(Link::Cert {
                        cert: issuer,
                        trusted: false,
                    });
                    num_untrusted += 1;
                }
                None => search_untrusted = false,
            }
        }
        Err(self.build_failure(&chain, num_untrusted))
    }

    /// Issuer among the remaining presented certificates (`get0_best_issuer_sk` with `no_dup`).
    pub(super) fn untrusted_issuer(
        &self,
        pool: &[&'a Cert],
        current: &Cert,
        chain: &[Link<'a>],
    ) -> Option<&'a Cert> {
        let allow_dup = current.self_issued && chain.len() == 1;
        let in_chain = |c: &Cert| chain.iter().filter_map(Link::cert).any(|x| x.der == c.der);
        self.best_issuer(
            pool.iter()
                .copied()
                .filter(|c| allow_dup || !in_chain(c))
                .filter(|c| likely_issued(c, current)),
        )
    }

    /// The error `build_chain` reports for an untrusted chain, at the top certificate's depth.
    pub(super) fn build_failure(&self, chain: &[Link<'a>], num_untrusted: usize) -> ChainFailure {
        let depth = chain.len() - 1;
        let error = if chain.len() > MAX_VERIFY_DEPTH + 1 {
            ChainError::CertChainTooLong
        } else if chain
            .last()
            .and_then(Link::cert)
            .is_some_and(|c| c.self_signed)
        {
            if chain.len() == 1 {
                ChainError::DepthZeroSelfSignedCert
            } else {
                ChainError::SelfSignedCertInChain
            }
        } else if num_untrusted < chain.len() {
            ChainError::UnableToGetIssuerCert
        } else {
            ChainError::UnableToGetIssuerCertLocally
        };
        ChainFailure::at(error, depth)
    }
}
