//! The coordinator's durable state behind one interface: users' containers (desired spec +
//! last known status), their history, volumes, SSH keys, cordons and redeemed join tokens.
//!
//! `SledStore` is the embedded backend (the default); `PgStore` keeps the same records in
//! PostgreSQL, which several coordinators may share. `open` picks one from `[store]`;
//! `conformance` is the test suite every backend must pass. Reads that a request depends on go through indexes (by owner, by
//! host, by name): listing one user's containers or one host's desired set never reads
//! another's records. Every write an API answer depends on is made durable (`flush`) before
//! the answer goes out, so a coordinator killed with SIGKILL restarts into what it last said.

pub mod conformance;
pub mod migrate;
mod postgres;
mod records;
mod sled;

pub use self::postgres::PgStore;
pub use self::sled::SledStore;
pub use records::{
    ContainerRecord, EventRecord, IdempotencyRecord, IngressRecord, KeyRecord, StoredAnswer,
    VolumeRecord, MAX_EVENTS,
};

use crate::config::{StoreBackend, StoreConfig};
use berth_shared::protocol::Resources;
use futures_util::future::BoxFuture;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] ::sled::Error),
    #[error(transparent)]
    Record(#[from] berth_service::records::RecordError),
    #[error("container {id} already exists")]
    Exists { id: String },
    /// Another visible container of the owner has the name (a unique index said so).
    #[error("{owner} already has a container named {name:?}")]
    NameTaken { owner: String, name: String },
    /// Another key has the fingerprint (a unique index said so).
    #[error("a key with fingerprint {fingerprint} is already registered")]
    KeyTaken { fingerprint: String },
    /// The database cannot be reached or answered nothing in time: the API says 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// `[store]` does not say where the store is (config validation refuses this first).
    #[error("[store] {0}")]
    Config(String),
    /// The database's schema is newer than this coordinator knows.
    #[error("the database is at schema version {database}, newer than this coordinator's {ours}: upgrade the coordinator")]
    SchemaNewer { database: i32, ours: i32 },
    /// `store migrate` writes only into an empty database.
    #[error("the target database is not empty ({rows} containers, keys and volumes): migrate into a new database")]
    TargetNotEmpty { rows: i64 },
    /// What `store migrate` counted back is not what it read.
    #[error("the database holds {found} after the copy, not the {read} read from sled")]
    CopyMismatch {
        found: migrate::Counts,
        read: migrate::Counts,
    },
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("record {key} in postgres: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
}

/// Opens the backend `[store]` names (a PostgreSQL store runs its migrations first).
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match config.backend {
        StoreBackend::Sled => {
            let path = config
                .path
                .as_deref()
                .ok_or_else(|| StoreError::Config("path is not set for sled".into()))?;
            Arc::new(SledStore::open(path)?)
        }
        StoreBackend::Postgres => Arc::new(PgStore::connect(config).await?),
    })
}

/// What the records placed on one host add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostUsage {
    /// CPU, memory and disk promised to them.
    pub used: Resources,
    pub containers: usize,
}

/// A lock every coordinator sharing the store respects, held until it is dropped. With the
/// embedded store there is one coordinator, whose own locks already are the cluster's, and
/// it holds nothing.
#[must_use = "the lock is released when this is dropped"]
pub struct ClusterLock(Option<Box<dyn Hold>>);

/// What keeps a backend's lock: released when dropped.
pub trait Hold: Send + Sync {
    /// Whether the lock is still this holder's (a lost database session loses it).
    fn held(&self) -> bool;
}

impl ClusterLock {
    pub fn none() -> ClusterLock {
        ClusterLock(None)
    }

    pub fn held(guard: Box<dyn Hold>) -> ClusterLock {
        ClusterLock(Some(guard))
    }

    pub fn is_held(&self) -> bool {
        self.0.as_ref().is_none_or(|h| h.held())
    }
}

/// One change a coordinator published, as the others read it from the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    /// Increasing in commit order, mostly: a later one may commit first (readers allow it).
    pub seq: u64,
    /// The coordinator that published it.
    pub origin: String,
    /// `EventKind::as_str`.
    pub kind: String,
    /// The record after the change, as JSON.
    pub record: String,
}

/// The changes coordinators sharing one store tell each other of, so that a watcher on one
/// sees what is done through another. Only a shared store has one.
pub trait ChangeFeed: Send + Sync {
    /// Appends `(kind, record JSON)`s from `origin` in one transaction, and wakes readers.
    fn append<'a>(&'a self, origin: &'a str, batch: &'a [(String, String)]) -> StoreFuture<'a, ()>;
    /// Entries above `seq`, oldest first, at most `limit`.
    fn after(&self, seq: u64, limit: u32) -> StoreFuture<'_, Vec<FeedEntry>>;
    /// The newest entry's `seq` (0 when empty): where a new reader starts.
    fn head(&self) -> StoreFuture<'_, u64>;
    /// A signal on every append anywhere (and on every reconnect of the listener); readers
    /// also poll, so a lost signal delays and never loses.
    fn wakeups(&self) -> StoreFuture<'_, tokio::sync::mpsc::Receiver<()>>;
    /// Drops entries older than `age`; how many.
    fn prune(&self, age: std::time::Duration) -> StoreFuture<'_, u64>;
}

/// What every store call returns.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// An edit of one container record. It may run more than once (a retried transaction);
/// `None` leaves the record untouched.
pub type Edit<'a> = &'a mut (dyn FnMut(&mut ContainerRecord) -> Option<()> + Send);

pub trait Store: Send + Sync + 'static {
    /// Makes every write so far durable.
    fn flush(&self) -> StoreFuture<'_, ()>;

    /// The feed between coordinators sharing this store (`None`: it has one coordinator).
    fn feed(&self) -> Option<&dyn ChangeFeed> {
        None
    }

    /// Waits for the cluster-wide lock `name` (an owner's quota and names, placement). Take
    /// the coordinator's own lock of the same thing first, so that one coordinator has one
    /// waiter per name at most.
    fn cluster_lock<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ClusterLock>;

    /// The lock `name` if it is free now (`None` if another holds it): a lease on work that
    /// runs once in the cluster, handed over the moment its holder's session ends.
    fn try_lease<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ClusterLock>>;

    fn container<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ContainerRecord>>;
    /// A new record; `Exists` if the id is taken.
    fn insert_container(&self, rec: ContainerRecord) -> StoreFuture<'_, ()>;
    /// Applies `edit` atomically with the indexes; returns the record as stored afterwards.
    fn update_container<'a>(
        &'a self,
        id: &'a str,
        edit: Edit<'a>,
    ) -> StoreFuture<'a, Option<ContainerRecord>>;
    /// The record, its index entries and its history.
    fn remove_container<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;
    /// The owner's visible containers, newest first (owner index).
    fn owner_containers<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<ContainerRecord>>;
    /// The owner's visible container of that name (name index).
    fn container_named<'a>(
        &'a self,
        owner: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<ContainerRecord>>;
    /// Every record placed on `host`, deleted-but-unconfirmed ones too (host index).
    fn host_containers<'a>(&'a self, host: &'a str) -> StoreFuture<'a, Vec<ContainerRecord>>;
    /// Records that have no host yet (host index).
    fn unplaced_containers(&self) -> StoreFuture<'_, Vec<ContainerRecord>>;
    /// Per host, what the records placed there (deleted-but-unconfirmed ones too) add up
    /// to: one call for placement over the whole fleet, whatever the number of records.
    fn host_usage(&self) -> StoreFuture<'_, Arc<HashMap<String, HostUsage>>>;
    /// Every record: operators' views and metrics only, never a user's request.
    fn all_containers(&self) -> StoreFuture<'_, Vec<ContainerRecord>>;

    /// Appends to a container's history, keeping the newest `MAX_EVENTS`.
    fn add_event<'a>(&'a self, id: &'a str, kind: &'a str, message: String) -> StoreFuture<'a, ()>;
    /// A container's history, newest first.
    fn events<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Vec<EventRecord>>;

    /// A new id, unique and increasing across restarts (keys, ingress rules).
    fn next_id(&self) -> StoreFuture<'_, u64>;
    fn put_key(&self, rec: KeyRecord) -> StoreFuture<'_, ()>;
    fn owner_keys<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<KeyRecord>>;
    /// The key with this fingerprint, whoever's it is (fingerprint index): a public key
    /// belongs to one user only.
    fn key_with_fingerprint<'a>(
        &'a self,
        fingerprint: &'a str,
    ) -> StoreFuture<'a, Option<KeyRecord>>;
    /// `false` when the owner has no such key.
    fn delete_key<'a>(&'a self, owner: &'a str, id: u64) -> StoreFuture<'a, bool>;

    /// The owner's volume `id` (`None` also when it is another's).
    fn volume<'a>(&'a self, owner: &'a str, id: &'a str) -> StoreFuture<'a, Option<VolumeRecord>>;
    /// Stores the volume, new or changed (its owner and host never change).
    fn put_volume(&self, rec: VolumeRecord) -> StoreFuture<'_, ()>;
    /// The owner's volumes, oldest first (owner index).
    fn owner_volumes<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<VolumeRecord>>;
    /// The volumes on `host`, deleted-but-not-removed ones too (host index).
    fn host_volumes<'a>(&'a self, host: &'a str) -> StoreFuture<'a, Vec<VolumeRecord>>;
    fn remove_volume<'a>(&'a self, owner: &'a str, id: &'a str) -> StoreFuture<'a, ()>;

    fn set_cordoned<'a>(&'a self, host: &'a str, cordoned: bool) -> StoreFuture<'a, ()>;
    fn cordoned_hosts(&self) -> StoreFuture<'_, BTreeSet<String>>;
    /// Marks a join token id redeemed; `false` if it already was (atomic).
    fn redeem_enrollment<'a>(&'a self, jti: &'a str, host_key: &'a str) -> StoreFuture<'a, bool>;

    /// Stores `rec` unless the owner already has that key: `None` when it was stored, else
    /// the record there (atomic).
    fn reserve_idempotency(
        &self,
        rec: IdempotencyRecord,
    ) -> StoreFuture<'_, Option<IdempotencyRecord>>;
    /// Replaces the owner's record of that key (its answer, once the request ran).
    fn put_idempotency(&self, rec: IdempotencyRecord) -> StoreFuture<'_, ()>;
    fn remove_idempotency<'a>(&'a self, owner: &'a str, key: &'a str) -> StoreFuture<'a, ()>;
    /// Removes records created before `before` (unix seconds); how many.
    fn expire_idempotency(&self, before: u64) -> StoreFuture<'_, usize>;
}
