//! Client session resumption: a pgtls extension, off by default (libpq never resumes).
//!
//! rustls looks sessions up by `ServerName` alone, so one store must never serve two
//! endpoints. pgtls therefore keeps one small store per **port**, inside one [`Config`]
//! (which is already bound to one host name, sslmode, set of roots and client
//! certificate): every port gets its own copy of the host's `rustls::ClientConfig`
//! (the same verifier and client-certificate resolver objects, a store of its own).
//! rustls additionally resumes a session only with the very verifier and resolver
//! objects that made it, and pgtls makes both per [`Config`] and host, so a session is
//! never offered under another sslmode, other roots, another client certificate or to
//! another host. A [`Config`] without a port ([`Config::with_port`],
//! [`crate::ConfigBuilder::port`]) never resumes.
//!
//! Memory: at most [`SessionResumption::max_ports`] stores per [`Config`] host (the
//! oldest is forgotten when another port comes), each holding at most
//! [`SessionResumption::TICKETS_PER_PORT`] TLS 1.3 tickets and one TLS 1.2 session.
//!
//! [`Config`]: crate::Config
//! [`Config::with_port`]: crate::Config::with_port

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::ClientConfig;

/// Whether a [`crate::Config`] remembers TLS sessions and offers them again
/// ([`crate::ConfigBuilder::session_resumption`]). The default is
/// [`SessionResumption::disabled`], as libpq.
///
/// ```
/// use pgtls::{Config, SessionResumption, SslMode, RootCertificates};
/// # fn main() -> Result<(), pgtls::ConfigError> {
/// let config = Config::builder()
///     .sslmode(SslMode::Require)
///     .host("pooler.example.com")
///     .port(6432)
///     .session_resumption(SessionResumption::in_memory())
///     .build()?;
/// assert!(config.resumes_sessions());
/// // The same settings for another port of the same host: a store of its own.
/// let other = config.with_port(6433);
/// assert_eq!(other.port(), Some(6433));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionResumption {
    max_ports: usize,
}

impl Default for SessionResumption {
    fn default() -> Self {
        SessionResumption::disabled()
    }
}

impl SessionResumption {
    /// Most TLS 1.3 tickets kept per port (rustls's own per-server limit).
    pub const TICKETS_PER_PORT: usize = 8;

    /// Ports remembered per [`crate::Config`] host by [`SessionResumption::in_memory`].
    pub const DEFAULT_MAX_PORTS: usize = 16;

    /// No resumption: every connection makes a full handshake (libpq's behaviour).
    pub const fn disabled() -> Self {
        SessionResumption { max_ports: 0 }
    }

    /// Sessions kept in memory, per port, for up to
    /// [`SessionResumption::DEFAULT_MAX_PORTS`] ports of each host.
    pub const fn in_memory() -> Self {
        SessionResumption {
            max_ports: Self::DEFAULT_MAX_PORTS,
        }
    }

    /// Sessions kept in memory for up to `ports` ports of each host (0 disables).
    pub const fn with_max_ports(ports: usize) -> Self {
        SessionResumption { max_ports: ports }
    }

    /// How many ports of one host keep sessions (0 when disabled).
    pub const fn max_ports(self) -> usize {
        self.max_ports
    }

    /// Whether sessions are kept at all.
    pub const fn is_enabled(self) -> bool {
        self.max_ports > 0
    }
}

/// The per-port rustls configs of one [`crate::Config`] host, shared by its clones.
pub(crate) struct PortScopes {
    /// The host's config; each port gets a copy with a store of its own.
    template: Arc<ClientConfig>,
    max_ports: usize,
    /// Oldest first.
    ports: Mutex<VecDeque<(u16, Arc<ClientConfig>)>>,
}

impl std::fmt::Debug for PortScopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortScopes")
            .field("max_ports", &self.max_ports)
            .finish_non_exhaustive()
    }
}

impl PortScopes {
    /// Scopes for `template` (a host's config), or `None` when resumption is off.
    pub(crate) fn new(template: Arc<ClientConfig>, resumption: SessionResumption) -> Option<Self> {
        resumption.is_enabled().then(|| PortScopes {
            template,
            max_ports: resumption.max_ports,
            ports: Mutex::new(VecDeque::new()),
        })
    }

    /// The config whose store holds the sessions of `port`, made on first use; the
    /// oldest port's is forgotten beyond the bound.
    pub(crate) fn config_for_port(&self, port: u16) -> Arc<ClientConfig> {
        // A panic elsewhere while the lock was held leaves a consistent queue.
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, config)) = ports.iter().find(|(p, _)| *p == port) {
            return config.clone();
        }
        let mut config = ClientConfig::clone(&self.template);
        config.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(
            SessionResumption::TICKETS_PER_PORT,
        )));
        let config = Arc::new(config);
        while ports.len() >= self.max_ports {
            ports.pop_front();
        }
        ports.push_back((port, config.clone()));
        config
    }

    /// How many ports have a store now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ports.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Arc<ClientConfig> {
        let provider = crate::config::default_provider().unwrap();
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
    }

    #[test]
    fn disabled_makes_no_scopes() {
        assert!(PortScopes::new(template(), SessionResumption::disabled()).is_none());
        assert!(PortScopes::new(template(), SessionResumption::with_max_ports(0)).is_none());
        assert_eq!(SessionResumption::default(), SessionResumption::disabled());
    }

    #[test]
    fn one_store_per_port_with_the_same_verifier() {
        let template = template();
        let scopes = PortScopes::new(template.clone(), SessionResumption::in_memory()).unwrap();
        let a = scopes.config_for_port(5432);
        let again = scopes.config_for_port(5432);
        let b = scopes.config_for_port(6432);
        assert!(Arc::ptr_eq(&a, &again));
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(
            &a.client_auth_cert_resolver,
            &template.client_auth_cert_resolver
        ));
    }

    #[test]
    fn the_oldest_port_is_forgotten_at_the_bound() {
        let scopes = PortScopes::new(template(), SessionResumption::with_max_ports(2)).unwrap();
        let first = scopes.config_for_port(1);
        scopes.config_for_port(2);
        scopes.config_for_port(3);
        assert_eq!(scopes.len(), 2);
        // Port 1 was forgotten: it gets a fresh, empty store.
        assert!(!Arc::ptr_eq(&first, &scopes.config_for_port(1)));
        assert_eq!(scopes.len(), 2);
    }
}
