//! The agent's durable state in sled: the desired spec of every container it was given and
//! the last status it reported. containerd is the truth about what runs; this is the truth
//! about what should run, so the agent works on while the coordinator is away.

use berth_shared::protocol::{ContainerReport, ContainerSpec, ObservedState};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record {key} is corrupt: {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
}

#[derive(Clone)]
pub struct State {
    db: sled::Db,
    specs: sled::Tree,
    reports: sled::Tree,
    /// Container addresses: IPv4 (4 bytes) → container id.
    addresses: sled::Tree,
}

fn decode<T: serde::de::DeserializeOwned>(k: &[u8], v: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(v).map_err(|source| StateError::Corrupt {
        key: String::from_utf8_lossy(k).into_owned(),
        source,
    })
}

impl State {
    pub fn open(path: &Path) -> Result<State, StateError> {
        let db = sled::Config::new().path(path).open()?;
        Ok(State {
            specs: db.open_tree("specs")?,
            reports: db.open_tree("reports")?,
            addresses: db.open_tree("addresses")?,
            db,
        })
    }

    /// Every held address, by container id.
    pub fn addresses(
        &self,
    ) -> Result<std::collections::HashMap<String, std::net::Ipv4Addr>, StateError> {
        let mut out = std::collections::HashMap::new();
        for kv in self.addresses.iter() {
            let (k, v) = kv?;
            if let Ok(b) = <[u8; 4]>::try_from(k.as_ref()) {
                out.insert(String::from_utf8_lossy(&v).into_owned(), b.into());
            }
        }
        Ok(out)
    }

    /// The address held by `id`, if any.
    pub fn address_of(&self, id: &str) -> Result<Option<std::net::Ipv4Addr>, StateError> {
        Ok(self.addresses()?.remove(id))
    }

    /// Gives `id` the lowest free address of `candidates` (or the one it holds). Atomic: an
    /// address is never held by two containers.
    pub fn allocate_address(
        &self,
        id: &str,
        candidates: impl Iterator<Item = std::net::Ipv4Addr>,
    ) -> Result<Option<std::net::Ipv4Addr>, StateError> {
        if let Some(a) = self.address_of(id)? {
            return Ok(Some(a));
        }
        for a in candidates {
            let won =
                self.addresses
                    .compare_and_swap(a.octets(), None::<&[u8]>, Some(id.as_bytes()))?;
            if won.is_ok() {
                self.db.flush()?;
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    pub fn release_address(&self, id: &str) -> Result<(), StateError> {
        if let Some(a) = self.address_of(id)? {
            self.addresses.remove(a.octets())?;
            self.db.flush()?;
        }
        Ok(())
    }

    pub async fn flush(&self) -> Result<(), StateError> {
        self.db.flush_async().await?;
        Ok(())
    }

    pub fn spec(&self, id: &str) -> Result<Option<ContainerSpec>, StateError> {
        self.specs
            .get(id)?
            .map(|v| decode(id.as_bytes(), &v))
            .transpose()
    }

    pub fn specs(&self) -> Result<Vec<ContainerSpec>, StateError> {
        self.specs
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    /// Stores `spec` if it is newer than what is held. Returns the generation now held.
    pub fn offer_spec(&self, spec: &ContainerSpec) -> Result<(u64, bool), StateError> {
        let value = serde_json::to_vec(spec).map_err(|source| StateError::Corrupt {
            key: spec.id.clone(),
            source,
        })?;
        loop {
            let old = self.specs.get(&spec.id)?;
            let held: Option<ContainerSpec> = old
                .as_ref()
                .map(|v| decode(spec.id.as_bytes(), v))
                .transpose()?;
            if let Some(h) = &held {
                if h.generation >= spec.generation {
                    return Ok((h.generation, false));
                }
            }
            if self
                .specs
                .compare_and_swap(&spec.id, old, Some(value.clone()))?
                .is_ok()
            {
                return Ok((spec.generation, true));
            }
        }
    }

    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        self.specs.remove(id)?;
        self.reports.remove(id)?;
        Ok(())
    }

    pub fn report(&self, id: &str) -> Result<Option<ContainerReport>, StateError> {
        self.reports
            .get(id)?
            .map(|v| decode(id.as_bytes(), &v))
            .transpose()
    }

    pub fn put_report(&self, r: &ContainerReport) -> Result<(), StateError> {
        let v = serde_json::to_vec(r).map_err(|source| StateError::Corrupt {
            key: r.id.clone(),
            source,
        })?;
        self.reports.insert(&r.id, v)?;
        Ok(())
    }

    /// Every container held, with its last report (or `pending` before the first).
    pub fn inventory(&self) -> Result<Vec<ContainerReport>, StateError> {
        Ok(self
            .specs()?
            .into_iter()
            .map(|s| {
                self.report(&s.id)
                    .ok()
                    .flatten()
                    .unwrap_or(ContainerReport {
                        id: s.id,
                        generation: 0,
                        state: ObservedState::Pending,
                        reason: None,
                        memory_used_mb: None,
                        storage_used_gb: None,
                        recreated: None,
                        volume_preserved: None,
                        address: None,
                        at: berth_shared::time::now_unix().0,
                    })
            })
            .collect())
    }
}
