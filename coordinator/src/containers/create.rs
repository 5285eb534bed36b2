//! Create: validate, check keys and image, quota, name and volumes under the quota lock,
//! place through the fleet (on the volumes' host), persist, answer, dispatch. And placing what found no host yet.

use super::Containers;
use crate::error::Error;
use crate::events::{ContainerEvent, EventKind};
use crate::placement::Demand;
use crate::store::ContainerRecord;
use berth_shared::api::{self, ContainerStatus, Image};
use berth_shared::ids;
use berth_shared::protocol::DesiredState;
use berth_shared::requests::{CreateBody, SizeLimits, Validate};

impl Containers {
    /// `GET /compute/images`: the builtin images, then the registry's (503 when the
    /// configured registry does not answer).
    pub async fn images(&self) -> Result<Vec<Image>, Error> {
        let mut list: Vec<Image> = self
            .images
            .builtin
            .iter()
            .map(|b| Image {
                name: b.name.clone(),
                image: b.image.clone(),
                source: "builtin".into(),
            })
            .collect();
        let found = self
            .registries
            .images()
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        {
            list.extend(found.into_iter().map(|image| {
                Image {
                    name: image
                        .split_once('/')
                        .map_or(&*image, |(_, n)| n)
                        .to_string(),
                    image,
                    source: "registry".into(),
                }
            }));
        }
        Ok(list)
    }

    /// Whether `image` may be used: a builtin one, or one the registry holds.
    async fn image_listed(&self, image: &str) -> Result<bool, Error> {
        if self.images.builtin.iter().any(|b| b.image == image) {
            return Ok(true);
        }
        let held = self.registries.holds(image).await;
        Ok(held
            .map_err(|e| Error::Unavailable(e.to_string()))?
            .unwrap_or(false))
    }

    fn size_limits(&self) -> SizeLimits<'_> {
        let l = &self.limits;
        SizeLimits {
            instance_types: self.catalog.names(),
            default_instance_type: &self.catalog.default_instance_type,
            default_memory_mb: l.default_memory_mb,
            default_storage_gb: l.default_storage_gb,
            memory_mb: (l.min_memory_mb, l.max_memory_mb),
            storage_gb: (l.min_storage_gb, l.max_storage_gb),
        }
    }

    pub async fn create(&self, user: &str, body: CreateBody) -> Result<api::Container, Error> {
        let mut req = body.validate(&self.size_limits()).map_err(Error::Invalid)?;
        let image = req
            .image
            .take()
            .unwrap_or_else(|| self.images.default.clone());
        if !self.image_listed(&image).await? {
            return Err(Error::invalid(
                "image",
                "must be an image listed by GET /compute/images",
            ));
        }
        let keys = self.store.owner_keys(user).await?;
        if let Some(id) = req
            .ssh_key_ids
            .iter()
            .find(|id| !keys.iter().any(|k| k.id == **id))
        {
            return Err(Error::invalid(
                "ssh_key_ids",
                format!("{id} is not one of your SSH keys"),
            ));
        }
        let Some(itype) = self.catalog.get(&req.instance_type).cloned() else {
            return Err(Error::invalid("instance_type", "unknown"));
        };
        if !self.fleet.offers(req.runtime) {
            return Err(Error::invalid(
                "runtime",
                format!("no host offers the {} runtime", req.runtime.as_str()),
            ));
        }

        let owner_turn = self.owner_turn(user).await?;
        let mine = self.store.owner_containers(user).await?;
        let mut rec = ContainerRecord {
            id: String::new(),
            owner: user.to_string(),
            name: req.name,
            instance_type: itype.name.clone(),
            cpu_millis: itype.cpu_millis(),
            memory_mb: req.memory_mb,
            storage_gb: req.storage_gb,
            ssh_key_ids: req.ssh_key_ids,
            ssh_enabled: req.ssh_enabled,
            mount_paths: req.mount_paths,
            image,
            env: std::mem::take(&mut req.env),
            created_at: berth_shared::time::now_unix().0,
            desired: DesiredState::Running,
            generation: 1,
            host_key: None,
            region: None,
            status: ContainerStatus::Pending,
            status_reason: None,
            observed_generation: 0,
            memory_used_mb: None,
            storage_used_gb: None,
            ports: std::mem::take(&mut req.ports),
            ingress: Vec::new(),
            requested_region: req.region.take(),
            requested_host_key: req.host_key.take(),
            external_ip: None,
            boot: 0,
            recreated: None,
            runtime: req.runtime,
            restart_policy: req.restart_policy,
            health_check: req.health_check.take(),
            health: None,
            restarts: Default::default(),
            volumes: Vec::new(),
            pull_policy: req.pull_policy,
            image_digest: None,
        };
        let (volumes, volume_host) = self
            .resolve_volumes(
                user,
                std::mem::take(&mut req.volumes),
                std::mem::take(&mut req.volume_ids),
                &rec.mount_paths,
            )
            .await?;
        if let Some(h) = volume_host {
            // A container is placed on its volumes' host.
            if rec.requested_host_key.as_ref().is_some_and(|k| *k != h) {
                return Err(Error::invalid(
                    "host_key",
                    format!("the volumes are on host {h}: the container must be placed there"),
                ));
            }
            rec.requested_host_key = Some(h);
        }
        rec.volumes = volumes;
        let volumes_gb = api_disk(self.volumes_gb(user).await?);
        self.check_totals(&mine, None, rec.resources().plus(volumes_gb))?;
        if self.store.container_named(user, &rec.name).await?.is_some() {
            return Err(Error::Conflict(format!(
                "you already have a container named {:?}",
                rec.name
            )));
        }
        let max = self.limits.max_containers;
        if mine.len() as u64 + 1 > max {
            return Err(Error::over_quota("containers", mine.len() as u64 + 1, max));
        }
        rec.id = ids::new_container_id();
        while self.store.container(&rec.id).await?.is_some() {
            rec.id = ids::new_container_id();
        }
        {
            let _placing = self.placement_turn().await?;
            self.try_place(&mut rec).await?;
            self.store.insert_container(rec.clone()).await?;
        }
        // Durable before the answer and before the host hears of it; flushes of concurrent
        // creates overlap.
        self.store.flush().await?;
        drop(owner_turn);
        tracing::info!(user, id = %rec.id, host = ?rec.host_key, "container created");
        let msg = match (&rec.host_key, &rec.status_reason) {
            (Some(h), _) => format!("created; placed on host {h}"),
            (None, Some(r)) => format!("created; {r}"),
            (None, None) => "created".into(),
        };
        self.record_event(&rec, "created", msg).await;
        self.publish(ContainerEvent::of(&rec, EventKind::Status));
        self.dispatch(&rec).await;
        Ok(self.view(&rec))
    }

    /// Gives `rec` a host, or says in its `status_reason` why none fits yet.
    async fn try_place(&self, rec: &mut ContainerRecord) -> Result<(), Error> {
        let Some(itype) = self.catalog.get(&rec.instance_type) else {
            rec.status_reason = Some(format!(
                "instance type {:?} is no longer offered",
                rec.instance_type
            ));
            return Ok(());
        };
        let demand = Demand {
            arch: Some(itype.arch),
            need: rec.resources(),
            region: rec.requested_region.clone(),
            host_key: rec.requested_host_key.clone(),
            runtime: rec.runtime,
        };
        match self.fleet.place(&demand).await? {
            Ok((host, region)) => {
                rec.region = Some(region);
                rec.host_key = Some(host);
                rec.status_reason = None;
            }
            Err(reason) => rec.status_reason = Some(format!("waiting for a host: {reason}")),
        }
        Ok(())
    }

    /// Places containers that found no host yet (when hosts connect, and periodically).
    pub async fn place_pending(&self) -> Result<(), Error> {
        for mut rec in self.store.unplaced_containers().await? {
            if !rec.is_visible() {
                continue;
            }
            let stored = {
                let _placing = self.placement_turn().await?;
                self.try_place(&mut rec).await?;
                let Some(host) = rec.host_key.clone() else {
                    continue;
                };
                let region = rec.region.clone();
                self.store
                    .update_container(&rec.id, &mut |r| {
                        if r.host_key.is_some() {
                            return None;
                        }
                        r.host_key = Some(host.clone());
                        r.region = region.clone();
                        r.status_reason = None;
                        Some(())
                    })
                    .await?
                    .filter(|r| r.host_key == rec.host_key)
            };
            if let Some(r) = stored {
                // Durable before the host hears of it: a restart must not place it twice.
                self.store.flush().await?;
                tracing::info!(id = %r.id, host = ?r.host_key, "pending container placed");
                self.dispatch(&r).await;
            }
        }
        Ok(())
    }
}

/// `gb` of disk, as a total's share.
fn api_disk(gb: u64) -> berth_shared::protocol::Resources {
    berth_shared::protocol::Resources {
        disk_gb: gb,
        ..Default::default()
    }
}
