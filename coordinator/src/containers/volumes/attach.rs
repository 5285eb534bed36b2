//! Volumes and containers: the volumes a create names (resolved, on one host, free), attach
//! to and detach from an existing container (a running one is re-created), and what a
//! container's spec says of its volumes.

use super::super::settings::Change;
use super::super::Containers;
use crate::error::Error;
use crate::store::ContainerRecord;
use berth_shared::protocol::DesiredState;
use berth_shared::requests::{check_paths, AttachBody, Check, Validate, MAX_CONTAINER_VOLUMES};
use berth_shared::volumes::{ContainerVolumes, VolumeMount, VolumeRef};

impl Containers {
    /// A create's `volumes` and `volume_ids` (at `/mnt/<name>`) as one list, each the
    /// caller's, not deleted and mounted by no container, all on one host: that host.
    /// Call in the owner's turn.
    pub(in crate::containers) async fn resolve_volumes(
        &self,
        user: &str,
        mut refs: Vec<VolumeRef>,
        ids: Vec<String>,
        mount_paths: &[String],
    ) -> Result<(Vec<VolumeRef>, Option<String>), Error> {
        let mut host: Option<String> = None;
        let mut records = Vec::new();
        for id in ids {
            let v = self.live_volume(user, &id, "volume_ids").await?;
            refs.push(VolumeRef {
                volume_id: id,
                mount_path: format!("/mnt/{}", v.name),
            });
            records.push(v);
        }
        for r in &refs {
            if !records.iter().any(|v| v.id == r.volume_id) {
                records.push(self.live_volume(user, &r.volume_id, "volumes").await?);
            }
        }
        let mut c = Check::default();
        check_paths(&mut c, "volumes", &refs, mount_paths);
        if refs.len() > MAX_CONTAINER_VOLUMES {
            c.errors.add(
                "volumes",
                format!("at most {MAX_CONTAINER_VOLUMES} volumes"),
            );
        }
        if !c.errors.is_empty() {
            return Err(Error::Invalid(c.errors));
        }
        for v in &records {
            match &host {
                Some(h) if *h != v.host_key => {
                    return Err(Error::invalid(
                        "volumes",
                        format!("volume {} is on host {}, another on {h}: a container's volumes must share one host", v.id, v.host_key),
                    ));
                }
                _ => host = Some(v.host_key.clone()),
            }
        }
        if let Some(h) = &host {
            let held = self.holders_on(h).await?;
            if let Some((id, a)) = refs
                .iter()
                .find_map(|r| held.get(&r.volume_id).map(|a| (&r.volume_id, a)))
            {
                return Err(Error::Conflict(format!(
                    "volume {id} is attached to container {}",
                    a.container_id
                )));
            }
        }
        Ok((refs, host))
    }

    /// The caller's volume `id`, not being deleted; a 422 on `field` otherwise (a volume the
    /// caller cannot see is "not one of yours", as an SSH key is).
    async fn live_volume(
        &self,
        user: &str,
        id: &str,
        field: &str,
    ) -> Result<crate::store::VolumeRecord, Error> {
        match self.volume_record(user, id).await {
            Ok(v) if !v.deleted => Ok(v),
            Ok(_) | Err(Error::NotFound) => Err(Error::invalid(
                field,
                format!("{id} is not one of your volumes"),
            )),
            Err(e) => Err(e),
        }
    }

    /// `POST /compute/containers/:id/volumes`: mounts the caller's free volume on the same
    /// host at `mount_path`; a running container is re-created with it.
    pub async fn attach(
        &self,
        rec: &ContainerRecord,
        body: AttachBody,
    ) -> Result<ContainerVolumes, Error> {
        let want = body.validate(&()).map_err(Error::Invalid)?;
        let _owner = self.owner_turn(&rec.owner).await?;
        let v = self.volume_record(&rec.owner, &want.volume_id).await?;
        if v.deleted {
            return Err(Error::NotFound);
        }
        if rec.host_key.as_deref() != Some(v.host_key.as_str()) {
            return Err(Error::invalid(
                "volume_id",
                format!(
                    "the volume is on host {}, the container on {}: a volume is mounted on its own host only",
                    v.host_key,
                    rec.host_key.as_deref().unwrap_or("no host yet")
                ),
            ));
        }
        if let Some(a) = self.holders_on(&v.host_key).await?.get(&v.id) {
            return Err(Error::Conflict(format!(
                "volume {} is attached to container {} at {}",
                v.id, a.container_id, a.mount_path
            )));
        }
        let mut c = Check::default();
        let mut all = rec.volumes.clone();
        all.push(want.clone());
        check_paths(&mut c, "mount_path", &all, &rec.mount_paths);
        if all.len() > MAX_CONTAINER_VOLUMES {
            c.errors.add(
                "volume_id",
                format!("at most {MAX_CONTAINER_VOLUMES} volumes"),
            );
        }
        if !c.errors.is_empty() {
            return Err(Error::Invalid(c.errors));
        }
        self.change_volumes(rec, "volume_attached", |vols| {
            vols.push(want.clone());
            true
        })
        .await
    }

    /// `DELETE /compute/containers/:id/volumes/:volume_id`: unmounts it (a running container is
    /// re-created without it); the volume and its data stay.
    pub async fn detach(
        &self,
        rec: &ContainerRecord,
        volume_id: &str,
    ) -> Result<ContainerVolumes, Error> {
        let _owner = self.owner_turn(&rec.owner).await?;
        if !rec.volumes.iter().any(|v| v.volume_id == volume_id) {
            return Err(Error::NotFound);
        }
        self.change_volumes(rec, "volume_detached", |vols| {
            let before = vols.len();
            vols.retain(|v| v.volume_id != volume_id);
            vols.len() != before
        })
        .await
    }

    async fn change_volumes<F>(
        &self,
        rec: &ContainerRecord,
        event: &str,
        mut f: F,
    ) -> Result<ContainerVolumes, Error>
    where
        F: FnMut(&mut Vec<VolumeRef>) -> bool + Send,
    {
        let mut restarted = false;
        let rec = self
            .modify(&rec.id, event, |r| {
                if !f(&mut r.volumes) {
                    return Ok(Change::None);
                }
                restarted = r.desired == DesiredState::Running;
                Ok(Change::Spec)
            })
            .await?;
        Ok(ContainerVolumes {
            volumes: rec.volumes,
            restarted,
        })
    }

    /// A new generation of container `id` (its volumes changed size); a container being
    /// deleted needs none.
    pub(super) async fn respec(&self, id: &str, event: &str) -> Result<(), Error> {
        match self.modify(id, event, |_| Ok(Change::Spec)).await {
            Ok(_) | Err(Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// What `r`'s spec says of its volumes. A volume it names that cannot be read fails the
    /// spec: one without it would start the container on an empty directory.
    pub(in crate::containers) async fn volume_mounts(
        &self,
        r: &ContainerRecord,
    ) -> Result<Vec<VolumeMount>, Error> {
        if r.volumes.is_empty() {
            return Ok(Vec::new());
        }
        let mine = self.store.owner_volumes(&r.owner).await?;
        r.volumes
            .iter()
            .map(|a| {
                let v = mine.iter().find(|v| v.id == a.volume_id).ok_or_else(|| {
                    Error::Unavailable(format!(
                        "volume {} of container {} has no record",
                        a.volume_id, r.id
                    ))
                })?;
                Ok(VolumeMount {
                    id: v.id.clone(),
                    mount_path: a.mount_path.clone(),
                    size_gb: v.size_gb,
                })
            })
            .collect()
    }
}
