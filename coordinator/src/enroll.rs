//! Agent enrollment: `berth-coordinator enroll --host-key KEY` mints a one-time join token
//! (HS256 over a secret derived from the CA key, expiring, naming the host key and pinning the
//! CA); the agent sends it once with its own public key and gets its certificate. A token works
//! once: its id is stored as redeemed before the certificate goes out.

use crate::config::LinkConfig;
use crate::error::Error;
use crate::pki;
use crate::store::Store;
use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct EnrollClaims {
    /// The host key the certificate will name.
    pub sub: String,
    pub exp: u64,
    /// Token id: redeemed once.
    pub jti: String,
    /// SHA-256 (hex) of the CA certificate file the agent must end up trusting.
    pub ca: String,
    /// Marks the token as an enrollment token (never a user session).
    pub purpose: String,
}

const PURPOSE: &str = "berth-enroll";

pub fn mint(link: &LinkConfig, host_key: &str, ttl: std::time::Duration) -> Result<String, String> {
    if !berth_shared::ids::is_host_key(host_key) {
        return Err(format!("host key {host_key:?} must be a DNS label"));
    }
    let secret = pki::enroll_secret(link).map_err(|e| e.to_string())?;
    let mut id = [0u8; 16];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| "no randomness".to_string())?;
    let claims = EnrollClaims {
        sub: host_key.into(),
        exp: berth_shared::time::now_unix().0 + ttl.as_secs(),
        jti: berth_shared::ids::hex(&id),
        ca: pki::ca_fingerprint(link).map_err(|e| e.to_string())?,
        purpose: PURPOSE.into(),
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&secret),
    )
    .map_err(|e| e.to_string())
}

#[derive(Debug, Serialize)]
pub struct Enrolled {
    pub host_key: String,
    pub certificate: String,
    pub ca_certificate: String,
}

/// Redeems `token` for a certificate over `public_key` (base64, uncompressed P-256).
pub async fn redeem(
    link: &LinkConfig,
    store: &dyn Store,
    token: &str,
    public_key: &str,
) -> Result<Enrolled, Error> {
    let secret = pki::enroll_secret(link)
        .map_err(|e| Error::Unavailable(format!("enrollment is not possible here: {e}")))?;
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    v.validate_aud = false;
    v.required_spec_claims = ["exp", "sub"].iter().map(|s| s.to_string()).collect();
    let claims = decode::<EnrollClaims>(token, &DecodingKey::from_secret(&secret), &v)
        .map_err(|e| Error::Forbidden(format!("enrollment token refused: {e}")))?
        .claims;
    if claims.purpose != PURPOSE {
        return Err(Error::Forbidden("not an enrollment token".into()));
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(public_key.trim())
        .map_err(|_| Error::invalid("public_key", "must be base64"))?;
    if key.len() != 65 || key[0] != 4 {
        return Err(Error::invalid(
            "public_key",
            "must be an uncompressed P-256 point",
        ));
    }
    if !store.redeem_enrollment(&claims.jti, &claims.sub).await? {
        return Err(Error::Conflict(
            "this enrollment token was already used".into(),
        ));
    }
    store.flush().await?;
    // A used token is 409 whatever the key; a token spent on a key off the curve stays spent
    // (only a broken or hostile client sends one).
    if pki::check_public_key(&key).is_err() {
        return Err(Error::invalid(
            "public_key",
            "is not a point on the P-256 curve; this token is now used",
        ));
    }
    let (certificate, ca_certificate) = pki::issue_for_key(link, &claims.sub, &key)
        .map_err(|e| Error::Unavailable(format!("issuing the certificate: {e}")))?;
    tracing::info!(host_key = %claims.sub, "agent enrolled");
    Ok(Enrolled {
        host_key: claims.sub,
        certificate,
        ca_certificate,
    })
}
