//! Changes to an existing container: SSH access, mounts, rename/resize (PATCH), power
//! actions and key revocation. Every change bumps the generation when the host must act on it.

use super::Containers;
use crate::error::Error;
use crate::events::{ContainerEvent, EventKind};
use crate::store::ContainerRecord;
use berth_shared::api::{self, ContainerStatus, Mounts, SshAccess};
use berth_shared::protocol::{DesiredState, Resources};
use berth_shared::requests::{Action, PatchBody, PatchLimits, Validate};

/// What a modification did to a record.
pub(super) enum Change {
    /// Nothing to write.
    None,
    /// The host must act: the generation grows and the spec is dispatched.
    Spec,
}

impl Containers {
    /// Applies `f` to the container atomically; persists, records the event and tells the
    /// host as `f` says.
    pub(super) async fn modify<F>(
        &self,
        id: &str,
        event: &str,
        mut f: F,
    ) -> Result<ContainerRecord, Error>
    where
        F: FnMut(&mut ContainerRecord) -> Result<Change, Error> + Send,
    {
        let mut err = None;
        let mut wrote = false;
        let rec = self
            .store
            .update_container(id, &mut |r| {
                (err, wrote) = (None, false);
                if !r.is_visible() {
                    err = Some(Error::NotFound);
                    return None;
                }
                match f(r) {
                    Err(e) => {
                        err = Some(e);
                        None
                    }
                    Ok(Change::None) => None,
                    Ok(Change::Spec) => {
                        r.generation += 1;
                        wrote = true;
                        Some(())
                    }
                }
            })
            .await?
            .ok_or(Error::NotFound)?;
        if let Some(e) = err {
            return Err(e);
        }
        if wrote {
            self.store.flush().await?;
            self.record_event(&rec, event, "settings changed".into())
                .await;
            self.publish(ContainerEvent::of(&rec, EventKind::Updated));
            self.dispatch(&rec).await;
        }
        Ok(rec)
    }

    pub async fn set_ssh_access(
        &self,
        rec: &ContainerRecord,
        enabled: bool,
    ) -> Result<SshAccess, Error> {
        let rec = self
            .modify(&rec.id, "container_updated", |r| {
                if r.ssh_enabled == enabled {
                    return Ok(Change::None);
                }
                r.ssh_enabled = enabled;
                Ok(Change::Spec)
            })
            .await?;
        Ok(SshAccess {
            ssh_enabled: rec.ssh_enabled,
        })
    }

    /// New mount paths; a running container is re-created with them, its data kept.
    pub async fn set_mounts(
        &self,
        rec: &ContainerRecord,
        paths: Vec<String>,
    ) -> Result<Mounts, Error> {
        let _turn = self.serial.turn(&rec.id).await;
        let mut restarted = false;
        let rec = self
            .modify(&rec.id, "container_updated", |r| {
                if r.mount_paths == paths {
                    restarted = false;
                    return Ok(Change::None);
                }
                r.mount_paths = paths.clone();
                restarted = r.desired == DesiredState::Running;
                Ok(Change::Spec)
            })
            .await?;
        Ok(Mounts {
            mount_paths: rec.mount_paths,
            restarted: Some(restarted),
        })
    }

    /// Rename and resize within the instance type's limits (seeds `003`/`004`).
    pub async fn patch(
        &self,
        current: &ContainerRecord,
        body: PatchBody,
    ) -> Result<api::Container, Error> {
        let l = &self.limits;
        let type_cpu = self
            .catalog
            .get(&current.instance_type)
            .map_or(current.cpu_millis, |t| t.cpu_millis());
        let limits = PatchLimits {
            memory_mb: (l.min_memory_mb, l.max_memory_mb),
            storage_gb: (l.min_storage_gb, l.max_storage_gb),
            max_cpu_millis: u64::from(type_cpu),
            instance_type: &current.instance_type,
            storage_now: current.storage_gb,
        };
        let p = body.validate(&limits).map_err(Error::Invalid)?;
        let _turn = self.serial.turn(&current.id).await;
        let _owner = self.owner_turn(&current.owner).await?;
        let _guard = self.placement_turn().await?;
        if let Some(n) = &p.name {
            let same = self.store.container_named(&current.owner, n).await?;
            if same.is_some_and(|c| c.id != current.id) {
                return Err(Error::Conflict(format!(
                    "you already have a container named {n:?}"
                )));
            }
        }
        let new = Resources {
            cpu_millis: p.cpu_millis.unwrap_or(u64::from(current.cpu_millis)),
            memory_mb: p.memory_mb.unwrap_or(current.memory_mb),
            disk_gb: p.storage_gb.unwrap_or(current.storage_gb),
        };
        let mine = self.store.owner_containers(&current.owner).await?;
        let volumes = Resources {
            disk_gb: self.volumes_gb(&current.owner).await?,
            ..Resources::default()
        };
        self.check_totals(&mine, Some(&current.id), new.plus(volumes))?;
        self.fleet.check_room(current, new).await?;
        let mut restarted = false;
        let rec = self
            .modify(&current.id, "container_updated", |r| {
                let resize =
                    r.resources().cpu_millis != new.cpu_millis || r.memory_mb != new.memory_mb;
                let grow = resize || r.storage_gb != new.disk_gb;
                let rename = p.name.as_ref().is_some_and(|n| n != &r.name);
                if let Some(n) = &p.name {
                    r.name = n.clone();
                }
                r.cpu_millis = u32::try_from(new.cpu_millis).unwrap_or(u32::MAX);
                (r.memory_mb, r.storage_gb) = (new.memory_mb, new.disk_gb);
                restarted = resize && r.desired == DesiredState::Running;
                // Both travel in the spec; the agent applies them without a restart.
                let mut upkeep = false;
                if let Some(policy) = p.restart_policy.filter(|n| *n != r.restart_policy) {
                    (r.restart_policy, upkeep) = (policy, true);
                }
                if let Some(check) = p.health_check.clone().filter(|n| *n != r.health_check) {
                    (r.health_check, r.health, upkeep) = (check, None, true);
                }
                // The name travels in the spec: the agent's SSH server accepts it as a login.
                Ok(if grow || rename || upkeep {
                    Change::Spec
                } else {
                    Change::None
                })
            })
            .await?;
        drop(_guard);
        let mut v = self.view(&rec);
        v.restarted = Some(restarted);
        Ok(v)
    }

    /// `reboot`, `power_off`, `power_on` (seed `004`).
    pub async fn action(
        &self,
        rec: &ContainerRecord,
        action: Action,
    ) -> Result<api::Container, Error> {
        match action {
            Action::PowerOff => return self.stop(rec).await,
            Action::PowerOn => return self.start(rec).await,
            Action::Reboot => {}
        }
        let _turn = self.serial.turn(&rec.id).await;
        let rec = self
            .modify(&rec.id, "container_rebooted", |r| {
                if r.desired != DesiredState::Running {
                    return Err(Error::NotRunning(
                        "power it on first (type power_on)".into(),
                    ));
                }
                r.boot += 1;
                r.status = ContainerStatus::Pending;
                Ok(Change::Spec)
            })
            .await?;
        Ok(self.view(&rec))
    }

    /// Takes a deleted key out of every container of `owner` that used it.
    pub async fn revoke_key(&self, owner: &str, key: u64) -> Result<(), Error> {
        for c in self.store.owner_containers(owner).await? {
            if c.ssh_key_ids.contains(&key) {
                self.modify(&c.id, "ssh_key_revoked", |r| {
                    r.ssh_key_ids.retain(|k| *k != key);
                    Ok(Change::Spec)
                })
                .await?;
            }
        }
        Ok(())
    }
}
