//! Container networking, owned by the agent: a network namespace per container on a host
//! bridge, an address from the configured subnet (held in sled, released on delete, never
//! given twice), outbound NAT, and bridge-port isolation so containers cannot reach each
//! other (only the host, the internet and their own ingress). Plumbing is done by the
//! standard CNI plugins (`bridge` with `static` IPAM, Debian `containernetworking-plugins`);
//! [`forward`] serves the 8000–8999 ingress rules.

mod cni;
pub mod forward;
pub mod gateway;
mod netns;
mod proxy;
mod relay;

use crate::config::NetworkConfig;
use crate::state::{State, StateError};
use std::net::Ipv4Addr;
use std::path::PathBuf;

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

/// A parsed `a.b.c.d/len` IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Subnet, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or("subnet must look like 10.89.0.0/24")?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("{p:?} is not a prefix length"))?;
        if !(8..=28).contains(&prefix) {
            return Err("subnet prefix must be between /8 and /28".into());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Container addresses: after the gateway, before the broadcast address.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network) + 2;
        let last = u32::from(self.network) + (1u32 << (32 - self.prefix)) - 2;
        (first..=last).map(Ipv4Addr::from)
    }
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
        let ip = self
            .state
            .allocate_address(id, self.subnet.hosts())?
            .ok_or_else(|| NetworkError::Exhausted(self.cfg.subnet.clone()))?;
        let path = self.netns_path(id);
        // The marker is written only once CNI ADD succeeded: a namespace without it is what a
        // crash in the middle left behind, and is rebuilt.
        let ready = self.cfg.netns_dir.join(format!("{id}.ready"));
        if netns::exists(&path) && ready.exists() {
            return Ok((path, ip));
        }
        if netns::exists(&path) {
            tracing::warn!(id, "half-built network namespace: rebuilding it");
            let _ = cni::del(&self.cfg, &self.subnet, id, &path, ip);
            netns::remove(&path)?;
        }
        netns::create(&path)?;
        if let Err(e) = cni::add(&self.cfg, &self.subnet, id, &path, ip) {
            let _ = netns::remove(&path);
            return Err(e);
        }
        std::fs::write(&ready, ip.to_string()).map_err(|e| NetworkError::Netns {
            path: ready.clone(),
            message: e.to_string(),
        })?;
        tracing::info!(id, %ip, "container network ready");
        Ok((path, ip))
    }

    /// Removes every trace: veth and NAT rules (CNI DEL), namespace, address.
    pub fn remove(&self, id: &str) -> Result<(), NetworkError> {
        let path = self.netns_path(id);
        if let Some(ip) = self.state.address_of(id)? {
            cni::del(&self.cfg, &self.subnet, id, &path, ip)?;
        }
        netns::remove(&path)?;
        let _ = std::fs::remove_file(self.cfg.netns_dir.join(format!("{id}.ready")));
        self.state.release_address(id)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_list_their_hosts() {
        let s = Subnet::parse("10.89.3.7/24").expect("subnet");
        assert_eq!(s.network, Ipv4Addr::new(10, 89, 3, 0));
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 89, 3, 1));
        let hosts: Vec<Ipv4Addr> = s.hosts().collect();
        assert_eq!(hosts.first(), Some(&Ipv4Addr::new(10, 89, 3, 2)));
        assert_eq!(hosts.last(), Some(&Ipv4Addr::new(10, 89, 3, 254)));
        assert!(Subnet::parse("10.0.0.0").is_err());
        assert!(Subnet::parse("10.0.0.0/31").is_err());
    }
}
