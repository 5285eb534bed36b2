//! SSH key operations: a user's public keys, parsed and fingerprinted, at most
//! `limits.max_ssh_keys` each, unique per user.

use crate::app::{App, Error};
use crate::store::KeyRecord;
use berth_shared::api::{self, QuotaDetail};
use berth_shared::sshkey::PublicKey;
use berth_shared::validation::Fields;

impl App {
    fn key_view(k: &KeyRecord) -> api::SshKey {
        api::SshKey {
            id: k.id,
            name: k.name.clone(),
            public_key: k.public_key.clone(),
            fingerprint: k.fingerprint.clone(),
            created_at: berth_shared::time::rfc3339(k.created_at),
        }
    }

    pub fn list_keys(&self, user: &str) -> Result<Vec<api::SshKey>, Error> {
        Ok(self
            .store
            .user_keys(user)?
            .iter()
            .map(Self::key_view)
            .collect())
    }

    pub async fn add_key(
        &self,
        user: &str,
        body: &serde_json::Value,
    ) -> Result<api::SshKey, Error> {
        let mut f = Fields::new(body).map_err(Error::Invalid)?;
        let name = f.string("name", true);
        let public_key = f.string("public_key", true);
        let mut errors = f.errors;
        if let Some(n) = &name {
            if n.trim().is_empty() || n.len() > 64 || n.chars().any(char::is_control) {
                errors.add("name", "must be 1 to 64 printable characters");
            }
        }
        let parsed = match public_key.as_deref().map(PublicKey::parse) {
            Some(Ok(k)) => Some(k),
            Some(Err(e)) => {
                errors.add("public_key", e.to_string());
                None
            }
            None => None,
        };
        let (Some(name), Some(key)) = (name, parsed) else {
            return Err(Error::Invalid(errors));
        };
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let _guard = self.quota_lock.lock().await;
        let mine = self.store.user_keys(user)?;
        let fingerprint = key.fingerprint();
        if mine.iter().any(|k| k.fingerprint == fingerprint) {
            return Err(Error::Conflict(format!(
                "this key is already registered ({fingerprint})"
            )));
        }
        let max = self.config.limits.max_ssh_keys;
        if mine.len() as u64 + 1 > max {
            return Err(Error::OverQuota(QuotaDetail {
                dimension: "ssh_keys".into(),
                requested: mine.len() as u64 + 1,
                max,
            }));
        }
        let rec = KeyRecord {
            id: self.store.next_key_id()?,
            owner: user.to_string(),
            name: name.trim().to_string(),
            public_key: key.to_line(),
            fingerprint,
            created_at: berth_shared::time::now_unix().0,
        };
        self.store.put_key(&rec)?;
        self.store.flush().await?;
        Ok(Self::key_view(&rec))
    }

    /// Deletes the key and revokes it from every container that used it.
    pub async fn delete_key(
        self: &std::sync::Arc<Self>,
        user: &str,
        id: &str,
    ) -> Result<(), Error> {
        let id: u64 = id.parse().map_err(|_| Error::NotFound)?;
        if !self.store.delete_key(user, id)? {
            return Err(Error::NotFound);
        }
        self.store.flush().await?;
        for c in self
            .store
            .user_containers(user)?
            .into_iter()
            .filter(|c| c.ssh_key_ids.contains(&id))
        {
            self.modify(user, &c.id, "ssh_key_revoked", |r| {
                r.ssh_key_ids.retain(|k| *k != id);
                Ok(crate::settings::Change::Spec)
            })
            .await?;
        }
        Ok(())
    }
}
