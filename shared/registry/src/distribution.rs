//! The distribution v2 API of one registry: manifests (by tag or digest; from an index, its
//! linux/<arch> entry), blobs (whole or streamed) and the catalog and tag lists. Everything
//! fetched by digest is checked against it: a manifest before it is parsed, a blob when its
//! last byte arrived — so a caller commits nothing that does not match.

use crate::auth::{self, Challenge};
use crate::http::{Response, Transport};
use crate::{sha256, Credentials, Hasher, RegistryAccess, RegistryError};
use bytes::Bytes;
use hyper::header::{HeaderName, ACCEPT, WWW_AUTHENTICATE};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use url::Url;

/// Indexes inside indexes followed before giving up.
const MAX_INDEX_DEPTH: usize = 2;
/// Largest manifest, index or image config accepted.
pub const MAX_DOCUMENT: usize = 4 << 20;

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor of a manifest or index.
#[derive(Debug, Deserialize, Clone)]
pub struct Desc {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
}

/// An image manifest (`config` + `layers`) or an index (`manifests`).
#[derive(Debug, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub config: Option<Desc>,
    #[serde(default)]
    pub layers: Vec<Desc>,
    #[serde(default)]
    pub manifests: Vec<Desc>,
}

/// An image manifest as served: its media type, bytes and digest, its parsed form, and the
/// digest the reference resolved to (the index's, when it was an index).
pub struct Fetched {
    pub media_type: String,
    pub body: Vec<u8>,
    pub digest: String,
    pub manifest: Manifest,
    pub config: Desc,
    pub resolved: String,
}

/// How requests to this registry are authorised after its first `401`.
#[derive(Default)]
enum Auth {
    #[default]
    Unknown,
    Basic,
    /// Tokens by scope.
    Bearer(HashMap<String, String>),
}

/// One registry: where it is, how to reach it and who to say we are.
pub struct Registry {
    base: Url,
    authority: String,
    transport: Transport,
    credentials: Option<Credentials>,
    auth: Mutex<Auth>,
}

impl Registry {
    pub fn new(access: &RegistryAccess) -> Result<Registry, RegistryError> {
        let bad = |reason| RegistryError::BadUrl {
            url: access.url.clone(),
            reason,
        };
        let authority = access
            .authority()
            .ok_or_else(|| bad("not http(s)://host[:port]"))?
            .to_string();
        let base = Url::parse(&access.url).map_err(|_| bad("not a URL"))?;
        if base.scheme() == "http" && !access.insecure {
            return Err(RegistryError::NotInsecure {
                registry: authority,
            });
        }
        let tls = crate::tls::client_config(&authority, access.ca_pem.as_deref())?;
        Ok(Registry {
            base,
            authority,
            transport: Transport {
                tls,
                insecure: access.insecure,
            },
            credentials: access.credentials.clone(),
            auth: Mutex::new(Auth::Unknown),
        })
    }

    /// The `host:port` image references name it by.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    fn authorization(&self, scope: &str) -> Option<String> {
        match &*self.auth.lock().unwrap_or_else(|p| p.into_inner()) {
            Auth::Unknown => None,
            Auth::Basic => self.credentials.as_ref().map(auth::basic),
            Auth::Bearer(tokens) => tokens.get(scope).map(|t| format!("Bearer {t}")),
        }
    }

    /// GET `path` (below the base), authorising as the registry asks; non-2xx answers are
    /// errors that say which.
    async fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        scope: &str,
    ) -> Result<Response, RegistryError> {
        let url = self.base.join(path).map_err(|_| RegistryError::BadUrl {
            url: format!("{}{path}", self.base),
            reason: "not a path",
        })?;
        let headers: Vec<(HeaderName, String)> = accept
            .map(|a| (ACCEPT, a.to_string()))
            .into_iter()
            .collect();
        let mut sent = self.authorization(scope);
        let mut resp = self.transport.get(&url, &headers, sent.as_deref()).await?;
        if resp.status == 401 {
            let challenge = resp
                .header(WWW_AUTHENTICATE.as_str())
                .and_then(auth::parse_challenge);
            let retry = match challenge {
                Some(Challenge::Basic) if sent.is_none() => {
                    *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = Auth::Basic;
                    self.credentials.as_ref().map(auth::basic)
                }
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope: asked,
                }) if !sent.as_deref().is_some_and(|s| s.starts_with("Bearer ")) => {
                    let asked = asked.unwrap_or_else(|| scope.to_string());
                    let t = auth::token(
                        &self.transport,
                        &realm,
                        service.as_deref(),
                        Some(&asked),
                        self.credentials.as_ref(),
                    )
                    .await?;
                    let mut a = self.auth.lock().unwrap_or_else(|p| p.into_inner());
                    if !matches!(*a, Auth::Bearer(_)) {
                        *a = Auth::Bearer(HashMap::new());
                    }
                    if let Auth::Bearer(tokens) = &mut *a {
                        tokens.insert(scope.to_string(), t.clone());
                    }
                    Some(format!("Bearer {t}"))
                }
                _ => None,
            };
            if let Some(r) = retry {
                sent = Some(r);
                resp = self.transport.get(&url, &headers, sent.as_deref()).await?;
            }
        }
        match resp.status {
            200..=299 => Ok(resp),
            401 | 403 => Err(RegistryError::Unauthorised {
                url: resp.url,
                status: resp.status,
                sent_credentials: sent.is_some() && self.credentials.is_some(),
            }),
            404 => Err(RegistryError::NotFound { url: resp.url }),
            status => Err(RegistryError::Status {
                url: resp.url,
                status,
            }),
        }
    }

    /// The image manifest `reference` (a tag or a digest) of `repo` names; through an index,
    /// its linux/`arch` entry. Fetched by digest, a document must hash to it.
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
        arch: &str,
    ) -> Result<Fetched, RegistryError> {
        let scope = pull_scope(repo);
        let mut at = reference.to_string();
        let mut resolved = None;
        for _ in 0..=MAX_INDEX_DEPTH {
            let resp = self
                .get(
                    &format!("v2/{repo}/manifests/{at}"),
                    Some(MANIFEST_TYPES),
                    &scope,
                )
                .await?;
            let url = resp.url.clone();
            let media_type = resp.header("content-type").unwrap_or_default().to_string();
            let body = resp.bytes(MAX_DOCUMENT).await?;
            let digest = sha256(&body);
            if berth_shared::images::is_digest(&at) && digest != at {
                return Err(RegistryError::DigestMismatch {
                    url,
                    expected: at,
                    actual: digest,
                });
            }
            let resolved = resolved.get_or_insert_with(|| digest.clone()).clone();
            let manifest: Manifest =
                serde_json::from_slice(&body).map_err(|source| RegistryError::Json {
                    what: "manifest",
                    url: url.clone(),
                    source,
                })?;
            if let Some(config) = manifest.config.clone() {
                if manifest.layers.is_empty() {
                    let reason = "has no layers";
                    return Err(RegistryError::BadManifest { url, reason });
                }
                return Ok(Fetched {
                    media_type,
                    body,
                    digest,
                    manifest,
                    config,
                    resolved,
                });
            }
            let pick = manifest.manifests.iter().find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            });
            at = match pick {
                Some(d) if berth_shared::images::is_digest(&d.digest) => d.digest.clone(),
                Some(_) => {
                    let reason = "an index entry has no sha256 digest";
                    return Err(RegistryError::BadManifest { url, reason });
                }
                None => {
                    let arch = arch.to_string();
                    return Err(RegistryError::NoPlatform { url, arch });
                }
            };
        }
        Err(RegistryError::TooDeep {
            url: format!("{}v2/{repo}/manifests/{at}", self.base),
        })
    }

    /// A whole small blob (an image config), checked against `digest`.
    pub async fn blob_bytes(&self, repo: &str, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let mut blob = self.blob(repo, digest).await?;
        let mut out = Vec::new();
        while let Some(c) = blob.chunk().await? {
            if out.len() + c.len() > MAX_DOCUMENT {
                let url = blob.resp.url.clone();
                return Err(RegistryError::TooLarge {
                    url,
                    max: MAX_DOCUMENT,
                });
            }
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    /// A blob to stream (a layer: large); its last `chunk` fails if the bytes do not hash to
    /// `digest`.
    pub async fn blob(&self, repo: &str, digest: &str) -> Result<Blob, RegistryError> {
        if !berth_shared::images::is_digest(digest) {
            return Err(RegistryError::BadManifest {
                url: format!("{}v2/{repo}/blobs/{digest}", self.base),
                reason: "a blob has no sha256 digest",
            });
        }
        let resp = self
            .get(
                &format!("v2/{repo}/blobs/{digest}"),
                None,
                &pull_scope(repo),
            )
            .await?;
        Ok(Blob {
            resp,
            hasher: Some(Hasher::default()),
            expected: digest.to_string(),
            bytes: 0,
        })
    }

    /// Up to `n` repositories, from the registry's catalog.
    pub async fn catalog(&self, n: usize) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Vec<String>,
        }
        let c: Catalog = self
            .json(&format!("v2/_catalog?n={n}"), "registry:catalog:*")
            .await?;
        Ok(c.repositories.into_iter().take(n).collect())
    }

    /// Up to `n` tags of `repo`.
    pub async fn tags(&self, repo: &str, n: usize) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let t: Tags = self
            .json(&format!("v2/{repo}/tags/list?n={n}"), &pull_scope(repo))
            .await?;
        Ok(t.tags.unwrap_or_default().into_iter().take(n).collect())
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        scope: &str,
    ) -> Result<T, RegistryError> {
        let resp = self.get(path, None, scope).await?;
        let url = resp.url.clone();
        let body = resp.bytes(MAX_DOCUMENT).await?;
        serde_json::from_slice(&body).map_err(|source| RegistryError::Json {
            what: "list",
            url,
            source,
        })
    }
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// A blob's body, read piece by piece and hashed on the way.
pub struct Blob {
    resp: Response,
    hasher: Option<Hasher>,
    expected: String,
    bytes: u64,
}

impl Blob {
    /// The next piece; `None` at the end, which comes only when the digest matched.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, RegistryError> {
        match self.resp.chunk().await? {
            Some(c) => {
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&c);
                }
                self.bytes += c.len() as u64;
                Ok(Some(c))
            }
            None => {
                let Some(h) = self.hasher.take() else {
                    return Ok(None);
                };
                let actual = h.finish();
                if actual != self.expected {
                    return Err(RegistryError::DigestMismatch {
                        url: self.resp.url.clone(),
                        expected: self.expected.clone(),
                        actual,
                    });
                }
                Ok(None)
            }
        }
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}
