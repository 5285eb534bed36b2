//! Containers a host holds that the store places nowhere or elsewhere: the store is read
//! (never guessed) and the host told to disown each, so that its agent removes it after its
//! orphan grace. A store that holds no container at all confirms nothing — a coordinator
//! started on a fresh or wrong store must not make the fleet delete its work.

use super::Containers;
use crate::error::Error;
use berth_shared::protocol::{Request, Response};
use std::collections::HashSet;
use std::sync::Mutex;

fn lock(m: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Containers {
    /// `held` are ids the host reported that have no record placed on it.
    pub(super) async fn disown_unknown(&self, host: &str, held: &[&str]) -> Result<(), Error> {
        // Told already (and not failed since): no store read on every heartbeat.
        let held: Vec<&str> = {
            let told = lock(&self.disowned);
            held.iter()
                .copied()
                .filter(|id| !told.contains(*id))
                .collect()
        };
        if held.is_empty() {
            return Ok(());
        }
        if self.store.host_usage().await?.is_empty() {
            tracing::warn!(
                host,
                containers = held.len(),
                "the host holds containers and the store none at all: disowning nothing"
            );
            return Ok(());
        }
        for id in held {
            let why = match self.store.container(id).await? {
                // Placed here since the host's inventory was taken.
                Some(r) if r.host_key.as_deref() == Some(host) => continue,
                Some(r) => match r.host_key {
                    Some(other) => format!("placed on {other}"),
                    None => "not placed on any host".to_string(),
                },
                None => "no record".to_string(),
            };
            let told = self.disowned.clone();
            lock(&told).insert(id.to_string());
            tracing::warn!(
                host,
                id,
                why,
                "the host holds a container the store does not place on it: disowning it"
            );
            let (hub, host, id) = (self.hub.clone(), host.to_string(), id.to_string());
            tokio::spawn(async move {
                match hub
                    .request(&host, &Request::Disown { id: id.clone() })
                    .await
                {
                    Ok(Response::Disowned {
                        removal_at_ms: Some(at),
                        ..
                    }) => {
                        tracing::info!(%host, %id, removal_at_ms = at, "the host disowned the container");
                        return;
                    }
                    Ok(other) => {
                        tracing::warn!(%host, %id, answer = ?other, "disown not taken; the next heartbeat retries")
                    }
                    Err(e) => {
                        tracing::warn!(%host, %id, error = %e, "disown failed; the next heartbeat retries")
                    }
                }
                lock(&told).remove(&id);
            });
        }
        Ok(())
    }
}
