//! Registry authentication as containerd's and Docker's clients do it: ask without
//! credentials; on `401` read `WWW-Authenticate` — `Basic` → the configured username and
//! password; `Bearer realm=…,service=…,scope=…` → a token from the realm (sending the
//! credentials there, as the distribution token spec has it), then the request again with it.

use crate::http::Transport;
use crate::{Credentials, RegistryError};
use base64::Engine;
use url::Url;

/// What a `401` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (one challenge; the first is taken).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    for (k, v) in params(rest) {
        match k.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(v),
            "service" => service = Some(v),
            "scope" => scope = Some(v),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

/// `k="v", k2=v2` pairs; quoted values may hold commas (scopes do: `repository:a:pull,push`).
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some((k, after)) = rest.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (q[..end].to_string(), &q[end + 1..]),
                None => (q.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_string(), &after[end..]),
                None => (after.trim().to_string(), ""),
            }
        };
        out.push((k, v));
        rest = next.trim_start().trim_start_matches(',');
    }
    out
}

/// `Basic <base64(user:password)>`.
pub fn basic(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// A token for `scope` from the challenge's realm.
pub async fn token(
    transport: &Transport,
    realm: &str,
    service: Option<&str>,
    scope: Option<&str>,
    credentials: Option<&Credentials>,
) -> Result<String, RegistryError> {
    let fail = |reason: String| RegistryError::Token {
        realm: realm.to_string(),
        reason,
    };
    let mut url = Url::parse(realm).map_err(|e| fail(format!("realm is not a URL: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        if let Some(s) = scope {
            q.append_pair("scope", s);
        }
    }
    let auth = credentials.map(basic);
    let resp = transport.get(&url, &[], auth.as_deref()).await?;
    match resp.status {
        200..=299 => {}
        401 | 403 => {
            return Err(RegistryError::Unauthorised {
                url: url.to_string(),
                status: resp.status,
                sent_credentials: credentials.is_some(),
            })
        }
        s => return Err(fail(format!("answered {s}"))),
    }
    let body = resp.bytes(1 << 20).await?;
    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|source| RegistryError::Json {
            what: "token",
            url: url.to_string(),
            source,
        })?;
    answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| fail("the answer holds no token".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_registries_send_them() {
        assert_eq!(
            parse_challenge("Basic realm=\"Registry\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                "Bearer realm=\"https://auth.example/token\",service=\"registry.example\",scope=\"repository:team/app:pull,push\""
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:team/app:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge("bearer realm=https://a/t, service=s"),
            Some(Challenge::Bearer {
                realm: "https://a/t".into(),
                service: Some("s".into()),
                scope: None,
            })
        );
        assert_eq!(parse_challenge("Bearer service=\"s\""), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        let c = Credentials {
            username: "aladdin".into(),
            password: "opensesame".into(),
        };
        assert_eq!(basic(&c), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    }
}
