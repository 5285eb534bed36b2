//! The embedded backend: sled trees of JSON records, with the owner, name and host indexes
//! kept in the same transaction as the record they point at, so a crash never leaves an
//! index naming a record that is not there (or missing one that is).

mod export;
#[cfg(test)]
mod killed;
mod volumes;

use super::MAX_EVENTS;
use super::{
    ClusterLock, ContainerRecord, Edit, EventRecord, HostUsage, IdempotencyRecord, KeyRecord,
    Store, StoreError, StoreFuture, VolumeRecord,
};
use berth_service::records::{decode, decode_all, encode, get};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    containers: sled::Tree,
    /// `owner \0 id` → ().
    by_owner: sled::Tree,
    /// `owner \0 name` → id, visible containers only.
    by_name: sled::Tree,
    /// `host \0 id` → (); unplaced records under the empty host.
    by_host: sled::Tree,
    keys: sled::Tree,
    /// fingerprint → `owner \0 id` of the key.
    by_fingerprint: sled::Tree,
    events: sled::Tree,
    cordoned: sled::Tree,
    enrollments: sled::Tree,
    /// `owner \0 key` → `IdempotencyRecord`.
    idempotency: sled::Tree,
    /// `owner \0 id` → `VolumeRecord`.
    volumes: sled::Tree,
    /// `host \0 id` → the volume's key.
    volumes_by_host: sled::Tree,
    /// Per-host sums of the records, kept in memory: built at open, moved by every committed
    /// write of a record.
    usage: Arc<Mutex<Arc<HashMap<String, HostUsage>>>>,
    flusher: Arc<Flusher>,
}

/// Group commit: one flush at a time (concurrent sled flushes can hang each other), and a
/// caller whose writes a flush that began after them already covered returns at once.
#[derive(Default)]
struct Flusher {
    turn: tokio::sync::Mutex<()>,
    /// Tickets handed out: one per `flush` call, taken after the caller's writes.
    issued: AtomicU64,
    /// Every ticket up to this one is durable.
    durable: AtomicU64,
}

impl Flusher {
    async fn flush(&self, db: &sled::Db) -> Result<(), StoreError> {
        let mine = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = self.turn.lock().await;
        if self.durable.load(Ordering::SeqCst) >= mine {
            return Ok(());
        }
        // Every ticket issued by now belongs to writes made before this flush starts.
        let covers = self.issued.load(Ordering::SeqCst);
        let db = db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Sled(::sled::Error::ReportableBug(e.to_string())))??;
        self.durable.store(covers, Ordering::SeqCst);
        Ok(())
    }
}

/// `a \0 b`: index keys, so that a prefix scan of `a \0` finds exactly `a`'s entries.
fn pair(a: &str, b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b);
    k
}

fn host_of(r: &ContainerRecord) -> &str {
    r.host_key.as_deref().unwrap_or("")
}

type TxError = ConflictableTransactionError<StoreError>;

/// Moves a record's index entries from what `old` said to what `new` says.
fn reindex(
    (o, n, h): (&TransactionalTree, &TransactionalTree, &TransactionalTree),
    old: Option<&ContainerRecord>,
    new: Option<&ContainerRecord>,
) -> Result<(), TxError> {
    if let Some(old) = old {
        o.remove(pair(&old.owner, old.id.as_bytes()))?;
        h.remove(pair(host_of(old), old.id.as_bytes()))?;
        let name = pair(&old.owner, old.name.as_bytes());
        if n.get(&name)?.is_some_and(|v| v == old.id.as_bytes()) {
            n.remove(name)?;
        }
    }
    if let Some(new) = new {
        o.insert(pair(&new.owner, new.id.as_bytes()), &[][..])?;
        h.insert(pair(host_of(new), new.id.as_bytes()), &[][..])?;
        if new.is_visible() {
            n.insert(pair(&new.owner, new.name.as_bytes()), new.id.as_bytes())?;
        }
    }
    Ok(())
}

fn tx_result<T>(r: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    })
}

impl SledStore {
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        let db = sled::Config::new().path(path).open()?;
        Ok(SledStore {
            containers: db.open_tree("containers")?,
            by_owner: db.open_tree("containers_by_owner")?,
            by_name: db.open_tree("containers_by_name")?,
            by_host: db.open_tree("containers_by_host")?,
            keys: db.open_tree("ssh_keys")?,
            by_fingerprint: db.open_tree("ssh_keys_by_fingerprint")?,
            events: db.open_tree("events")?,
            cordoned: db.open_tree("cordoned_hosts")?,
            enrollments: db.open_tree("enrollments")?,
            idempotency: db.open_tree("idempotency")?,
            volumes: db.open_tree("volumes")?,
            volumes_by_host: db.open_tree("volumes_by_host")?,
            usage: Arc::default(),
            flusher: Arc::default(),
            db,
        })
        .and_then(SledStore::build_indexes)
        .and_then(SledStore::sum_usage)
    }

    fn sum_usage(self) -> Result<SledStore, StoreError> {
        for rec in self.scan_containers(self.containers.iter())? {
            self.account(None, Some(&rec));
        }
        Ok(self)
    }

    /// Moves the per-host sums from what `old` said to what `new` says (a committed write).
    fn account(&self, old: Option<&ContainerRecord>, new: Option<&ContainerRecord>) {
        let placed = |r: Option<&ContainerRecord>| {
            r.and_then(|r| Some((r.host_key.clone()?, r.resources())))
        };
        if placed(old) == placed(new) {
            return; // most writes (status, usage reports) move nothing
        }
        let mut shared = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        // Copied only if a reader still holds the previous sums.
        let usage = Arc::make_mut(&mut shared);
        if let Some(h) = old.and_then(|o| o.host_key.as_ref().map(|h| (h, o))) {
            if let Some(u) = usage.get_mut(h.0) {
                u.used = u.used.minus(h.1.resources());
                u.containers = u.containers.saturating_sub(1);
                if u.containers == 0 {
                    usage.remove(h.0);
                }
            }
        }
        if let Some((h, n)) = new.and_then(|n| n.host_key.as_ref().map(|h| (h, n))) {
            let u = usage.entry(h.clone()).or_default();
            u.used = u.used.plus(n.resources());
            u.containers += 1;
        }
    }

    /// Stores written before the indexes existed get them once, at open.
    fn build_indexes(self) -> Result<SledStore, StoreError> {
        if self.by_fingerprint.is_empty() {
            for kv in self.keys.iter() {
                let (k, v) = kv?;
                let rec: KeyRecord = decode(&k, &v)?;
                self.by_fingerprint.insert(rec.fingerprint.as_bytes(), k)?;
            }
        }
        if !self.by_owner.is_empty() || self.containers.is_empty() {
            return Ok(self);
        }
        for rec in self.scan_containers(self.containers.iter())? {
            let trees = (&self.by_owner, &self.by_name, &self.by_host);
            tx_result(trees.transaction(|(o, n, h)| reindex((o, n, h), None, Some(&rec))))?;
        }
        tracing::info!(records = self.containers.len(), "store indexes built");
        Ok(self)
    }

    fn get_sync(&self, id: &str) -> Result<Option<ContainerRecord>, StoreError> {
        Ok(get(&self.containers, id.as_bytes())?)
    }

    fn scan_containers(&self, iter: sled::Iter) -> Result<Vec<ContainerRecord>, StoreError> {
        Ok(decode_all(iter)?)
    }

    /// The record tree and its indexes, for one transaction over all four.
    fn container_trees(&self) -> (&sled::Tree, &sled::Tree, &sled::Tree, &sled::Tree) {
        (
            &self.containers,
            &self.by_owner,
            &self.by_name,
            &self.by_host,
        )
    }

    /// The records an index prefix names (the id is what follows the `\0`).
    fn indexed(
        &self,
        index: &sled::Tree,
        prefix: &str,
    ) -> Result<Vec<ContainerRecord>, StoreError> {
        let mut out = Vec::new();
        for k in index.scan_prefix(pair(prefix, b"")).keys() {
            let k = k?;
            let id = String::from_utf8_lossy(&k[prefix.len() + 1..]).into_owned();
            if let Some(r) = self.get_sync(&id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Writes `new` in place of what is stored under its id, with its index entries.
    fn write(
        &self,
        id: &str,
        edit: &RefCell<Edit<'_>>,
        create: Option<&ContainerRecord>,
    ) -> Result<Option<ContainerRecord>, StoreError> {
        let written = tx_result(self.container_trees().transaction(|(c, o, n, h)| {
            let old: Option<ContainerRecord> = match c.get(id.as_bytes())? {
                Some(v) => Some(decode(id.as_bytes(), &v).map_err(|e| TxError::Abort(e.into()))?),
                None => None,
            };
            let new = match (&old, create) {
                (Some(_), Some(_)) => {
                    return Err(TxError::Abort(StoreError::Exists { id: id.into() }))
                }
                (None, Some(rec)) => rec.clone(),
                (None, None) => return Ok(None),
                (Some(old), None) => {
                    let mut rec = old.clone();
                    if (edit.borrow_mut())(&mut rec).is_none() {
                        return Ok(Some((rec, None)));
                    }
                    rec
                }
            };
            c.insert(
                id.as_bytes(),
                encode(id.as_bytes(), &new).map_err(|e| TxError::Abort(e.into()))?,
            )?;
            reindex((o, n, h), old.as_ref(), Some(&new))?;
            Ok(Some((new, Some(old))))
        }))?;
        Ok(written.map(|(new, old)| {
            if let Some(old) = old {
                self.account(old.as_ref(), Some(&new));
            }
            new
        }))
    }
}

impl Store for SledStore {
    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.flusher.flush(&self.db))
    }

    fn cluster_lock<'a>(&'a self, _name: &'a str) -> StoreFuture<'a, ClusterLock> {
        // The only coordinator of this store: its own locks are the cluster's.
        Box::pin(async { Ok(ClusterLock::none()) })
    }

    fn try_lease<'a>(&'a self, _name: &'a str) -> StoreFuture<'a, Option<ClusterLock>> {
        Box::pin(async { Ok(Some(ClusterLock::none())) })
    }

    fn container<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ContainerRecord>> {
        Box::pin(async move { self.get_sync(id) })
    }

    fn insert_container(&self, rec: ContainerRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut none = |_: &mut ContainerRecord| None;
            let edit: RefCell<Edit<'_>> = RefCell::new(&mut none);
            self.write(&rec.id, &edit, Some(&rec)).map(|_| ())
        })
    }

    fn update_container<'a>(
        &'a self,
        id: &'a str,
        edit: Edit<'a>,
    ) -> StoreFuture<'a, Option<ContainerRecord>> {
        Box::pin(async move { self.write(id, &RefCell::new(edit), None) })
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let old = tx_result(self.container_trees().transaction(|(c, o, n, h)| {
                let Some(v) = c.remove(id.as_bytes())? else {
                    return Ok(None);
                };
                let old: ContainerRecord =
                    decode(id.as_bytes(), &v).map_err(|e| TxError::Abort(e.into()))?;
                reindex((o, n, h), Some(&old), None)?;
                Ok(Some(old))
            }))?;
            self.account(old.as_ref(), None);
            for k in self.events.scan_prefix(id.as_bytes()).keys() {
                self.events.remove(k?)?;
            }
            Ok(())
        })
    }

    fn owner_containers<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<ContainerRecord>> {
        Box::pin(async move {
            let mut out = self.indexed(&self.by_owner, owner)?;
            out.retain(|c| c.is_visible());
            out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            Ok(out)
        })
    }

    fn container_named<'a>(
        &'a self,
        owner: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<ContainerRecord>> {
        Box::pin(async move {
            match self.by_name.get(pair(owner, name.as_bytes()))? {
                Some(id) => self.get_sync(&String::from_utf8_lossy(&id)),
                None => Ok(None),
            }
        })
    }

    fn host_containers<'a>(&'a self, host: &'a str) -> StoreFuture<'a, Vec<ContainerRecord>> {
        Box::pin(async move { self.indexed(&self.by_host, host) })
    }

    fn unplaced_containers(&self) -> StoreFuture<'_, Vec<ContainerRecord>> {
        Box::pin(async move { self.indexed(&self.by_host, "") })
    }

    fn host_usage(&self) -> StoreFuture<'_, Arc<HashMap<String, HostUsage>>> {
        Box::pin(async move { Ok(self.usage.lock().unwrap_or_else(|p| p.into_inner()).clone()) })
    }

    fn all_containers(&self) -> StoreFuture<'_, Vec<ContainerRecord>> {
        Box::pin(async move { self.scan_containers(self.containers.iter()) })
    }

    fn add_event<'a>(&'a self, id: &'a str, kind: &'a str, message: String) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut key = id.as_bytes().to_vec();
            let seq = self.db.generate_id()?;
            key.extend_from_slice(&seq.to_be_bytes());
            let ev = EventRecord {
                seq,
                at: berth_shared::time::now_unix().0,
                kind: kind.to_string(),
                message,
            };
            self.events.insert(key, encode(id.as_bytes(), &ev)?)?;
            let keys: Vec<sled::IVec> = self
                .events
                .scan_prefix(id.as_bytes())
                .keys()
                .collect::<Result<_, _>>()?;
            for k in keys.iter().take(keys.len().saturating_sub(MAX_EVENTS)) {
                self.events.remove(k)?;
            }
            Ok(())
        })
    }

    fn events<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Vec<EventRecord>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for entry in self.events.scan_prefix(id.as_bytes()) {
                let (k, v) = entry?;
                let mut ev: EventRecord = decode(&k, &v)?;
                // The key's tail is the event's sequence number (records before `seq` lack it).
                let tail = k.len().checked_sub(8).and_then(|n| k[n..].try_into().ok());
                ev.seq = tail.map_or(ev.seq, u64::from_be_bytes);
                out.push(ev);
            }
            out.reverse();
            Ok(out)
        })
    }

    fn next_id(&self) -> StoreFuture<'_, u64> {
        // sled ids are unique and monotonic across restarts; +1 so the first is 1.
        Box::pin(async move { Ok(self.db.generate_id()? + 1) })
    }

    fn put_key(&self, rec: KeyRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let k = pair(&rec.owner, &rec.id.to_be_bytes());
            let v = encode(&k, &rec)?;
            tx_result(
                (&self.keys, &self.by_fingerprint).transaction(|(keys, fp)| {
                    keys.insert(k.as_slice(), v.as_slice())?;
                    fp.insert(rec.fingerprint.as_bytes(), k.as_slice())?;
                    Ok(())
                }),
            )
        })
    }

    fn owner_keys<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<KeyRecord>> {
        Box::pin(async move { Ok(decode_all(self.keys.scan_prefix(pair(owner, b"")))?) })
    }

    fn key_with_fingerprint<'a>(
        &'a self,
        fingerprint: &'a str,
    ) -> StoreFuture<'a, Option<KeyRecord>> {
        Box::pin(async move {
            match self.by_fingerprint.get(fingerprint.as_bytes())? {
                Some(k) => Ok(get(&self.keys, &k)?),
                None => Ok(None),
            }
        })
    }

    fn delete_key<'a>(&'a self, owner: &'a str, id: u64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let k = pair(owner, &id.to_be_bytes());
            tx_result(
                (&self.keys, &self.by_fingerprint).transaction(|(keys, fp)| {
                    let Some(v) = keys.remove(k.as_slice())? else {
                        return Ok(false);
                    };
                    let rec: KeyRecord = decode(&k, &v).map_err(|e| TxError::Abort(e.into()))?;
                    if fp
                        .get(rec.fingerprint.as_bytes())?
                        .is_some_and(|at| at == k.as_slice())
                    {
                        fp.remove(rec.fingerprint.as_bytes())?;
                    }
                    Ok(true)
                }),
            )
        })
    }

    fn volume<'a>(&'a self, owner: &'a str, id: &'a str) -> StoreFuture<'a, Option<VolumeRecord>> {
        Box::pin(async move { self.volume_sync(owner, id) })
    }

    fn put_volume(&self, rec: VolumeRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.put_volume_sync(&rec) })
    }

    fn owner_volumes<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<VolumeRecord>> {
        Box::pin(async move { self.owner_volumes_sync(owner) })
    }

    fn host_volumes<'a>(&'a self, host: &'a str) -> StoreFuture<'a, Vec<VolumeRecord>> {
        Box::pin(async move { self.host_volumes_sync(host) })
    }

    fn remove_volume<'a>(&'a self, owner: &'a str, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.remove_volume_sync(owner, id) })
    }

    fn set_cordoned<'a>(&'a self, host: &'a str, cordoned: bool) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if cordoned {
                self.cordoned.insert(host.as_bytes(), &b"1"[..])?;
            } else {
                self.cordoned.remove(host.as_bytes())?;
            }
            Ok(())
        })
    }

    fn cordoned_hosts(&self) -> StoreFuture<'_, BTreeSet<String>> {
        Box::pin(async move {
            let mut out = BTreeSet::new();
            for k in self.cordoned.iter().keys() {
                out.insert(String::from_utf8_lossy(&k?).into_owned());
            }
            Ok(out)
        })
    }

    fn redeem_enrollment<'a>(&'a self, jti: &'a str, host_key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            Ok(self
                .enrollments
                .compare_and_swap(jti.as_bytes(), None::<&[u8]>, Some(host_key.as_bytes()))?
                .is_ok())
        })
    }

    fn reserve_idempotency(
        &self,
        rec: IdempotencyRecord,
    ) -> StoreFuture<'_, Option<IdempotencyRecord>> {
        Box::pin(async move {
            let k = pair(&rec.owner, rec.key.as_bytes());
            let v = encode(&k, &rec)?;
            match self
                .idempotency
                .compare_and_swap(&k, None::<&[u8]>, Some(v))?
            {
                Ok(()) => Ok(None),
                Err(e) => match e.current {
                    Some(cur) => Ok(Some(decode(&k, &cur)?)),
                    // Removed in between: taken as stored would be wrong, so say it is there.
                    None => Ok(Some(rec)),
                },
            }
        })
    }

    fn put_idempotency(&self, rec: IdempotencyRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let k = pair(&rec.owner, rec.key.as_bytes());
            self.idempotency.insert(&k, encode(&k, &rec)?)?;
            Ok(())
        })
    }

    fn remove_idempotency<'a>(&'a self, owner: &'a str, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.idempotency.remove(pair(owner, key.as_bytes()))?;
            Ok(())
        })
    }

    fn expire_idempotency(&self, before: u64) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let mut n = 0;
            for entry in self.idempotency.iter() {
                let (k, v) = entry?;
                let rec: IdempotencyRecord = decode(&k, &v)?;
                if rec.created_at < before {
                    self.idempotency.remove(&k)?;
                    n += 1;
                }
            }
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance;
    use super::SledStore;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn sled_passes_the_conformance_suite() {
        let dir = temp("conformance");
        let store = SledStore::open(&dir).expect("open");
        conformance::run(&store).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn records_and_indexes_survive_reopen() {
        let dir = temp("reopen");
        {
            let s = SledStore::open(&dir).expect("open");
            conformance::fill(&s).await;
        }
        // sled's flusher thread lets go of the file lock a moment after the last handle.
        let mut reopened = SledStore::open(&dir);
        for _ in 0..50 {
            if reopened.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            reopened = SledStore::open(&dir);
        }
        let s = reopened.expect("reopen");
        conformance::check_filled(&s).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
