//! The domain side of the agent link: the hub's [`AgentEvent`]s handed to the fleet (who the
//! host is, when it spoke, renewals) and the containers service (inventories and reports) —
//! one host's events in order, different hosts' side by side over a few workers, so one
//! host's store writes and flushes do not hold up the rest of the fleet; and the periodic
//! work — heartbeat grace and placing pending containers.

use crate::containers::Containers;
use crate::fleet::Fleet;
use crate::hub::AgentEvent;
use crate::leader::Leadership;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Workers agent events are spread over, by host.
const WORKERS: u64 = 16;

/// Hands agent events to the workers until the hub goes away; a host always goes to the
/// same worker, so its events keep their order.
pub async fn run(
    mut events: mpsc::Receiver<AgentEvent>,
    fleet: Arc<Fleet>,
    containers: Arc<Containers>,
) {
    let workers: Vec<mpsc::Sender<AgentEvent>> = (0..WORKERS)
        .map(|_| {
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(work(rx, fleet.clone(), containers.clone()));
            tx
        })
        .collect();
    while let Some(ev) = events.recv().await {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        ev.host().hash(&mut h);
        if workers[(h.finish() % WORKERS) as usize]
            .send(ev)
            .await
            .is_err()
        {
            break;
        }
    }
}

/// One worker: its hosts' events, in order.
async fn work(
    mut events: mpsc::Receiver<AgentEvent>,
    fleet: Arc<Fleet>,
    containers: Arc<Containers>,
) {
    while let Some(ev) = events.recv().await {
        match ev {
            AgentEvent::Connected {
                host,
                inventory,
                welcome,
            } => {
                let key = host.host_key.clone();
                fleet.heard(host);
                // No welcome on a failed read: an empty desired set would be a lie the agent
                // acts on. Dropping `welcome` closes the connection; the agent dials again.
                let specs = match containers.on_inventory(&key, inventory).await {
                    Ok(()) => containers.desired_for_host(&key).await,
                    Err(e) => Err(e),
                };
                match specs {
                    Ok(specs) => {
                        let _ = welcome.send(containers.desired_set(specs));
                    }
                    Err(e) => {
                        tracing::error!(host = %key, error = %e, "cannot read the host's desired set; refusing its connection until it can be read");
                        continue;
                    }
                }
                if let Err(e) = containers.place_pending().await {
                    tracing::error!(error = %e, "placing pending containers failed; retrying later");
                }
                if let Err(e) = containers.sync_volumes(&key).await {
                    tracing::error!(host = %key, error = %e, "volumes not told to the host; its next connection retries");
                }
            }
            AgentEvent::Heartbeat { host, inventory } => {
                let key = host.host_key.clone();
                fleet.heard(host);
                if let Err(e) = containers.on_inventory(&key, inventory).await {
                    tracing::error!(host = %key, error = %e, "heartbeat inventory not applied; the next one retries");
                }
            }
            AgentEvent::Report { host, report } => {
                fleet.touch(&host);
                let id = report.id.clone();
                if let Err(e) = containers.on_report(&host, report).await {
                    tracing::error!(%host, %id, error = %e, "status report not applied; the next heartbeat retries");
                }
            }
            AgentEvent::Renew {
                host,
                public_key,
                answer,
            } => {
                let _ = answer.send(fleet.renew(&host, &public_key));
            }
            AgentEvent::Disconnected { host } => {
                tracing::debug!(%host, "host connection gone");
            }
        }
    }
}

/// Every second: heartbeat grace (this coordinator's own links) and the leader lease; every
/// ten, on the leader only, containers that found no host yet.
pub async fn housekeeping(
    fleet: Arc<Fleet>,
    containers: Arc<Containers>,
    leadership: Arc<Leadership>,
    grace: Duration,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        for host in fleet.sweep(grace) {
            tracing::warn!(%host, "host unreachable: no heartbeat within the grace period");
        }
        let leads = leadership.refresh().await;
        if leads && n.is_multiple_of(10) {
            if let Err(e) = containers.place_pending().await {
                tracing::error!(error = %e, "placing pending containers failed; retrying later");
            }
        }
    }
}
