//! berth-agent: runs one fleet host's containers.
//!
//! Owns: `runtime` (the only code that talks to containerd, and the registry client of its
//! pulls), `volumes` (host directories of containers' mounts), `state` (sled: desired specs,
//! last reports, addresses), `reconciler` (drives containerd toward the specs) with
//! `supervise` (exit watches, restart backoff) and `report` (status reports), `network`
//! (namespaces, addresses, the host's ingress), `ssh` (the SSH server into containers),
//! `serve` (the coordinator's requests), `telemetry` (metrics) and `link` (the QUIC
//! connection it dials to the coordinator).
//!
//! Must not touch: users, tokens, quotas or placement — those are the coordinator's. The agent
//! trusts only specs that arrive over its mutually authenticated link, and keeps running its
//! containers while the coordinator is away.

pub mod command;
pub mod config;
pub mod enroll;
pub mod health;
pub mod link;
pub mod logs;
pub mod network;
pub mod reconciler;
pub mod renew;
pub mod report;
pub mod runtime;
pub mod serve;
pub mod ssh;
pub mod state;
pub mod subnet;
pub mod supervise;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod usage;
pub mod volumes;

use berth_service::listener::Listener;
use berth_service::sdnotify;
use berth_shared::protocol::{HostInfo, Resources};
use config::Config;
use std::future::Future;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state: {0}")]
    State(#[from] state::StateError),
    #[error("containerd: {0}")]
    Runtime(#[from] runtime::RuntimeError),
    #[error("data dir {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("init binary {0} is missing (install Debian's tini package or set init_binary)")]
    NoInit(String),
    #[error(transparent)]
    Ssh(#[from] ssh::SshError),
    #[error(transparent)]
    Enroll(#[from] enroll::EnrollError),
    #[error("certificate renewal: {0}")]
    Renew(#[from] renew::RenewError),
    #[error("ingress gateway: {0}")]
    Ingress(#[from] network::ingress::IngressError),
    #[error("metrics listen {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

fn meminfo_mb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// `ssh_port`: where the agent's SSH server actually listens, if it runs.
pub fn host_info(cfg: &Config, ssh_port: Option<u16>) -> HostInfo {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let capacity = Resources {
        cpu_millis: cfg.capacity.cpu_millis.unwrap_or(cpus * 1000),
        memory_mb: cfg
            .capacity
            .memory_mb
            .unwrap_or_else(|| meminfo_mb().unwrap_or(1024).saturating_sub(512)),
        disk_gb: cfg.capacity.disk_gb.unwrap_or(100),
    };
    let times = |n: u64, f: f64| (n as f64 * f).floor() as u64;
    HostInfo {
        host_key: cfg.host_key.clone(),
        region: cfg.region.clone(),
        arch: cfg.arch(),
        capacity,
        placeable: Some(Resources {
            cpu_millis: times(capacity.cpu_millis, cfg.capacity.cpu_factor()),
            memory_mb: times(capacity.memory_mb, cfg.capacity.memory_factor()),
            disk_gb: capacity.disk_gb,
        }),
        public_address: cfg.ssh.public_address.clone(),
        ssh_port: ssh_port.map(|p| cfg.ssh.public_port.unwrap_or(p)),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        runtimes: cfg.runtimes.offered(),
    }
}

/// Runs the agent until `shutdown` resolves. Containers keep running after it returns.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let cfg = Arc::new(cfg);
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| Error::DataDir {
        path: cfg.data_dir.display().to_string(),
        source,
    })?;
    if !cfg.init_binary.is_file() {
        return Err(Error::NoInit(cfg.init_binary.display().to_string()));
    }
    renew::finish_interrupted(&cfg.coordinator)?;
    enroll::ensure(&cfg.coordinator).await?;
    let state = state::State::open(&cfg.data_dir.join("state"))?;
    let rt = runtime::Runtime::connect(&cfg.containerd).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let (verdicts_tx, verdicts) = tokio::sync::mpsc::channel(256);
    let reconciler = Arc::new(reconciler::Reconciler::new(
        cfg.clone(),
        state.clone(),
        rt.clone(),
        tx,
        verdicts_tx,
    ));
    let health_task = tokio::spawn(reconciler.clone().on_verdicts(verdicts));

    let mut gateway_tasks = reconciler.ingress.start(&cfg.ingress).await?;
    if let Some(addr) = cfg.metrics.listen {
        let l = Listener::bind(addr, telemetry::MAX_CONNECTIONS)
            .await
            .map_err(|source| Error::Metrics { addr, source })?;
        tracing::info!(%addr, "metrics listening");
        gateway_tasks.push(tokio::spawn(telemetry::serve(l, state.clone())));
    }
    tracing::info!(host_key = %cfg.host_key, "reconciling containerd toward the stored specs");
    reconciler.reconcile_all().await;

    let run_dir = cfg.data_dir.join("run");
    // Exec FIFOs of a previous run belong to sessions that ended with it.
    let _ = std::fs::remove_dir_all(&run_dir);
    let (ssh_task, ssh_port) = if cfg.ssh.enabled {
        let key = ssh::host_key(&cfg.data_dir.join("ssh_host_ed25519_key"))?;
        let server = ssh::SshServer::bind(
            &cfg.ssh,
            key,
            ssh::Shared {
                state: state.clone(),
                rt: rt.clone(),
                run_dir: run_dir.join("exec"),
                netns_dir: cfg.network.enabled.then(|| cfg.network.netns_dir.clone()),
            },
        )
        .await?;
        let port = server.local_addr().map(|a| a.port());
        tracing::info!(addr = ?server.local_addr(), "SSH server listening");
        (Some(tokio::spawn(server.serve())), port)
    } else {
        (None, None)
    };

    let services = Arc::new(serve::Services {
        state: state.clone(),
        reconciler: reconciler.clone(),
        rt: rt.clone(),
        run_dir: run_dir.join("exec"),
    });
    let link = Arc::new(link::Link {
        host: host_info(&cfg, ssh_port),
        cfg: cfg.clone(),
        state: state.clone(),
        reconciler: reconciler.clone(),
        services,
    });
    let link_task = tokio::spawn(link.run(rx));
    let periodic = {
        let r = reconciler.clone();
        let every = cfg.reconcile_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                r.reconcile_all().await;
            }
        })
    };
    sdnotify::notify("READY=1");
    shutdown.await;
    sdnotify::notify("STOPPING=1");
    tracing::info!("shutting down; containers keep running");
    link_task.abort();
    periodic.abort();
    health_task.abort();
    if let Some(t) = ssh_task {
        t.abort();
    }
    for t in gateway_tasks {
        t.abort();
    }
    state.flush().await?;
    Ok(())
}
