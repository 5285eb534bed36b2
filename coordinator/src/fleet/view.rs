//! The operator's view of the fleet: every host with its capacity, what is promised on it,
//! whether it is connected, and cordons (a cordoned host gets no new containers; what runs
//! there stays). Cordons are stored, so they outlive a coordinator restart.

use super::Fleet;
use crate::error::Error;
use berth_shared::protocol::Resources;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct HostView {
    pub host_key: String,
    pub region: Option<String>,
    pub arch: Option<berth_shared::catalog::Arch>,
    /// Physical CPU, memory and disk.
    pub capacity: Option<Resources>,
    /// What placement may promise: `capacity` with the host's overcommit factors.
    pub placeable: Option<Resources>,
    /// CPU, memory and disk promised to the containers placed there.
    pub used: Resources,
    pub containers: usize,
    /// `connected` or `unreachable`.
    pub status: &'static str,
    pub cordoned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
}

impl Fleet {
    /// Every host: heard from since start, or named by a record or a cordon.
    pub async fn view(&self) -> Result<Vec<HostView>, Error> {
        let cordoned = self.store.cordoned_hosts().await?;
        let usage = self.store.host_usage().await?;
        let mut out: BTreeMap<String, HostView> = BTreeMap::new();
        // Hosts known from records or cordons but not (yet) seen since this coordinator started.
        for key in usage.keys().chain(cordoned.iter()) {
            out.insert(
                key.clone(),
                HostView {
                    host_key: key.clone(),
                    region: None,
                    arch: None,
                    capacity: None,
                    placeable: None,
                    used: Resources::default(),
                    containers: 0,
                    status: "unreachable",
                    cordoned: false,
                    last_heartbeat: None,
                    agent_version: None,
                },
            );
        }
        for h in self.hosts() {
            out.insert(
                h.info.host_key.clone(),
                HostView {
                    host_key: h.info.host_key.clone(),
                    region: Some(h.info.region.clone()),
                    arch: Some(h.info.arch),
                    capacity: Some(h.info.capacity),
                    placeable: Some(h.info.placeable()),
                    used: Resources::default(),
                    containers: 0,
                    status: if h.connected {
                        "connected"
                    } else {
                        "unreachable"
                    },
                    cordoned: false,
                    last_heartbeat: Some(berth_shared::time::rfc3339(h.last_heartbeat)),
                    agent_version: Some(h.info.agent_version.clone()),
                },
            );
        }
        for (key, v) in &mut out {
            let u = usage.get(key).copied().unwrap_or_default();
            (v.used, v.containers) = (u.used, u.containers);
            v.cordoned = cordoned.contains(key);
        }
        Ok(out.into_values().collect())
    }

    async fn one(&self, host: &str) -> Result<Option<HostView>, Error> {
        Ok(self.view().await?.into_iter().find(|h| h.host_key == host))
    }

    /// Cordons or uncordons a host the coordinator knows; `NotFound` otherwise.
    pub async fn set_cordon(&self, host: &str, cordoned: bool) -> Result<HostView, Error> {
        if self.one(host).await?.is_none() {
            return Err(Error::NotFound);
        }
        self.store.set_cordoned(host, cordoned).await?;
        self.store.flush().await?;
        tracing::info!(host, cordoned, "host cordon changed");
        self.one(host).await?.ok_or(Error::NotFound)
    }
}
