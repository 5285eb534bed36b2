//! The containers service: users' containers from create to delete — validation against
//! the configured limits, quota, placement through the fleet, persistence, dispatch of specs
//! to hosts, settings (SSH, mounts, ingress, resize), volumes, and the agents' reports that
//! close the loop. It owns the records' meaning; the store keeps them, the hub carries them.

mod create;
mod disown;
mod ingress;

pub use ingress::view as ingress_view;
mod lifecycle;
mod quota;
pub(crate) mod serial;
mod settings;
mod volumes;
mod wait;

pub use wait::WaitFor;

use crate::config::{Config, ImagesConfig, Limits};
use crate::error::Error;
use crate::events::{ContainerEvent, EventBus};
use crate::fleet::Fleet;
use crate::hub::Hub;
use crate::registry::Registries;
use crate::store::{ClusterLock, ContainerRecord, Store};
use berth_shared::api;
use berth_shared::catalog::Catalog;
use berth_shared::ids;
use berth_shared::protocol::{ContainerSpec, IngressSpec, Request};
use std::sync::Arc;
use std::time::Duration;

pub struct Containers {
    store: Arc<dyn Store>,
    fleet: Arc<Fleet>,
    hub: Arc<Hub>,
    events: EventBus,
    limits: Limits,
    catalog: Catalog,
    images: ImagesConfig,
    registries: Registries,
    domain: String,
    /// How long start/stop wait for the host's report.
    settle_wait: Duration,
    /// One quota and name decision at a time per owner, with the write it guards (with the
    /// store's cluster lock, across coordinators).
    owners: serial::Serial,
    /// One host choice at a time, with the write that takes the room: held for in-memory
    /// work and a store write, never across a flush.
    placing: tokio::sync::Mutex<()>,
    /// One lifecycle change at a time per container.
    serial: serial::Serial,
    /// One API write at a time per container, around the whole request (`If-Match` is
    /// checked inside it); taken before `serial`, never inside it.
    writes: serial::Serial,
    /// Containers this coordinator has told their host to disown (`disown`): told once,
    /// told again when the host did not take it.
    disowned: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Containers {
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        fleet: Arc<Fleet>,
        hub: Arc<Hub>,
        events: EventBus,
    ) -> Containers {
        Containers {
            store,
            fleet,
            hub,
            events,
            limits: config.limits.clone(),
            catalog: config.catalog.clone(),
            images: config.images.clone(),
            registries: Registries::new(config.images.registry_setups().unwrap_or_else(|e| {
                // Checked when the configuration was loaded; a file gone since is said here.
                tracing::error!(error = %e, "image registries left out");
                Vec::new()
            })),
            domain: config.api.domain.clone(),
            settle_wait: config.api.stop_wait,
            owners: Default::default(),
            placing: tokio::sync::Mutex::new(()),
            serial: Default::default(),
            writes: Default::default(),
            disowned: Default::default(),
        }
    }

    /// The turn to decide on `owner`'s quota and names, in this coordinator and in the cluster.
    async fn owner_turn(&self, owner: &str) -> Result<(serial::Turn<'_>, ClusterLock), Error> {
        let local = self.owners.turn(owner).await;
        let cluster = self.store.cluster_lock(&format!("owner/{owner}")).await?;
        Ok((local, cluster))
    }

    /// The turn to choose a host or take room (or a port) on one, here and in the cluster:
    /// placement reads the hosts' sums from the store inside it.
    async fn placement_turn(
        &self,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, ClusterLock), Error> {
        let local = self.placing.lock().await;
        let cluster = self.store.cluster_lock("placement").await?;
        Ok((local, cluster))
    }

    /// The API's turn to change container `id`: held across one whole write request, here
    /// and (with a shared store) in the cluster, so `If-Match` is checked in it everywhere.
    pub(crate) async fn write_turn(
        &self,
        id: &str,
    ) -> Result<(serial::Turn<'_>, ClusterLock), Error> {
        let local = self.writes.turn(id).await;
        let cluster = self.store.cluster_lock(&format!("container/{id}")).await?;
        Ok((local, cluster))
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The caller's container, or `NotFound` — also when it is someone else's.
    pub async fn owned(&self, user: &str, id: &str) -> Result<ContainerRecord, Error> {
        let r = self.owned_or_deleting(user, id).await?;
        r.is_visible().then_some(r).ok_or(Error::NotFound)
    }

    /// The caller's container, visible or deleted but not yet torn down by its host.
    pub async fn owned_or_deleting(&self, user: &str, id: &str) -> Result<ContainerRecord, Error> {
        if !ids::is_container_id(id) {
            return Err(Error::NotFound);
        }
        match self.store.container(id).await? {
            Some(r) if r.owner == user => Ok(r),
            _ => Err(Error::NotFound),
        }
    }

    pub async fn list(&self, user: &str) -> Result<Vec<api::Container>, Error> {
        let mine = self.store.owner_containers(user).await?;
        Ok(mine.iter().map(|r| self.view(r)).collect())
    }

    pub fn view(&self, r: &ContainerRecord) -> api::Container {
        let host = r.host_key.as_deref().and_then(|h| self.fleet.host(h));
        let mut reason = r.status_reason.clone();
        if let Some(h) = &r.host_key {
            if !host.as_ref().is_some_and(|h| h.connected) {
                reason = Some(format!(
                    "host {h} is unreachable; status is its last report"
                ));
            }
        }
        // `ssh_command` once the host has said where its SSH server is, while SSH is on.
        let ssh_command = host
            .filter(|_| r.ssh_enabled)
            .and_then(|h| Some((h.info.public_address?, h.info.ssh_port?)))
            .map(|(addr, port)| match port {
                22 => format!("ssh {}@{addr}", r.id),
                port => format!("ssh -p {port} {}@{addr}", r.id),
            });
        api::Container {
            id: r.id.clone(),
            name: r.name.clone(),
            status: r.status,
            status_reason: reason,
            hostname: format!("{}.{}", r.id, self.domain),
            memory_mb: r.memory_mb,
            memory_used_mb: r.memory_used_mb,
            storage_gb: r.storage_gb,
            storage_used_gb: r.storage_used_gb,
            instance_type: r.instance_type.clone(),
            created_at: berth_shared::time::rfc3339(r.created_at),
            ssh_enabled: r.ssh_enabled,
            https_enabled: r.ingress.iter().any(|i| i.port == 443),
            ssh_command,
            image: r.image.clone(),
            mount_paths: r.mount_paths.clone(),
            ssh_key_ids: r.ssh_key_ids.clone(),
            host_key: r.host_key.clone(),
            region: r.region.clone(),
            cpu_millis: r.cpu_millis,
            env: r.env.clone(),
            ports: r.ports.clone(),
            external_ip: r.external_ip.clone(),
            runtime: r.runtime,
            recreated: None,
            volume_preserved: None,
            restarted: None,
            restart_policy: r.restart_policy,
            restart_count: r.restarts.count,
            last_exit_code: r.restarts.last_exit_code,
            last_exit_at: r.restarts.last_exit_at.map(berth_shared::time::rfc3339),
            health_check: r.health_check.clone(),
            // A verdict is about a running container only.
            health: r
                .health
                .filter(|_| r.health_check.is_some() && r.status == api::ContainerStatus::Running),
            volumes: r.volumes.clone(),
            image_digest: r.image_digest.clone(),
            pull_policy: r.pull_policy,
        }
    }

    /// The spec an agent runs. Fails when the owner's keys cannot be read: a spec without
    /// them would lock the user out.
    async fn spec(&self, r: &ContainerRecord) -> Result<ContainerSpec, Error> {
        let keys = self.store.owner_keys(&r.owner).await?;
        Ok(ContainerSpec {
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
            runtime: r.runtime,
            restart_policy: r.restart_policy,
            health_check: r.health_check.clone(),
            volumes: self.volume_mounts(r).await?,
            pull_policy: r.pull_policy,
            image_digest: r.image_digest.clone(),
        })
    }

    /// Sends the record's spec to its host in the background. A failure is harmless: the
    /// agent reports its generations with every heartbeat and gets the spec again.
    async fn dispatch(&self, r: &ContainerRecord) {
        let Some(host) = r.host_key.clone() else {
            return;
        };
        let spec = match self.spec(r).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(id = %r.id, error = %e, "cannot build the spec; will retry on the next heartbeat");
                return;
            }
        };
        let hub = self.hub.clone();
        let id = spec.id.clone();
        let req = match self.registries.access_for(&spec.image) {
            Some(registry) => Request::ApplyWithRegistry {
                registry: registry.clone(),
                spec,
            },
            None => Request::Apply(spec),
        };
        tokio::spawn(async move {
            if let Err(e) = hub.request(&host, &req).await {
                tracing::warn!(%id, %host, error = %e, "dispatch failed; will retry on the next heartbeat");
            }
        });
    }

    /// A welcome's desired set: `specs` and how to reach the registries they pull from.
    pub fn desired_set(&self, specs: Vec<ContainerSpec>) -> crate::hub::DesiredSet {
        let mut registries: Vec<berth_shared::images::RegistryAccess> = Vec::new();
        for s in &specs {
            if let Some(a) = self.registries.access_for(&s.image) {
                if !registries.contains(a) {
                    registries.push(a.clone());
                }
            }
        }
        crate::hub::DesiredSet { specs, registries }
    }

    /// The full desired set of `host`, for its welcome.
    pub async fn desired_for_host(&self, host: &str) -> Result<Vec<ContainerSpec>, Error> {
        let mut specs = Vec::new();
        for r in self.store.host_containers(host).await? {
            specs.push(self.spec(&r).await?);
        }
        Ok(specs)
    }

    async fn record_event(&self, rec: &ContainerRecord, kind: &str, message: String) {
        if let Err(e) = self.store.add_event(&rec.id, kind, message).await {
            tracing::warn!(id = %rec.id, error = %e, "cannot record event");
        }
    }

    fn publish(&self, ev: ContainerEvent) {
        self.events.publish(ev);
    }

    /// The container's lifecycle history, newest first, each with its sequence number.
    pub async fn history(&self, rec: &ContainerRecord) -> Result<Vec<(u64, api::Event)>, Error> {
        Ok(self
            .store
            .events(&rec.id)
            .await?
            .into_iter()
            .map(|e| {
                let ev = api::Event {
                    at: berth_shared::time::rfc3339(e.at),
                    kind: e.kind,
                    message: e.message,
                };
                (e.seq, ev)
            })
            .collect())
    }

    /// The caller's visible container records (for pages of `list`).
    pub async fn mine(&self, user: &str) -> Result<Vec<ContainerRecord>, Error> {
        Ok(self.store.owner_containers(user).await?)
    }
}
