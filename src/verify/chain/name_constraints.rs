//! `check_name_constraints`: dNSName, rfc822Name, URI, iPAddress and directoryName subtrees.
//! Budget: `NAME_CHECK_MAX` (names × constraints).

use super::cert::Cert;
use super::errors::{ChainError, ChainFailure};
use super::general_name::{GeneralNameOwned, NameConstraints};
use super::path::Link;

/// OpenSSL's `NAME_CHECK_MAX`: names × constraints above this fail as unspecified.
pub(super) const NAME_CHECK_MAX: usize = 1 << 20;

/// `check_name_constraints`: from the top down, every certificate (except self-issued
/// intermediates) against the constraints of every certificate or anchor above it.
pub(super) fn check_name_constraints(path: &[Link<'_>]) -> Result<(), ChainFailure> {
    let num = path.len();
    for i in (0..num).rev() {
        let Some(cert) = path[i].cert() else { continue };
        if i != 0 && cert.self_issued {
            continue;
        }
        for j in ((i + 1)..num).rev() {
            if let Some(nc) = path[j].name_constraints() {
                check_names_against(cert, nc, i == 0).map_err(|e| ChainFailure::at(e, i))?;
            }
        }
    }
    Ok(())
}

/// `NAME_CONSTRAINTS_check` (+ `NAME_CONSTRAINTS_check_CN` for a leaf without DNS SANs, as in
/// OpenSSL 3.0–3.4): the subject as a directoryName, its emailAddress attributes, every SAN, and
/// host-name-like commonNames.
pub(super) fn check_names_against(
    cert: &Cert,
    nc: &NameConstraints,
    is_leaf: bool,
) -> Result<(), ChainError> {
    let names = cert.subject.entry_count() + cert.ext.san.len();
    if names > 0 && nc.len() > NAME_CHECK_MAX / names {
        return Err(ChainError::Unspecified);
    }
    if cert.subject.entry_count() > 0 {
        nc_match(&GeneralNameOwned::Directory(cert.subject.clone()), nc)?;
        for email in &cert.subject_names.emails {
            let email = email.as_ref().ok_or(ChainError::UnsupportedNameSyntax)?;
            nc_match(&GeneralNameOwned::Email(email.clone()), nc)?;
        }
    }
    for name in &cert.ext.san {
        nc_match(name, nc)?;
    }
    let has_dns_san = cert
        .ext
        .san
        .iter()
        .any(|n| matches!(n, GeneralNameOwned::Dns(_)));
    if is_leaf && !has_dns_san {
        if cert.subject_names.cn_syntax_error {
            return Err(ChainError::UnsupportedNameSyntax);
        }
        for cn in &cert.subject_names.dns_like_cns {
            nc_match(&GeneralNameOwned::Dns(cn.clone()), nc)?;
        }
    }
    Ok(())
}

/// `nc_match`: if any permitted subtree has the name's type one must match; no excluded subtree
/// of that type may match.
pub(super) fn nc_match(name: &GeneralNameOwned, nc: &NameConstraints) -> Result<(), ChainError> {
    let mut permitted_of_type = false;
    let mut permitted_match = false;
    for base in nc.permitted.iter().filter(|b| name.constrained_by(b)) {
        permitted_of_type = true;
        if permitted_match {
            continue;
        }
        match nc_match_single(name, base) {
            Ok(()) => permitted_match = true,
            Err(ChainError::PermittedViolation) => {}
            Err(e) => return Err(e),
        }
    }
    if permitted_of_type && !permitted_match {
        return Err(ChainError::PermittedViolation);
    }
    for base in nc.excluded.iter().filter(|b| name.constrained_by(b)) {
        match nc_match_single(name, base) {
            Ok(()) => return Err(ChainError::ExcludedViolation),
            Err(ChainError::PermittedViolation) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `nc_match_single`: one name against one subtree of the same type.
pub(super) fn nc_match_single(
    name: &GeneralNameOwned,
    base: &GeneralNameOwned,
) -> Result<(), ChainError> {
    use GeneralNameOwned as G;
    let ok = |b: bool| {
        if b {
            Ok(())
        } else {
            Err(ChainError::PermittedViolation)
        }
    };
    match (name, base) {
        (G::Directory(n), G::Directory(b)) => ok(b.is_prefix_of(n)),
        (G::Dns(n), G::Dns(b)) => ok(nc_dns(n, b)),
        (G::Email(n), G::Email(b)) => nc_email(n, b),
        (G::Uri(n), G::Uri(b)) => nc_uri(n, b),
        (G::Ip(n), G::Ip(b)) => nc_ip(n, b),
        _ => Err(ChainError::UnsupportedConstraintType),
    }
}

/// ASCII case-insensitive equality.
pub(super) fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// `nc_dns`: empty base matches all; otherwise a suffix match on a label boundary.
pub(super) fn nc_dns(dns: &[u8], base: &[u8]) -> bool {
    if base.is_empty() {
        return true;
    }
    if dns.len() < base.len() {
        return false;
    }
    let offset = dns.len() - base.len();
    if offset > 0 && base[0] != b'.' && dns[offset - 1] != b'.' {
        return false;
    }
    eq_ignore_case(&dns[offset..], base)
}

/// `nc_email`: `.domain` matches subdomains, `local@host` is exact (local part case-sensitive),
/// `host` matches the host part.
pub(super) fn nc_email(email: &[u8], base: &[u8]) -> Result<(), ChainError> {
    let email_at = email
        .iter()
        .rposition(|b| *b == b'@')
        .ok_or(ChainError::UnsupportedNameSyntax)?;
    let base_at = base.iter().rposition(|b| *b == b'@');
    if base_at.is_none() && base.first() == Some(&b'.') {
        let matched =
            email.len() > base.len() && eq_ignore_case(&email[email.len() - base.len()..], base);
        return if matched {
            Ok(())
        } else {
            Err(ChainError::PermittedViolation)
        };
    }
    let mut base_host = base;
    if let Some(at) = base_at {
        if at != 0 {
            let (base_local, email_local) = (&base[..at], &email[..email_at]);
            if base_local.len() != email_local.len() {
                return Err(ChainError::PermittedViolation);
            }
            if base_local.contains(&0) || email_local.contains(&0) {
                return Err(ChainError::UnsupportedNameSyntax);
            }
            if base_local != email_local {
                return Err(ChainError::PermittedViolation);
            }
        }
        base_host = &base[at + 1..];
    }
    let email_host = &email[email_at + 1..];
    if base_host.len() == email_host.len() && eq_ignore_case(base_host, email_host) {
        Ok(())
    } else {
        Err(ChainError::PermittedViolation)
    }
}

/// `nc_uri`: the host part of `scheme://host[:port][/…]` against a host or `.domain`.
pub(super) fn nc_uri(uri: &[u8], base: &[u8]) -> Result<(), ChainError> {
    let colon = uri
        .iter()
        .position(|b| *b == b':')
        .ok_or(ChainError::UnsupportedNameSyntax)?;
    if uri.len() < colon + 3 || uri[colon + 1] != b'/' || uri[colon + 2] != b'/' {
        return Err(ChainError::UnsupportedNameSyntax);
    }
    let host_and_rest = &uri[colon + 3..];
    let host_end = host_and_rest
        .iter()
        .position(|b| *b == b':')
        .or_else(|| host_and_rest.iter().position(|b| *b == b'/'))
        .unwrap_or(host_and_rest.len());
    let host = &host_and_rest[..host_end];
    if host.is_empty() {
        return Err(ChainError::UnsupportedNameSyntax);
    }
    let matched = if base.first() == Some(&b'.') {
        host.len() > base.len() && eq_ignore_case(&host[host.len() - base.len()..], base)
    } else {
        eq_ignore_case(host, base)
    };
    if matched {
        Ok(())
    } else {
        Err(ChainError::PermittedViolation)
    }
}

/// `nc_ip`: address and mask; IPv4 never matches IPv6.
pub(super) fn nc_ip(ip: &[u8], base: &[u8]) -> Result<(), ChainError> {
    if !matches!(ip.len(), 4 | 16) || !matches!(base.len(), 8 | 32) {
        return Err(ChainError::UnsupportedNameSyntax);
    }
    if ip.len() * 2 != base.len() {
        return Err(ChainError::PermittedViolation);
    }
    let (addr, mask) = base.split_at(ip.len());
    let matched = ip
        .iter()
        .zip(addr)
        .zip(mask)
        .all(|((h, a), m)| h & m == a & m);
    if matched {
        Ok(())
    } else {
        Err(ChainError::PermittedViolation)
    }
}
