//! What a volume's host is told (`Request::Volume`: have it at its size, or remove it) and
//! what its answer changes: `ready` and `used_bytes`, a reason when it could not, the
//! record gone once a deleted volume's data is. A host that did not hear is told again
//! when it next connects (`sync_volumes`).

use super::super::Containers;
use crate::error::Error;
use crate::store::VolumeRecord;
use berth_shared::protocol::{Request, Response};
use berth_shared::volumes::VolumeSpec;

impl Containers {
    /// Tells `v`'s host what `v` says and records its answer; returns the record as it is
    /// afterwards. A host that cannot be reached leaves the record as it was (with the
    /// reason): it hears again on its next connection. Call outside the owner's turn.
    pub(super) async fn tell_host(&self, v: VolumeRecord) -> Result<VolumeRecord, Error> {
        let spec = VolumeSpec {
            id: v.id.clone(),
            size_gb: v.size_gb,
            deleted: v.deleted,
        };
        let answer = self.hub.request(&v.host_key, &Request::Volume(spec)).await;
        let (used, reason) = match answer {
            Ok(Response::Volume { used_bytes, .. }) => (Some(used_bytes), None),
            Ok(Response::Error { message }) => (None, Some(message)),
            Ok(other) => (None, Some(format!("unexpected answer {other:?}"))),
            Err(e) => {
                tracing::warn!(volume = %v.id, host = %v.host_key, error = %e, "volume not told to its host; it is told again when the host connects");
                return Ok(v);
            }
        };
        let _turn = self.owner_turn(&v.owner).await?;
        let Some(mut now) = self.store.volume(&v.owner, &v.id).await? else {
            return Ok(v);
        };
        if now.deleted != v.deleted || now.size_gb != v.size_gb {
            // Changed meanwhile: whoever changed it tells the host of that.
            return Ok(now);
        }
        match (used, now.deleted) {
            (Some(None), true) => {
                self.store.remove_volume(&v.owner, &v.id).await?;
                self.store.flush().await?;
                tracing::info!(volume = %v.id, host = %v.host_key, "volume removed from its host and the store");
                return Ok(now);
            }
            (Some(bytes), _) => {
                now.ready = true;
                now.used_bytes = bytes.or(now.used_bytes);
                now.reason = None;
            }
            (None, _) => now.reason = reason,
        }
        self.store.put_volume(now.clone()).await?;
        self.store.flush().await?;
        Ok(now)
    }

    /// After `host` connected: tells it of every volume it has not confirmed (made, grown
    /// or removed). Failures are logged; the next connection retries.
    pub async fn sync_volumes(&self, host: &str) -> Result<(), Error> {
        for v in self.store.host_volumes(host).await? {
            if !v.ready || v.deleted || v.reason.is_some() {
                self.tell_host(v).await?;
            }
        }
        Ok(())
    }
}
