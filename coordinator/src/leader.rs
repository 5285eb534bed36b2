//! Leadership: the one coordinator of a cluster that does the work that must run once —
//! placing containers that found no host, expiring `Idempotency-Key` records. It is a lease
//! (`Store::try_lease`), a PostgreSQL advisory lock on the holder's own session: when the
//! leader dies its session ends, the lock with it, and another coordinator takes it on its
//! next try, within a second (well inside `heartbeat_grace`). The embedded store has one
//! coordinator, always the leader.

use crate::store::{ClusterLock, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const LEASE: &str = "leader";

pub struct Leadership {
    store: Arc<dyn Store>,
    lease: tokio::sync::Mutex<Option<ClusterLock>>,
    leader: AtomicBool,
}

impl Leadership {
    pub fn new(store: Arc<dyn Store>) -> Leadership {
        Leadership {
            store,
            lease: tokio::sync::Mutex::new(None),
            leader: AtomicBool::new(false),
        }
    }

    /// Keeps the lease or tries to take it; whether this coordinator leads now.
    pub async fn refresh(&self) -> bool {
        let mut lease = self.lease.lock().await;
        if lease.as_ref().is_some_and(|l| !l.is_held()) {
            tracing::warn!("lost the leader lease (database session ended)");
            *lease = None;
        }
        if lease.is_none() {
            match self.store.try_lease(LEASE).await {
                Ok(Some(l)) => {
                    tracing::info!("leading the cluster's once-only work");
                    *lease = Some(l);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot ask for the leader lease"),
            }
        }
        let leads = lease.is_some();
        self.leader.store(leads, Ordering::Relaxed);
        leads
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }
}
