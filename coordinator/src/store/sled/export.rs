//! Reads the whole sled store out, for `store migrate`.

use super::SledStore;
use crate::store::migrate::Export;
use crate::store::{EventRecord, StoreError};
use berth_service::records::{decode, decode_all};

impl SledStore {
    pub fn export(&self) -> Result<Export, StoreError> {
        let mut out = Export {
            containers: self.scan_containers(self.containers.iter())?,
            keys: decode_all(self.keys.iter())?,
            idempotency: decode_all(self.idempotency.iter())?,
            volumes: decode_all(self.volumes.iter())?,
            last_id: self.db.generate_id()?,
            ..Export::default()
        };
        for entry in self.events.iter() {
            let (k, v) = entry?;
            let mut ev: EventRecord = decode(&k, &v)?;
            // `container id` then the sequence number, 8 bytes big-endian.
            let Some(split) = k.len().checked_sub(8) else {
                continue;
            };
            if let Ok(tail) = k[split..].try_into() {
                ev.seq = u64::from_be_bytes(tail);
            }
            out.events
                .push((String::from_utf8_lossy(&k[..split]).into_owned(), ev));
        }
        for k in self.cordoned.iter().keys() {
            out.cordoned.push(String::from_utf8_lossy(&k?).into_owned());
        }
        for entry in self.enrollments.iter() {
            let (k, v) = entry?;
            out.enrollments.push((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        Ok(out)
    }
}
