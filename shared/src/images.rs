//! Image references, registry addresses and how to reach a registry: one definition for the
//! coordinator (which lists registries and hands out their access) and the agent (which pulls).

use serde::{Deserialize, Serialize};

/// `host[:port]/repository[:tag][@sha256:<hex>]`, split. Without tag and digest the tag is
/// `latest`; with a digest the digest decides and the tag is only a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> Reference<'a> {
    pub fn parse(reference: &'a str) -> Option<Reference<'a>> {
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (reference, None),
        };
        if digest.is_some_and(|d| !is_digest(d)) {
            return None;
        }
        let (registry, path) = rest.split_once('/')?;
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t)),
            _ => (path, None),
        };
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
        };
        let tag = tag.or(if digest.is_none() {
            Some("latest")
        } else {
            None
        });
        let fine = ok(registry)
            && ok(repository)
            && tag.is_none_or(|t| ok(t) && !t.contains(':'))
            && !repository.contains("..")
            && !repository.starts_with('/')
            && !repository.ends_with('/');
        fine.then_some(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry's `manifests/` for: the digest when there is one.
    pub fn manifest_ref(&self) -> &'a str {
        self.digest.or(self.tag).unwrap_or("latest")
    }

    /// `registry/repository@digest`: the name an image pulled as `digest` is kept under.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.registry, self.repository)
    }
}

/// `sha256:` and 64 lower-case hex digits.
pub fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The `host:port` a registry base URL (`http://host:port` or `https://host[:port]`, trailing
/// `/` allowed) is named by in image references; `None` for anything else (other schemes, paths).
pub fn registry_authority(url: &str) -> Option<&str> {
    let authority = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?
        .trim_end_matches('/');
    let fine = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    fine.then_some(authority)
}

/// When an agent fetches a container's image from its registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Only when the host does not hold the image yet.
    #[default]
    IfNotPresent,
    /// Every time the container is made: a moved tag is followed.
    Always,
    /// Never: the image must be on the host already.
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::IfNotPresent => "if-not-present",
            PullPolicy::Always => "always",
            PullPolicy::Never => "never",
        }
    }
}

/// Credentials for one registry. Sent to an agent only over the mutual-TLS link, only with a
/// spec that pulls from that registry; kept in memory there, never written down; `Debug`
/// does not show the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// How to reach one registry: its base URL, the CA that signs its certificate when the
/// system's trust store does not, whether plain HTTP is allowed, and its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAccess {
    /// `https://host[:port]`, or `http://host:port` with `insecure`.
    pub url: String,
    #[serde(default)]
    pub insecure: bool,
    /// PEM certificates trusted for this registry besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

impl RegistryAccess {
    /// A registry with nothing but its URL (an `http://` one is insecure by its scheme).
    pub fn plain(url: &str) -> RegistryAccess {
        RegistryAccess {
            url: url.to_string(),
            insecure: url.starts_with("http://"),
            ca_pem: None,
            credentials: None,
        }
    }

    /// The `host:port` image references name it by.
    pub fn authority(&self) -> Option<&str> {
        registry_authority(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parts(r: &str) -> Option<(&str, &str, Option<&str>)> {
        Reference::parse(r).map(|r| (r.registry, r.repository, r.tag))
    }

    #[test]
    fn references_split_into_registry_repository_and_tag() {
        assert_eq!(
            parts("127.0.0.1:5000/team/app:v1"),
            Some(("127.0.0.1:5000", "team/app", Some("v1")))
        );
        assert_eq!(
            parts("registry.example.com/app"),
            Some(("registry.example.com", "app", Some("latest")))
        );
        assert_eq!(parts("app:v1"), None);
        assert_eq!(parts("r.example/../x:1"), None);
        assert_eq!(parts("r.example/a b:1"), None);
    }

    #[test]
    fn references_by_digest_name_the_digest() {
        let a = format!("r.example:5000/team/app@{D}");
        let r = Reference::parse(&a).unwrap();
        assert_eq!(
            (r.registry, r.repository, r.tag, r.digest),
            ("r.example:5000", "team/app", None, Some(D))
        );
        assert_eq!(r.manifest_ref(), D);
        assert_eq!(r.pinned(D), format!("r.example:5000/team/app@{D}"));
        let b = format!("r.example/app:v2@{D}");
        let r = Reference::parse(&b).unwrap();
        assert_eq!((r.tag, r.manifest_ref()), (Some("v2"), D));
        assert_eq!(Reference::parse("r.example/app@sha256:abc"), None);
        assert_eq!(
            Reference::parse(&format!("r.example/app@{}", D.to_uppercase())),
            None
        );
    }

    #[test]
    fn registry_urls_name_their_authority() {
        assert_eq!(
            registry_authority("http://127.0.0.1:5000/"),
            Some("127.0.0.1:5000")
        );
        assert_eq!(registry_authority("https://r.example"), Some("r.example"));
        assert_eq!(registry_authority("ftp://r.example"), None);
        assert_eq!(registry_authority("http://r.example/v2"), None);
        assert_eq!(registry_authority("http://"), None);
    }

    #[test]
    fn credentials_do_not_debug_print_their_password() {
        let c = Credentials {
            username: "u".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
