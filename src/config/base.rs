//! Starting from a caller's `rustls::ClientConfig` ([`crate::ConfigBuilder::rustls_client_config`]).
//!
//! rustls keeps a config's protocol versions and certificate verifier private, so pgtls
//! cannot edit a caller's config in place: it builds its own per host, from the caller's
//! crypto provider and clock, and copies over the settings rustls lets it read.
//!
//! What is kept and what is replaced is listed in the docs of
//! [`crate::ConfigBuilder::rustls_client_config`]. Keeping the resumption store is safe:
//! rustls resumes a session only with a config whose verifier and client-certificate
//! resolver are the very objects (`Arc::ptr_eq`) of the config that made it, and pgtls
//! makes both per [`crate::Config`] and host.

use rustls::ClientConfig;

/// Copies what pgtls keeps from the caller's config into the one pgtls built.
///
/// The client-certificate resolver is not copied here: [`super::ClientCertResolver`]
/// wraps it, so that `sslcertmode` still applies to it.
pub(crate) fn inherit(base: &ClientConfig, config: &mut ClientConfig) {
    config.resumption = base.resumption.clone();
    config.key_log = base.key_log.clone();
    config.max_fragment_size = base.max_fragment_size;
    config.enable_secret_extraction = base.enable_secret_extraction;
    config.require_ems = base.require_ems;
    config.cert_decompressors = base.cert_decompressors.clone();
    config.cert_compressors = base.cert_compressors.clone();
    config.cert_compression_cache = base.cert_compression_cache.clone();
    config.enable_early_data = false;
}
