//! `berth-coordinator store migrate`: moves an installation's records from the embedded
//! sled store into PostgreSQL. The sled store is read whole (the coordinator must be stopped:
//! sled's lock says so otherwise), written to an empty PostgreSQL database in one
//! transaction, and counted back before the command reports success. Ids keep counting
//! from where sled was, so no key or ingress rule id is ever handed out twice.

use super::{
    ContainerRecord, EventRecord, IdempotencyRecord, KeyRecord, PgStore, SledStore, StoreError,
    VolumeRecord,
};
use crate::config::StoreConfig;
use std::path::Path;

/// Everything a store holds.
#[derive(Debug, Default)]
pub struct Export {
    pub containers: Vec<ContainerRecord>,
    /// `(container id, event)`, events with their sequence numbers.
    pub events: Vec<(String, EventRecord)>,
    pub keys: Vec<KeyRecord>,
    pub cordoned: Vec<String>,
    /// `(join token id, host key)`.
    pub enrollments: Vec<(String, String)>,
    pub idempotency: Vec<IdempotencyRecord>,
    pub volumes: Vec<VolumeRecord>,
    /// The next id to hand out is above this one.
    pub last_id: u64,
}

/// How many of each were moved (and found again in the target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub containers: usize,
    pub events: usize,
    pub keys: usize,
    pub cordoned: usize,
    pub enrollments: usize,
    pub idempotency: usize,
    pub volumes: usize,
}

impl Export {
    pub fn counts(&self) -> Counts {
        Counts {
            containers: self.containers.len(),
            events: self.events.len(),
            keys: self.keys.len(),
            cordoned: self.cordoned.len(),
            enrollments: self.enrollments.len(),
            idempotency: self.idempotency.len(),
            volumes: self.volumes.len(),
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} containers, {} events, {} SSH keys, {} cordoned hosts, {} redeemed join tokens, \
             {} idempotency records, {} volumes",
            self.containers,
            self.events,
            self.keys,
            self.cordoned,
            self.enrollments,
            self.idempotency,
            self.volumes
        )
    }
}

/// Copies the sled store at `from` into the (empty) PostgreSQL database `to` names.
pub async fn sled_to_postgres(from: &Path, to: &StoreConfig) -> Result<Counts, StoreError> {
    let source = SledStore::open(from)?;
    let export = source.export()?;
    let target = PgStore::connect(to).await?;
    target.import(&export).await?;
    let found = target.counts().await?;
    if found != export.counts() {
        return Err(StoreError::CopyMismatch {
            found,
            read: export.counts(),
        });
    }
    Ok(found)
}
