//! Which certificates a registry's TLS is checked against: the system's trust store (Debian's
//! `ca-certificates` bundle, or `SSL_CERT_FILE`), plus the registry's own CA when its access
//! names one. The store is read once per process; a registry's CA is parsed per client.

use crate::RegistryError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::sync::{Arc, OnceLock};

/// Where Linux distributions keep the bundle, most common first.
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's trusted roots (empty when the machine has none: then only a registry's own
/// CA is trusted).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
        let paths = from_env
            .into_iter()
            .chain(BUNDLES.iter().map(std::path::PathBuf::from));
        for path in paths {
            let Ok(pem) = std::fs::read(&path) else {
                continue;
            };
            let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
                .filter_map(Result::ok)
                .collect();
            if !certs.is_empty() {
                tracing::debug!(path = %path.display(), certs = certs.len(), "system trust store");
                return certs;
            }
        }
        tracing::warn!("no system trust store found; only registries' own CAs are trusted");
        Vec::new()
    })
}

/// The TLS client configuration for a registry: system roots plus `ca_pem`.
pub fn client_config(
    registry: &str,
    ca_pem: Option<&str>,
) -> Result<Arc<ClientConfig>, RegistryError> {
    let bad = |reason: String| RegistryError::BadCa {
        registry: registry.to_string(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let (_, _ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(pem) = ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| bad(format!("not PEM: {e}")))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no certificate in it".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
