//! Ingress on ports 8000–8999: the agent listens on the host port and relays each TCP
//! connection to the container's address and `target_port` (a userspace relay also serves
//! connections from the host itself, which DNAT would not); bytes move with `splice(2)`
//! ([`super::relay`]). One owner per host port.

use berth_service::listener::{Connection, Listener};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Mutex;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

pub const RANGE: std::ops::RangeInclusive<u16> = 8000..=8999;

/// Connections relayed at once per forwarded port (each holds two sockets and a pipe pair);
/// further clients wait in the kernel's backlog until one ends.
const MAX_CONNECTIONS: usize = 1024;

#[derive(Default)]
pub struct Forwards {
    /// host port → (destination, listener task)
    active: Mutex<HashMap<u16, (SocketAddrV4, JoinHandle<()>)>>,
}

async fn relay(listener: Listener, to: SocketAddrV4) {
    loop {
        let Connection {
            stream: inbound,
            permit,
            ..
        } = listener.accept().await;
        tokio::spawn(async move {
            let _permit = permit;
            let _ = inbound.set_nodelay(true);
            match TcpStream::connect(to).await {
                Ok(outbound) => {
                    let _ = outbound.set_nodelay(true);
                    let _ = super::relay::relay(&inbound, &outbound).await;
                }
                Err(e) => tracing::debug!(%to, error = %e, "ingress: container did not answer"),
            }
        });
    }
}

impl Forwards {
    /// Makes the listeners exactly `want` (host port → destination): new rules start, changed
    /// ones move, removed ones stop (their port refuses connections at once).
    pub async fn sync(&self, want: HashMap<u16, SocketAddrV4>) {
        let mut to_start = Vec::new();
        {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            active.retain(|port, (dest, task)| {
                let keep = want.get(port) == Some(dest);
                if !keep {
                    task.abort();
                    tracing::info!(port, "ingress forward removed");
                }
                keep
            });
            for (port, dest) in &want {
                if !active.contains_key(port) {
                    to_start.push((*port, *dest));
                }
            }
        }
        for (port, dest) in to_start {
            let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
            match Listener::bind(addr, MAX_CONNECTIONS).await {
                Ok(l) => {
                    tracing::info!(port, %dest, "ingress forward listening");
                    let task = tokio::spawn(relay(l, dest));
                    self.active
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(port, (dest, task));
                }
                Err(e) => tracing::warn!(port, error = %e, "ingress: cannot listen"),
            }
        }
    }
}
