//! The registry side of a pull: a distribution v2 HTTP client for the registries named in
//! `[images] registries` — a manifest (from an index, its linux/<arch> entry) and blobs, whole
//! or streamed. Every request has a connect and a read timeout: a pull runs under the
//! container's lock, so a registry that stops answering must fail it, not hold it.

use bytes::Bytes;
use serde::Deserialize;
use std::time::Duration;

/// How long to wait for the registry to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a response may go without a byte (headers or body) before the pull fails.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Indexes inside indexes followed before giving up.
const MAX_INDEX_DEPTH: usize = 2;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("is not a registry reference")]
    NotAReference,
    #[error("registry {authority} is not in [images] registries")]
    NotListed { authority: String },
    #[error("HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("GET {url}: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("GET {url}: {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("manifest {url}: {source}")]
    Manifest {
        url: String,
        source: serde_json::Error,
    },
    #[error("index {url} has no linux/{arch} manifest")]
    NoPlatform { url: String, arch: String },
    #[error("manifest {url}: index nesting is too deep")]
    TooDeep { url: String },
}

/// A content descriptor of a manifest or index.
#[derive(Deserialize, Clone)]
pub struct Desc {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize, Clone)]
struct Platform {
    architecture: String,
    os: String,
}

/// An image manifest (`config` + `layers`) or an index (`manifests`).
#[derive(Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub config: Option<Desc>,
    #[serde(default)]
    pub layers: Vec<Desc>,
    #[serde(default)]
    manifests: Vec<Desc>,
}

/// An image manifest as served: its media type, its bytes (whose digest names it) and its
/// parsed form, which has a `config`.
pub struct Fetched {
    pub media_type: String,
    pub body: Vec<u8>,
    pub manifest: Manifest,
    pub config: Desc,
}

/// One repository of one registry.
pub struct Repository {
    http: reqwest::Client,
    /// `<registry>/v2/<repo>`
    base: String,
}

/// A blob's body, read chunk by chunk.
pub struct Blob {
    url: String,
    resp: reqwest::Response,
}

impl Blob {
    /// The next chunk; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, RegistryError> {
        self.resp
            .chunk()
            .await
            .map_err(|source| RegistryError::Request {
                url: self.url.clone(),
                source,
            })
    }
}

impl Repository {
    /// The repository `reference` names, on the one of `registries` (base URLs) it names;
    /// also returns the tag.
    pub fn of<'r>(
        registries: &[String],
        reference: &'r str,
    ) -> Result<(Repository, &'r str), RegistryError> {
        let (authority, repo, tag) =
            berth_shared::images::parse_reference(reference).ok_or(RegistryError::NotAReference)?;
        let registry = registries
            .iter()
            .find(|u| berth_shared::images::registry_authority(u) == Some(authority))
            .ok_or_else(|| RegistryError::NotListed {
                authority: authority.to_string(),
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(RegistryError::Client)?;
        let base = format!("{}/v2/{repo}", registry.trim_end_matches('/'));
        Ok((Repository { http, base }, tag))
    }

    async fn get(&self, url: String) -> Result<(String, reqwest::Response), RegistryError> {
        let sent = self.http.get(&url).header("accept", ACCEPT).send().await;
        let resp = match sent {
            Ok(r) => r,
            Err(source) => return Err(RegistryError::Request { url, source }),
        };
        if !resp.status().is_success() {
            let status = resp.status();
            return Err(RegistryError::Status { url, status });
        }
        Ok((url, resp))
    }

    async fn bytes(&self, url: String) -> Result<(String, Bytes), RegistryError> {
        let (url, resp) = self.get(url).await?;
        match resp.bytes().await {
            Ok(b) => Ok((url, b)),
            Err(source) => Err(RegistryError::Request { url, source }),
        }
    }

    /// The image manifest `tag` names; through an index, its linux/`arch` entry.
    pub async fn manifest(&self, tag: &str, arch: &str) -> Result<Fetched, RegistryError> {
        let mut at = tag.to_string();
        for _ in 0..=MAX_INDEX_DEPTH {
            let (url, resp) = self.get(format!("{}/manifests/{at}", self.base)).await?;
            let media_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = match resp.bytes().await {
                Ok(b) => b.to_vec(),
                Err(source) => return Err(RegistryError::Request { url, source }),
            };
            let manifest: Manifest =
                serde_json::from_slice(&body).map_err(|source| RegistryError::Manifest {
                    url: url.clone(),
                    source,
                })?;
            if let Some(config) = manifest.config.clone() {
                return Ok(Fetched {
                    media_type,
                    body,
                    manifest,
                    config,
                });
            }
            let pick = manifest.manifests.iter().find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            });
            at = match pick {
                Some(d) => d.digest.clone(),
                None => {
                    let arch = arch.to_string();
                    return Err(RegistryError::NoPlatform { url, arch });
                }
            };
        }
        Err(RegistryError::TooDeep {
            url: format!("{}/manifests/{at}", self.base),
        })
    }

    /// A whole blob (an image config: small).
    pub async fn blob_bytes(&self, digest: &str) -> Result<Bytes, RegistryError> {
        let (_, b) = self.bytes(format!("{}/blobs/{digest}", self.base)).await?;
        Ok(b)
    }

    /// A blob to stream (a layer: large).
    pub async fn blob(&self, digest: &str) -> Result<Blob, RegistryError> {
        let (url, resp) = self.get(format!("{}/blobs/{digest}", self.base)).await?;
        Ok(Blob { url, resp })
    }
}
