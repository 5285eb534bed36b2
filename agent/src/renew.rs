//! Certificate rotation: the agent renews its link certificate over the link itself when a
//! third of its lifetime is left. A new P-256 key is made here and only its public half goes
//! to the coordinator, which signs it for the host key of the connection. The link then
//! reconnects with the new pair; containers are not touched.
//!
//! Key and certificate are replaced so that a crash at any point leaves a matching pair:
//! both are written completely as `*.new` first, then the key is renamed into place, then the
//! certificate; [`finish_interrupted`] completes or discards an interrupted replacement.

use crate::config::CoordinatorConfig;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    #[error("reading {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} is not an X.509 certificate: {message}")]
    Parse { path: String, message: String },
    #[error("key generation: {0}")]
    Key(String),
    #[error("the renewed certificate is not for the key this agent sent")]
    WrongKey,
    #[error(transparent)]
    Write(#[from] crate::enroll::EnrollError),
    #[error("renaming {path}: {source}")]
    Rename {
        path: String,
        source: std::io::Error,
    },
}

/// When a certificate is valid, in seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub not_before: i64,
    pub not_after: i64,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Lifetime {
    /// Whether to renew now: less than a third of the lifetime is left.
    pub fn due(&self) -> bool {
        let third = (self.not_after - self.not_before) / 3;
        now() >= self.not_after - third
    }

    /// How often to look: a twentieth of the lifetime, between 1 s and 10 min.
    pub fn check_every(&self) -> Duration {
        let secs = (self.not_after - self.not_before) / 20;
        Duration::from_secs(secs.clamp(1, 600) as u64)
    }
}

fn read_time(r: yasna::BERReader) -> yasna::ASN1Result<i64> {
    if r.lookahead_tag()? == yasna::tags::TAG_UTCTIME {
        Ok(r.read_utctime()?.datetime().unix_timestamp())
    } else {
        Ok(r.read_generalized_time()?.datetime().unix_timestamp())
    }
}

/// The validity of a DER certificate (RFC 5280 TBSCertificate, fields 1–5).
fn validity(der: &[u8]) -> yasna::ASN1Result<Lifetime> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let lifetime = r.next().read_sequence(|r| {
                r.read_optional(|r| r.read_tagged(yasna::Tag::context(0), |r| r.read_i64()))?;
                for _ in 0..3 {
                    r.next().read_der()?; // serial, signature algorithm, issuer
                }
                let lifetime = r.next().read_sequence(|r| {
                    Ok(Lifetime {
                        not_before: read_time(r.next())?,
                        not_after: read_time(r.next())?,
                    })
                })?;
                while r.read_optional(|r| r.read_der())?.is_some() {}
                Ok(lifetime)
            })?;
            while r.read_optional(|r| r.read_der())?.is_some() {}
            Ok(lifetime)
        })
    })
}

fn first_cert(path: &Path) -> Result<Vec<u8>, RenewError> {
    let certs = berth_service::tls::load_certs(path).map_err(|e| RenewError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(certs[0].to_vec())
}

/// The lifetime of the certificate in `path` (the first one of the file).
pub fn lifetime(path: &Path) -> Result<Lifetime, RenewError> {
    validity(&first_cert(path)?).map_err(|e| RenewError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// A renewal under way: the new key, kept until its certificate arrives.
pub struct Pending {
    key: rcgen::KeyPair,
}

impl Pending {
    pub fn new() -> Result<Self, RenewError> {
        let key = rcgen::KeyPair::generate().map_err(|e| RenewError::Key(e.to_string()))?;
        Ok(Self { key })
    }

    /// The public half to send: an uncompressed P-256 point.
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key_raw().to_vec()
    }
}

fn next_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".new");
    PathBuf::from(s)
}

fn rename(from: &Path, to: &Path) -> Result<(), RenewError> {
    std::fs::rename(from, to).map_err(|source| RenewError::Rename {
        path: to.display().to_string(),
        source,
    })
}

/// Puts the renewed pair in place of the old one (see the module doc for the order).
pub fn install(c: &CoordinatorConfig, pending: &Pending, cert_pem: &str) -> Result<(), RenewError> {
    install_at(&c.key, &c.cert, pending, cert_pem)
}

fn install_at(
    key: &Path,
    cert: &Path,
    pending: &Pending,
    cert_pem: &str,
) -> Result<(), RenewError> {
    let (key_next, cert_next) = (next_path(key), next_path(cert));
    crate::enroll::write(&key_next, &pending.key.serialize_pem(), 0o600)?;
    crate::enroll::write(&cert_next, cert_pem, 0o644)?;
    let der = first_cert(&cert_next)?;
    let public = pending.key.public_key_raw();
    if lifetime(&cert_next).is_err() || !der.windows(public.len()).any(|w| w == public) {
        let _ = std::fs::remove_file(&key_next);
        let _ = std::fs::remove_file(&cert_next);
        return Err(RenewError::WrongKey);
    }
    rename(&key_next, key)?;
    rename(&cert_next, cert)
}

/// At start: finishes a replacement a crash interrupted (the new certificate was complete, so
/// the new key was too) or drops a half-made one (the old pair is still whole).
pub fn finish_interrupted(c: &CoordinatorConfig) -> Result<(), RenewError> {
    finish_at(&c.key, &c.cert)
}

fn finish_at(key: &Path, cert: &Path) -> Result<(), RenewError> {
    let (key_next, cert_next) = (next_path(key), next_path(cert));
    if cert_next.exists() {
        if key_next.exists() {
            rename(&key_next, key)?;
        }
        rename(&cert_next, cert)?;
        tracing::info!(cert = %cert.display(), "finished a certificate renewal interrupted by a restart");
    } else if key_next.exists() {
        let _ = std::fs::remove_file(&key_next);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_validity_of_a_certificate() {
        let mut p = rcgen::CertificateParams::new(vec!["h1".to_string()]).unwrap();
        p.not_before = rcgen::date_time_ymd(2026, 1, 1);
        p.not_after = rcgen::date_time_ymd(2051, 1, 1); // GeneralizedTime from 2050 on
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let l = validity(cert.der()).unwrap();
        assert_eq!(l.not_before, 1_767_225_600);
        assert_eq!(l.not_after, 2_556_144_000);
        assert!(!l.due());
        assert_eq!(l.check_every(), Duration::from_secs(600));
        let old = Lifetime {
            not_before: now() - 70,
            not_after: now() + 30,
        };
        assert!(old.due());
        assert_eq!(old.check_every(), Duration::from_secs(5));
    }

    /// Every crash point of a replacement leaves a matching pair once `finish_at` ran.
    #[test]
    fn interrupted_replacements_end_with_a_matching_pair() {
        let dir = std::env::temp_dir().join(format!("berth-renew-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (key, cert) = (dir.join("agent.key"), dir.join("agent.pem"));
        let reset = || {
            for p in [&key, &cert, &next_path(&key), &next_path(&cert)] {
                let _ = std::fs::remove_file(p);
            }
            std::fs::write(&key, "old key").unwrap();
            std::fs::write(&cert, "old cert").unwrap();
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        // Crashed after writing the new key only: the old pair stays.
        reset();
        std::fs::write(next_path(&key), "new key").unwrap();
        finish_at(&key, &cert).unwrap();
        assert_eq!(
            (read(&key), read(&cert)),
            ("old key".into(), "old cert".into())
        );
        assert!(!next_path(&key).exists());
        // Crashed with both new files written: the new pair goes in.
        reset();
        std::fs::write(next_path(&key), "new key").unwrap();
        std::fs::write(next_path(&cert), "new cert").unwrap();
        finish_at(&key, &cert).unwrap();
        assert_eq!(
            (read(&key), read(&cert)),
            ("new key".into(), "new cert".into())
        );
        // Crashed between the two renames: the certificate follows the key.
        reset();
        std::fs::write(&key, "new key").unwrap();
        std::fs::write(next_path(&cert), "new cert").unwrap();
        finish_at(&key, &cert).unwrap();
        assert_eq!(
            (read(&key), read(&cert)),
            ("new key".into(), "new cert".into())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
