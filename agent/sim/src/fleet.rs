//! A fleet of simulated hosts in one process: certificates issued from the cluster CA's key
//! (as `tls issue-agent` does), a few hosts per UDP endpoint, and one [`berth_link::run`] per
//! host — the agent's own session and reconnect code.

use crate::host::SimHost;
use berth_link::{Dial, Endpoints, KEEP_ALIVE};
use berth_service::{ca, quic, tls};
use berth_shared::catalog::Arch;
use berth_shared::protocol::{HostInfo, Resources, Runtime};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cluster CA: {0}")]
    Ca(#[from] ca::CaError),
    #[error("the CA certificate PEM: {0}")]
    CaPem(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Quic(#[from] quic::QuicError),
}

/// What fleet to simulate and where its coordinator is.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// `host:port` of the coordinator's QUIC endpoint.
    pub address: String,
    pub server_name: String,
    /// The cluster CA's certificate and key (PEM), as `tls init` wrote them.
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub hosts: usize,
    /// Host keys are `<prefix>-<n>`.
    pub prefix: String,
    /// Hosts are spread over these regions in turn, and alternate amd64 / arm64.
    pub regions: Vec<String>,
    pub capacity: Resources,
    /// From an applied spec to its `running` / `stopped` / `deleted` report.
    pub delay: Duration,
    /// Hosts sharing one UDP socket.
    pub hosts_per_endpoint: usize,
}

impl FleetConfig {
    pub fn new(address: &str, ca_cert_pem: String, ca_key_pem: String, hosts: usize) -> Self {
        FleetConfig {
            address: address.to_string(),
            server_name: "localhost".into(),
            ca_cert_pem,
            ca_key_pem,
            hosts,
            prefix: "sim".into(),
            regions: vec!["sim-1".into(), "sim-2".into()],
            capacity: Resources {
                cpu_millis: 64_000,
                memory_mb: 256 * 1024,
                disk_gb: 4_000,
            },
            delay: Duration::from_millis(50),
            hosts_per_endpoint: 16,
        }
    }
}

pub struct Fleet {
    pub hosts: Vec<Arc<SimHost>>,
    tasks: Vec<JoinHandle<()>>,
    endpoints: Vec<quinn::Endpoint>,
}

impl Fleet {
    /// Issues every host's certificate, then starts them all at once (a connect storm).
    pub fn start(cfg: &FleetConfig) -> Result<Fleet, SimError> {
        let issuer = ca::issuer(&cfg.ca_key_pem)?;
        let ca_certs = CertificateDer::pem_slice_iter(cfg.ca_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SimError::CaPem(e.to_string()))?;
        let v6 = cfg.address.starts_with('[');
        let per = cfg.hosts_per_endpoint.max(1);
        let endpoints = (0..cfg.hosts.div_ceil(per))
            .map(|_| quic::unbound_client(v6))
            .collect::<Result<Vec<_>, _>>()?;
        let mut hosts = Vec::with_capacity(cfg.hosts);
        let mut links = Vec::with_capacity(cfg.hosts);
        for i in 0..cfg.hosts {
            let host_key = format!("{}-{i}", cfg.prefix);
            let key = rcgen::KeyPair::generate().map_err(ca::CaError::from)?;
            let cert = ca::agent_params(&host_key, Duration::from_secs(30 * 86400))?
                .signed_by(&key, &issuer)
                .map_err(ca::CaError::from)?;
            let tls_cfg = tls::client_config_from(
                ca_certs.clone(),
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )?;
            let info = HostInfo {
                host_key,
                region: cfg.regions[i % cfg.regions.len().max(1)].clone(),
                arch: if i % 2 == 0 { Arch::Amd64 } else { Arch::Arm64 },
                capacity: cfg.capacity,
                placeable: None,
                public_address: Some("127.0.0.1".into()),
                ssh_port: Some(2222),
                agent_version: concat!("sim-", env!("CARGO_PKG_VERSION")).into(),
                runtimes: vec![Runtime::Runc],
            };
            let (host, reports) = SimHost::new(info, i as u64, cfg.delay);
            let dial = Dial {
                address: cfg.address.clone(),
                server_name: cfg.server_name.clone(),
                endpoints: Endpoints::Shared {
                    endpoint: endpoints[i / per].clone(),
                    config: quic::client(tls_cfg, KEEP_ALIVE)?,
                },
            };
            hosts.push(host.clone());
            links.push((host, dial, reports));
        }
        let tasks = links
            .into_iter()
            .map(|(host, dial, reports)| tokio::spawn(berth_link::run(host, dial, reports)))
            .collect();
        Ok(Fleet {
            hosts,
            tasks,
            endpoints,
        })
    }

    /// Silences (or wakes) the hosts in `range`.
    pub fn silence(&self, range: Range<usize>, on: bool) {
        for h in &self.hosts[range] {
            h.silence(on);
        }
    }

    /// Containers held over the whole fleet.
    pub fn held(&self) -> usize {
        self.hosts.iter().map(|h| h.held().len()).sum()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for ep in &self.endpoints {
            ep.close(0u32.into(), b"simulation over");
        }
    }
}
