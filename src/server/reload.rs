//! Hot reload: an [`AcceptorConfig`] that can be replaced while clients are served.

use std::sync::{Arc, PoisonError, RwLock};

use super::config::AcceptorConfig;

/// The acceptor configuration new connections start with, replaceable at any time
/// (a certificate renewed on `SIGHUP`, say) without touching established sessions:
/// each [`super::Acceptor`] copies the configuration current when it starts (an `Arc`
/// clone), and each session keeps the rustls configuration it was made with.
///
/// ```
/// use pgtls::server::{AcceptorConfig, SharedAcceptorConfig};
/// let shared = SharedAcceptorConfig::new(AcceptorConfig::plaintext_only());
/// let before = shared.current();
/// shared.replace(AcceptorConfig::plaintext_only().with_direct_tls(false));
/// assert!(std::sync::Arc::ptr_eq(&before, &before));
/// assert!(!std::sync::Arc::ptr_eq(&before, &shared.current()));
/// ```
#[derive(Debug, Clone)]
pub struct SharedAcceptorConfig {
    current: Arc<RwLock<Arc<AcceptorConfig>>>,
}

impl SharedAcceptorConfig {
    /// Starts with `config`.
    pub fn new(config: AcceptorConfig) -> SharedAcceptorConfig {
        SharedAcceptorConfig {
            current: Arc::new(RwLock::new(Arc::new(config))),
        }
    }

    /// The configuration for a connection starting now (a pointer copy under a read
    /// lock held for that long only).
    pub fn current(&self) -> Arc<AcceptorConfig> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes `config` the one new connections get; returns the one it replaces.
    /// Connections already accepted, and acceptors already started, are not affected.
    pub fn replace(&self, config: AcceptorConfig) -> Arc<AcceptorConfig> {
        let mut slot = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *slot, Arc::new(config))
    }
}
