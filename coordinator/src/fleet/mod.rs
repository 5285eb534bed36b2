//! The fleet: every host the coordinator has heard from, with what it says of itself
//! (region, arch, capacity, where users reach it), when it last spoke, whether it is
//! connected (the hub's view) and cordoned (stored); placement of a container onto a host,
//! room on a host for a resize, certificate renewal over the link, and operators' views.

mod view;

use crate::config::LinkConfig;
use crate::error::Error;
use crate::hub::Hub;
use crate::placement::{self, Candidate, Demand};
use crate::store::{ContainerRecord, Store};
use berth_shared::protocol::{CoordinatorMessage, HostInfo, Resources, Runtime};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One host as the fleet knows it.
#[derive(Debug, Clone)]
pub struct Host {
    pub info: HostInfo,
    pub connected: bool,
    /// Unix seconds of the last message from the host.
    pub last_heartbeat: u64,
}

struct Seen {
    info: HostInfo,
    at: Instant,
    unix: u64,
}

pub struct Fleet {
    hosts: Mutex<HashMap<String, Seen>>,
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    link: LinkConfig,
}

impl Fleet {
    pub fn new(hub: Arc<Hub>, store: Arc<dyn Store>, link: LinkConfig) -> Fleet {
        Fleet {
            hosts: Mutex::new(HashMap::new()),
            hub,
            store,
            link,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A hello or heartbeat: the host's current description.
    pub fn heard(&self, info: HostInfo) {
        let key = info.host_key.clone();
        let seen = Seen {
            info,
            at: Instant::now(),
            unix: berth_shared::time::now_unix().0,
        };
        self.lock().insert(key, seen);
    }

    /// Any other message from the host.
    pub fn touch(&self, host: &str) {
        if let Some(s) = self.lock().get_mut(host) {
            s.at = Instant::now();
            s.unix = berth_shared::time::now_unix().0;
        }
    }

    pub fn host(&self, key: &str) -> Option<Host> {
        let hosts = self.lock();
        let s = hosts.get(key)?;
        Some(Host {
            info: s.info.clone(),
            connected: self.hub.is_connected(key),
            last_heartbeat: s.unix,
        })
    }

    pub fn is_connected(&self, key: &str) -> bool {
        self.hub.is_connected(key)
    }

    /// Every host heard from since start, by host key.
    pub fn hosts(&self) -> Vec<Host> {
        let mut v: Vec<Host> = self
            .lock()
            .iter()
            .map(|(k, s)| Host {
                info: s.info.clone(),
                connected: self.hub.is_connected(k),
                last_heartbeat: s.unix,
            })
            .collect();
        v.sort_by(|a, b| a.info.host_key.cmp(&b.info.host_key));
        v
    }

    /// Whether any host heard from offers `runtime` (runc: always).
    pub fn offers(&self, runtime: Runtime) -> bool {
        runtime == Runtime::Runc
            || self
                .lock()
                .values()
                .any(|s| s.info.runtimes.contains(&runtime))
    }

    /// Closes the connections of hosts silent for longer than `grace`; returns their keys.
    pub fn sweep(&self, grace: Duration) -> Vec<String> {
        let silent: Vec<String> = self
            .lock()
            .iter()
            .filter(|(k, s)| s.at.elapsed() > grace && self.hub.is_connected(k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &silent {
            self.hub.close(k, "heartbeat grace exceeded");
        }
        silent
    }

    /// What the containers placed on `host` are promised.
    pub async fn used_on(&self, host: &str) -> Result<Resources, Error> {
        let usage = self.store.host_usage().await?;
        Ok(usage.get(host).map(|u| u.used).unwrap_or_default())
    }

    /// A connected, uncordoned host for `demand` with the region it is in, or why none fits.
    /// One pass over the fleet's own table; nothing of a host is copied but the winner's key.
    pub async fn place(&self, demand: &Demand) -> Result<Result<(String, String), String>, Error> {
        let cordoned = self.store.cordoned_hosts().await?;
        let usage = self.store.host_usage().await?;
        let used = |k: &str| usage.get(k).map(|u| u.used).unwrap_or_default();
        let seen = self.lock();
        Ok(self.hub.with_connected(|is_connected| {
            let hosts: Vec<Candidate> = seen
                .values()
                .map(|s| Candidate {
                    host_key: &s.info.host_key,
                    region: &s.info.region,
                    arch: s.info.arch,
                    capacity: s.info.placeable(),
                    connected: is_connected(&s.info.host_key),
                    cordoned: cordoned.contains(&s.info.host_key),
                    runtimes: &s.info.runtimes,
                })
                .collect();
            placement::place(&hosts, &used, demand)
                .map(|h| (h.host_key.to_string(), h.region.to_string()))
        }))
    }

    /// Whether `rec`'s host can take it at the size `new`.
    pub async fn check_room(&self, rec: &ContainerRecord, new: Resources) -> Result<(), Error> {
        let Some(host) = rec.host_key.as_deref().and_then(|h| self.host(h)) else {
            return Ok(());
        };
        let after = self
            .used_on(&host.info.host_key)
            .await?
            .minus(rec.resources())
            .plus(new);
        if after.fits_in(&host.info.placeable()) {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "host {} has no room for this size",
                host.info.host_key
            )))
        }
    }

    /// Signs a renewed certificate for `host` (the key of the connection's certificate).
    pub fn renew(&self, host: &str, public_key: &[u8]) -> CoordinatorMessage {
        match crate::pki::issue_for_key(&self.link, host, public_key) {
            Ok((certificate, _)) => {
                tracing::info!(host, "agent certificate renewed");
                CoordinatorMessage::Renewed { certificate }
            }
            Err(e) => {
                tracing::warn!(host, error = %e, "agent certificate renewal refused");
                CoordinatorMessage::RenewRefused {
                    reason: e.to_string(),
                }
            }
        }
    }
}
