//! Status reports: what the agent tells the coordinator about each container. A report is
//! stored (the next hello and heartbeats carry it in the inventory) and sent at once, only
//! when something changed; a container that containerd lost and that was re-created says so
//! with its next `running` report. Every report carries the container's restart history and,
//! while it runs, its health check's verdict ([`Board`]).

use crate::health::Board;
use crate::state::State;
use berth_shared::protocol::{ContainerReport, ContainerSpec, ObservedState};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::mpsc;

pub struct Reporter {
    state: State,
    reports: mpsc::Sender<ContainerReport>,
    /// Containers re-created because containerd lost them: id → whether the volume survived.
    /// Told to the coordinator with the next `running` report.
    recreated: Mutex<HashMap<String, bool>>,
    /// The image digest each container was last made from on this host.
    digests: Mutex<HashMap<String, String>>,
    /// Host directories a reason must not show (the agent's data dir, containerd's state).
    host_roots: Vec<String>,
    health: Board,
}

/// `reason` with every host path under `roots` replaced: users see why, never where on the
/// host (the path of a volume or of containerd's state says nothing to them and much to an
/// attacker).
pub fn scrub(reason: &str, roots: &[String]) -> String {
    let mut out = reason.to_string();
    for root in roots.iter().filter(|r| r.len() > 1) {
        let mut from = 0;
        while let Some(at) = out[from..].find(root.as_str()).map(|i| i + from) {
            let end = out[at..]
                .find(|c: char| c.is_whitespace() || "\"':,;)]}".contains(c))
                .map_or(out.len(), |i| i + at);
            out.replace_range(at..end, "<host path>");
            from = at + "<host path>".len();
        }
    }
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Reporter {
    pub fn new(
        state: State,
        reports: mpsc::Sender<ContainerReport>,
        data_dir: PathBuf,
        health: Board,
    ) -> Reporter {
        let mut host_roots = vec![data_dir.display().to_string()];
        host_roots.extend(
            [
                "/run/containerd",
                "/var/lib/containerd",
                "/var/run/netns",
                "/run/netns",
            ]
            .map(String::from),
        );
        Reporter {
            state,
            reports,
            recreated: Mutex::default(),
            digests: Mutex::default(),
            host_roots,
            health,
        }
    }

    /// `id` is being re-created after containerd lost it; `volume_kept`: its volume survived.
    pub fn recreating(&self, id: &str, volume_kept: bool) {
        lock(&self.recreated).insert(id.to_string(), volume_kept);
    }

    /// `id` was made from the image of manifest `digest`; its reports say so.
    pub fn made_from(&self, id: &str, digest: String) {
        lock(&self.digests).insert(id.to_string(), digest);
    }

    fn digest(&self, id: &str) -> Option<String> {
        lock(&self.digests).get(id).cloned()
    }

    /// Records and sends a report when something changed.
    pub fn report(&self, spec: &ContainerSpec, state: ObservedState, reason: Option<String>) {
        let running = state == ObservedState::Running;
        let volume_preserved = if running {
            lock(&self.recreated).remove(&spec.id)
        } else {
            None
        };
        let address = if running {
            self.address(&spec.id)
        } else {
            None
        };
        let verdict = self.health.get(&spec.id).filter(|_| running);
        // An unhealthy container that runs says why it is unhealthy.
        let reason = reason.or_else(|| verdict.clone().and_then(|(_, why)| why));
        let restarts = match self.state.restarts(&spec.id) {
            Ok(r) => r.map(|r| r.history()),
            Err(e) => {
                tracing::error!(id = %spec.id, error = %e, "cannot read the restart history");
                None
            }
        };
        let r = ContainerReport {
            id: spec.id.clone(),
            generation: spec.generation,
            state,
            reason: reason.map(|r| scrub(&r, &self.host_roots)),
            memory_used_mb: None,
            storage_used_gb: None,
            recreated: volume_preserved.map(|_| true),
            volume_preserved,
            address,
            health: verdict.map(|(h, _)| h),
            restarts,
            image_digest: self.digest(&spec.id),
            at: berth_shared::time::now_unix().0,
        };
        if state != ObservedState::Deleted {
            if self.unchanged(&r) {
                return;
            }
            if let Err(e) = self.state.put_report(&r) {
                tracing::error!(id = %r.id, error = %e, "cannot store report");
            }
        }
        tracing::info!(id = %r.id, state = ?r.state, generation = r.generation, reason = ?r.reason, "status");
        // A full channel only delays the news until the next heartbeat's inventory.
        let _ = self.reports.try_send(r);
    }

    fn address(&self, id: &str) -> Option<String> {
        match self.state.address_of(id) {
            Ok(a) => a.map(|a| a.to_string()),
            Err(e) => {
                tracing::error!(id, error = %e, "cannot read the container's address");
                None
            }
        }
    }

    /// Whether the stored report already says this; an unreadable one counts as changed.
    fn unchanged(&self, r: &ContainerReport) -> bool {
        match self.state.report(&r.id) {
            Ok(old) => old.is_some_and(|o| {
                o.state == r.state
                    && o.reason == r.reason
                    && o.generation == r.generation
                    && o.health == r.health
                    && o.restarts == r.restarts
            }),
            Err(e) => {
                tracing::error!(id = %r.id, error = %e, "cannot read the last report; storing anew");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_shared::protocol::DesiredState;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            generation: 3,
            ..crate::testing::spec("aaaa1111", DesiredState::Running, &[])
        }
    }

    #[test]
    fn a_report_is_sent_once_per_change_and_carries_a_recreation_once() {
        let state = State::temporary().expect("state");
        let (tx, mut rx) = mpsc::channel(8);
        let r = Reporter::new(state.clone(), tx, "/var/lib/berth".into(), Board::default());
        r.recreating("aaaa1111", true);
        r.report(&spec(), ObservedState::Running, None);
        r.report(&spec(), ObservedState::Running, None);
        let first = rx.try_recv().expect("first report");
        assert_eq!(first.generation, 3);
        assert_eq!(
            (first.recreated, first.volume_preserved),
            (Some(true), Some(true))
        );
        assert!(rx.try_recv().is_err(), "an unchanged report was sent again");
        let stored = state.report("aaaa1111").expect("read").expect("stored");
        assert_eq!(stored.state, ObservedState::Running);
        r.report(&spec(), ObservedState::Stopped, None);
        let next = rx.try_recv().expect("changed report");
        assert_eq!((next.state, next.recreated), (ObservedState::Stopped, None));
    }

    #[test]
    fn reasons_name_no_host_path() {
        let roots = ["/var/lib/berth".to_string(), "/run/containerd".to_string()];
        let got = scrub(
            "mount /var/lib/berth/volumes/ab12cd34/root onto \"/run/containerd/io.containerd.runtime.v2.task/berth/ab12cd34/rootfs/bin/sh\": not a directory",
            &roots,
        );
        assert_eq!(
            got,
            "mount <host path> onto \"<host path>\": not a directory"
        );
        assert_eq!(
            scrub("exec /usr/bin/app: not found", &roots),
            "exec /usr/bin/app: not found"
        );
    }
}
