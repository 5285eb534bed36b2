//! The configured image registry (distribution v2 HTTP API): which `<host:port>/<repo>:<tag>`
//! images it holds, for `GET /compute/images` and for checking `image` on create. Listings are
//! cached for a few seconds so a page of requests does not become a page of registry calls.

use berth_shared::images;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FRESH: Duration = Duration::from_secs(10);
/// At most this many repositories (and tags per repository) are listed.
const PAGE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("image registry {url}: {message}")]
    Unreachable { url: String, message: String },
}

pub struct Registry {
    base: String,
    authority: String,
    http: reqwest::Client,
    cache: Mutex<Option<(Instant, Vec<String>)>>,
}

#[derive(serde::Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Tags {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Registry {
    /// `url` is validated by the config (`http://host[:port]`).
    pub fn new(url: &str) -> Registry {
        let base = url.trim_end_matches('/').to_string();
        let authority = images::registry_authority(url)
            .unwrap_or_default()
            .to_string();
        Registry {
            base,
            authority,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            cache: Mutex::new(None),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, RegistryError> {
        let url = format!("{}{path}", self.base);
        let fail = |message: String| RegistryError::Unreachable {
            url: self.base.clone(),
            message,
        };
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("GET {path}: {}", resp.status())));
        }
        resp.json().await.map_err(|e| fail(e.to_string()))
    }

    /// Every `<host:port>/<repo>:<tag>` in the registry, sorted.
    pub async fn images(&self) -> Result<Vec<String>, RegistryError> {
        if let Some((at, list)) = &*self.cache.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < FRESH {
                return Ok(list.clone());
            }
        }
        let catalog: Catalog = self.get(&format!("/v2/_catalog?n={PAGE}")).await?;
        let mut out = Vec::new();
        for repo in catalog.repositories.iter().take(PAGE) {
            let tags: Tags = self.get(&format!("/v2/{repo}/tags/list?n={PAGE}")).await?;
            for tag in tags.tags.unwrap_or_default().iter().take(PAGE) {
                out.push(format!("{}/{repo}:{tag}", self.authority));
            }
        }
        out.sort();
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), out.clone()));
        Ok(out)
    }

    /// Whether `image` names this registry (then it must be listed by it).
    pub fn names(&self, image: &str) -> bool {
        images::parse_reference(image).is_some_and(|(authority, _, _)| authority == self.authority)
    }
}
