//! Users' volumes: create (placed on one host, counted against the owner's storage and
//! volume caps), list, rename and grow, delete (refused while attached). Attachments are the
//! containers' records' (`attach`); what hosts are told and answer is `host`'s.
//!
//! A volume is attached while any record on its host names it — a container being deleted
//! too, until its host has torn it down — so two containers never mount one volume.

mod attach;
mod host;

use super::Containers;
use crate::error::Error;
use crate::placement::Demand;
use crate::store::{ContainerRecord, VolumeRecord};
use berth_shared::protocol::{Resources, Runtime};
use berth_shared::requests::{NewVolume, Validate, VolumeBody, VolumeLimits, VolumePatchBody};
use berth_shared::volumes::{is_volume_id, new_volume_id, Attachment, Volume, VolumeStatus};
use std::collections::HashMap;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Which container (visible or being deleted) mounts each volume of one host, and where.
type Holders = HashMap<String, Attachment>;

fn holders(records: &[ContainerRecord]) -> Holders {
    records
        .iter()
        .flat_map(|r| {
            r.volumes.iter().map(|v| {
                let at = Attachment {
                    container_id: r.id.clone(),
                    mount_path: v.mount_path.clone(),
                };
                (v.volume_id.clone(), at)
            })
        })
        .collect()
}

impl Containers {
    fn volume_limits(&self) -> VolumeLimits {
        VolumeLimits {
            size_gb: (self.limits.min_storage_gb, self.limits.max_storage_gb),
        }
    }

    /// The caller's volume, deleted-but-not-removed ones too; `NotFound` for anyone else's.
    pub(super) async fn volume_record(&self, user: &str, id: &str) -> Result<VolumeRecord, Error> {
        if !is_volume_id(id) {
            return Err(Error::NotFound);
        }
        self.store.volume(user, id).await?.ok_or(Error::NotFound)
    }

    /// Who mounts the volumes of `host`.
    async fn holders_on(&self, host: &str) -> Result<Holders, Error> {
        Ok(holders(&self.store.host_containers(host).await?))
    }

    fn volume_view(v: &VolumeRecord, at: Option<&Attachment>) -> Volume {
        let status = match (v.deleted, at, v.ready) {
            (true, _, _) => VolumeStatus::Deleting,
            (false, Some(_), _) => VolumeStatus::Attached,
            (false, None, false) => VolumeStatus::Creating,
            (false, None, true) => VolumeStatus::Available,
        };
        Volume {
            id: v.id.clone(),
            name: v.name.clone(),
            size_gb: v.size_gb,
            used_gb: v
                .used_bytes
                .map(|b| (b as f64 / GIB * 100.0).round() / 100.0),
            host_key: v.host_key.clone(),
            region: v.region.clone(),
            status,
            status_reason: v.reason.clone(),
            attached_to: at.cloned(),
            created_at: berth_shared::time::rfc3339(v.created_at),
        }
    }

    /// `GET /compute/volumes`: the caller's, oldest first.
    pub async fn volumes(&self, user: &str) -> Result<Vec<Volume>, Error> {
        let mine = self.store.owner_volumes(user).await?;
        let mut on: HashMap<&str, Holders> = HashMap::new();
        for v in &mine {
            if !on.contains_key(v.host_key.as_str()) {
                on.insert(&v.host_key, self.holders_on(&v.host_key).await?);
            }
        }
        Ok(mine
            .iter()
            .map(|v| Self::volume_view(v, on.get(v.host_key.as_str()).and_then(|h| h.get(&v.id))))
            .collect())
    }

    pub async fn volume(&self, user: &str, id: &str) -> Result<Volume, Error> {
        let v = self.volume_record(user, id).await?;
        let held = self.holders_on(&v.host_key).await?;
        Ok(Self::volume_view(&v, held.get(&v.id)))
    }

    /// GiB the owner's volumes take (deleted ones until their host removed them).
    pub(super) async fn volumes_gb(&self, owner: &str) -> Result<u64, Error> {
        let mine = self.store.owner_volumes(owner).await?;
        Ok(mine.iter().map(|v| v.size_gb).sum())
    }

    /// Fails with `over_quota` if the owner's containers and volumes, with `more_gb`
    /// added, pass the storage cap.
    fn check_storage(
        &self,
        mine: &[ContainerRecord],
        volumes_gb: u64,
        more_gb: u64,
    ) -> Result<(), Error> {
        let more = Resources {
            disk_gb: volumes_gb.saturating_add(more_gb),
            ..Resources::default()
        };
        self.check_totals(mine, None, more)
    }

    /// `POST /compute/volumes`: stored, then made on its host (`creating` until it is).
    pub async fn create_volume(&self, user: &str, body: VolumeBody) -> Result<Volume, Error> {
        let want: NewVolume = body
            .validate(&self.volume_limits())
            .map_err(Error::Invalid)?;
        let turn = self.owner_turn(user).await?;
        let mine = self.store.owner_volumes(user).await?;
        let max = self.limits.max_volumes;
        if mine.len() as u64 + 1 > max {
            return Err(Error::over_quota("volumes", mine.len() as u64 + 1, max));
        }
        let containers = self.store.owner_containers(user).await?;
        let gb = mine.iter().map(|v| v.size_gb).sum();
        self.check_storage(&containers, gb, want.size_gb)?;
        if mine.iter().any(|v| v.name == want.name && !v.deleted) {
            return Err(Error::Conflict(format!(
                "you already have a volume named {:?}",
                want.name
            )));
        }
        let demand = Demand {
            arch: None,
            need: Resources {
                disk_gb: want.size_gb,
                ..Resources::default()
            },
            region: want.region.clone(),
            host_key: want.host_key.clone(),
            runtime: Runtime::Runc,
        };
        let mut id = new_volume_id();
        while self.store.volume(user, &id).await?.is_some() {
            id = new_volume_id();
        }
        let rec = {
            let _placing = self.placement_turn().await?;
            let (host, region) = self.fleet.place(&demand).await?.map_err(|reason| {
                Error::invalid("body", format!("no host for this volume: {reason}"))
            })?;
            let rec = VolumeRecord {
                id,
                owner: user.to_string(),
                name: want.name,
                size_gb: want.size_gb,
                host_key: host,
                region: Some(region),
                ready: false,
                deleted: false,
                used_bytes: None,
                reason: None,
                created_at: berth_shared::time::now_unix().0,
            };
            self.store.put_volume(rec.clone()).await?;
            rec
        };
        self.store.flush().await?;
        drop(turn);
        tracing::info!(user, id = %rec.id, host = %rec.host_key, size_gb = rec.size_gb, "volume created");
        let rec = self.tell_host(rec).await?;
        Ok(Self::volume_view(&rec, None))
    }

    /// `PATCH /compute/volumes/:id`: rename, grow. An attached volume grows when its
    /// container is next made: a running one is re-created at once, its data kept.
    pub async fn patch_volume(
        &self,
        user: &str,
        id: &str,
        body: VolumePatchBody,
    ) -> Result<Volume, Error> {
        let turn = self.owner_turn(user).await?;
        let mut v = self.volume_record(user, id).await?;
        if v.deleted {
            return Err(Error::NotFound);
        }
        let p = body
            .validate(&(self.volume_limits(), v.size_gb))
            .map_err(Error::Invalid)?;
        let mine = self.store.owner_volumes(user).await?;
        if let Some(n) = &p.name {
            if mine
                .iter()
                .any(|o| &o.name == n && o.id != v.id && !o.deleted)
            {
                return Err(Error::Conflict(format!(
                    "you already have a volume named {n:?}"
                )));
            }
            v.name = n.clone();
        }
        let grown = p.size_gb.filter(|s| *s > v.size_gb);
        if let Some(size) = grown {
            let containers = self.store.owner_containers(user).await?;
            let gb: u64 = mine.iter().map(|o| o.size_gb).sum();
            self.check_storage(&containers, gb, size - v.size_gb)?;
            v.size_gb = size;
        }
        self.store.put_volume(v.clone()).await?;
        self.store.flush().await?;
        let held = self.holders_on(&v.host_key).await?;
        let at = held.get(&v.id).cloned();
        drop(turn);
        if grown.is_some() {
            match &at {
                // Its spec carries the new size: the host grows it before the container starts.
                Some(a) => self.respec(&a.container_id, "volume_grown").await?,
                None => v = self.tell_host(v).await?,
            }
        }
        Ok(Self::volume_view(&v, at.as_ref()))
    }

    /// `DELETE /compute/volumes/:id`: `409` while a container mounts it; else its host
    /// removes it with its data and the record goes (`deleting` until the host has).
    pub async fn delete_volume(&self, user: &str, id: &str) -> Result<(), Error> {
        let turn = self.owner_turn(user).await?;
        let mut v = self.volume_record(user, id).await?;
        if let Some(a) = self.holders_on(&v.host_key).await?.get(&v.id) {
            return Err(Error::Conflict(format!(
                "volume {} is attached to container {} at {}: detach it (or delete the container) first",
                v.id, a.container_id, a.mount_path
            )));
        }
        if !v.deleted {
            v.deleted = true;
            self.store.put_volume(v.clone()).await?;
            self.store.flush().await?;
        }
        drop(turn);
        tracing::info!(user, id, host = %v.host_key, "volume deleted");
        self.tell_host(v).await?;
        Ok(())
    }
}
