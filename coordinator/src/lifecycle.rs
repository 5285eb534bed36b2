//! Desired-state changes (start, stop, delete) and the agents' reports that close the loop.

use crate::app::{App, ContainerEvent, Error, EventKind};
use crate::store::ContainerRecord;
use berth_shared::api::{self, ContainerStatus};
use berth_shared::protocol::{ContainerReport, DesiredState, ObservedState};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

impl App {
    /// Sets a new desired state (bumping the generation), persists it and dispatches it.
    async fn set_desired(
        self: &Arc<Self>,
        user: &str,
        id: &str,
        desired: DesiredState,
    ) -> Result<ContainerRecord, Error> {
        self.owned(user, id)?;
        let rec = self
            .store
            .update_container(id, |r| {
                let retry = desired == DesiredState::Running && r.status == ContainerStatus::Failed;
                if (r.desired == desired && !retry) || !r.is_visible() {
                    return None;
                }
                r.desired = desired;
                r.generation += 1;
                if desired == DesiredState::Running {
                    r.status = ContainerStatus::Pending;
                    r.status_reason = None;
                }
                Some(())
            })?
            .ok_or(Error::NotFound)?;
        self.store.flush().await?;
        let (kind, what) = match desired {
            DesiredState::Running => (EventKind::Status, "start requested"),
            DesiredState::Stopped => (EventKind::Status, "stop requested"),
            DesiredState::Deleted => (EventKind::Deleted, "delete requested"),
        };
        self.record_event(&rec, "requested", what.into());
        self.publish(ContainerEvent::of(&rec, kind));
        self.dispatch(&rec);
        Ok(rec)
    }

    /// Starts and waits (bounded by `api.stop_wait`) for the host to report it running; says
    /// `recreated`/`volume_preserved` when the host had lost the container and rebuilt it.
    pub async fn start(self: &Arc<Self>, user: &str, id: &str) -> Result<api::Container, Error> {
        let events = self.events.subscribe();
        let rec = self.set_desired(user, id, DesiredState::Running).await?;
        let settled = |r: &ContainerRecord| {
            matches!(r.status, ContainerStatus::Running | ContainerStatus::Failed)
                && r.observed_generation >= rec.generation
        };
        let now = self.settle(&rec, events, settled).await?;
        let mut v = self.view(&now);
        if let Some((generation, kept)) = now.recreated {
            if generation >= rec.generation {
                (v.recreated, v.volume_preserved) = (Some(true), Some(kept));
            }
        }
        Ok(v)
    }

    /// Waits until `done` holds for the record (or `api.stop_wait` passes, or its host is not
    /// connected); returns the record as it is then.
    async fn settle(
        &self,
        rec: &ContainerRecord,
        mut events: tokio::sync::broadcast::Receiver<ContainerEvent>,
        done: impl Fn(&ContainerRecord) -> bool,
    ) -> Result<ContainerRecord, Error> {
        let connected = rec
            .host_key
            .as_deref()
            .and_then(|h| self.hub.host(h))
            .is_some_and(|h| h.connected());
        if connected && !done(rec) {
            let wait = async {
                loop {
                    match events.recv().await {
                        Ok(ev) if ev.id != rec.id => continue,
                        Ok(_) | Err(RecvError::Lagged(_)) => {
                            if self
                                .store
                                .get_container(&rec.id)
                                .ok()
                                .flatten()
                                .is_none_or(|r| done(&r))
                            {
                                break;
                            }
                        }
                        Err(RecvError::Closed) => break,
                    }
                }
            };
            let _ = tokio::time::timeout(self.config.api.stop_wait, wait).await;
        }
        self.store.get_container(&rec.id)?.ok_or(Error::NotFound)
    }

    /// Stops and waits (bounded by `api.stop_wait`) for the host to confirm.
    pub async fn stop(self: &Arc<Self>, user: &str, id: &str) -> Result<api::Container, Error> {
        let events = self.events.subscribe();
        let rec = self.set_desired(user, id, DesiredState::Stopped).await?;
        let done = |r: &ContainerRecord| {
            matches!(r.status, ContainerStatus::Stopped | ContainerStatus::Failed)
                && r.observed_generation >= rec.generation
        };
        let now = self.settle(&rec, events, done).await?;
        Ok(self.view(&now))
    }

    pub async fn delete(self: &Arc<Self>, user: &str, id: &str) -> Result<(), Error> {
        let rec = self.set_desired(user, id, DesiredState::Deleted).await?;
        if rec.host_key.is_none() {
            // Never reached a host: nothing to tear down anywhere.
            self.store.remove_container(id)?;
            self.store.flush().await?;
        }
        tracing::info!(user, id, "container deleted");
        Ok(())
    }

    /// A heartbeat's inventory: every container the agent holds, with the generation it holds.
    pub async fn on_inventory(self: &Arc<Self>, host: &str, inventory: Vec<ContainerReport>) {
        let held: HashSet<String> = inventory.iter().map(|r| r.id.clone()).collect();
        for r in &inventory {
            self.on_report(host, r.clone()).await;
        }
        let Ok(all) = self.store.all_containers() else {
            return;
        };
        for rec in all.iter().filter(|r| r.host_key.as_deref() == Some(host)) {
            let behind = inventory
                .iter()
                .find(|r| r.id == rec.id)
                .is_some_and(|r| r.generation < rec.generation);
            if !held.contains(&rec.id) && rec.desired == DesiredState::Deleted {
                // The host holds nothing of it any more.
                self.finish_delete(rec).await;
            } else if behind || !held.contains(&rec.id) {
                self.dispatch(rec);
            }
        }
        for r in inventory.iter().filter(|r| {
            !all.iter()
                .any(|c| c.id == r.id && c.host_key.as_deref() == Some(host))
        }) {
            tracing::warn!(host, id = %r.id, "agent holds a container this coordinator does not know; leaving it alone");
        }
    }

    async fn finish_delete(&self, rec: &ContainerRecord) {
        if self.store.remove_container(&rec.id).is_ok() {
            let _ = self.store.flush().await;
            tracing::info!(id = %rec.id, "container removed from its host and the store");
        }
    }

    pub async fn on_report(self: &Arc<Self>, host: &str, report: ContainerReport) {
        let Ok(Some(rec)) = self.store.get_container(&report.id) else {
            return;
        };
        if rec.host_key.as_deref() != Some(host) {
            return;
        }
        if report.state == ObservedState::Deleted {
            if rec.desired == DesiredState::Deleted {
                self.finish_delete(&rec).await;
            }
            return;
        }
        let Some(status) = report.state.status() else {
            return;
        };
        let updated = self.store.update_container(&report.id, |r| {
            // Usage is always fresh; status only counts once the agent holds the current spec.
            r.memory_used_mb = report.memory_used_mb.or(r.memory_used_mb);
            r.storage_used_gb = report.storage_used_gb.or(r.storage_used_gb);
            if report.generation >= r.generation {
                if report.recreated == Some(true) {
                    r.recreated =
                        Some((report.generation, report.volume_preserved.unwrap_or(false)));
                }
                r.status = status;
                r.status_reason = report.reason.clone();
                if report.address.is_some() {
                    r.external_ip = report.address.clone();
                }
                r.observed_generation = report.generation;
            }
            Some(())
        });
        if let Ok(Some(new)) = updated {
            if new.status != rec.status || new.observed_generation != rec.observed_generation {
                tracing::info!(id = %new.id, host, status = new.status.as_str(), generation = new.observed_generation, "container status");
                let _ = self.store.flush().await;
                if new.status != rec.status {
                    let msg = match &new.status_reason {
                        Some(r) => format!("{}: {r}", new.status.as_str()),
                        None => new.status.as_str().to_string(),
                    };
                    self.record_event(&new, "status", msg);
                }
                self.publish(ContainerEvent::of(&new, EventKind::Status));
                match new.status {
                    ContainerStatus::Running if rec.status != ContainerStatus::Running => {
                        self.publish(ContainerEvent::of(&new, EventKind::Started))
                    }
                    ContainerStatus::Stopped if rec.status != ContainerStatus::Stopped => {
                        self.publish(ContainerEvent::of(&new, EventKind::Stopped))
                    }
                    _ => {}
                }
            }
        }
    }
}
