//! Certificate path building and validation with the semantics libpq gets from OpenSSL.
//!
//! libpq loads `sslrootcert` with `SSL_CTX_load_verify_locations`, optionally loads CRLs into the
//! same `X509_STORE` with `X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL`, and keeps OpenSSL's
//! verdict (`verify_cb` returns `ok` unchanged). The server chain is therefore judged by
//! `X509_verify_cert` with the `ssl_server` purpose, default depth 100, no partial chains and no
//! policy checking. This module reproduces that (the PostgreSQL server's checks of a client
//! certificate, `super::client`, are the same with the `ssl_client` purpose):
//!
//! 0. **The leaf's key** (before anything else, as `X509_verify_cert`): under security level 2
//!    it fails as "EE certificate key too weak" (`key_strength.rs`).
//! 1. **Path building** (`build_chain` in OpenSSL's `x509_vfy.c`), trusted-first: at each step an
//!    issuer is first looked up in the store, then among the presented certificates. A candidate
//!    issuer must have a subject equal to the certificate's issuer (compared like `X509_NAME_cmp`,
//!    on a canonical form), agree with its Authority Key Identifier, and have a key type matching
//!    the signature algorithm (`x509_likely_issued`); certificates with a malformed or repeated
//!    basicConstraints/keyUsage/EKU/SKID/AKID/SAN/nameConstraints/CRLDP extension are never
//!    issuers nor issued (`EXFLAG_INVALID`). Among several, the first one valid now wins, else the
//!    one expiring last. Signatures are *not* checked while building. Once a store certificate is
//!    in the chain, only the store is searched. The chain is trusted when its top is a self-signed
//!    store certificate; a self-signed presented certificate is replaced by its exact
//!    (byte-identical) copy from the store, so a self-signed leaf that is in the root file
//!    verifies. Failures: "self-signed certificate" (lone self-signed leaf), "self-signed
//!    certificate in certificate chain", "unable to get issuer certificate" (the chain reached a
//!    non-self-signed store certificate, e.g. a root file holding only an intermediate), "unable to
//!    get local issuer certificate", "certificate chain too long" (depth 100).
//! 2. **Extension checks** (`check_extensions`), from the leaf up: unhandled critical extensions,
//!    proxy certificates, CA-ness of every issuer (intermediates need basicConstraints cA:TRUE and
//!    keyCertSign if keyUsage is present; the top may also be a v1 self-signed root or a
//!    keyUsage-only CA), explicit EC parameters, the `ssl_server` purpose (EKU, if present, must
//!    list serverAuth or SGC on every certificate; anyExtendedKeyUsage does not count; the leaf's
//!    keyUsage, if present, needs digitalSignature, keyEncipherment or keyAgreement), path length
//!    constraints. Then every key above the leaf, the anchor's included (`check_auth_level`):
//!    "CA certificate key too weak".
//! 3. **Revocation** (`check_revocation`), only when CRL checking is on: every certificate needs a
//!    usable CRL from its issuer, the self-signed anchor included (see `crl.rs`).
//! 4. **Signatures and validity** (`internal_verify`), from the anchor down: each signature with the
//!    issuer's key (the anchor's own self-signature is not checked), a certificate whose
//!    TBSCertificate `signature` field differs from its outer signatureAlgorithm failing as
//!    "certificate signature failure" (`X509_verify`; OpenSSL 3.0 does not compare the two fields
//!    of a CRL, nor does pgtls), then notBefore/notAfter of each certificate, the anchor included.
//! 5. **Name constraints** (`check_name_constraints`): dNSName, rfc822Name, URI, iPAddress and
//!    directoryName subtrees of every certificate (or bare anchor) above, applied to the subject,
//!    its emailAddress attributes, the SANs and, for a leaf without DNS SAN, host-name-like CNs.
//!
//! The first failure is reported, with OpenSSL's `X509_verify_cert_error_string` text, because
//! libpq's callback never overrides an error. The reference is OpenSSL 3.0 (the LTS most libpq
//! builds use); the tests compare every verdict and error depth with `openssl verify` when the
//! tool is installed.
//!
//! Deviations from OpenSSL, and why:
//!
//! * **Alternative paths (accepting more).** When the OpenSSL-like chain fails, a bounded
//!   depth-first search over the other certificates *the server sent* that could have issued a
//!   certificate looks for a path that passes every check above; if one exists the chain is
//!   accepted, otherwise the OpenSSL-like error is reported. OpenSSL takes the first such
//!   certificate and does not backtrack (its "alternative chains" logic is inert with
//!   trusted-first), so this only turns a failure into a success when a fully valid path to a
//!   trust anchor exists (e.g. two intermediates with the same name where the first presented one
//!   does not verify). Root-file lookups are never widened: when the store has a likely issuer
//!   only OpenSSL's pick is used, nothing but the store is searched above a root-file
//!   certificate, and a self-signed leaf is never chained further (fuzz findings 1, 3 and 4:
//!   a root file holding an intermediate pins the chain above it, as in libpq).
//! * **Signature algorithms** are the rustls provider's (the crate stays provider-agnostic): what
//!   it lacks (SHA-1, MD5, DSA, Ed448, RSA keys under 2048 bits, RSA-PSS with a non-standard salt
//!   length) fails, as "certificate signature algorithm not supported by the crypto provider" or
//!   "certificate signature failure". OpenSSL's security-level-2 key sizes are checked
//!   (`key_strength.rs`: "EE certificate key too weak", "CA certificate key too weak"); its
//!   digest check ("CA signature digest algorithm too weak") is not reproduced, the provider's
//!   algorithm set stands in.
//! * **Parsing** is x509-cert's and der's (strict DER; `src/verify/x509.rs` adds OpenSSL's
//!   tolerance of any serial-number length and of times before 1970): a certificate it rejects
//!   fails as "certificate could not be parsed" (OpenSSL would fail while decoding the handshake
//!   message, or accept it). Stricter than OpenSSL: a BOOLEAN other than `0xFF` (a critical
//!   flag of `0x01`), a repeated attribute in one RDN, a tag number above 30, and times that are
//!   not `YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ` (OpenSSL rejects those too, as "format error in
//!   certificate's notBefore field") or before 1570. Inside extensions:
//!   basicConstraints with a pathLenConstraint above 255, and AKID, nameConstraints and CRL
//!   distribution points whose GeneralNames break their string alphabets (IA5), hold an
//!   x400Address, or give an AKID serial over 21 octets, are malformed (`EXFLAG_INVALID`); the
//!   subjectAltName and a CRL entry's certificateIssuer are read entry by entry without those
//!   checks, as OpenSSL reads them. A CRL with an entry serial over 21 octets does not parse.
//! * **Bare trust anchors** (`from_trust_anchors`) have no OpenSSL equivalent: a certificate whose
//!   issuer name and key type match an anchor is checked against its key; the anchor has no
//!   validity, extensions or AKID serial to check; its name constraints are enforced.
//! * **Name constraints**: subtree minimum/maximum are decoded but ignored (OpenSSL fails a
//!   name checked against such a subtree, `X509_V_ERR_SUBTREE_MINMAX`) and SmtpUTF8Mailbox
//!   otherNames are not matched against rfc822Name subtrees (RFC 8398).
//! * **Version-dependent details follow OpenSSL 3.0–3.5**: a certificate is expired from its
//!   notAfter second on, the self-signed anchor needs a CRL too, the leaf's CN is constrained
//!   when it has no DNS SAN, and "certificate is not yet valid" is printed without the "or the
//!   system clock is incorrect" suffix of newer releases.
//!
//! ## Where each rule lives
//!
//! | file | rule |
//! |---|---|
//! | `store.rs` | the trust store and the entry point (`verify_chain_detailed`) |
//! | `key_strength.rs` | security level 2 key sizes (leaf first, then every key above it) |
//! | `path.rs` | 1. path building |
//! | `validate.rs` | the order of the checks on a built path; the revocation step |
//! | `extension_checks.rs` | 2. extension checks and the purposes |
//! | `../crl.rs` | 3. CRL selection and checks |
//! | `signatures_and_validity.rs` | 4. signatures and validity periods |
//! | `name_constraints.rs` | 5. name constraints |
//! | `alternative.rs` | the bounded alternative-path search |
//! | `cert.rs`, `name.rs`, `general_name.rs`, `oid.rs` | the parsing model |
//! | `errors.rs` | the reasons and OpenSSL's texts |
//!
//! ## Budgets
//!
//! Whatever the peer sends, a verification does bounded work:
//!
//! - **Path length**: OpenSSL's default depth, `MAX_VERIFY_DEPTH` = 100: a chain may grow to
//!   102 certificates before "certificate chain too long".
//! - **Alternative-path search**: paths of at most `MAX_ALTERNATIVE_PATH_LEN` = 10
//!   certificates, at most `MAX_ALTERNATIVE_STEPS` = 256 nodes visited,
//!   `MAX_ALTERNATIVE_SIGNATURES` = 64 signature checks spent pruning candidates and
//!   `MAX_ALTERNATIVE_VALIDATIONS` = 8 complete paths fully validated; when a budget runs out
//!   the OpenSSL-like error stands.
//! - **Name constraints**: OpenSSL's `NAME_CHECK_MAX` = 2^20: when a certificate's names
//!   (subject attributes and SANs) times the subtrees of one constraining certificate exceed
//!   it, the chain fails as "unspecified certificate verification error" without comparing.
//! - **Certificates**: the presented certificates are parsed once each (rustls bounds the
//!   Certificate message), and each path step searches a subject index.

mod alternative;
mod cert;
mod errors;
mod extension_checks;
mod general_name;
mod key_strength;
mod name;
mod name_constraints;
pub(crate) mod oid;
mod path;
mod signatures_and_validity;
mod store;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
mod validate;

pub(crate) use cert::{akid_matches, Akid, Cert, KU_CRL_SIGN};
pub(crate) use errors::{ChainError, ChainSetupError};
pub(crate) use extension_checks::Purpose;
pub(crate) use general_name::{DistPoint, DistPointName, GeneralNameOwned, ALL_REASONS};
pub(crate) use name::{normalize_integer, Name};
pub(crate) use path::Link;
pub(crate) use store::TrustStore;
