//! The cluster CA: `tls init` makes it and the coordinator's certificate, `tls issue-agent`,
//! enrollment and renewal sign agent certificates whose DNS name is the agent's host key and
//! whose lifetime is `[link] agent_cert_validity`.

use crate::config::LinkConfig;
use berth_service::ca::{self, ca_params, leaf, CaError};
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, Issuer, KeyPair};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error("the public key must be an uncompressed P-256 point")]
    BadPublicKey,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `contents` to `path`, creating parent directories; `secret` files get mode 0600.
fn write(path: &Path, contents: &str, secret: bool) -> Result<(), PkiError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(contents.as_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn issuer(link: &LinkConfig) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let pem = std::fs::read_to_string(&link.ca_key).map_err(io_err(&link.ca_key))?;
    Ok(ca::issuer(&pem)?)
}

/// Creates the CA (unless it exists and `force` is off) and a fresh coordinator certificate.
/// Returns whether a new CA was made.
pub fn init(link: &LinkConfig, force: bool) -> Result<bool, PkiError> {
    let new_ca = force || !link.ca_key.exists() || !link.ca_cert.exists();
    if new_ca {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write(&link.ca_key, &key.serialize_pem(), true)?;
        write(&link.ca_cert, &cert.pem(), false)?;
    }
    let issuer = issuer(link)?;
    let key = KeyPair::generate()?;
    let params = leaf(
        link.server_names.clone(),
        "berth-coordinator",
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let cert = params.signed_by(&key, &issuer)?;
    write(&link.key, &key.serialize_pem(), true)?;
    write(&link.cert, &cert.pem(), false)?;
    Ok(new_ca)
}

/// An agent's client certificate parameters: its host key as name, `[link]
/// agent_cert_validity` as lifetime.
fn agent_params(link: &LinkConfig, host_key: &str) -> Result<CertificateParams, PkiError> {
    Ok(ca::agent_params(host_key, link.agent_cert_validity)?)
}

/// Signs a certificate for an agent; writes `agent.pem`, `agent.key` and `ca.pem` into `out`.
pub fn issue_agent(link: &LinkConfig, host_key: &str, out: &Path) -> Result<(), PkiError> {
    let params = agent_params(link, host_key)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer(link)?)?;
    let ca = std::fs::read_to_string(&link.ca_cert).map_err(io_err(&link.ca_cert))?;
    write(&out.join("agent.key"), &key.serialize_pem(), true)?;
    write(&out.join("agent.pem"), &cert.pem(), false)?;
    write(&out.join("ca.pem"), &ca, false)?;
    Ok(())
}

/// Signs a wildcard server certificate for `*.<domain>` (and `<domain>`) for the agents' HTTPS
/// ingress gateway; writes `ingress.pem` and `ingress.key` into `out`. Browsers trust it once
/// they trust the cluster CA; operators may use any other certificate instead.
pub fn issue_ingress(link: &LinkConfig, domain: &str, out: &Path) -> Result<(), PkiError> {
    let issuer = issuer(link)?;
    let key = KeyPair::generate()?;
    let params = leaf(
        vec![format!("*.{domain}"), domain.to_string()],
        domain,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let cert = params.signed_by(&key, &issuer)?;
    write(&out.join("ingress.key"), &key.serialize_pem(), true)?;
    write(&out.join("ingress.pem"), &cert.pem(), false)?;
    Ok(())
}

/// The secret enrollment tokens are signed with: derived from the CA key, so only who holds the
/// CA (the coordinator host, its CLI) can mint them.
pub fn enroll_secret(link: &LinkConfig) -> Result<Vec<u8>, PkiError> {
    let pem = std::fs::read(&link.ca_key).map_err(io_err(&link.ca_key))?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"berth-enroll-v1\n");
    ctx.update(&pem);
    Ok(ctx.finish().as_ref().to_vec())
}

/// SHA-256 of the cluster CA certificate file, hex: agents pin it during enrollment.
pub fn ca_fingerprint(link: &LinkConfig) -> Result<String, PkiError> {
    let pem = std::fs::read(&link.ca_cert).map_err(io_err(&link.ca_cert))?;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &pem);
    Ok(berth_shared::ids::hex(d.as_ref()))
}

/// A P-256 public key an enrolling agent sent (uncompressed point).
struct P256Public(Vec<u8>);

impl rcgen::PublicKeyData for P256Public {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// Signs a client certificate for `host_key` over the agent's own P-256 public key (its
/// private key never leaves the agent): enrollment and renewal. Returns `(certificate, CA
/// certificate)` PEM.
/// `public_key` is an uncompressed P-256 point on the curve (not just 65 bytes).
pub fn check_public_key(public_key: &[u8]) -> Result<(), PkiError> {
    use aws_lc_rs::agreement::{ParsedPublicKey, UnparsedPublicKey, ECDH_P256};
    if public_key.len() != 65 || public_key[0] != 4 {
        return Err(PkiError::BadPublicKey);
    }
    ParsedPublicKey::try_from(&UnparsedPublicKey::new(&ECDH_P256, public_key))
        .map(|_| ())
        .map_err(|_| PkiError::BadPublicKey)
}

pub fn issue_for_key(
    link: &LinkConfig,
    host_key: &str,
    public_key: &[u8],
) -> Result<(String, String), PkiError> {
    let params = agent_params(link, host_key)?;
    check_public_key(public_key)?;
    let cert = params.signed_by(&P256Public(public_key.to_vec()), &issuer(link)?)?;
    let ca = std::fs::read_to_string(&link.ca_cert).map_err(io_err(&link.ca_cert))?;
    Ok((cert.pem(), ca))
}

#[cfg(test)]
mod tests {
    use super::check_public_key;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    #[test]
    fn only_points_on_the_curve_are_keys() {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("key");
        assert!(check_public_key(pair.public_key().as_ref()).is_ok());
        let mut off_curve = vec![4u8];
        off_curve.extend_from_slice(&[1u8; 64]);
        assert!(check_public_key(&off_curve).is_err());
        assert!(check_public_key(&[4u8; 33]).is_err());
    }
}
