//! The SSH keys service: a user's public keys, parsed and fingerprinted, at most
//! `limits.max_ssh_keys` each, unique per user; deleting one revokes it everywhere.

use crate::containers::Containers;
use crate::error::Error;
use crate::store::{KeyRecord, Store};
use berth_shared::api;
use berth_shared::requests::{KeyBody, Validate};
use std::sync::Arc;

pub struct Keys {
    store: Arc<dyn Store>,
    containers: Arc<Containers>,
    max_keys: u64,
    /// Serialises the count and duplicate checks with the insert they guard.
    lock: tokio::sync::Mutex<()>,
}

fn view(k: &KeyRecord) -> api::SshKey {
    api::SshKey {
        id: k.id,
        name: k.name.clone(),
        public_key: k.public_key.clone(),
        fingerprint: k.fingerprint.clone(),
        created_at: berth_shared::time::rfc3339(k.created_at),
    }
}

impl Keys {
    pub fn new(store: Arc<dyn Store>, containers: Arc<Containers>, max_keys: u64) -> Keys {
        Keys {
            store,
            containers,
            max_keys,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub async fn list(&self, user: &str) -> Result<Vec<api::SshKey>, Error> {
        Ok(self
            .store
            .owner_keys(user)
            .await?
            .iter()
            .map(view)
            .collect())
    }

    pub async fn add(&self, user: &str, body: KeyBody) -> Result<api::SshKey, Error> {
        let (name, key) = body.validate(&()).map_err(Error::Invalid)?;
        let _guard = self.lock.lock().await;
        let mine = self.store.owner_keys(user).await?;
        let fingerprint = key.fingerprint();
        // A public key names one user: SSH logins resolve container names among the
        // containers of the key's owner, so a key another user registered stays theirs.
        match self.store.key_with_fingerprint(&fingerprint).await? {
            Some(k) if k.owner == user => {
                return Err(Error::Conflict(format!(
                    "this key is already registered ({fingerprint})"
                )))
            }
            Some(_) => {
                return Err(Error::Conflict(format!(
                    "this key is registered by another user ({fingerprint}); use a key of your own"
                )))
            }
            None => {}
        }
        if mine.len() as u64 + 1 > self.max_keys {
            return Err(Error::over_quota(
                "ssh_keys",
                mine.len() as u64 + 1,
                self.max_keys,
            ));
        }
        let rec = KeyRecord {
            id: self.store.next_id().await?,
            owner: user.to_string(),
            name,
            public_key: key.to_line(),
            fingerprint,
            created_at: berth_shared::time::now_unix().0,
        };
        self.store.put_key(rec.clone()).await?;
        self.store.flush().await?;
        Ok(view(&rec))
    }

    /// Deletes the key and revokes it from every container that used it.
    pub async fn delete(&self, user: &str, id: &str) -> Result<(), Error> {
        let id: u64 = id.parse().map_err(|_| Error::NotFound)?;
        if !self.store.delete_key(user, id).await? {
            return Err(Error::NotFound);
        }
        self.store.flush().await?;
        self.containers.revoke_key(user, id).await
    }
}
