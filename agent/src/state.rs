//! The agent's durable state in sled: the desired spec of every container it was given and
//! the last status it reported. containerd is the truth about what runs; this is the truth
//! about what should run, so the agent works on while the coordinator is away.

mod disowned;
#[cfg(test)]
mod killed;

use berth_service::records::{self, RecordError};
use berth_shared::protocol::{ContainerReport, ContainerSpec, ObservedState};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// What the restart policy has done to one container on this host and what it waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRecord {
    /// Restarts by the policy.
    pub count: u32,
    /// Exits in a row without a stable run: the backoff's exponent, and what `max_retries`
    /// is counted against.
    pub streak: u32,
    pub last_exit_code: Option<u32>,
    /// Unix seconds.
    pub last_exit_at: Option<u64>,
    /// Unix milliseconds of the last start.
    pub started_at_ms: Option<u64>,
    /// Set at a start, cleared when its exit is recorded: an exit is counted once.
    pub running: bool,
    /// A restart waiting for its backoff: unix milliseconds it is due, and what to say.
    pub due_ms: Option<u64>,
    pub reason: Option<String>,
    /// The policy left it stopped for the spec generation held then; a newer spec (a start,
    /// a PATCH) gives it another chance.
    pub halted_at_generation: Option<u64>,
}

impl RestartRecord {
    /// What the container's reports say of it.
    pub fn history(&self) -> berth_shared::protocol::Restarts {
        berth_shared::protocol::Restarts {
            count: self.count,
            last_exit_code: self.last_exit_code,
            last_exit_at: self.last_exit_at,
        }
    }
}

#[derive(Clone)]
pub struct State {
    db: sled::Db,
    specs: sled::Tree,
    reports: sled::Tree,
    /// Restart history and backoff by container ([`RestartRecord`]).
    restarts: sled::Tree,
    /// Container addresses: IPv4 (4 bytes) → container id.
    addresses: sled::Tree,
    /// Containers the coordinator disowned → unix ms of the first disown (`disowned`).
    disowned: sled::Tree,
}

impl State {
    pub fn open(path: &Path) -> Result<State, StateError> {
        State::with_db(sled::Config::new().path(path).open()?)
    }

    /// A state that lives in memory and is gone when dropped (tests).
    #[cfg(test)]
    pub fn temporary() -> Result<State, StateError> {
        State::with_db(sled::Config::new().temporary(true).open()?)
    }

    /// Stores bytes that are no spec under `id`, so reading the specs fails (tests).
    #[cfg(test)]
    pub fn corrupt_spec_for_test(&self, id: &str) -> Result<(), StateError> {
        self.specs.insert(id, &b"{not json"[..])?;
        Ok(())
    }

    fn with_db(db: sled::Db) -> Result<State, StateError> {
        Ok(State {
            specs: db.open_tree("specs")?,
            reports: db.open_tree("reports")?,
            restarts: db.open_tree("restarts")?,
            addresses: db.open_tree("addresses")?,
            disowned: db.open_tree("disowned")?,
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
        Ok(records::get(&self.specs, id.as_bytes())?)
    }

    pub fn specs(&self) -> Result<Vec<ContainerSpec>, StateError> {
        Ok(records::decode_all(self.specs.iter())?)
    }

    /// Stores `spec` if it is newer than what is held. Returns the generation now held.
    pub fn offer_spec(&self, spec: &ContainerSpec) -> Result<(u64, bool), StateError> {
        let value = records::encode(spec.id.as_bytes(), spec)?;
        loop {
            let old = self.specs.get(&spec.id)?;
            let held: Option<ContainerSpec> = match &old {
                Some(v) => Some(records::decode(spec.id.as_bytes(), v)?),
                None => None,
            };
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
        self.restarts.remove(id)?;
        self.disowned.remove(id)?;
        Ok(())
    }

    pub fn restarts(&self, id: &str) -> Result<Option<RestartRecord>, StateError> {
        Ok(records::get(&self.restarts, id.as_bytes())?)
    }

    /// Stores `r` and flushes: a restart decision outlives a kill -9 of the agent.
    pub async fn put_restarts(&self, id: &str, r: &RestartRecord) -> Result<(), StateError> {
        self.restarts
            .insert(id, records::encode(id.as_bytes(), r)?)?;
        self.flush().await
    }

    pub fn report(&self, id: &str) -> Result<Option<ContainerReport>, StateError> {
        Ok(records::get(&self.reports, id.as_bytes())?)
    }

    pub fn put_report(&self, r: &ContainerReport) -> Result<(), StateError> {
        self.reports
            .insert(&r.id, records::encode(r.id.as_bytes(), r)?)?;
        Ok(())
    }

    /// Every container held, with its last report (or `pending` before the first). Fails when
    /// any spec or report cannot be read: an inventory is never missing what it cannot read.
    pub fn inventory(&self) -> Result<Vec<ContainerReport>, StateError> {
        self.specs()?
            .into_iter()
            .map(|s| {
                Ok(self
                    .report(&s.id)?
                    .unwrap_or_else(|| ContainerReport::new(&s.id, 0, ObservedState::Pending)))
            })
            .collect()
    }
}
