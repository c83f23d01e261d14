//! Which key-exchange groups the ClientHello offers, and which one carries the key share.
//!
//! rustls sends one key share in its first ClientHello: for the first group of the
//! provider's list (plus, for a post-quantum hybrid such as `X25519MLKEM768`, a second
//! share for its classical half when that group is offered too). A server that accepts
//! none of the shares answers with a HelloRetryRequest: one more round trip, a second
//! ClientHello and a key pair made for nothing.
//!
//! PostgreSQL up to 17 offers a single group, `ssl_ecdh_curve = prime256v1`; 18's
//! `ssl_groups` defaults to `X25519:prime256v1`. A P-256 key share is therefore accepted
//! at once by both, whichever provider is used, while rustls's own order (X25519 first,
//! or `X25519MLKEM768` with rustls's `prefer-post-quantum`) costs every connection to a
//! default PostgreSQL 17 or older a HelloRetryRequest. [`postgres_key_share_first`] moves
//! P-256 to the front of any provider's list — pgtls's default, a caller's provider, the
//! provider of a caller's `ClientConfig` — and keeps the groups offered the same.
//! [`with_preference`] replaces the order with the caller's, for example to require a
//! post-quantum hybrid (`BENCHMARKS.md`, "Key exchange", has the measurements).

use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::NamedGroup;

use crate::error::ConfigError;

/// Moves P-256 (`secp256r1`) to the front of the provider's groups, so that the one key
/// share of the ClientHello is one every default-configured PostgreSQL accepts. The groups
/// offered stay the same; a provider without P-256 is left as it is.
pub(crate) fn postgres_key_share_first(mut provider: CryptoProvider) -> CryptoProvider {
    let groups = &mut provider.kx_groups;
    if let Some(p256) = groups
        .iter()
        .position(|group| group.name() == NamedGroup::secp256r1)
    {
        let group = groups.remove(p256);
        groups.insert(0, group);
    }
    provider
}

/// The provider with exactly the groups of `preference`, in that order (duplicates
/// after the first are dropped). Each group is looked up among the provider's own groups,
/// then among `extra` (groups the compiled provider implements but does not offer by
/// default, such as aws-lc-rs's `SECP256R1MLKEM768`).
///
/// # Errors
/// An empty list, or a group neither source implements.
pub(crate) fn with_preference(
    mut provider: CryptoProvider,
    preference: &[NamedGroup],
    extra: &[&'static dyn SupportedKxGroup],
) -> Result<CryptoProvider, ConfigError> {
    if preference.is_empty() {
        return Err(ConfigError::NoKeyExchangeGroups);
    }
    let find = |name: NamedGroup| {
        provider
            .kx_groups
            .iter()
            .chain(extra)
            .copied()
            .find(|group| group.name() == name)
    };
    let mut chosen: Vec<&'static dyn SupportedKxGroup> = Vec::with_capacity(preference.len());
    for &name in preference {
        if chosen.iter().any(|group| group.name() == name) {
            continue;
        }
        match find(name) {
            Some(group) => chosen.push(group),
            None => {
                let mut available: Vec<NamedGroup> = Vec::new();
                for group in provider.kx_groups.iter().chain(extra) {
                    if !available.contains(&group.name()) {
                        available.push(group.name());
                    }
                }
                return Err(ConfigError::UnsupportedKeyExchangeGroup {
                    group: name,
                    available,
                });
            }
        }
    }
    provider.kx_groups = chosen;
    Ok(provider)
}

/// Every group the provider compiled in by cargo features implements, offered by default
/// or not (its `ALL_KX_GROUPS`).
pub(crate) fn compiled_provider_groups() -> &'static [&'static dyn SupportedKxGroup] {
    #[cfg(feature = "aws-lc-rs")]
    {
        rustls::crypto::aws_lc_rs::ALL_KX_GROUPS
    }
    #[cfg(all(not(feature = "aws-lc-rs"), feature = "ring"))]
    {
        rustls::crypto::ring::ALL_KX_GROUPS
    }
    #[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
    {
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(provider: &CryptoProvider) -> Vec<NamedGroup> {
        provider
            .kx_groups
            .iter()
            .map(|group| group.name())
            .collect()
    }

    fn provider_with(groups: &[&'static dyn SupportedKxGroup]) -> Option<CryptoProvider> {
        let mut provider = crate::config::default_provider().ok()?.as_ref().clone();
        provider.kx_groups = groups.to_vec();
        Some(provider)
    }

    #[test]
    fn p256_moves_first_from_any_position_and_nothing_is_lost() {
        let all = compiled_provider_groups();
        let Some(mut reversed) = provider_with(all) else {
            return;
        };
        reversed.kx_groups.reverse();
        let before = names(&reversed);
        let after = names(&postgres_key_share_first(reversed));
        assert_eq!(after.first(), Some(&NamedGroup::secp256r1));
        assert_eq!(after.len(), before.len());
        for name in before {
            assert!(after.contains(&name), "{name:?} lost");
        }
    }

    #[test]
    fn a_provider_without_p256_keeps_its_order() {
        let Some(provider) = provider_with(compiled_provider_groups()) else {
            return;
        };
        let without: Vec<_> = provider
            .kx_groups
            .iter()
            .copied()
            .filter(|g| g.name() != NamedGroup::secp256r1)
            .collect();
        let Some(provider) = provider_with(&without) else {
            return;
        };
        let before = names(&provider);
        assert_eq!(names(&postgres_key_share_first(provider)), before);
    }

    #[test]
    fn preference_is_exact_and_unknown_groups_are_named() {
        let Ok(default) = crate::config::default_provider() else {
            return;
        };
        let provider = with_preference(
            default.as_ref().clone(),
            &[
                NamedGroup::X25519,
                NamedGroup::secp256r1,
                NamedGroup::X25519,
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            names(&provider),
            vec![NamedGroup::X25519, NamedGroup::secp256r1]
        );
        let err =
            with_preference(default.as_ref().clone(), &[NamedGroup::FFDHE2048], &[]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::UnsupportedKeyExchangeGroup {
                group: NamedGroup::FFDHE2048,
                ..
            }
        ));
        assert!(
            err.to_string().starts_with(
                "key exchange group \"FFDHE2048\" is not supported by the crypto provider (it has: secp256r1, X25519"
            ),
            "{err}"
        );
        assert!(matches!(
            with_preference(default.as_ref().clone(), &[], &[]).unwrap_err(),
            ConfigError::NoKeyExchangeGroups
        ));
    }

    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn groups_the_default_provider_does_not_offer_can_still_be_asked_for() {
        let default = crate::config::default_provider().unwrap();
        assert!(!names(&default).contains(&NamedGroup::secp256r1MLKEM768));
        let provider = with_preference(
            default.as_ref().clone(),
            &[NamedGroup::secp256r1MLKEM768],
            compiled_provider_groups(),
        )
        .unwrap();
        assert_eq!(names(&provider), vec![NamedGroup::secp256r1MLKEM768]);
    }
}
