//! The bounded alternative-path search (a pgtls deviation that only accepts more): when the
//! OpenSSL-like path fails, the other certificates the server sent that could have issued a
//! certificate are tried depth first within the budgets below, and a path that passes every
//! check is accepted. Root-file and anchor lookups are never widened: they follow OpenSSL's
//! trusted-first rules exactly (fuzz findings 1, 3 and 4 of `fuzz/findings/`).

use super::cert::{likely_issued, Cert};
use super::path::{Link, StoreIssuer, Verifier};

/// Longest path the alternative-path search explores (leaf and anchor included).
pub(super) const MAX_ALTERNATIVE_PATH_LEN: usize = 10;
/// Upper bound on nodes visited by the alternative-path search.
pub(super) const MAX_ALTERNATIVE_STEPS: usize = 256;
/// Upper bound on signature checks the alternative-path search may spend pruning candidates.
pub(super) const MAX_ALTERNATIVE_SIGNATURES: usize = 64;
/// Upper bound on complete candidate paths the alternative-path search fully validates.
pub(super) const MAX_ALTERNATIVE_VALIDATIONS: usize = 8;

/// Bounded depth-first search for another valid path when the OpenSSL-like one fails.
pub(super) struct AlternativeSearch<'a> {
    /// The OpenSSL-like path (already validated; skipped).
    pub(super) primary: Option<Vec<*const u8>>,
    /// Remaining node visits.
    pub(super) steps: usize,
    /// Remaining pruning signature checks.
    pub(super) signatures: usize,
    /// Remaining full validations.
    pub(super) validations: usize,
    /// The path under construction.
    pub(super) path: Vec<Link<'a>>,
}

impl<'a> AlternativeSearch<'a> {
    /// A search that skips `primary`.
    pub(super) fn new(primary: Option<Vec<Link<'a>>>) -> Self {
        Self {
            primary: primary.map(|p| p.iter().map(Link::id).collect()),
            steps: MAX_ALTERNATIVE_STEPS,
            signatures: MAX_ALTERNATIVE_SIGNATURES,
            validations: MAX_ALTERNATIVE_VALIDATIONS,
            path: Vec::new(),
        }
    }

    /// Whether some path from `leaf` passes every check. The leaf starts untrusted: a
    /// self-signed leaf is its own anchor only when OpenSSL's store lookup returns its exact
    /// copy, which the OpenSSL-like path already tried.
    pub(super) fn run(&mut self, verifier: &Verifier<'a>, leaf: &'a Cert) -> bool {
        self.path.push(Link::Cert {
            cert: leaf,
            trusted: false,
        });
        self.extend(verifier)
    }

    /// Explores issuers of the path's top.
    pub(super) fn extend(&mut self, verifier: &Verifier<'a>) -> bool {
        if self.steps == 0 {
            return false;
        }
        self.steps -= 1;
        let Some(top) = self.path.last().copied() else {
            return false;
        };
        if top.is_trusted() {
            return self.try_validate(verifier);
        }
        let Some(current) = top.cert() else {
            return false;
        };
        if current.self_signed || self.path.len() >= MAX_ALTERNATIVE_PATH_LEN {
            return false;
        }
        for candidate in self.candidates(verifier, current) {
            if self.path.iter().any(|l| l.id() == candidate.id()) {
                continue;
            }
            if !self.signature_plausible(verifier, current, candidate) {
                continue;
            }
            self.path.push(candidate);
            if self.extend(verifier) {
                return true;
            }
            self.path.pop();
        }
        false
    }

    /// Possible issuers. Wherever the root file has a say, OpenSSL's trusted-first lookup is
    /// followed exactly: when the store holds a likely issuer of `current`, the only candidate
    /// is the one `X509_STORE_CTX_get1_issuer` picks, and once the path holds a root-file
    /// certificate there is nothing else to try (OpenSSL searches only the store above it).
    /// Only the choice among the certificates the server sent is widened: every presented
    /// likely issuer is tried, where OpenSSL takes the first one and does not backtrack.
    pub(super) fn candidates(&self, verifier: &Verifier<'a>, current: &Cert) -> Vec<Link<'a>> {
        match verifier.store_issuer(current) {
            Some(StoreIssuer::Cert(issuer)) => return vec![verifier.link(issuer)],
            Some(StoreIssuer::Anchor(anchor)) => return vec![Link::Anchor(anchor)],
            None => {}
        }
        let above_store = self
            .path
            .iter()
            .filter_map(Link::cert)
            .any(|c| verifier.in_store(c));
        if above_store {
            return Vec::new();
        }
        verifier
            .presented
            .iter()
            .filter(|c| likely_issued(c, current))
            .map(|c| verifier.link(c))
            .collect()
    }

    /// Prunes with a signature check while the budget lasts (afterwards, validation decides).
    pub(super) fn signature_plausible(
        &mut self,
        verifier: &Verifier<'a>,
        cert: &Cert,
        issuer: Link<'a>,
    ) -> bool {
        if self.signatures == 0 {
            return true;
        }
        self.signatures -= 1;
        verifier.check_signature(cert, issuer.spki()).is_ok()
    }

    /// Fully validates the current path unless it is the primary one or the budget is spent.
    pub(super) fn try_validate(&mut self, verifier: &Verifier<'a>) -> bool {
        let ids: Vec<*const u8> = self.path.iter().map(Link::id).collect();
        if self.primary.as_ref() == Some(&ids) || self.validations == 0 {
            return false;
        }
        self.validations -= 1;
        verifier.validate(&self.path).is_ok()
    }
}
