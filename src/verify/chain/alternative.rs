//! The bounded alternative-path search (a pgtls deviation that only accepts more): when the
//! OpenSSL-like path fails, other candidate issuers are tried depth first within the budgets
//! below, and a path that passes every check is accepted.

use super::cert::{likely_issued, Cert};
use super::path::{Link, Verifier};

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

    /// Whether some path from `leaf` passes every check.
    pub(super) fn run(&mut self, verifier: &Verifier<'a>, leaf: &'a Cert) -> bool {
        self.path.push(verifier.link(leaf));
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

    /// Possible issuers: anchors and root-file certificates first, then presented certificates.
    pub(super) fn candidates(&self, verifier: &Verifier<'a>, current: &Cert) -> Vec<Link<'a>> {
        let store = verifier.store;
        let mut out: Vec<Link<'a>> = store
            .anchors_by_subject
            .get(&current.issuer)
            .into_iter()
            .flatten()
            .map(|&i| Link::Anchor(&store.anchors[i]))
            .collect();
        let from_store = store
            .certs_by_subject
            .get(&current.issuer)
            .into_iter()
            .flatten()
            .map(|&i| &store.certs[i]);
        let mut certs: Vec<Link<'a>> = from_store
            .chain(verifier.presented.iter())
            .filter(|c| likely_issued(c, current))
            .map(|c| verifier.link(c))
            .collect();
        certs.sort_by_key(|l| !l.is_trusted());
        out.extend(certs);
        out
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
