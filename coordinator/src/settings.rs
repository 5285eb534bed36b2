//! Changes to an existing container: SSH access, mounts, rename/resize (PATCH), power actions,
//! and its lifecycle history. Every change bumps the generation when the host must act on it.

use crate::app::{App, ContainerEvent, Error};
use crate::store::ContainerRecord;
use berth_shared::api::{self, Event, Mounts, SshAccess};
use berth_shared::protocol::DesiredState;
use berth_shared::validation::{self, Fields};
use std::sync::Arc;

/// What a modification did to a record.
pub(crate) enum Change {
    /// Nothing to write.
    None,
    /// The host must act: the generation grows and the spec is dispatched.
    Spec,
}

impl App {
    /// Applies `f` to the caller's container atomically; persists, records the event and
    /// tells the host as `f` says.
    pub(crate) async fn modify<F>(
        self: &Arc<Self>,
        user: &str,
        id: &str,
        event: &str,
        mut f: F,
    ) -> Result<ContainerRecord, Error>
    where
        F: FnMut(&mut ContainerRecord) -> Result<Change, Error>,
    {
        self.owned(user, id)?;
        let mut err = None;
        let mut wrote = false;
        let mut spec = false;
        let rec = self
            .store
            .update_container(id, |r| {
                (err, wrote, spec) = (None, false, false);
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
                        (wrote, spec) = (true, true);
                        Some(())
                    }
                }
            })?
            .ok_or(Error::NotFound)?;
        if let Some(e) = err {
            return Err(e);
        }
        if wrote {
            self.store.flush().await?;
            self.record_event(&rec, event, "settings changed".into());
            self.publish(ContainerEvent::updated(&rec));
        }
        if spec {
            self.dispatch(&rec);
        }
        Ok(rec)
    }

    pub(crate) fn record_event(&self, rec: &ContainerRecord, kind: &str, message: String) {
        if let Err(e) = self.store.add_event(&rec.id, kind, message) {
            tracing::warn!(id = %rec.id, error = %e, "cannot record event");
        }
    }

    pub fn ssh_access(&self, user: &str, id: &str) -> Result<SshAccess, Error> {
        Ok(SshAccess {
            ssh_enabled: self.owned(user, id)?.ssh_enabled,
        })
    }

    pub async fn set_ssh_access(
        self: &Arc<Self>,
        user: &str,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<SshAccess, Error> {
        let mut f = Fields::new(body).map_err(Error::Invalid)?;
        let enabled = f.boolean("ssh_enabled");
        let Some(enabled) = enabled.filter(|_| f.errors.is_empty()) else {
            if f.errors.is_empty() {
                f.errors.add("ssh_enabled", "is required");
            }
            return Err(Error::Invalid(f.errors));
        };
        let rec = self
            .modify(user, id, "container_updated", |r| {
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

    pub fn mounts(&self, user: &str, id: &str) -> Result<Mounts, Error> {
        Ok(Mounts {
            mount_paths: self.owned(user, id)?.mount_paths,
            restarted: None,
        })
    }

    /// New mount paths; a running container is re-created with them, its data kept.
    pub async fn set_mounts(
        self: &Arc<Self>,
        user: &str,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<Mounts, Error> {
        let mut f = Fields::new(body).map_err(Error::Invalid)?;
        let paths = f.string_list("mount_paths");
        let mut e = f.errors;
        match &paths {
            None if e.is_empty() => e.add("mount_paths", "is required"),
            Some(p) => {
                if let Err(msgs) = validation::check_mount_paths(p) {
                    msgs.into_iter().for_each(|m| e.add("mount_paths", m));
                }
            }
            None => {}
        }
        let paths = e
            .into_result(paths.unwrap_or_default())
            .map_err(Error::Invalid)?;
        let mut restarted = false;
        let rec = self
            .modify(user, id, "container_updated", |r| {
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
        self: &Arc<Self>,
        user: &str,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<api::Container, Error> {
        let current = self.owned(user, id)?;
        let mut f = Fields::new(body).map_err(Error::Invalid)?;
        let name = f.string("name", false);
        let memory_mb = f.uint("memory_mb");
        let cpu_millis = f.uint("cpu_millis");
        let storage_gb = f.uint("storage_gb");
        let mut e = f.errors;
        if e.is_empty()
            && name.is_none()
            && memory_mb.is_none()
            && cpu_millis.is_none()
            && storage_gb.is_none()
        {
            e.add(
                "body",
                "nothing to change: give name, memory_mb, cpu_millis or storage_gb",
            );
        }
        if let Some(Err(m)) = name.as_deref().map(validation::check_name) {
            e.add("name", m);
        }
        let l = &self.config.limits;
        if memory_mb.is_some_and(|m| !(l.min_memory_mb..=l.max_memory_mb).contains(&m)) {
            e.add(
                "memory_mb",
                format!(
                    "must be between {} and {}",
                    l.min_memory_mb, l.max_memory_mb
                ),
            );
        }
        if storage_gb.is_some_and(|s| !(l.min_storage_gb..=l.max_storage_gb).contains(&s)) {
            e.add(
                "storage_gb",
                format!(
                    "must be between {} and {}",
                    l.min_storage_gb, l.max_storage_gb
                ),
            );
        } else if storage_gb.is_some_and(|s| s < current.storage_gb) {
            // The volume is a filesystem of that size: it can grow with the data in it, not shrink.
            e.add(
                "storage_gb",
                format!("can grow but not shrink (now {})", current.storage_gb),
            );
        }
        let type_cpu = self
            .config
            .catalog
            .get(&current.instance_type)
            .map(|t| t.cpu_millis())
            .unwrap_or(current.cpu_millis);
        if cpu_millis.is_some_and(|c| !(100..=u64::from(type_cpu)).contains(&c)) {
            e.add(
                "cpu_millis",
                format!(
                    "must be between 100 and {type_cpu} for instance type {}",
                    current.instance_type
                ),
            );
        }
        if !e.is_empty() {
            return Err(Error::Invalid(e));
        }
        let _guard = self.quota_lock.lock().await;
        let mine = self.store.user_containers(user)?;
        if let Some(n) = &name {
            if mine.iter().any(|c| &c.name == n && c.id != id) {
                return Err(Error::Conflict(format!(
                    "you already have a container named {n:?}"
                )));
            }
        }
        let new_cpu = cpu_millis.map(|c| c as u32).unwrap_or(current.cpu_millis);
        let new_mem = memory_mb.unwrap_or(current.memory_mb);
        let new_disk = storage_gb.unwrap_or(current.storage_gb);
        self.check_totals(&mine, Some(id), new_cpu, new_mem, new_disk)?;
        self.check_host_room(&current, new_cpu, new_mem, new_disk)?;
        let mut restarted = false;
        let rec = self
            .modify(user, id, "container_updated", |r| {
                let resize = r.cpu_millis != new_cpu || r.memory_mb != new_mem;
                let grow = resize || r.storage_gb != new_disk;
                let rename = name.as_ref().is_some_and(|n| n != &r.name);
                if let Some(n) = &name {
                    r.name = n.clone();
                }
                (r.cpu_millis, r.memory_mb, r.storage_gb) = (new_cpu, new_mem, new_disk);
                restarted = resize && r.desired == DesiredState::Running;
                // The name travels in the spec: the agent's SSH server accepts it as a login.
                Ok(if grow || rename {
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
        self: &Arc<Self>,
        user: &str,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<api::Container, Error> {
        let mut f = Fields::new(body).map_err(Error::Invalid)?;
        let kind = f.string("type", true);
        let mut e = f.errors;
        match kind.as_deref() {
            Some("reboot") => {}
            Some("power_off") => return self.stop(user, id).await,
            Some("power_on") => return self.start(user, id).await,
            Some(_) => e.add("type", "must be reboot, power_off or power_on"),
            None => {}
        }
        if !e.is_empty() {
            return Err(Error::Invalid(e));
        }
        let rec = self
            .modify(user, id, "container_rebooted", |r| {
                if r.desired != DesiredState::Running {
                    return Err(Error::NotRunning(
                        "power it on first (type power_on)".into(),
                    ));
                }
                r.boot += 1;
                r.status = berth_shared::api::ContainerStatus::Pending;
                Ok(Change::Spec)
            })
            .await?;
        Ok(self.view(&rec))
    }

    pub fn events(&self, user: &str, id: &str) -> Result<Vec<Event>, Error> {
        self.owned(user, id)?;
        Ok(self
            .store
            .events(id)?
            .into_iter()
            .map(|e| Event {
                at: berth_shared::time::rfc3339(e.at),
                kind: e.kind,
                message: e.message,
            })
            .collect())
    }
}
