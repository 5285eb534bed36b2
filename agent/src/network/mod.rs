//! Container networking, owned by the agent: a network namespace per container on a host
//! bridge, an address from the configured subnet (held in sled, released on delete, never
//! given twice), outbound NAT, and bridge-port isolation so containers cannot reach each
//! other (only the host, the internet and their own ingress). Plumbing is done by the
//! standard CNI plugins (`bridge` with `static` IPAM, Debian `containernetworking-plugins`).
//!
//! The host's ingress is [`ingress`]'s: [`forward`] relays the 8000–8999 rules ([`relay`]),
//! [`gateway`] serves 80/443 through [`proxy`] over the [`routes`] table.

mod cni;
pub mod forward;
pub mod gateway;
pub mod ingress;
mod netns;
mod proxy;
mod relay;
pub mod routes;

use crate::config::NetworkConfig;
use crate::state::{State, StateError};
use crate::subnet::Subnet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("state: {0}")]
    State(#[from] StateError),
    #[error("network namespace {path}: {message}")]
    Netns { path: PathBuf, message: String },
    #[error("CNI {command} for {id}: {message}")]
    Cni {
        command: &'static str,
        id: String,
        message: String,
    },
    #[error("no free address left in {0}")]
    Exhausted(String),
}

#[derive(Clone)]
pub struct Network {
    cfg: NetworkConfig,
    subnet: Subnet,
    state: State,
}

impl Network {
    pub fn new(cfg: NetworkConfig, state: State) -> Result<Network, String> {
        let subnet = Subnet::parse(&cfg.subnet)?;
        Ok(Network { cfg, subnet, state })
    }

    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.cfg.netns_dir.join(id)
    }

    /// Makes sure the container has its namespace, address and veth on the bridge; returns the
    /// namespace path for the OCI spec and the address. Idempotent across agent restarts.
    pub fn ensure(&self, id: &str) -> Result<(PathBuf, Ipv4Addr), NetworkError> {
        let (path, ip, ready) = self.prepare(id)?;
        if !ready {
            self.connect(id, &path, ip)?;
        }
        Ok((path, ip))
    }

    /// The fast half of [`Network::ensure`]: the address and the namespace (empty unless it is
    /// already complete, `true`). A task may be created in it at once; it must not start
    /// before [`Network::connect`] has put its veth and address in.
    pub fn prepare(&self, id: &str) -> Result<(PathBuf, Ipv4Addr, bool), NetworkError> {
        let ip = self
            .state
            .allocate_address(id, self.subnet.hosts())?
            .ok_or_else(|| NetworkError::Exhausted(self.cfg.subnet.clone()))?;
        let path = self.netns_path(id);
        // The marker is written only once CNI ADD succeeded: a namespace without it is what a
        // crash in the middle left behind, and is rebuilt.
        if netns::exists(&path) && self.ready_marker(id).exists() {
            return Ok((path, ip, true));
        }
        if netns::exists(&path) {
            tracing::warn!(id, "half-built network namespace: rebuilding it");
            let _ = cni::del(&self.cfg, &self.subnet, id, &path, ip);
            netns::remove(&path)?;
        }
        netns::create(&path)?;
        Ok((path, ip, false))
    }

    /// The slow half: CNI ADD into the prepared namespace, then the ready marker. On failure
    /// the namespace goes (the next attempt starts afresh).
    pub fn connect(&self, id: &str, path: &Path, ip: Ipv4Addr) -> Result<(), NetworkError> {
        if let Err(e) = cni::add(&self.cfg, &self.subnet, id, path, ip) {
            let _ = netns::remove(path);
            return Err(e);
        }
        let ready = self.ready_marker(id);
        std::fs::write(&ready, ip.to_string()).map_err(|e| NetworkError::Netns {
            path: ready.clone(),
            message: e.to_string(),
        })?;
        tracing::info!(id, %ip, "container network ready");
        Ok(())
    }

    fn ready_marker(&self, id: &str) -> PathBuf {
        self.cfg.netns_dir.join(format!("{id}.ready"))
    }

    /// Removes every trace: veth and NAT rules (CNI DEL), namespace, address.
    pub fn remove(&self, id: &str) -> Result<(), NetworkError> {
        let path = self.netns_path(id);
        if let Some(ip) = self.state.address_of(id)? {
            cni::del(&self.cfg, &self.subnet, id, &path, ip)?;
        }
        netns::remove(&path)?;
        let _ = std::fs::remove_file(self.ready_marker(id));
        self.state.release_address(id)?;
        Ok(())
    }
}
