//! The configured image registries (distribution v2, through [`berth_registry`]): which
//! `<host:port>/<repo>:<tag>` images they hold, for `GET /compute/images` and for checking
//! `image` on create, and how agents reach them ([`Registries::access_for`], handed out with
//! the specs that pull from them). Listings are cached for a few seconds so a page of
//! requests does not become a page of registry calls.

use crate::config::RegistrySetup;
use berth_registry::{Registry, RegistryAccess};
use berth_shared::images::Reference;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FRESH: Duration = Duration::from_secs(10);
/// At most this many repositories (and tags per repository) are listed.
const PAGE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("image registry {registry}: {source}")]
    Unreachable {
        registry: String,
        source: berth_registry::RegistryError,
    },
}

struct Entry {
    access: RegistryAccess,
    client: Registry,
    repositories: Vec<String>,
    cache: Mutex<Option<(Instant, Vec<String>)>>,
}

/// Every registry of `[images]`.
pub struct Registries {
    entries: Vec<Entry>,
}

impl Registries {
    /// A registry that cannot be set up (its CA unreadable as PEM) is left out, loudly.
    pub fn new(setups: Vec<RegistrySetup>) -> Registries {
        let mut entries = Vec::new();
        for s in setups {
            match Registry::new(&s.access) {
                Ok(client) => entries.push(Entry {
                    access: s.access,
                    client,
                    repositories: s.repositories,
                    cache: Mutex::new(None),
                }),
                Err(e) => {
                    tracing::error!(registry = %s.access.url, error = %e, "registry left out")
                }
            }
        }
        Registries { entries }
    }

    fn entry(&self, image: &str) -> Option<&Entry> {
        let r = Reference::parse(image)?;
        self.entries
            .iter()
            .find(|e| e.client.authority() == r.registry)
    }

    /// How an agent reaches the registry `image` names, if one is configured.
    pub fn access_for(&self, image: &str) -> Option<&RegistryAccess> {
        self.entry(image).map(|e| &e.access)
    }

    /// Every `<host:port>/<repo>:<tag>` the registries hold, sorted within each registry.
    pub async fn images(&self) -> Result<Vec<String>, RegistryError> {
        let mut out = Vec::new();
        for e in &self.entries {
            out.extend(e.images().await?);
        }
        Ok(out)
    }

    /// Whether `image` may be run: `None` when no configured registry is named by it; by
    /// tag, the tag is listed; by digest, its repository is (the agent checks the digest).
    pub async fn holds(&self, image: &str) -> Result<Option<bool>, RegistryError> {
        let (Some(e), Some(r)) = (self.entry(image), Reference::parse(image)) else {
            return Ok(None);
        };
        let listed = e.images().await?;
        let authority = e.client.authority();
        Ok(Some(match (r.digest, r.tag) {
            (None, Some(tag)) => listed.contains(&format!("{authority}/{}:{tag}", r.repository)),
            _ => {
                let prefix = format!("{authority}/{}:", r.repository);
                listed.iter().any(|i| i.starts_with(&prefix))
            }
        }))
    }
}

impl Entry {
    async fn images(&self) -> Result<Vec<String>, RegistryError> {
        if let Some((at, list)) = &*self.cache.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < FRESH {
                return Ok(list.clone());
            }
        }
        let fail = |source| RegistryError::Unreachable {
            registry: self.access.url.clone(),
            source,
        };
        let repos = if self.repositories.is_empty() {
            self.client.catalog(PAGE).await.map_err(fail)?
        } else {
            self.repositories.clone()
        };
        let authority = self.client.authority();
        let mut out = Vec::new();
        for repo in repos.iter().take(PAGE) {
            for tag in self.client.tags(repo, PAGE).await.map_err(fail)? {
                out.push(format!("{authority}/{repo}:{tag}"));
            }
        }
        out.sort();
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), out.clone()));
        Ok(out)
    }
}
