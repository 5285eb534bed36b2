//! A link to every coordinator: one `berth_link` session loop per address, each with its own
//! queue of status reports, fed from the reporter's one channel. Every coordinator reaches
//! this host over its own link (dispatch, logs, terminal, exec), so losing one coordinator
//! loses nothing but its link. Certificate renewal goes over one link at a time: the
//! lowest-numbered one that is up.

use super::Link;
use berth_link::{Dial, Endpoints, HostError, Renewal};
use berth_shared::images::RegistryAccess;
use berth_shared::protocol::{AgentMessage, ContainerReport, ContainerSpec};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Reports a link may queue while it is down; older ones are dropped past it (the hello
/// after a reconnect carries the whole inventory).
const QUEUE: usize = 1024;

/// One link's view of the host: the agent, plus which link this is.
struct Via {
    link: Arc<Link>,
    index: usize,
    /// Bit `i` set while link `i` is up.
    up: Arc<AtomicU64>,
}

impl Via {
    fn lowest_up(&self) -> Option<usize> {
        let up = self.up.load(Ordering::SeqCst);
        (up != 0).then(|| up.trailing_zeros() as usize)
    }
}

impl berth_link::Host for Via {
    fn hello(&self) -> Result<AgentMessage, HostError> {
        self.link.hello()
    }

    fn heartbeat(&self) -> Result<AgentMessage, HostError> {
        self.link.heartbeat()
    }

    async fn welcome(self: Arc<Self>, specs: Vec<ContainerSpec>, registries: Vec<RegistryAccess>) {
        self.link.clone().welcome(specs, registries).await
    }

    async fn serve(self: Arc<Self>, conn: quinn::Connection) {
        self.link.clone().serve(conn).await
    }

    fn link_up(&self, up: bool) {
        let bit = 1u64 << self.index;
        let now = if up {
            self.up.fetch_or(bit, Ordering::SeqCst) | bit
        } else {
            self.up.fetch_and(!bit, Ordering::SeqCst) & !bit
        };
        let m = &crate::telemetry::METRICS;
        m.link_connected.store(now != 0, Ordering::Relaxed);
        m.links_connected
            .store(u64::from(now.count_ones()), Ordering::Relaxed);
    }

    fn renewal_check(&self) -> Duration {
        self.link.renewal_check()
    }

    fn start_renewal(&self) -> Option<Box<dyn Renewal>> {
        // Two links renewing at once would each replace the other's new key.
        (self.lowest_up() == Some(self.index))
            .then(|| self.link.start_renewal())
            .flatten()
    }

    fn renewed(&self) {
        self.link.renewed()
    }
}

impl Link {
    fn dial(&self, address: String) -> Dial {
        let c = &self.cfg.coordinator;
        Dial {
            address,
            server_name: c.server_name.clone(),
            endpoints: Endpoints::Files {
                ca_cert: c.ca_cert.clone(),
                cert: c.cert.clone(),
                key: c.key.clone(),
            },
        }
    }

    /// Runs a session loop per coordinator until dropped (the loops go with it).
    pub async fn run(self: Arc<Self>, mut reports: mpsc::Receiver<ContainerReport>) {
        let addresses = self.cfg.coordinator.endpoints();
        let up = Arc::new(AtomicU64::new(0));
        let mut loops = JoinSet::new();
        let mut queues = Vec::new();
        // At most 64 coordinators (the bits of `up`); config validation keeps lists short.
        for (index, address) in addresses.into_iter().take(64).enumerate() {
            let (tx, rx) = mpsc::channel(QUEUE);
            queues.push(tx);
            let via = Arc::new(Via {
                link: self.clone(),
                index,
                up: up.clone(),
            });
            tracing::info!(coordinator = %address, index, "keeping a link");
            loops.spawn(berth_link::run(via, self.dial(address), rx));
        }
        while let Some(report) = reports.recv().await {
            for q in &queues {
                if let Err(mpsc::error::TrySendError::Full(r)) = q.try_send(report.clone()) {
                    tracing::debug!(id = %r.id, "a link's report queue is full; report dropped");
                }
            }
        }
    }
}
