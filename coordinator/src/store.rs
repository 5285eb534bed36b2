//! The coordinator's durable state in sled: users' containers (desired spec + last known
//! status) and SSH keys. Every write that an API answer depends on is flushed before the
//! answer goes out, so a coordinator killed with SIGKILL restarts into what it last said.

use berth_shared::api::ContainerStatus;
use berth_shared::protocol::DesiredState;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record {key} is corrupt: {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
    #[error("transaction aborted: {0}")]
    Aborted(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub instance_type: String,
    pub cpu_millis: u32,
    pub memory_mb: u64,
    pub storage_gb: u64,
    pub ssh_key_ids: Vec<u64>,
    pub ssh_enabled: bool,
    pub mount_paths: Vec<String>,
    pub image: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub created_at: u64,
    pub desired: DesiredState,
    pub generation: u64,
    pub host_key: Option<String>,
    pub region: Option<String>,
    pub status: ContainerStatus,
    pub status_reason: Option<String>,
    /// The newest generation the agent has reported on.
    pub observed_generation: u64,
    pub memory_used_mb: Option<u64>,
    pub storage_used_gb: Option<f64>,
    #[serde(default)]
    pub ports: Vec<u16>,
    #[serde(default)]
    pub ingress: Vec<IngressRecord>,
    /// Placement constraints from the create request.
    #[serde(default)]
    pub requested_region: Option<String>,
    #[serde(default)]
    pub requested_host_key: Option<String>,
    #[serde(default)]
    pub external_ip: Option<String>,
    /// Bumped by `reboot`: a new boot of the same spec.
    #[serde(default)]
    pub boot: u64,
    /// `(generation, volume_preserved)` of the last re-creation after containerd lost it.
    #[serde(default)]
    pub recreated: Option<(u64, bool)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngressRecord {
    pub id: u64,
    pub port: u16,
    pub target_port: u16,
    pub created_at: u64,
}

/// One entry of a container's lifecycle history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub at: u64,
    pub kind: String,
    pub message: String,
}

/// How many events a container keeps.
pub const MAX_EVENTS: usize = 100;

impl ContainerRecord {
    /// Deleted containers stay until their host confirms; users never see them.
    pub fn is_visible(&self) -> bool {
        self.desired != DesiredState::Deleted
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: u64,
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    containers: sled::Tree,
    keys: sled::Tree,
    events: sled::Tree,
    /// Host keys an operator cordoned (value unused).
    cordoned: sled::Tree,
    /// Enrollment token ids already redeemed.
    enrollments: sled::Tree,
}

fn decode<T: DeserializeOwned>(key: &[u8], v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|source| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

fn user_prefix(user: &str) -> Vec<u8> {
    let mut k = user.as_bytes().to_vec();
    k.push(0);
    k
}

fn key_key(user: &str, id: u64) -> Vec<u8> {
    let mut k = user_prefix(user);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new().path(path).open()?;
        Ok(Store {
            containers: db.open_tree("containers")?,
            keys: db.open_tree("ssh_keys")?,
            events: db.open_tree("events")?,
            cordoned: db.open_tree("cordoned_hosts")?,
            enrollments: db.open_tree("enrollments")?,
            db,
        })
    }

    /// Makes every write so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Marks an enrollment token id redeemed; `false` if it already was (atomic).
    pub fn redeem_enrollment(&self, jti: &str, host_key: &str) -> Result<bool, StoreError> {
        Ok(self
            .enrollments
            .compare_and_swap(jti.as_bytes(), None::<&[u8]>, Some(host_key.as_bytes()))?
            .is_ok())
    }

    pub fn set_cordoned(&self, host: &str, cordoned: bool) -> Result<(), StoreError> {
        if cordoned {
            self.cordoned.insert(host.as_bytes(), &b"1"[..])?;
        } else {
            self.cordoned.remove(host.as_bytes())?;
        }
        Ok(())
    }

    pub fn cordoned_hosts(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut out = std::collections::BTreeSet::new();
        for kv in self.cordoned.iter() {
            let (k, _) = kv?;
            out.insert(String::from_utf8_lossy(&k).into_owned());
        }
        Ok(out)
    }

    pub fn put_container(&self, rec: &ContainerRecord) -> Result<(), StoreError> {
        self.containers.insert(rec.id.as_bytes(), encode(rec))?;
        Ok(())
    }

    pub fn get_container(&self, id: &str) -> Result<Option<ContainerRecord>, StoreError> {
        match self.containers.get(id.as_bytes())? {
            Some(v) => Ok(Some(decode(id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// Applies `f` atomically (compare-and-swap loop). `f` returning `None` leaves the record
    /// untouched. Returns the record as stored afterwards.
    pub fn update_container<F>(
        &self,
        id: &str,
        mut f: F,
    ) -> Result<Option<ContainerRecord>, StoreError>
    where
        F: FnMut(&mut ContainerRecord) -> Option<()>,
    {
        loop {
            let Some(old) = self.containers.get(id.as_bytes())? else {
                return Ok(None);
            };
            let mut rec: ContainerRecord = decode(id.as_bytes(), &old)?;
            if f(&mut rec).is_none() {
                return Ok(Some(rec));
            }
            let swapped =
                self.containers
                    .compare_and_swap(id.as_bytes(), Some(old), Some(encode(&rec)))?;
            if swapped.is_ok() {
                return Ok(Some(rec));
            }
        }
    }

    pub fn remove_container(&self, id: &str) -> Result<(), StoreError> {
        self.containers.remove(id.as_bytes())?;
        for k in self.events.scan_prefix(id.as_bytes()).keys() {
            self.events.remove(k?)?;
        }
        Ok(())
    }

    /// Appends to the container's history, dropping the oldest beyond `MAX_EVENTS`.
    pub fn add_event(&self, id: &str, kind: &str, message: String) -> Result<(), StoreError> {
        let mut key = id.as_bytes().to_vec();
        key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        let ev = EventRecord {
            at: berth_shared::time::now_unix().0,
            kind: kind.to_string(),
            message,
        };
        self.events.insert(key, encode(&ev))?;
        let keys: Vec<sled::IVec> = self
            .events
            .scan_prefix(id.as_bytes())
            .keys()
            .collect::<Result<_, _>>()?;
        for k in keys.iter().take(keys.len().saturating_sub(MAX_EVENTS)) {
            self.events.remove(k)?;
        }
        Ok(())
    }

    /// The container's history, newest first.
    pub fn events(&self, id: &str) -> Result<Vec<EventRecord>, StoreError> {
        let mut out = self
            .events
            .scan_prefix(id.as_bytes())
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect::<Result<Vec<EventRecord>, StoreError>>()?;
        out.reverse();
        Ok(out)
    }

    pub fn all_containers(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        self.containers
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    /// A user's visible containers, newest first.
    pub fn user_containers(&self, user: &str) -> Result<Vec<ContainerRecord>, StoreError> {
        let mut out: Vec<ContainerRecord> = self
            .all_containers()?
            .into_iter()
            .filter(|c| c.owner == user && c.is_visible())
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    pub fn next_key_id(&self) -> Result<u64, StoreError> {
        // sled ids are unique and monotonic across restarts; +1 so the first key is 1.
        Ok(self.db.generate_id()? + 1)
    }

    pub fn put_key(&self, rec: &KeyRecord) -> Result<(), StoreError> {
        self.keys.insert(key_key(&rec.owner, rec.id), encode(rec))?;
        Ok(())
    }

    pub fn user_keys(&self, user: &str) -> Result<Vec<KeyRecord>, StoreError> {
        self.keys
            .scan_prefix(user_prefix(user))
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    pub fn get_key(&self, user: &str, id: u64) -> Result<Option<KeyRecord>, StoreError> {
        let k = key_key(user, id);
        match self.keys.get(&k)? {
            Some(v) => Ok(Some(decode(&k, &v)?)),
            None => Ok(None),
        }
    }

    pub fn delete_key(&self, user: &str, id: u64) -> Result<bool, StoreError> {
        Ok(self.keys.remove(key_key(user, id))?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, owner: &str, created_at: u64) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            owner: owner.into(),
            name: format!("n-{id}"),
            instance_type: "tiny".into(),
            cpu_millis: 1000,
            memory_mb: 512,
            storage_gb: 5,
            ssh_key_ids: vec![1],
            ssh_enabled: false,
            mount_paths: vec!["/root".into()],
            image: "img".into(),
            env: BTreeMap::new(),
            created_at,
            desired: DesiredState::Running,
            generation: 1,
            host_key: None,
            region: None,
            status: ContainerStatus::Pending,
            status_reason: None,
            observed_generation: 0,
            memory_used_mb: None,
            storage_used_gb: None,
            ports: vec![],
            ingress: vec![],
            requested_region: None,
            requested_host_key: None,
            external_ip: None,
            boot: 0,
            recreated: None,
        }
    }

    #[tokio::test]
    async fn records_survive_reopen_and_stay_per_user() {
        let dir = std::env::temp_dir().join(format!("berth-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let s = Store::open(&dir).expect("open");
            s.put_container(&rec("aaaaaaaa", "alice", 1)).expect("put");
            s.put_container(&rec("bbbbbbbb", "alice", 2)).expect("put");
            s.put_container(&rec("cccccccc", "bob", 3)).expect("put");
            s.update_container("aaaaaaaa", |r| {
                r.desired = DesiredState::Deleted;
                Some(())
            })
            .expect("update");
            s.flush().await.expect("flush");
        }
        let s = Store::open(&dir).expect("reopen");
        let ids: Vec<String> = s
            .user_containers("alice")
            .expect("list")
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, vec!["bbbbbbbb"]);
        assert_eq!(s.user_containers("bob").expect("list").len(), 1);
        assert!(s.user_keys("alice").expect("keys").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
