//! The PostgreSQL backend: the same records as the sled store (volumes in `volumes`), one row each (the record as
//! `jsonb` beside the columns the indexes need), for several coordinators sharing one
//! database. Every write is one transaction with the rows it reads locked (`FOR UPDATE`),
//! committed before the call returns, so an answer the API gave is durable and two
//! coordinators editing one container take turns. A database that cannot be reached, or does
//! not answer within `[store] timeout`, is `StoreError::Unavailable` (the API's 503), never an
//! empty answer.

mod containers;
mod feed;
mod import;
mod locks;
mod schema;
mod tables;
mod volumes;

use super::{
    ClusterLock, ContainerRecord, Edit, EventRecord, HostUsage, IdempotencyRecord, KeyRecord,
    Store, StoreError, StoreFuture, VolumeRecord,
};
use crate::config::StoreConfig;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

pub struct PgStore {
    pool: Pool,
    /// Where the pool connects: the lock session connects the same way.
    pg: tokio_postgres::Config,
    timeout: Duration,
    locks: locks::LockSession,
}

impl PgStore {
    /// Connects and migrates; `Unavailable` when the database does not answer within `timeout`.
    pub async fn connect(config: &StoreConfig) -> Result<PgStore, StoreError> {
        let url = config.url.as_deref().unwrap_or_default();
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("url: {e}")))?;
        pg.connect_timeout(config.timeout);
        pg.application_name("berth-coordinator");
        let manager = Manager::from_config(
            pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("connection pool: {e}")))?;
        let store = PgStore {
            pool,
            pg,
            timeout: config.timeout,
            locks: Default::default(),
        };
        let version = store
            .bounded(|| async {
                let mut client = store.client().await?;
                schema::migrate(&mut client).await
            })
            .await?;
        tracing::info!(version, pool = config.pool_size, "store: postgres ready");
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
    }

    /// Runs one store call within `timeout`, retrying it when PostgreSQL chose it as the
    /// loser of a deadlock or a serialization conflict (it changed nothing then).
    async fn bounded<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let run = async {
            loop {
                match call().await {
                    Err(StoreError::Postgres(e)) if retryable(&e) => {
                        tracing::debug!(error = %e, "store: transaction retried");
                    }
                    other => return other.map_err(classify),
                }
            }
        };
        tokio::time::timeout(self.timeout, run).await.map_err(|_| {
            StoreError::Unavailable(format!("no answer from the database in {:?}", self.timeout))
        })?
    }
}

fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// A lost connection, a server shutting down or refusing connections is `Unavailable`.
fn classify(e: StoreError) -> StoreError {
    let StoreError::Postgres(pg) = &e else {
        return e;
    };
    let io = std::error::Error::source(pg).is_some_and(|s| s.is::<std::io::Error>());
    let down = pg.code().is_some_and(|c| {
        c.code().starts_with("08")
            || *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::CANNOT_CONNECT_NOW
            || *c == SqlState::TOO_MANY_CONNECTIONS
    });
    if pg.is_closed() || io || down {
        StoreError::Unavailable(pg.to_string())
    } else {
        e
    }
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store for PgStore {
    fn flush(&self) -> StoreFuture<'_, ()> {
        // Every write committed before it returned (synchronous_commit).
        Box::pin(async { Ok(()) })
    }

    fn cluster_lock<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ClusterLock> {
        Box::pin(self.acquire(name))
    }

    fn try_lease<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ClusterLock>> {
        Box::pin(self.try_acquire(name))
    }

    fn feed(&self) -> Option<&dyn super::ChangeFeed> {
        Some(self)
    }

    fn container<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ContainerRecord>> {
        Box::pin(self.bounded(move || self.get_container(id)))
    }

    fn insert_container(&self, rec: ContainerRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let rec = &rec;
            self.bounded(move || self.insert(rec)).await
        })
    }

    fn update_container<'a>(
        &'a self,
        id: &'a str,
        edit: Edit<'a>,
    ) -> StoreFuture<'a, Option<ContainerRecord>> {
        // The edit may run again when a transaction is retried; a mutex lends it to each try.
        let edit = tokio::sync::Mutex::new(edit);
        Box::pin(async move {
            let edit = &edit;
            self.bounded(move || async move {
                let mut edit = edit.lock().await;
                self.update(id, &mut **edit).await
            })
            .await
        })
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.bounded(move || self.remove(id)))
    }

    fn owner_containers<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<ContainerRecord>> {
        Box::pin(self.bounded(move || self.by_owner(owner)))
    }

    fn container_named<'a>(
        &'a self,
        owner: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<ContainerRecord>> {
        Box::pin(self.bounded(move || self.by_name(owner, name)))
    }

    fn host_containers<'a>(&'a self, host: &'a str) -> StoreFuture<'a, Vec<ContainerRecord>> {
        Box::pin(self.bounded(move || self.by_host(Some(host))))
    }

    fn unplaced_containers(&self) -> StoreFuture<'_, Vec<ContainerRecord>> {
        Box::pin(self.bounded(move || self.by_host(None)))
    }

    fn host_usage(&self) -> StoreFuture<'_, Arc<HashMap<String, HostUsage>>> {
        Box::pin(self.bounded(move || self.usage()))
    }

    fn all_containers(&self) -> StoreFuture<'_, Vec<ContainerRecord>> {
        Box::pin(self.bounded(move || self.every_container()))
    }

    fn add_event<'a>(&'a self, id: &'a str, kind: &'a str, message: String) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let message = &message;
            self.bounded(move || self.push_event(id, kind, message))
                .await
        })
    }

    fn events<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Vec<EventRecord>> {
        Box::pin(self.bounded(move || self.history(id)))
    }

    fn next_id(&self) -> StoreFuture<'_, u64> {
        Box::pin(self.bounded(move || self.new_id()))
    }

    fn put_key(&self, rec: KeyRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let rec = &rec;
            self.bounded(move || self.store_key(rec)).await
        })
    }

    fn owner_keys<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<KeyRecord>> {
        Box::pin(self.bounded(move || self.keys_of(owner)))
    }

    fn key_with_fingerprint<'a>(
        &'a self,
        fingerprint: &'a str,
    ) -> StoreFuture<'a, Option<KeyRecord>> {
        Box::pin(self.bounded(move || self.key_by_fingerprint(fingerprint)))
    }

    fn delete_key<'a>(&'a self, owner: &'a str, id: u64) -> StoreFuture<'a, bool> {
        Box::pin(self.bounded(move || self.drop_key(owner, id)))
    }

    fn volume<'a>(&'a self, owner: &'a str, id: &'a str) -> StoreFuture<'a, Option<VolumeRecord>> {
        Box::pin(self.bounded(move || self.volume_row(owner, id)))
    }

    fn put_volume(&self, rec: VolumeRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.bounded(|| self.store_volume(&rec)).await })
    }

    fn owner_volumes<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<VolumeRecord>> {
        Box::pin(self.bounded(move || self.volumes_of(owner)))
    }

    fn host_volumes<'a>(&'a self, host: &'a str) -> StoreFuture<'a, Vec<VolumeRecord>> {
        Box::pin(self.bounded(move || self.volumes_on(host)))
    }

    fn remove_volume<'a>(&'a self, owner: &'a str, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.bounded(move || self.drop_volume(owner, id)))
    }

    fn set_cordoned<'a>(&'a self, host: &'a str, cordoned: bool) -> StoreFuture<'a, ()> {
        Box::pin(self.bounded(move || self.cordon(host, cordoned)))
    }

    fn cordoned_hosts(&self) -> StoreFuture<'_, BTreeSet<String>> {
        Box::pin(self.bounded(move || self.cordons()))
    }

    fn redeem_enrollment<'a>(&'a self, jti: &'a str, host_key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(self.bounded(move || self.redeem(jti, host_key)))
    }

    fn reserve_idempotency(
        &self,
        rec: IdempotencyRecord,
    ) -> StoreFuture<'_, Option<IdempotencyRecord>> {
        Box::pin(async move {
            let rec = &rec;
            self.bounded(move || self.reserve(rec)).await
        })
    }

    fn put_idempotency(&self, rec: IdempotencyRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let rec = &rec;
            self.bounded(move || self.answer(rec)).await
        })
    }

    fn remove_idempotency<'a>(&'a self, owner: &'a str, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.bounded(move || self.forget(owner, key)))
    }

    fn expire_idempotency(&self, before: u64) -> StoreFuture<'_, usize> {
        Box::pin(self.bounded(move || self.expire(before)))
    }
}

#[cfg(test)]
mod tests;
