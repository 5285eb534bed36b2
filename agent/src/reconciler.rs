//! Drives containerd toward the desired spec of every container, one container at a time
//! (a lock per id), at start-up, periodically, on every new spec and on every task exit.
//! Each step is idempotent, so a crash at any point is repaired by the next pass. Exit watches
//! and the restart policy are [`Supervisor`]'s (asked here, under the container's lock, when a
//! task is found exited and before one starts), health checks [`Checks`]' (their verdicts
//! handled in `upkeep`), status reports [`Reporter`]'s, and the host's 80/443 and 8000–8999
//! ingress [`Ingress`]'s, which follows every pass and leaves out unhealthy containers.

mod images;
mod objects;
mod reap;
mod upkeep;
mod volumes;

use crate::config::Config;
use crate::health::{Checks, Verdict};
use crate::network::ingress::Ingress;
use crate::report::Reporter;
use crate::runtime::{Runtime, RuntimeError, TaskState};
use crate::state::{State, StateError};
use crate::supervise::{Gate, Supervisor};
use crate::volumes::{VolumeError, Volumes};
use berth_shared::protocol::{ContainerReport, ContainerSpec, DesiredState, ObservedState};
use objects::spec_hash;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub const LABEL_CONTAINER: &str = "berth.container";
pub const LABEL_GENERATION: &str = "berth.generation";
pub const LABEL_SPEC_HASH: &str = "berth.spec-hash";
const SIGTERM: u32 = 15;
const SIGKILL: u32 = 9;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error("state: {0}")]
    State(#[from] StateError),
    #[error("log directory: {0}")]
    Logs(std::io::Error),
}

/// What a pass found a container in, and why when that needs saying.
type Observed = (ObservedState, Option<String>);

pub struct Reconciler {
    cfg: Arc<Config>,
    state: State,
    rt: Runtime,
    volumes: Volumes,
    reporter: Reporter,
    supervisor: Arc<Supervisor>,
    checks: Arc<Checks>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    network: Option<crate::network::Network>,
    /// CNI ADDs under way, by container: they run beside the container's and task's creation
    /// and are waited for before the task starts (or is torn down).
    connecting: Mutex<HashMap<String, Connecting>>,
    /// The registries images are pulled from, with what the coordinator said of them.
    pub registries: crate::runtime::registries::Registries,
    /// The host's ingress; it follows the specs.
    pub ingress: Ingress,
    /// Set once the coordinator has sent its desired set; only then may unknown containers
    /// be treated as orphans.
    pub synced: AtomicBool,
}

type Connecting = tokio::task::JoinHandle<Result<(), crate::network::NetworkError>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Reconciler {
    pub fn new(
        cfg: Arc<Config>,
        state: State,
        rt: Runtime,
        reports: mpsc::Sender<ContainerReport>,
        verdicts: mpsc::Sender<Verdict>,
    ) -> Reconciler {
        let network = cfg.network.enabled.then(|| {
            crate::network::Network::new(cfg.network.clone(), state.clone())
                .map_err(|e| tracing::error!(error = %e, "container networking is off"))
                .ok()
        });
        let network = network.flatten();
        let run_dir = cfg.data_dir.join("run").join("health");
        let checks = Checks::new(
            rt.clone(),
            state.clone(),
            run_dir,
            network.is_none(),
            verdicts,
        );
        Reconciler {
            network,
            ingress: Ingress::new(&cfg.ingress),
            registries: crate::runtime::registries::Registries::new(&cfg.images.registries),
            volumes: Volumes::new(&cfg.data_dir),
            reporter: Reporter::new(
                state.clone(),
                reports,
                cfg.data_dir.clone(),
                checks.board.clone(),
            ),
            supervisor: Arc::new(Supervisor::new(rt.clone(), state.clone())),
            checks: Arc::new(checks),
            cfg,
            state,
            rt,
            locks: Mutex::default(),
            connecting: Mutex::default(),
            synced: AtomicBool::new(false),
        }
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.log_dir().join(format!("{id}.log"))
    }

    pub fn volume_used_bytes(&self, id: &str) -> Option<u64> {
        self.volumes.used_bytes(id)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.cfg.data_dir.join("logs")
    }

    pub fn trigger(self: &Arc<Self>, id: String) {
        let me = self.clone();
        tokio::spawn(async move { me.reconcile(&id).await });
    }

    pub async fn reconcile_all(self: &Arc<Self>) {
        match self.state.specs() {
            Ok(specs) => {
                for s in specs {
                    self.reconcile_one(&s.id).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read desired specs"),
        }
        if self.synced.load(Ordering::Relaxed) {
            if let Err(e) = self.remove_orphans().await {
                tracing::warn!(error = %e, "orphan sweep failed");
            }
        }
        self.reap_disowned().await;
        self.sync_ingress().await;
    }

    /// Brings the host's ingress in step with the specs; after a failed read it stays as it was.
    async fn sync_ingress(&self) {
        let unhealthy = self.checks.board.unhealthy();
        if let Err(e) = self.ingress.sync(&self.state, &unhealthy).await {
            tracing::error!(error = %e, "cannot read specs or addresses: ingress left as it was");
        }
    }

    /// Reconciles one container, then the host's ingress to match.
    pub async fn reconcile(self: &Arc<Self>, id: &str) {
        self.reconcile_one(id).await;
        self.sync_ingress().await;
    }

    async fn reconcile_one(self: &Arc<Self>, id: &str) {
        let l = lock(&self.locks).entry(id.to_string()).or_default().clone();
        let _g = l.lock().await;
        let spec = match self.state.spec(id) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => return tracing::error!(id, error = %e, "cannot read spec"),
        };
        let result = match spec.desired {
            DesiredState::Running => self.ensure_running(&spec).await,
            DesiredState::Stopped => self.stop(id).await.map(|_| (ObservedState::Stopped, None)),
            DesiredState::Deleted => self
                .teardown(id, true)
                .await
                .map(|_| (ObservedState::Deleted, None)),
        };
        match result {
            Ok((ObservedState::Deleted, _)) => self.forget(&spec).await,
            Ok((state, reason)) => {
                crate::telemetry::METRICS
                    .reconcile_ok
                    .fetch_add(1, Ordering::Relaxed);
                self.reporter.report(&spec, state, reason)
            }
            Err(e) => {
                crate::telemetry::METRICS
                    .reconcile_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(id, error = %e, "reconcile failed");
                self.reporter
                    .report(&spec, ObservedState::Failed, Some(e.to_string()));
            }
        }
    }

    /// A container torn down: its records go and the coordinator hears it is deleted. Under
    /// the container's lock; a record that cannot be removed is removed by the next pass.
    async fn forget(&self, spec: &ContainerSpec) {
        let id = spec.id.as_str();
        if let Err(e) = self.state.remove(id) {
            tracing::error!(id, error = %e, "cannot forget deleted container");
        }
        let _ = self.state.flush().await;
        lock(&self.locks).remove(id);
        tracing::info!(id, "container deleted");
        self.reporter.report(spec, ObservedState::Deleted, None);
    }

    /// The user's stop: the task stops, and a crash loop or a waiting restart ends with it.
    async fn stop(&self, id: &str) -> Result<(), ReconcileError> {
        self.stop_task(id).await?;
        self.supervisor.stopped_on_purpose(id).await?;
        Ok(())
    }

    async fn ensure_running(
        self: &Arc<Self>,
        spec: &ContainerSpec,
    ) -> Result<Observed, ReconcileError> {
        let id = spec.id.as_str();
        let hash = spec_hash(spec);
        let existing = self.rt.container(id).await?;
        let task = match &existing {
            Some(_) => self.rt.task_state(id).await?,
            None => TaskState::Missing,
        };
        if let TaskState::Stopped { exit_status } = task {
            // Nobody asked for it (a stop deletes its task under this lock): the policy
            // decides, and its decision is stored before the task goes.
            self.checks.stop(id);
            self.supervisor.exited(spec, exit_status).await?;
        }
        let running = matches!(task, TaskState::Running | TaskState::Paused);
        if !running {
            match self.supervisor.gate(spec).await? {
                Gate::Go => {}
                Gate::Wait { due_ms, reason } => {
                    self.stop_task(id).await?;
                    self.restart_at(id, due_ms);
                    return Ok((ObservedState::Restarting, Some(reason)));
                }
                Gate::Halt(reason) => {
                    self.stop_task(id).await?;
                    return Ok((ObservedState::Stopped, Some(reason)));
                }
            }
        }
        if existing.is_none() {
            // It had been created here before (a report says so), yet containerd has lost it.
            let had = self.state.report(id)?.is_some_and(|r| {
                matches!(r.state, ObservedState::Running | ObservedState::Stopped)
            });
            if had {
                let kept = self.volumes.exists(id);
                tracing::warn!(
                    id,
                    volume_preserved = kept,
                    "containerd lost the container: re-creating it"
                );
                self.reporter.recreating(id, kept);
            }
        }
        if let Some(c) = existing {
            // A running task is never disturbed for a spec it already runs; a container
            // without a running task is re-created so it starts from the current spec.
            let stale = c.labels.get(LABEL_SPEC_HASH) != Some(&hash);
            if stale || !running {
                if stale {
                    tracing::info!(id, "spec changed: re-creating the container, volumes kept");
                }
                self.stop_task(id).await?;
                self.rt.delete_container(id).await?;
            }
        }
        if self.rt.container(id).await?.is_none() {
            self.reporter
                .report(spec, ObservedState::Initializing, None);
            self.create_container(spec, hash).await?;
        }
        match self.rt.task_state(id).await? {
            TaskState::Running | TaskState::Paused => {}
            TaskState::Created => self.start(id).await?,
            TaskState::Stopped { .. } => {
                self.rt.delete_task(id).await?;
                self.create_and_start(id).await?;
            }
            TaskState::Missing => self.create_and_start(id).await?,
        }
        self.watch(id);
        self.check_health(spec)?;
        Ok((ObservedState::Running, None))
    }

    /// Waits for the container's CNI ADD if one is under way.
    async fn connected(&self, id: &str) -> Result<(), ReconcileError> {
        let Some(pending) = lock(&self.connecting).remove(id) else {
            return Ok(());
        };
        match pending.await {
            Ok(r) => Ok(r?),
            Err(e) => Err(crate::network::NetworkError::Netns {
                path: id.into(),
                message: format!("the network set-up task failed: {e}"),
            }
            .into()),
        }
    }

    async fn start(self: &Arc<Self>, id: &str) -> Result<(), ReconcileError> {
        // The task may exist in an unfinished namespace; its process must not run in one.
        self.connected(id).await?;
        self.supervisor.starting(id);
        self.watch(id);
        self.rt.start_task(id).await?;
        self.supervisor.started(id).await?;
        Ok(())
    }

    /// Watches the task's exit; an exit nobody asked for is reconciled (the policy decides).
    fn watch(self: &Arc<Self>, id: &str) {
        let me = self.clone();
        let key = id.to_string();
        self.supervisor
            .watch(id, move || async move { me.reconcile(&key).await });
    }

    /// SIGTERM, SIGKILL after the grace period, then the task is deleted.
    async fn stop_task(&self, id: &str) -> Result<(), ReconcileError> {
        match self.rt.task_state(id).await? {
            TaskState::Missing => return Ok(()),
            TaskState::Stopped { .. } => {}
            TaskState::Running | TaskState::Paused | TaskState::Created => {
                self.supervisor.stopping(id);
                self.checks.stop(id);
                self.rt.kill(id, SIGTERM, false).await?;
                if tokio::time::timeout(self.cfg.stop_grace, self.rt.wait(id))
                    .await
                    .is_err()
                {
                    tracing::info!(id, "no exit within the grace period: SIGKILL");
                    self.rt.kill(id, SIGKILL, true).await?;
                    let _ = tokio::time::timeout(Duration::from_secs(10), self.rt.wait(id)).await;
                }
            }
        }
        self.rt.delete_task(id).await?;
        Ok(())
    }
}
