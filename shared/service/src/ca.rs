//! The cluster CA's certificate shapes, shared by the coordinator (which owns the CA and
//! signs with it) and the fleet simulator (which signs its simulated hosts' certificates with
//! the same CA key, as `tls issue-agent` would): the CA's fixed parameters, so its issuer can
//! be rebuilt from the key alone, and the leaf and agent certificate parameters.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("host key {0:?} must be a DNS label (a-z, 0-9, '-', at most 63)")]
    BadHostKey(String),
    #[error("certificate validity {0:?} is out of range")]
    Validity(Duration),
}

/// The CA's parameters. They are fixed so the issuer can be rebuilt from the CA key alone.
pub fn ca_params() -> Result<CertificateParams, CaError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name
        .push(DnType::CommonName, "Berth cluster CA");
    p.distinguished_name.push(DnType::OrganizationName, "Berth");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// The CA as a signer, from its key (PEM).
pub fn issuer(ca_key_pem: &str) -> Result<Issuer<'static, KeyPair>, CaError> {
    Ok(Issuer::new(ca_params()?, KeyPair::from_pem(ca_key_pem)?))
}

/// A leaf certificate's parameters: `names`, common name `cn`, one extended key usage.
pub fn leaf(
    names: Vec<String>,
    cn: &str,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, CaError> {
    let mut p = CertificateParams::new(names)?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![eku];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// An agent's client certificate parameters: its host key as name, valid from a little before
/// now (clock skew between hosts) to `valid` from now.
pub fn agent_params(host_key: &str, valid: Duration) -> Result<CertificateParams, CaError> {
    if !berth_shared::ids::is_host_key(host_key) {
        return Err(CaError::BadHostKey(host_key.to_string()));
    }
    let mut p = leaf(
        vec![host_key.to_string()],
        host_key,
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let skew = (valid / 10).min(Duration::from_secs(60));
    let at = |d: Duration| {
        time::OffsetDateTime::from_unix_timestamp(d.as_secs() as i64)
            .map_err(|_| CaError::Validity(valid))
    };
    p.not_before = at(now.saturating_sub(skew))?;
    p.not_after = at(now + valid)?;
    Ok(p)
}
