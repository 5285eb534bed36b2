//! Cluster-wide locks as PostgreSQL advisory locks, all on one session of their own: a
//! lock is `pg_try_advisory_lock`, retried with a short backoff until `[store] timeout`, so
//! a waiter never holds a pool connection (waiters holding the pool while the holder needs
//! it would deadlock). A coordinator that dies loses its session and with it its locks.
//! Should the lock session itself drop, its locks are gone at once; holders are not told
//! (logged), and the database's unique indexes still refuse a second name or key.

use super::{classify, PgStore};
use crate::store::{ClusterLock, Hold, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// The first key of every Berth advisory lock (the second is the name's hash).
const LOCK_SPACE: i32 = 0x6265_7274; // "bert"

#[derive(Default)]
pub(super) struct LockSession(tokio::sync::Mutex<Option<Arc<Client>>>);

struct Held {
    client: Arc<Client>,
    name: String,
}

impl Hold for Held {
    fn held(&self) -> bool {
        !self.client.is_closed()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), std::mem::take(&mut self.name));
        // Outside a runtime (the process is ending) the session goes, and the lock with it.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let unlock = "SELECT pg_advisory_unlock($1, hashtext($2))";
            if let Err(e) = client.execute(unlock, &[&LOCK_SPACE, &name]).await {
                // The session is gone, and its locks with it.
                tracing::warn!(lock = %name, error = %e, "store: unlock failed");
            }
        });
    }
}

impl PgStore {
    /// The lock session, connected anew when the last one ended.
    async fn lock_session(&self) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.locks.0.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        if slot.take().is_some() {
            tracing::warn!("store: the lock session ended; locks it held are released");
        }
        let (client, conn) = self
            .pg
            .connect(NoTls)
            .await
            .map_err(|e| classify(StoreError::Postgres(e)))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::warn!(error = %e, "store: lock session closed");
            }
        });
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// One try: the lock, or `None` when another session holds it.
    pub(super) async fn try_acquire(&self, name: &str) -> Result<Option<ClusterLock>, StoreError> {
        let client = self.lock_session().await?;
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&LOCK_SPACE, &name],
            )
            .await
            .map_err(|e| classify(StoreError::Postgres(e)))?;
        Ok(row.try_get::<_, bool>(0)?.then(|| {
            ClusterLock::held(Box::new(Held {
                client,
                name: name.to_string(),
            }))
        }))
    }

    pub(super) async fn acquire(&self, name: &str) -> Result<ClusterLock, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(lock) = self.try_acquire(name).await? {
                return Ok(lock);
            }
            if Instant::now() + pause > deadline {
                return Err(StoreError::Unavailable(format!(
                    "the cluster lock {name:?} stayed taken for {:?}",
                    self.timeout
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}
