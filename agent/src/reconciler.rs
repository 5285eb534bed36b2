//! Drives containerd toward the desired spec of every container, one container at a time
//! (a lock per id), at start-up, periodically, on every new spec and on every task exit.
//! Each step is idempotent, so a crash at any point is repaired by the next pass.

use crate::config::Config;
use crate::runtime::{oci, Runtime, RuntimeError, TaskState};
use crate::state::{State, StateError};
use crate::volumes::{VolumeError, Volumes};
use aws_lc_rs::digest;
use berth_shared::protocol::{ContainerReport, ContainerSpec, DesiredState, ObservedState};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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

pub struct Reconciler {
    cfg: Arc<Config>,
    state: State,
    rt: Runtime,
    volumes: Volumes,
    reports: mpsc::Sender<ContainerReport>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    watching: Mutex<HashSet<String>>,
    expected_exit: Mutex<HashSet<String>>,
    started: Mutex<HashMap<String, (Instant, u32)>>,
    /// Containers re-created because containerd lost them: id → whether the volume survived.
    /// Told to the coordinator with the next `running` report.
    recreated: Mutex<HashMap<String, bool>>,
    network: Option<crate::network::Network>,
    forwards: crate::network::forward::Forwards,
    /// The host's shared 80/443 ingress; its routes follow the specs.
    pub gateway: crate::network::gateway::Gateway,
    /// Set once the coordinator has sent its desired set; only then may unknown containers
    /// be treated as orphans.
    pub synced: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Percent-escapes what a URI path or query value cannot hold as is.
fn uri_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What, if changed, needs the containerd container re-created (volumes are kept).
fn spec_hash(s: &ContainerSpec) -> String {
    let key = serde_json::json!([
        s.image,
        s.cpu_millis,
        s.memory_mb,
        s.mount_paths,
        s.storage_gb,
        s.env,
        s.boot
    ]);
    let d = digest::digest(&digest::SHA256, key.to_string().as_bytes());
    berth_shared::ids::hex(&d.as_ref()[..12])
}

impl Reconciler {
    pub fn new(
        cfg: Arc<Config>,
        state: State,
        rt: Runtime,
        reports: mpsc::Sender<ContainerReport>,
    ) -> Reconciler {
        let network = cfg.network.enabled.then(|| {
            crate::network::Network::new(cfg.network.clone(), state.clone())
                .map_err(|e| tracing::error!(error = %e, "container networking is off"))
                .ok()
        });
        Reconciler {
            network: network.flatten(),
            forwards: Default::default(),
            gateway: Default::default(),
            volumes: Volumes::new(&cfg.data_dir),
            cfg,
            state,
            rt,
            reports,
            locks: Mutex::default(),
            watching: Mutex::default(),
            expected_exit: Mutex::default(),
            started: Mutex::default(),
            synced: AtomicBool::new(false),
            recreated: Mutex::new(HashMap::new()),
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

    /// The shim starts the log driver from this URI; its query becomes the driver's arguments.
    fn log_uri(&self) -> String {
        let driver = self
            .cfg
            .logs
            .driver
            .clone()
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| "/usr/local/bin/berth-agent".into());
        format!(
            "binary://{}?{}={}&max-bytes={}",
            uri_escape(&driver.display().to_string()),
            crate::logs::driver::DRIVER_ARG,
            uri_escape(&self.log_dir().display().to_string()),
            self.cfg.logs.max_bytes
        )
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
        self.sync_forwards().await;
    }

    /// Serves exactly the ingress rules of the containers that should run: 8000–8999 as
    /// forwards, 80/443 as gateway routes for `<id>.<domain>`.
    async fn sync_forwards(&self) {
        let mut want = HashMap::new();
        let mut routes = crate::network::gateway::Routes::default();
        let domain = self.cfg.ingress.domain.as_deref().unwrap_or_default();
        let addresses = self.state.addresses().unwrap_or_default();
        for s in self.state.specs().unwrap_or_default() {
            if s.desired != DesiredState::Running {
                continue;
            }
            let Some(&ip) = addresses.get(&s.id) else {
                continue;
            };
            for r in &s.ingress {
                let dest = std::net::SocketAddrV4::new(ip, r.target_port);
                let name = format!("{}.{domain}", s.id);
                match r.port {
                    80 => drop(routes.http.insert(name, dest)),
                    443 => drop(routes.https.insert(name, dest)),
                    p if crate::network::forward::RANGE.contains(&p) => drop(want.insert(p, dest)),
                    _ => {}
                }
            }
        }
        self.gateway.set(routes);
        self.forwards.sync(want).await;
    }

    /// Reconciles one container, then the host's ingress to match.
    pub async fn reconcile(self: &Arc<Self>, id: &str) {
        self.reconcile_one(id).await;
        self.sync_forwards().await;
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
            DesiredState::Stopped => self.stop_task(id).await.map(|_| ObservedState::Stopped),
            DesiredState::Deleted => self
                .teardown(id, true)
                .await
                .map(|_| ObservedState::Deleted),
        };
        match result {
            Ok(ObservedState::Deleted) => {
                if let Err(e) = self.state.remove(id) {
                    tracing::error!(id, error = %e, "cannot forget deleted container");
                }
                let _ = self.state.flush().await;
                lock(&self.locks).remove(id);
                tracing::info!(id, "container deleted");
                self.report(&spec, ObservedState::Deleted, None);
            }
            Ok(state) => {
                crate::telemetry::METRICS
                    .reconcile_ok
                    .fetch_add(1, Ordering::Relaxed);
                self.report(&spec, state, None)
            }
            Err(e) => {
                crate::telemetry::METRICS
                    .reconcile_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(id, error = %e, "reconcile failed");
                self.report(&spec, ObservedState::Failed, Some(e.to_string()));
            }
        }
    }

    /// Records and sends a report when something changed.
    fn report(&self, spec: &ContainerSpec, state: ObservedState, reason: Option<String>) {
        let volume_preserved = if state == ObservedState::Running {
            lock(&self.recreated).remove(&spec.id)
        } else {
            None
        };
        let r = ContainerReport {
            id: spec.id.clone(),
            generation: spec.generation,
            state,
            reason,
            memory_used_mb: None,
            storage_used_gb: None,
            recreated: volume_preserved.map(|_| true),
            volume_preserved,
            address: (state == ObservedState::Running)
                .then(|| self.state.address_of(&spec.id).ok().flatten())
                .flatten()
                .map(|a| a.to_string()),
            at: berth_shared::time::now_unix().0,
        };
        if state != ObservedState::Deleted {
            let old = self.state.report(&spec.id).ok().flatten();
            if old.is_some_and(|o| {
                o.state == r.state && o.reason == r.reason && o.generation == r.generation
            }) {
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

    async fn ensure_running(
        self: &Arc<Self>,
        spec: &ContainerSpec,
    ) -> Result<ObservedState, ReconcileError> {
        let id = spec.id.as_str();
        let hash = spec_hash(spec);
        let existing = self.rt.container(id).await?;
        if existing.is_none() {
            // It had been created here before (a report says so), yet containerd has lost it.
            let had = self.state.report(id).ok().flatten().is_some_and(|r| {
                matches!(r.state, ObservedState::Running | ObservedState::Stopped)
            });
            if had {
                let kept = self.volumes.exists(id);
                tracing::warn!(
                    id,
                    volume_preserved = kept,
                    "containerd lost the container: re-creating it"
                );
                lock(&self.recreated).insert(id.to_string(), kept);
            }
        }
        if let Some(c) = existing {
            // A running task is never disturbed for a spec it already runs; a container
            // without a running task is re-created so it starts from the current spec.
            let stale = c.labels.get(LABEL_SPEC_HASH) != Some(&hash);
            let running = matches!(
                self.rt.task_state(id).await?,
                TaskState::Running | TaskState::Paused
            );
            if stale || !running {
                if stale {
                    tracing::info!(id, "spec changed: re-creating the container, volumes kept");
                }
                self.stop_task(id).await?;
                self.rt.delete_container(id).await?;
            }
        }
        if self.rt.container(id).await?.is_none() {
            self.report(spec, ObservedState::Initializing, None);
            let arch = self.cfg.arch();
            let registries = &self.cfg.images.registries;
            if !registries.is_empty() && !self.rt.has_image(&spec.image).await? {
                tracing::info!(id, image = %spec.image, "pulling the image");
                self.rt.pull(registries, &spec.image, arch.as_str()).await?;
            }
            let img = self.rt.image(&spec.image, arch.as_str()).await?;
            let vols = self
                .volumes
                .ensure(id, &spec.mount_paths, spec.storage_gb)?;
            let vols: Vec<oci::Volume> = vols
                .iter()
                .map(|(h, t)| oci::Volume { host: h, target: t })
                .collect();
            let netns = match &self.network {
                Some(n) => Some(n.ensure(id)?.0),
                None => None,
            };
            let json = oci::spec(spec, &img, &self.cfg.init_binary, &vols, netns.as_deref());
            self.rt.ensure_snapshot(id, &img.chain_id).await?;
            let labels = HashMap::from([
                (LABEL_CONTAINER.to_string(), id.to_string()),
                (LABEL_GENERATION.to_string(), spec.generation.to_string()),
                (LABEL_SPEC_HASH.to_string(), hash),
            ]);
            match self
                .rt
                .create_container(id, &spec.image, json.to_string().into_bytes(), labels)
                .await
            {
                Err(RuntimeError::AlreadyExists { .. }) | Ok(()) => {}
                Err(e) => return Err(e.into()),
            }
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
        Ok(ObservedState::Running)
    }

    async fn create_and_start(self: &Arc<Self>, id: &str) -> Result<(), ReconcileError> {
        let log = self.log_path(id);
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(ReconcileError::Logs)?;
        }
        let mounts = self.rt.snapshot_mounts(id).await?;
        self.rt.create_task(id, mounts, &self.log_uri()).await?;
        self.start(id).await
    }

    async fn start(self: &Arc<Self>, id: &str) -> Result<(), ReconcileError> {
        lock(&self.expected_exit).remove(id);
        self.watch(id);
        self.rt.start_task(id).await?;
        let mut started = lock(&self.started);
        let e = started.entry(id.to_string()).or_insert((Instant::now(), 0));
        e.0 = Instant::now();
        Ok(())
    }

    /// Watches the task's exit; an exit nobody asked for restarts it with backoff.
    fn watch(self: &Arc<Self>, id: &str) {
        if !lock(&self.watching).insert(id.to_string()) {
            return;
        }
        let me = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let res = me.rt.wait(&id).await;
            lock(&me.watching).remove(&id);
            let Ok(status) = res else { return };
            if lock(&me.expected_exit).remove(&id) {
                return;
            }
            let Ok(Some(spec)) = me.state.spec(&id) else {
                return;
            };
            if spec.desired != DesiredState::Running {
                return;
            }
            let delay = {
                let mut started = lock(&me.started);
                let e = started.entry(id.clone()).or_insert((Instant::now(), 0));
                e.1 = if e.0.elapsed() < Duration::from_secs(30) {
                    e.1 + 1
                } else {
                    1
                };
                Duration::from_secs(1u64 << e.1.min(6)).min(Duration::from_secs(60))
            };
            let why = format!(
                "process exited with status {status}; restarting in {}s",
                delay.as_secs()
            );
            me.report(&spec, ObservedState::Failed, Some(why));
            tokio::time::sleep(delay).await;
            me.reconcile(&id).await;
        });
    }

    /// SIGTERM, SIGKILL after the grace period, then the task is deleted.
    async fn stop_task(&self, id: &str) -> Result<(), ReconcileError> {
        match self.rt.task_state(id).await? {
            TaskState::Missing => return Ok(()),
            TaskState::Stopped { .. } => {}
            TaskState::Running | TaskState::Paused | TaskState::Created => {
                lock(&self.expected_exit).insert(id.to_string());
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

    /// Removes the task, container and snapshot, and (with `volumes`) the data and log.
    async fn teardown(&self, id: &str, volumes: bool) -> Result<(), ReconcileError> {
        self.stop_task(id).await?;
        self.rt.delete_container(id).await?;
        self.rt.remove_snapshot(id).await?;
        if volumes {
            if let Some(n) = &self.network {
                n.remove(id)?;
            }
            self.volumes.remove(id)?;
            let _ = std::fs::remove_file(self.log_path(id));
            let _ = std::fs::remove_file(crate::logs::driver::rotated(&self.log_path(id)));
        }
        lock(&self.started).remove(id);
        Ok(())
    }

    /// Containers in the namespace that no spec wants: left by a crash or a lost record.
    /// Their containerd objects go; their volumes stay for an operator to look at.
    async fn remove_orphans(&self) -> Result<(), ReconcileError> {
        for c in self.rt.containers_with_label(LABEL_CONTAINER).await? {
            if self.state.spec(&c.id)?.is_none() {
                tracing::warn!(id = %c.id, "removing orphaned container (volumes kept)");
                self.teardown(&c.id, false).await?;
            }
        }
        Ok(())
    }
}
