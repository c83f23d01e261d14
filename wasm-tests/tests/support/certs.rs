//! Certificates generated inside the wasm module (rcgen on ring, randomness from
//! JavaScript): a root CA and a server leaf it signed, with fixed validity dates
//! (2020 to 2100) because wasm32-unknown-unknown gives rcgen's `time` no clock.

use std::sync::Arc;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// A root CA and one server certificate it issued.
pub struct Pki {
    /// The root, DER.
    pub root: CertificateDer<'static>,
    /// The root, PEM (what `sslrootcert` holds).
    pub root_pem: String,
    /// The server leaf, DER.
    pub leaf: CertificateDer<'static>,
    /// The leaf's PKCS#8 key.
    pub leaf_key: PrivateKeyDer<'static>,
}

fn params(cn: &str, names: Vec<String>) -> CertificateParams {
    let mut params = CertificateParams::new(names).expect("valid names");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
    params
}

impl Pki {
    /// A root named `ca_cn` and a leaf for `host` (subjectAltName DNS).
    pub fn new(ca_cn: &str, host: &str) -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = params(ca_cn, Vec::new());
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root = ca_params.self_signed(&ca_key).expect("self-signed CA");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf_params = params(host, vec![host.to_owned()]);
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("leaf signed by the CA");
        Pki {
            root: root.der().clone(),
            root_pem: root.pem(),
            leaf: leaf.der().clone(),
            leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        }
    }

    /// A rustls server (ring provider, ALPN `postgresql`) serving the leaf alone.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.clone()], self.leaf_key.clone_key())
            .expect("server certificate and key");
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Arc::new(config)
    }
}
