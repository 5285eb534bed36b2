//! Authentication: bearer JWTs verified with jsonwebtoken. The user is the token's `sub`;
//! nothing in a request body can name a user.

use crate::config::{AuthConfig, JwtAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("key {what} is not usable: {source}")]
    Key {
        what: &'static str,
        source: jsonwebtoken::errors::Error,
    },
    #[error("no signing key configured for {0:?} (set auth.private_key_file)")]
    NoSigningKey(JwtAlgorithm),
    #[error("the HS256 secret has {0} bytes; it needs at least {MIN_SECRET}")]
    WeakSecret(usize),
    #[error("token rejected: {0}")]
    Rejected(String),
}

/// The shortest HS256 secret accepted, inline or from `secret_file` (an empty file would
/// make every token forgeable).
pub const MIN_SECRET: usize = 32;

/// Claims Berth reads. `scopes` is optional: a token without it is a full user session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Scopes>,
}

/// Resource → allowed actions, e.g. `{"compute.alice.containers": ["read", "create"]}`.
pub type Scopes = std::collections::BTreeMap<String, Vec<String>>;

/// The verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    /// `None`: a full user session. `Some`: only what the scopes grant.
    pub scopes: Option<Scopes>,
    /// The token's `exp` (Unix seconds); 0 for the anonymous caller.
    pub expires: u64,
}

impl User {
    /// Whether the token may do `action` on `resource`. A scope on `compute.alice.containers`
    /// covers `compute.alice.containers.<id>`; `*` allows every action.
    pub fn allows(&self, resource: &str, action: &str) -> bool {
        let Some(scopes) = &self.scopes else {
            return true;
        };
        scopes.iter().any(|(granted, actions)| {
            let covers = resource == granted
                || resource
                    .strip_prefix(granted.as_str())
                    .is_some_and(|rest| rest.starts_with('.'));
            covers && actions.iter().any(|a| a == action || a == "*")
        })
    }

    pub fn is_admin(&self) -> bool {
        self.scopes
            .as_ref()
            .is_some_and(|s| s.contains_key("compute.admin"))
    }

    /// The caller of a public route: no id, and no scope grants it anything.
    pub fn anonymous() -> User {
        User {
            id: String::new(),
            scopes: Some(Scopes::new()),
            expires: 0,
        }
    }
}

/// Parses `--scope compute.alice.containers:read,create` arguments.
pub fn parse_scopes(args: &[String]) -> Result<Scopes, String> {
    let mut out = Scopes::new();
    for a in args {
        let (res, acts) = a
            .split_once(':')
            .ok_or_else(|| format!("scope {a:?} must look like RESOURCE:ACTION[,ACTION]"))?;
        out.entry(res.to_string())
            .or_default()
            .extend(acts.split(',').map(str::to_string));
    }
    Ok(out)
}

pub struct Authenticator {
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    /// Tokens verified before, with their caller and `exp`: a client sending the same token
    /// on every request costs one signature check, not one per request.
    verified: Mutex<HashMap<String, (User, u64)>>,
}

/// Verified tokens remembered at most; the table starts afresh when full.
const VERIFIED_MAX: usize = 4096;

fn read(path: &std::path::Path) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|source| AuthError::KeyFile {
        path: path.display().to_string(),
        source,
    })
}

fn key_err(what: &'static str) -> impl Fn(jsonwebtoken::errors::Error) -> AuthError {
    move |source| AuthError::Key { what, source }
}

/// A user id must be usable as a store key and in a log line.
fn valid_subject(sub: &str) -> bool {
    !sub.is_empty() && sub.len() <= 128 && !sub.chars().any(|c| c.is_control())
}

impl Authenticator {
    pub fn from_config(cfg: &AuthConfig) -> Result<Authenticator, AuthError> {
        let (algorithm, decoding, encoding) = match cfg.algorithm {
            JwtAlgorithm::HS256 => {
                let secret = match (&cfg.secret, &cfg.secret_file) {
                    (Some(s), _) => s.as_bytes().to_vec(),
                    (None, Some(p)) => {
                        let mut s = read(p)?;
                        while s.last().is_some_and(|b| b.is_ascii_whitespace()) {
                            s.pop();
                        }
                        s
                    }
                    (None, None) => Vec::new(),
                };
                if secret.len() < MIN_SECRET {
                    return Err(AuthError::WeakSecret(secret.len()));
                }
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(&secret),
                    Some(EncodingKey::from_secret(&secret)),
                )
            }
            JwtAlgorithm::RS256 | JwtAlgorithm::EdDSA => {
                let rsa = cfg.algorithm == JwtAlgorithm::RS256;
                let public = read(
                    cfg.public_key_file
                        .as_deref()
                        .unwrap_or_else(|| "".as_ref()),
                )?;
                let decoding = if rsa {
                    DecodingKey::from_rsa_pem(&public)
                } else {
                    DecodingKey::from_ed_pem(&public)
                }
                .map_err(key_err("public"))?;
                let encoding = match &cfg.private_key_file {
                    Some(p) => {
                        let private = read(p)?;
                        Some(
                            if rsa {
                                EncodingKey::from_rsa_pem(&private)
                            } else {
                                EncodingKey::from_ed_pem(&private)
                            }
                            .map_err(key_err("private"))?,
                        )
                    }
                    None => None,
                };
                let alg = if rsa {
                    Algorithm::RS256
                } else {
                    Algorithm::EdDSA
                };
                (alg, decoding, encoding)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = cfg.leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Authenticator {
            algorithm,
            decoding,
            encoding,
            validation,
            verified: Mutex::default(),
        })
    }

    /// Verifies signature, algorithm (never `none`), `exp`, `nbf` and `iat` (a token issued
    /// later than now, beyond the leeway, is refused: no clock skew explains it).
    /// A token verified before is answered from memory until its `exp` (plus the leeway)
    /// passes, exactly as long as verifying it again would succeed.
    pub fn verify(&self, token: &str) -> Result<User, AuthError> {
        let (now, _) = berth_shared::time::now_unix();
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((user, exp)) = verified.get(token) {
            if now <= exp.saturating_add(self.validation.leeway) {
                return Ok(user.clone());
            }
            verified.remove(token);
        }
        drop(verified);
        let (user, exp) = self.check(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(token.to_string(), (user.clone(), exp));
        Ok(user)
    }

    /// Until when (Unix seconds) `user`'s token verifies: its `exp` plus the leeway. A
    /// stream opened with it (the status WebSocket) ends then.
    pub fn valid_until(&self, user: &User) -> u64 {
        user.expires.saturating_add(self.validation.leeway)
    }

    /// The signature and claims check itself; the caller and the token's `exp`.
    fn check(&self, token: &str) -> Result<(User, u64), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::Rejected(e.to_string()))?;
        if !valid_subject(&data.claims.sub) {
            return Err(AuthError::Rejected("unusable subject".into()));
        }
        let (now, _) = berth_shared::time::now_unix();
        if data
            .claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(self.validation.leeway))
        {
            return Err(AuthError::Rejected("issued in the future".into()));
        }
        Ok((
            User {
                id: data.claims.sub,
                scopes: data.claims.scopes,
                expires: data.claims.exp,
            },
            data.claims.exp,
        ))
    }

    /// Signs a token for `user` valid for `ttl` (the `token` subcommand).
    pub fn issue(
        &self,
        user: &str,
        ttl: Duration,
        scopes: Option<Scopes>,
    ) -> Result<String, AuthError> {
        let key = self
            .encoding
            .as_ref()
            .ok_or(AuthError::NoSigningKey(match self.algorithm {
                Algorithm::RS256 => JwtAlgorithm::RS256,
                _ => JwtAlgorithm::EdDSA,
            }))?;
        if !valid_subject(user) {
            return Err(AuthError::Rejected("unusable subject".into()));
        }
        let (now, _) = berth_shared::time::now_unix();
        let claims = Claims {
            sub: user.to_string(),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            nbf: Some(now),
            scopes,
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key)
            .map_err(|e| AuthError::Rejected(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn auth(secret: &str) -> Authenticator {
        Authenticator::from_config(&AuthConfig {
            algorithm: JwtAlgorithm::HS256,
            secret: Some(secret.into()),
            secret_file: None,
            public_key_file: None,
            private_key_file: None,
            leeway_secs: 0,
            cookie_name: "c".into(),
        })
        .expect("config")
    }

    const S1: &str = "0123456789abcdef0123456789abcdef";
    const S2: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn a_remembered_token_ends_when_it_expires() {
        let a = auth(S1);
        let t = a
            .issue("alice", Duration::from_secs(1), None)
            .expect("issue");
        assert_eq!(a.verify(&t).expect("verify").id, "alice");
        assert_eq!(a.verify(&t).expect("from memory").id, "alice");
        std::thread::sleep(Duration::from_millis(2100));
        assert!(a.verify(&t).is_err(), "expired, remembered or not");
        // A changed token is never the remembered one.
        let mut forged = t.clone();
        forged.pop();
        assert!(a.verify(&forged).is_err());
    }

    #[test]
    fn round_trip() {
        let a = auth(S1);
        let t = a
            .issue("alice", Duration::from_secs(60), None)
            .expect("issue");
        assert_eq!(a.verify(&t).expect("verify").id, "alice");
    }

    #[test]
    fn rejects_other_key_none_and_expired() {
        let a = auth(S1);
        let other = auth(S2)
            .issue("alice", Duration::from_secs(60), None)
            .expect("issue");
        assert!(a.verify(&other).is_err());

        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(br#"{"sub":"alice","exp":99999999999}"#);
        assert!(a.verify(&format!("{header}.{body}.")).is_err());

        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "alice".into(),
                exp: 1000,
                iat: None,
                nbf: None,
                scopes: None,
            },
            &EncodingKey::from_secret(S1.as_bytes()),
        )
        .expect("encode");
        assert!(a.verify(&expired).is_err());
        assert!(a.verify("garbage").is_err());
    }

    fn signed(claims: &Claims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(S1.as_bytes()),
        )
        .expect("encode")
    }

    #[test]
    fn a_token_issued_in_the_future_is_refused_beyond_the_leeway() {
        let (now, _) = berth_shared::time::now_unix();
        let claims = |iat| Claims {
            sub: "alice".into(),
            exp: now + 600,
            iat: Some(iat),
            nbf: None,
            scopes: None,
        };
        let strict = auth(S1);
        assert!(strict.verify(&signed(&claims(now + 120))).is_err());
        assert!(strict.verify(&signed(&claims(now))).is_ok());
        let mut cfg = AuthConfig {
            algorithm: JwtAlgorithm::HS256,
            secret: Some(S1.into()),
            secret_file: None,
            public_key_file: None,
            private_key_file: None,
            leeway_secs: 60,
            cookie_name: "c".into(),
        };
        let lenient = Authenticator::from_config(&cfg).expect("config");
        assert!(lenient.verify(&signed(&claims(now + 30))).is_ok());
        assert!(lenient.verify(&signed(&claims(now + 120))).is_err());
        cfg.leeway_secs = 0;
        let far = claims(u64::MAX);
        assert!(Authenticator::from_config(&cfg)
            .expect("config")
            .verify(&signed(&far))
            .is_err());
    }

    #[test]
    fn a_short_or_empty_secret_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("berth-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for (content, ok) in [("", false), (" \n", false), ("short", false), (S1, true)] {
            let path = dir.join("secret");
            std::fs::write(&path, format!("{content}\n")).expect("write");
            let cfg = AuthConfig {
                algorithm: JwtAlgorithm::HS256,
                secret: None,
                secret_file: Some(path),
                public_key_file: None,
                private_key_file: None,
                leeway_secs: 0,
                cookie_name: "c".into(),
            };
            let got = Authenticator::from_config(&cfg);
            assert_eq!(got.is_ok(), ok, "secret file {content:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn eddsa_public_keys_verify_and_other_keys_do_not() {
        let dir = std::env::temp_dir().join(format!("berth-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let write_pair = |name: &str| {
            let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("keypair");
            std::fs::write(dir.join(format!("{name}.key")), kp.serialize_pem()).expect("write");
            std::fs::write(dir.join(format!("{name}.pub")), kp.public_key_pem()).expect("write");
        };
        write_pair("a");
        write_pair("b");
        let cfg = |name: &str| AuthConfig {
            algorithm: JwtAlgorithm::EdDSA,
            secret: None,
            secret_file: None,
            public_key_file: Some(dir.join(format!("{name}.pub"))),
            private_key_file: Some(dir.join(format!("{name}.key"))),
            leeway_secs: 0,
            cookie_name: "c".into(),
        };
        let a = Authenticator::from_config(&cfg("a")).expect("a");
        let b = Authenticator::from_config(&cfg("b")).expect("b");
        let t = a
            .issue("alice", Duration::from_secs(60), None)
            .expect("issue");
        assert_eq!(a.verify(&t).expect("verify").id, "alice");
        assert!(b.verify(&t).is_err(), "another key pair must not verify");
        // An HS256 token made with the public key as secret (algorithm confusion) is refused.
        let public = std::fs::read(dir.join("a.pub")).expect("pub");
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "alice".into(),
                exp: 9_999_999_999,
                iat: None,
                nbf: None,
                scopes: None,
            },
            &EncodingKey::from_secret(&public),
        )
        .expect("encode");
        assert!(a.verify(&forged).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn scopes_cover_sub_resources_and_actions() {
        let u = User {
            id: "alice".into(),
            scopes: Some(
                parse_scopes(&[
                    "compute.alice.containers:read".into(),
                    "compute.alice.keys:*".into(),
                ])
                .expect("scopes"),
            ),
            expires: 0,
        };
        assert!(u.allows("compute.alice.containers", "read"));
        assert!(u.allows("compute.alice.containers.abc12345", "read"));
        assert!(!u.allows("compute.alice.containers.abc12345", "delete"));
        assert!(!u.allows("compute.alice.containersx", "read"));
        assert!(u.allows("compute.alice.keys", "delete"));
        assert!(!u.allows("compute.bob.containers", "read"));
        assert!(User {
            id: "a".into(),
            scopes: None,
            expires: 0,
        }
        .allows("anything", "delete"));
        assert!(parse_scopes(&["nocolon".into()]).is_err());
    }
}
