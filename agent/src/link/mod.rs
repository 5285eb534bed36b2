//! This agent as a host of the link ([`berth_link::Host`]): its hello and heartbeats come
//! from the stored inventory, the welcome's specs are offered to the reconciler, the
//! coordinator's requests go to [`crate::serve::Services`], and its certificate is renewed
//! over the link with [`crate::renew`]. Dialling, sessions and reconnects are `berth_link`'s;
//! `fanout` keeps one link per coordinator.

mod fanout;
mod messages;

use crate::config::Config;
use crate::reconciler::Reconciler;
use crate::renew;
use crate::state::State;
use berth_link::{HostError, Renewal};
use berth_shared::images::RegistryAccess;
use berth_shared::protocol::{AgentMessage, ContainerSpec, HostInfo};
use messages::{heartbeat, hello};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub struct Link {
    pub cfg: Arc<Config>,
    pub host: HostInfo,
    pub state: State,
    pub reconciler: Arc<Reconciler>,
    pub services: Arc<crate::serve::Services>,
}

impl berth_link::Host for Link {
    fn hello(&self) -> Result<AgentMessage, HostError> {
        Ok(hello(&self.host, &self.state)?)
    }

    fn heartbeat(&self) -> Result<AgentMessage, HostError> {
        let used = |id: &str| self.reconciler.volume_used_bytes(id);
        Ok(heartbeat(&self.host, &self.state, used)?)
    }

    async fn welcome(self: Arc<Self>, specs: Vec<ContainerSpec>, registries: Vec<RegistryAccess>) {
        for r in registries {
            self.reconciler.registries.remember(r);
        }
        for s in &specs {
            self.services.offer(s).await;
        }
        self.reconciler.synced.store(true, Ordering::Relaxed);
    }

    async fn serve(self: Arc<Self>, conn: quinn::Connection) {
        self.services.clone().serve(conn).await
    }

    fn link_up(&self, up: bool) {
        crate::telemetry::METRICS
            .link_connected
            .store(up, Ordering::Relaxed);
    }

    fn renewal_check(&self) -> Duration {
        renew::lifetime(&self.cfg.coordinator.cert)
            .map_or(Duration::from_secs(60), |l| l.check_every())
    }

    /// A new key to renew with, when the certificate has less than a third of its life left.
    fn start_renewal(&self) -> Option<Box<dyn Renewal>> {
        let cert = &self.cfg.coordinator.cert;
        let lifetime = renew::lifetime(cert)
            .map_err(|e| tracing::warn!(error = %e, "cannot read the link certificate's validity"))
            .ok()?;
        crate::telemetry::METRICS
            .cert_not_after
            .store(lifetime.not_after, Ordering::Relaxed);
        if !lifetime.due() {
            return None;
        }
        tracing::info!(
            not_after = %berth_shared::time::rfc3339(lifetime.not_after.max(0) as u64),
            "certificate nears its end; asking the coordinator to renew it"
        );
        let pending = renew::Pending::new()
            .map_err(|e| tracing::warn!(error = %e, "renewal key"))
            .ok()?;
        Some(Box::new(AgentRenewal {
            cfg: self.cfg.clone(),
            pending,
        }))
    }

    fn renewed(&self) {
        crate::telemetry::METRICS
            .cert_renewals
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(cert = %self.cfg.coordinator.cert.display(), "link certificate replaced");
    }
}

struct AgentRenewal {
    cfg: Arc<Config>,
    pending: renew::Pending,
}

impl Renewal for AgentRenewal {
    fn public_key(&self) -> Vec<u8> {
        self.pending.public_key()
    }

    fn install(self: Box<Self>, certificate: &str) -> Result<(), HostError> {
        Ok(renew::install(
            &self.cfg.coordinator,
            &self.pending,
            certificate,
        )?)
    }
}
