//! Volume records in sled: `owner \0 id` → record (so an owner's volumes are one prefix scan
//! and another's id finds nothing), and `host \0 id` → the record's key, written in the same
//! transaction as the record.

use super::{pair, tx_result, SledStore, TxError};
use crate::store::{StoreError, VolumeRecord};
use berth_service::records::{decode_all, encode, get};
use sled::Transactional;

impl SledStore {
    pub(super) fn volume_sync(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<VolumeRecord>, StoreError> {
        Ok(get(&self.volumes, &pair(owner, id.as_bytes()))?)
    }

    pub(super) fn put_volume_sync(&self, rec: &VolumeRecord) -> Result<(), StoreError> {
        let k = pair(&rec.owner, rec.id.as_bytes());
        let v = encode(&k, rec)?;
        let h = pair(&rec.host_key, rec.id.as_bytes());
        tx_result(
            (&self.volumes, &self.volumes_by_host).transaction(|(vols, hosts)| {
                vols.insert(k.as_slice(), v.as_slice())?;
                hosts.insert(h.as_slice(), k.as_slice())?;
                Ok::<_, TxError>(())
            }),
        )
    }

    pub(super) fn owner_volumes_sync(&self, owner: &str) -> Result<Vec<VolumeRecord>, StoreError> {
        let mut all: Vec<VolumeRecord> = decode_all(self.volumes.scan_prefix(pair(owner, b"")))?;
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    pub(super) fn host_volumes_sync(&self, host: &str) -> Result<Vec<VolumeRecord>, StoreError> {
        let mut out = Vec::new();
        for entry in self.volumes_by_host.scan_prefix(pair(host, b"")) {
            let (_, key) = entry?;
            // The index and the record are written together: a missing record is a bug
            // worth a loud error, not a volume to skip.
            let rec: VolumeRecord = get(&self.volumes, &key)?.ok_or_else(|| {
                StoreError::Sled(::sled::Error::ReportableBug(format!(
                    "volume index names a missing record {}",
                    String::from_utf8_lossy(&key)
                )))
            })?;
            out.push(rec);
        }
        Ok(out)
    }

    pub(super) fn remove_volume_sync(&self, owner: &str, id: &str) -> Result<(), StoreError> {
        let k = pair(owner, id.as_bytes());
        let Some(rec) = self.volume_sync(owner, id)? else {
            return Ok(());
        };
        let h = pair(&rec.host_key, id.as_bytes());
        tx_result(
            (&self.volumes, &self.volumes_by_host).transaction(|(vols, hosts)| {
                vols.remove(k.as_slice())?;
                hosts.remove(h.as_slice())?;
                Ok::<_, TxError>(())
            }),
        )
    }
}
