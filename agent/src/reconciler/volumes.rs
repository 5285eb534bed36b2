//! Users' volumes on this host, as the coordinator asks (`Request::Volume`): made or grown,
//! or removed with their data — never while a container this host holds mounts one. Each
//! volume takes turns under a lock of its own, which a container being made with it takes
//! too (after its own), so a grow and a mount never race.

use super::{lock, ReconcileError, Reconciler};
use crate::volumes::VolumeError;
use berth_shared::protocol::DesiredState;
use berth_shared::volumes::VolumeSpec;
use std::path::PathBuf;
use std::sync::Arc;

impl Reconciler {
    fn volume_lock(&self, vid: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.locks)
            .entry(vid.to_string())
            .or_default()
            .clone()
    }

    /// Does what `spec` says; `Some(bytes in use)` while the volume is here, `None` once it
    /// is removed.
    pub async fn volume(&self, spec: &VolumeSpec) -> Result<Option<u64>, ReconcileError> {
        let l = self.volume_lock(&spec.id);
        let _turn = l.lock().await;
        if spec.deleted {
            let holder = self.state.specs()?.into_iter().find(|s| {
                s.desired != DesiredState::Deleted && s.volumes.iter().any(|v| v.id == spec.id)
            });
            if let Some(s) = holder {
                return Err(VolumeError::InUse {
                    volume: spec.id.clone(),
                    container: s.id,
                }
                .into());
            }
            self.volumes.remove_user(&spec.id)?;
            tracing::info!(volume = %spec.id, "volume removed with its data");
            return Ok(None);
        }
        self.volumes.ensure_user(&spec.id, spec.size_gb)?;
        Ok(Some(self.volumes.user_used_bytes(&spec.id).unwrap_or(0)))
    }

    /// Mounts the volumes a container is being made with: each made or grown first, under
    /// its lock. Returns `(host directory, mount path)` pairs.
    pub(super) async fn user_volumes(
        &self,
        spec: &berth_shared::protocol::ContainerSpec,
    ) -> Result<Vec<(PathBuf, String)>, ReconcileError> {
        let mut out = Vec::with_capacity(spec.volumes.len());
        for v in &spec.volumes {
            let l = self.volume_lock(&v.id);
            let _turn = l.lock().await;
            out.push((
                self.volumes.ensure_user(&v.id, v.size_gb)?,
                v.mount_path.clone(),
            ));
        }
        Ok(out)
    }

    /// Bytes in use on user volume `vid`, while it is mounted here.
    pub fn user_volume_used(&self, vid: &str) -> Option<u64> {
        self.volumes.user_used_bytes(vid)
    }
}
