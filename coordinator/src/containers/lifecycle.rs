//! Desired-state changes (start, stop, delete) and the agents' reports that close the loop.

use super::Containers;
use crate::error::Error;
use crate::events::{ContainerEvent, EventKind};
use crate::store::ContainerRecord;
use berth_shared::api::{self, ContainerStatus};
use berth_shared::protocol::{ContainerReport, DesiredState, ObservedState};
use std::collections::HashSet;
use tokio::sync::broadcast::error::RecvError;

impl Containers {
    /// Sets a new desired state (bumping the generation), persists it and dispatches it.
    async fn set_desired(
        &self,
        rec: &ContainerRecord,
        desired: DesiredState,
    ) -> Result<ContainerRecord, Error> {
        let rec = self
            .store
            .update_container(&rec.id, &mut |r| {
                // Failed, or left stopped by its restart policy (a crash loop): start again.
                let retry = desired == DesiredState::Running
                    && matches!(r.status, ContainerStatus::Failed | ContainerStatus::Stopped);
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
            })
            .await?
            .ok_or(Error::NotFound)?;
        self.store.flush().await?;
        let (kind, what) = match desired {
            DesiredState::Running => (EventKind::Status, "start requested"),
            DesiredState::Stopped => (EventKind::Status, "stop requested"),
            DesiredState::Deleted => (EventKind::Deleted, "delete requested"),
        };
        self.record_event(&rec, "requested", what.into()).await;
        self.publish(ContainerEvent::of(&rec, kind));
        self.dispatch(&rec).await;
        Ok(rec)
    }

    /// Sets `desired` and waits (bounded by `api.stop_wait`) for the host to report one of
    /// `until` for the new generation; the generation asked for and the record then.
    async fn change(
        &self,
        rec: &ContainerRecord,
        desired: DesiredState,
        until: [ContainerStatus; 2],
    ) -> Result<(u64, ContainerRecord), Error> {
        let _turn = self.serial.turn(&rec.id).await;
        let events = self.events.subscribe(&rec.owner);
        let rec = self.set_desired(rec, desired).await?;
        let done = |r: &ContainerRecord| {
            until.contains(&r.status) && r.observed_generation >= rec.generation
        };
        Ok((rec.generation, self.settle(&rec, events, done).await?))
    }

    /// Starts and waits for the host to report it running; says `recreated` /
    /// `volume_preserved` when the host had lost the container and rebuilt it.
    pub async fn start(&self, rec: &ContainerRecord) -> Result<api::Container, Error> {
        let until = [ContainerStatus::Running, ContainerStatus::Failed];
        let (generation, now) = self.change(rec, DesiredState::Running, until).await?;
        let mut v = self.view(&now);
        if let Some((_, kept)) = now.recreated.filter(|(g, _)| *g >= generation) {
            (v.recreated, v.volume_preserved) = (Some(true), Some(kept));
        }
        Ok(v)
    }

    /// Stops and waits for the host to confirm.
    pub async fn stop(&self, rec: &ContainerRecord) -> Result<api::Container, Error> {
        let until = [ContainerStatus::Stopped, ContainerStatus::Failed];
        let (_, now) = self.change(rec, DesiredState::Stopped, until).await?;
        Ok(self.view(&now))
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
            .is_some_and(|h| self.fleet.is_connected(h));
        if connected && !done(rec) {
            let wait = async {
                loop {
                    match events.recv().await {
                        Ok(ev) if ev.record.id != rec.id => continue,
                        Ok(_) | Err(RecvError::Lagged(_)) => {
                            let now = self.store.container(&rec.id).await;
                            if now.ok().flatten().is_none_or(|r| done(&r)) {
                                break;
                            }
                        }
                        Err(RecvError::Closed) => break,
                    }
                }
            };
            let _ = tokio::time::timeout(self.settle_wait, wait).await;
        }
        self.store.container(&rec.id).await?.ok_or(Error::NotFound)
    }

    pub async fn delete(&self, rec: &ContainerRecord) -> Result<(), Error> {
        let _turn = self.serial.turn(&rec.id).await;
        let rec = self.set_desired(rec, DesiredState::Deleted).await?;
        if rec.host_key.is_none() {
            // Never reached a host: nothing to tear down anywhere.
            self.store.remove_container(&rec.id).await?;
            self.store.flush().await?;
            self.publish(ContainerEvent::of(&rec, EventKind::Removed));
        }
        tracing::info!(user = %rec.owner, id = %rec.id, "container deleted");
        Ok(())
    }

    /// A hello's or heartbeat's inventory: every container the agent holds, with the
    /// generation it holds. Specs the host lacks or holds an older generation of are sent
    /// again; deletes the host has finished are forgotten.
    pub async fn on_inventory(
        &self,
        host: &str,
        inventory: Vec<ContainerReport>,
    ) -> Result<(), Error> {
        let held: HashSet<&str> = inventory.iter().map(|r| r.id.as_str()).collect();
        for r in &inventory {
            self.on_report(host, r.clone()).await?;
        }
        let placed = self.store.host_containers(host).await?;
        for rec in &placed {
            let behind = inventory
                .iter()
                .find(|r| r.id == rec.id)
                .is_some_and(|r| r.generation < rec.generation);
            if !held.contains(rec.id.as_str()) && rec.desired == DesiredState::Deleted {
                // The host holds nothing of it any more.
                self.finish_delete(rec).await?;
            } else if behind || !held.contains(rec.id.as_str()) {
                self.dispatch(rec).await;
            }
        }
        let unknown: Vec<&str> = inventory
            .iter()
            .filter(|r| !placed.iter().any(|c| c.id == r.id))
            .map(|r| r.id.as_str())
            .collect();
        self.disown_unknown(host, &unknown).await
    }

    async fn finish_delete(&self, rec: &ContainerRecord) -> Result<(), Error> {
        self.store.remove_container(&rec.id).await?;
        self.store.flush().await?;
        self.publish(ContainerEvent::of(rec, EventKind::Removed));
        tracing::info!(id = %rec.id, "container removed from its host and the store");
        Ok(())
    }

    pub async fn on_report(&self, host: &str, report: ContainerReport) -> Result<(), Error> {
        let Some(rec) = self.store.container(&report.id).await? else {
            return Ok(());
        };
        if rec.host_key.as_deref() != Some(host) {
            return Ok(());
        }
        if report.state == ObservedState::Deleted {
            if rec.desired == DesiredState::Deleted {
                self.finish_delete(&rec).await?;
            }
            return Ok(());
        }
        let Some(status) = report.state.status() else {
            return Ok(());
        };
        // The record as the store had it when this report was applied (locked): with several
        // coordinators hearing the same report, only the one that changed the record tells.
        let mut prior = None;
        let updated = self
            .store
            .update_container(&report.id, &mut |r| {
                let before = observed(r);
                let locked = r.clone();
                // Usage is always fresh; status only counts once the agent holds the current spec.
                r.memory_used_mb = report.memory_used_mb.or(r.memory_used_mb);
                r.storage_used_gb = report.storage_used_gb.or(r.storage_used_gb);
                r.health = report.health;
                if report.image_digest.is_some() {
                    r.image_digest = report.image_digest.clone();
                }
                if let Some(restarts) = report.restarts {
                    r.restarts = restarts;
                }
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
                // A report that changes nothing (most heartbeats) writes nothing.
                let changed = observed(r) != before;
                prior = changed.then_some(locked);
                changed.then_some(())
            })
            .await?;
        let (Some(new), Some(rec)) = (updated, prior) else {
            return Ok(());
        };
        let told = |r: &ContainerRecord| {
            (
                r.status,
                r.observed_generation,
                r.health,
                r.restarts,
                r.status_reason.clone(),
            )
        };
        if told(&new) == told(&rec) {
            return Ok(());
        }
        tracing::info!(id = %new.id, host, status = new.status.as_str(), generation = new.observed_generation, health = ?new.health, restarts = new.restarts.count, "container status");
        self.store.flush().await?;
        for (kind, msg) in upkeep_events(&rec, &new) {
            self.record_event(&new, kind, msg).await;
        }
        if new.status != rec.status {
            let msg = match &new.status_reason {
                Some(r) => format!("{}: {r}", new.status.as_str()),
                None => new.status.as_str().to_string(),
            };
            self.record_event(&new, "status", msg).await;
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
        Ok(())
    }
}

/// The history a report adds beside its status: `exited` and `restarted` from the restart
/// history (told by its changes, so a report lost on the way loses no event), `crash_loop` when
/// the policy gave up, `health` on a new verdict.
fn upkeep_events(old: &ContainerRecord, new: &ContainerRecord) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let (was, now) = (&old.restarts, &new.restarts);
    if now.last_exit_at.is_some() && now.last_exit_at != was.last_exit_at {
        let code = now
            .last_exit_code
            .map_or("unknown".into(), |c| c.to_string());
        out.push(("exited", format!("process exited with status {code}")));
    }
    if now.count > was.count {
        out.push((
            "restarted",
            format!("restarted by its restart policy (restart {})", now.count),
        ));
    }
    let crash_loop = |r: &ContainerRecord| {
        r.status == ContainerStatus::Stopped
            && r.status_reason
                .as_deref()
                .is_some_and(|s| s.starts_with(berth_shared::upkeep::CRASH_LOOP))
    };
    if crash_loop(new) && !crash_loop(old) {
        out.push(("crash_loop", new.status_reason.clone().unwrap_or_default()));
    }
    if let Some(h) = new.health.filter(|h| Some(*h) != old.health) {
        let msg = match (&new.status_reason, h) {
            (Some(why), berth_shared::upkeep::Health::Unhealthy) => format!("unhealthy: {why}"),
            _ => h.as_str().to_string(),
        };
        out.push(("health", msg));
    }
    out
}

/// What a report can change in a record.
type Observed = (
    Option<u64>,
    Option<f64>,
    Option<(u64, bool)>,
    ContainerStatus,
    Option<String>,
    Option<String>,
    u64,
    Option<berth_shared::upkeep::Health>,
    berth_shared::protocol::Restarts,
);

fn observed(r: &ContainerRecord) -> Observed {
    (
        r.memory_used_mb,
        r.storage_used_gb,
        r.recreated,
        r.status,
        r.status_reason.clone(),
        r.external_ip.clone(),
        r.observed_generation,
        r.health,
        r.restarts,
    )
}
