//! berth-agent: runs one fleet host's containers.
//!
//! Owns: `runtime` (the only code that talks to containerd), `volumes` (host directories of
//! containers' mounts), `state` (sled: desired specs and last reports), `reconciler` (drives
//! containerd toward the specs), `ssh` (the SSH server into containers) and `link` (the QUIC
//! connection it dials to the coordinator).
//!
//! Must not touch: users, tokens, quotas or placement — those are the coordinator's. The agent
//! trusts only specs that arrive over its mutually authenticated link, and keeps running its
//! containers while the coordinator is away.

pub mod config;
pub mod enroll;
pub mod link;
pub mod logs;
pub mod network;
pub mod reconciler;
pub mod renew;
pub mod runtime;
pub mod serve;
pub mod ssh;
pub mod state;
pub mod telemetry;
pub mod usage;
pub mod volumes;

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
    Ingress(String),
    #[error("metrics listen {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Starts the 80/443 gateway listeners the config asks for.
async fn start_gateway(
    cfg: &Config,
    gw: &network::gateway::Gateway,
) -> Result<Vec<tokio::task::JoinHandle<()>>, Error> {
    let mut tasks = Vec::new();
    let ing = &cfg.ingress;
    if ing.domain.is_none() {
        return Ok(tasks);
    }
    let bind = |addr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Ingress(format!("listen {addr}: {e}")))
    };
    if let Some(addr) = ing.http_listen {
        tasks.push(tokio::spawn(gw.clone().serve_http(bind(addr).await?)));
        tracing::info!(%addr, "HTTP ingress gateway listening");
    }
    if let (Some(addr), Some(cert), Some(key)) = (ing.https_listen, &ing.tls_cert, &ing.tls_key) {
        let e = |e: &dyn std::fmt::Display| Error::Ingress(e.to_string());
        let certs = berth_shared::tls::load_certs(cert).map_err(|x| e(&x))?;
        let key = berth_shared::tls::load_key(key).map_err(|x| e(&x))?;
        let mut tls = rustls::ServerConfig::builder_with_provider(berth_shared::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|x| e(&x))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|x| e(&x))?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        tasks.push(tokio::spawn(
            gw.clone().serve_https(bind(addr).await?, Arc::new(tls)),
        ));
        tracing::info!(%addr, "HTTPS ingress gateway listening");
    }
    Ok(tasks)
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
    HostInfo {
        host_key: cfg.host_key.clone(),
        region: cfg.region.clone(),
        arch: cfg.arch(),
        capacity: Resources {
            cpu_millis: cfg.capacity.cpu_millis.unwrap_or(cpus * 1000),
            memory_mb: cfg
                .capacity
                .memory_mb
                .unwrap_or_else(|| meminfo_mb().unwrap_or(1024).saturating_sub(512)),
            disk_gb: cfg.capacity.disk_gb.unwrap_or(100),
        },
        public_address: cfg.ssh.public_address.clone(),
        ssh_port: ssh_port.map(|p| cfg.ssh.public_port.unwrap_or(p)),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
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
    let reconciler = Arc::new(reconciler::Reconciler::new(
        cfg.clone(),
        state.clone(),
        rt.clone(),
        tx,
    ));

    let mut gateway_tasks = start_gateway(&cfg, &reconciler.gateway).await?;
    if let Some(addr) = cfg.metrics.listen {
        let l = tokio::net::TcpListener::bind(addr)
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
            cfg.ssh.listen,
            key,
            ssh::Shared {
                state: state.clone(),
                rt: rt.clone(),
                run_dir: run_dir.join("exec"),
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
    berth_shared::sdnotify::notify("READY=1");
    shutdown.await;
    berth_shared::sdnotify::notify("STOPPING=1");
    tracing::info!("shutting down; containers keep running");
    link_task.abort();
    periodic.abort();
    if let Some(t) = ssh_task {
        t.abort();
    }
    for t in gateway_tasks {
        t.abort();
    }
    state.flush().await?;
    Ok(())
}
