//! Container operations: create (validate, quota, place, persist, dispatch), read, start,
//! stop, delete, and the agents' reports flowing back into the records.

use crate::app::{App, Error};
use crate::placement::{self, Demand};
use crate::store::ContainerRecord;
use berth_shared::api::{self, ContainerStatus, Image, QuotaDetail};
use berth_shared::ids;
use berth_shared::protocol::{ContainerSpec, DesiredState, IngressSpec, Request, Resources};
use berth_shared::validation::{self, CreateLimits};
use std::collections::HashMap;
use std::sync::Arc;

impl App {
    pub fn view(&self, r: &ContainerRecord) -> api::Container {
        let mut reason = r.status_reason.clone();
        if let Some(h) = &r.host_key {
            if !self.hub.host(h).is_some_and(|e| e.connected()) {
                reason = Some(format!(
                    "host {h} is unreachable; status is its last report"
                ));
            }
        }
        api::Container {
            id: r.id.clone(),
            name: r.name.clone(),
            status: r.status,
            status_reason: reason,
            hostname: format!("{}.{}", r.id, self.config.api.domain),
            memory_mb: r.memory_mb,
            memory_used_mb: r.memory_used_mb,
            storage_gb: r.storage_gb,
            storage_used_gb: r.storage_used_gb,
            instance_type: r.instance_type.clone(),
            created_at: berth_shared::time::rfc3339(r.created_at),
            ssh_enabled: r.ssh_enabled,
            https_enabled: r.ingress.iter().any(|i| i.port == 443),
            ssh_command: self.ssh_command(r),
            image: r.image.clone(),
            mount_paths: r.mount_paths.clone(),
            ssh_key_ids: r.ssh_key_ids.clone(),
            host_key: r.host_key.clone(),
            region: r.region.clone(),
            cpu_millis: r.cpu_millis,
            env: r.env.clone(),
            ports: r.ports.clone(),
            external_ip: r.external_ip.clone(),
            recreated: None,
            volume_preserved: None,
            restarted: None,
        }
    }

    /// The command that reaches the container through its host's SSH server, once the host
    /// has said where that server is. `None` while SSH is disabled for the container.
    fn ssh_command(&self, r: &ContainerRecord) -> Option<String> {
        if !r.ssh_enabled {
            return None;
        }
        let host = self.hub.host(r.host_key.as_deref()?)?.info;
        let addr = host.public_address?;
        Some(match host.ssh_port? {
            22 => format!("ssh {}@{addr}", r.id),
            port => format!("ssh -p {port} {}@{addr}", r.id),
        })
    }

    /// `GET /compute/images`: the builtin images, then the registry's (503 when the
    /// configured registry does not answer).
    pub async fn images(&self) -> Result<Vec<Image>, Error> {
        let mut list: Vec<Image> = self
            .config
            .images
            .builtin
            .iter()
            .map(|b| Image {
                name: b.name.clone(),
                image: b.image.clone(),
                source: "builtin".into(),
            })
            .collect();
        if let Some(r) = &self.registry {
            let found = r
                .images()
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
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
        if self.config.images.builtin.iter().any(|b| b.image == image) {
            return Ok(true);
        }
        match &self.registry {
            Some(r) if r.names(image) => Ok(r
                .images()
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?
                .iter()
                .any(|i| i == image)),
            _ => Ok(false),
        }
    }

    /// The caller's container, or `NotFound` — also when it is someone else's.
    pub fn owned(&self, user: &str, id: &str) -> Result<ContainerRecord, Error> {
        if !ids::is_container_id(id) {
            return Err(Error::NotFound);
        }
        match self.store.get_container(id)? {
            Some(r) if r.owner == user && r.is_visible() => Ok(r),
            _ => Err(Error::NotFound),
        }
    }

    pub fn list(&self, user: &str) -> Result<Vec<api::Container>, Error> {
        Ok(self
            .store
            .user_containers(user)?
            .iter()
            .map(|r| self.view(r))
            .collect())
    }

    pub async fn create(
        self: &Arc<Self>,
        user: &str,
        body: &serde_json::Value,
    ) -> Result<api::Container, Error> {
        let l = &self.config.limits;
        let limits = CreateLimits {
            instance_types: self.config.catalog.names(),
            default_instance_type: &self.config.catalog.default_instance_type,
            default_memory_mb: l.default_memory_mb,
            default_storage_gb: l.default_storage_gb,
            memory_mb: (l.min_memory_mb, l.max_memory_mb),
            storage_gb: (l.min_storage_gb, l.max_storage_gb),
        };
        let mut req = validation::create_container(body, &limits).map_err(Error::Invalid)?;
        let image = req
            .image
            .take()
            .unwrap_or_else(|| self.config.images.default.clone());
        if !self.image_listed(&image).await? {
            return Err(Error::invalid(
                "image",
                "must be an image listed by GET /compute/images",
            ));
        }
        let keys = self.store.user_keys(user)?;
        for id in &req.ssh_key_ids {
            if !keys.iter().any(|k| k.id == *id) {
                return Err(Error::invalid(
                    "ssh_key_ids",
                    format!("{id} is not one of your SSH keys"),
                ));
            }
        }
        let Some(itype) = self.config.catalog.get(&req.instance_type).cloned() else {
            return Err(Error::invalid("instance_type", "unknown"));
        };

        let _guard = self.quota_lock.lock().await;
        let mine = self.store.user_containers(user)?;
        self.check_totals(
            &mine,
            None,
            itype.cpu_millis(),
            req.memory_mb,
            req.storage_gb,
        )?;
        if mine.iter().any(|c| c.name == req.name) {
            return Err(Error::Conflict(format!(
                "you already have a container named {:?}",
                req.name
            )));
        }
        let max = l.max_containers;
        if mine.len() as u64 + 1 > max {
            return Err(Error::OverQuota(QuotaDetail {
                dimension: "containers".into(),
                requested: mine.len() as u64 + 1,
                max,
            }));
        }
        let mut id = ids::new_container_id();
        while self.store.get_container(&id)?.is_some() {
            id = ids::new_container_id();
        }
        let mut rec = ContainerRecord {
            id,
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
        };
        self.try_place(&mut rec)?;
        self.store.put_container(&rec)?;
        self.store.flush().await?;
        drop(_guard);
        tracing::info!(user, id = %rec.id, host = ?rec.host_key, "container created");
        let msg = match (&rec.host_key, &rec.status_reason) {
            (Some(h), _) => format!("created; placed on host {h}"),
            (None, Some(r)) => format!("created; {r}"),
            (None, None) => "created".into(),
        };
        self.record_event(&rec, "created", msg);
        self.publish(crate::app::ContainerEvent::of(
            &rec,
            crate::app::EventKind::Status,
        ));
        self.dispatch(&rec);
        Ok(self.view(&rec))
    }

    /// Resources already promised on each host.
    pub(crate) fn used_by_host(&self) -> Result<HashMap<String, Resources>, Error> {
        let mut used: HashMap<String, Resources> = HashMap::new();
        for r in self.store.all_containers()? {
            if let Some(h) = r.host_key {
                let u = used.entry(h).or_default();
                u.cpu_millis += u64::from(r.cpu_millis);
                u.memory_mb += r.memory_mb;
                u.disk_gb += r.storage_gb;
            }
        }
        Ok(used)
    }

    /// Whether the container's host can take it at a new size.
    pub(crate) fn check_host_room(
        &self,
        rec: &ContainerRecord,
        cpu_millis: u32,
        memory_mb: u64,
        disk_gb: u64,
    ) -> Result<(), Error> {
        let Some(host) = rec.host_key.as_deref().and_then(|h| self.hub.host(h)) else {
            return Ok(());
        };
        let used = self
            .used_by_host()?
            .remove(&host.info.host_key)
            .unwrap_or_default();
        let cap = host.info.capacity;
        let fits = used.cpu_millis - u64::from(rec.cpu_millis) + u64::from(cpu_millis)
            <= cap.cpu_millis
            && used.memory_mb - rec.memory_mb + memory_mb <= cap.memory_mb
            && used.disk_gb - rec.storage_gb + disk_gb <= cap.disk_gb;
        if fits {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "host {} has no room for this size",
                host.info.host_key
            )))
        }
    }

    fn try_place(&self, rec: &mut ContainerRecord) -> Result<(), Error> {
        let Some(itype) = self.config.catalog.get(&rec.instance_type) else {
            rec.status_reason = Some(format!(
                "instance type {:?} is no longer offered",
                rec.instance_type
            ));
            return Ok(());
        };
        let demand = Demand {
            arch: itype.arch,
            need: Resources {
                cpu_millis: u64::from(rec.cpu_millis),
                memory_mb: rec.memory_mb,
                disk_gb: rec.storage_gb,
            },
            region: rec.requested_region.clone(),
            host_key: rec.requested_host_key.clone(),
        };
        let cordoned = self.store.cordoned_hosts()?;
        let mut hosts = self.hub.candidates();
        for h in &mut hosts {
            h.cordoned = cordoned.contains(&h.host_key);
        }
        match placement::place(&hosts, &self.used_by_host()?, &demand) {
            Ok(host) => {
                rec.region = self.hub.host(&host).map(|h| h.info.region);
                rec.host_key = Some(host);
                rec.status_reason = None;
            }
            Err(reason) => rec.status_reason = Some(format!("waiting for a host: {reason}")),
        }
        Ok(())
    }

    /// Places containers that found no host yet (called when hosts connect).
    pub async fn place_pending(self: &Arc<Self>) {
        let _guard = self.quota_lock.lock().await;
        let Ok(all) = self.store.all_containers() else {
            return;
        };
        for mut rec in all
            .into_iter()
            .filter(|r| r.host_key.is_none() && r.is_visible())
        {
            if self.try_place(&mut rec).is_ok() && rec.host_key.is_some() {
                let placed = rec.clone();
                let stored = self.store.update_container(&rec.id, |r| {
                    if r.host_key.is_some() {
                        return None;
                    }
                    r.host_key = placed.host_key.clone();
                    r.region = placed.region.clone();
                    r.status_reason = None;
                    Some(())
                });
                if let Ok(Some(r)) = stored {
                    tracing::info!(id = %r.id, host = ?r.host_key, "pending container placed");
                    self.dispatch(&r);
                }
            }
        }
    }

    pub fn spec(&self, r: &ContainerRecord) -> ContainerSpec {
        let keys = self.store.user_keys(&r.owner).unwrap_or_default();
        ContainerSpec {
            id: r.id.clone(),
            name: r.name.clone(),
            generation: r.generation,
            desired: r.desired,
            image: r.image.clone(),
            cpu_millis: r.cpu_millis,
            memory_mb: r.memory_mb,
            storage_gb: r.storage_gb,
            mount_paths: r.mount_paths.clone(),
            env: r.env.clone(),
            ssh_enabled: r.ssh_enabled,
            ssh_authorized_keys: keys
                .into_iter()
                .filter(|k| r.ssh_key_ids.contains(&k.id))
                .map(|k| k.public_key)
                .collect(),
            ports: r.ports.clone(),
            ingress: r
                .ingress
                .iter()
                .map(|i| IngressSpec {
                    port: i.port,
                    target_port: i.target_port,
                })
                .collect(),
            boot: r.boot,
        }
    }

    /// Sends the record's spec to its host in the background. A failure is harmless: the
    /// agent reports its generations with every heartbeat and gets the spec again.
    pub fn dispatch(self: &Arc<Self>, r: &ContainerRecord) {
        let Some(host) = r.host_key.clone() else {
            return;
        };
        let spec = self.spec(r);
        let app = self.clone();
        tokio::spawn(async move {
            let id = spec.id.clone();
            if let Err(e) = app.hub.request(&host, &Request::Apply(spec)).await {
                tracing::warn!(%id, %host, error = %e, "dispatch failed; will retry on the next heartbeat");
            }
        });
    }

    pub fn desired_for_host(&self, host: &str) -> Vec<ContainerSpec> {
        self.store
            .all_containers()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.host_key.as_deref() == Some(host))
            .map(|r| self.spec(r))
            .collect()
    }
}
