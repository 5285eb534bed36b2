//! The records the coordinator keeps: a container's desired spec and last known status, its
//! ingress rules and history, users' SSH keys. Plain data; the `Store` keeps them.

use berth_shared::api::ContainerStatus;
use berth_shared::images::PullPolicy;
use berth_shared::protocol::{DesiredState, Resources, Restarts, Runtime};
use berth_shared::upkeep::{Health, HealthCheck, RestartPolicy};
use berth_shared::volumes::VolumeRef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub instance_type: String,
    pub cpu_millis: u32,
    pub memory_mb: u64,
    pub storage_gb: u64,
    pub ssh_key_ids: Vec<u64>,
    pub ssh_enabled: bool,
    pub mount_paths: Vec<String>,
    pub image: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub created_at: u64,
    pub desired: DesiredState,
    pub generation: u64,
    pub host_key: Option<String>,
    pub region: Option<String>,
    pub status: ContainerStatus,
    pub status_reason: Option<String>,
    /// The newest generation the agent has reported on.
    pub observed_generation: u64,
    pub memory_used_mb: Option<u64>,
    pub storage_used_gb: Option<f64>,
    #[serde(default)]
    pub ports: Vec<u16>,
    #[serde(default)]
    pub ingress: Vec<IngressRecord>,
    /// Placement constraints from the create request.
    #[serde(default)]
    pub requested_region: Option<String>,
    #[serde(default)]
    pub requested_host_key: Option<String>,
    #[serde(default)]
    pub external_ip: Option<String>,
    /// Bumped by `reboot`: a new boot of the same spec.
    #[serde(default)]
    pub boot: u64,
    /// `(generation, volume_preserved)` of the last re-creation after containerd lost it.
    #[serde(default)]
    pub recreated: Option<(u64, bool)>,
    /// The OCI runtime asked for at create.
    #[serde(default)]
    pub runtime: Runtime,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// The host's last word on the health check, while it runs with one.
    #[serde(default)]
    pub health: Option<Health>,
    /// The host's restart history of it (count, last exit).
    #[serde(default)]
    pub restarts: Restarts,
    /// The owner's volumes it mounts (the one record saying where a volume is attached).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeRef>,
    #[serde(default)]
    pub pull_policy: PullPolicy,
    /// The manifest digest its host made it from (it is made from that again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngressRecord {
    pub id: u64,
    pub port: u16,
    pub target_port: u16,
    pub created_at: u64,
}

/// One entry of a container's lifecycle history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Increasing within the container's history: the order of events and their page key.
    #[serde(default)]
    pub seq: u64,
    pub at: u64,
    pub kind: String,
    pub message: String,
}

/// How many events a container keeps.
pub const MAX_EVENTS: usize = 100;

impl ContainerRecord {
    /// Deleted containers stay until their host confirms; users never see them.
    pub fn is_visible(&self) -> bool {
        self.desired != DesiredState::Deleted
    }

    /// What the container is promised on its host.
    pub fn resources(&self) -> Resources {
        Resources {
            cpu_millis: u64::from(self.cpu_millis),
            memory_mb: self.memory_mb,
            disk_gb: self.storage_gb,
        }
    }
}

/// A user's volume: where it lives and how large it is. Which container mounts it is the
/// containers' records' to say (`ContainerRecord::volumes`), not this one's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub size_gb: u64,
    /// Set at create, never moved: the volume's data is on this host.
    pub host_key: String,
    pub region: Option<String>,
    /// `false` until the host has made its filesystem.
    pub ready: bool,
    /// Deleted by its owner; the record goes once the host has removed the data.
    pub deleted: bool,
    pub used_bytes: Option<u64>,
    /// Why its host could not do what it was last asked.
    pub reason: Option<String>,
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: u64,
}

/// A POST made with an `Idempotency-Key`: reserved before it runs, its answer kept after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub owner: String,
    pub key: String,
    /// SHA-256 of the method, path and body: the same key with another request is refused.
    pub fingerprint: String,
    pub created_at: u64,
    /// `None` while the request runs (or if the coordinator died while it ran).
    pub answer: Option<StoredAnswer>,
}

/// The status and JSON body a request answered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: String,
}
