//! The public REST API's JSON shapes (seeds `000`/`001`/`002`). Field names are the contract.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Container status as users see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    Pending,
    Initializing,
    Running,
    Stopped,
    Failed,
    /// Its process exited and the restart policy restarts it after a backoff.
    Restarting,
}

impl ContainerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Pending => "pending",
            ContainerStatus::Initializing => "initializing",
            ContainerStatus::Running => "running",
            ContainerStatus::Stopped => "stopped",
            ContainerStatus::Failed => "failed",
            ContainerStatus::Restarting => "restarting",
        }
    }
}

/// One container, as every container endpoint returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub status: ContainerStatus,
    /// Why the container is in its status when that needs saying (e.g. why it is still
    /// `pending`, or why it `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub hostname: String,
    pub memory_mb: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_mb: Option<u64>,
    pub storage_gb: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_used_gb: Option<f64>,
    pub instance_type: String,
    pub created_at: String,
    pub ssh_enabled: bool,
    pub https_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_command: Option<String>,
    pub image: String,
    /// The manifest digest the container runs, once its host made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// When its host fetches the image: `if-not-present`, `always` or `never`.
    #[serde(default)]
    pub pull_policy: crate::images::PullPolicy,
    pub mount_paths: Vec<String>,
    pub ssh_key_ids: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default)]
    pub cpu_millis: u32,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Address the ingress reaches the container at, once the host reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ip: Option<String>,
    /// The OCI runtime: `runc`, or `gvisor` (a user-space kernel) for untrusted workloads.
    #[serde(default)]
    pub runtime: crate::runtimes::Runtime,
    /// Present on `start` when the container had vanished from its host and was re-created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recreated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_preserved: Option<bool>,
    /// Present on changes that need the container re-created (PATCH, mounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted: Option<bool>,
    #[serde(default)]
    pub restart_policy: crate::upkeep::RestartPolicy,
    /// Restarts by the restart policy on its host.
    #[serde(default)]
    pub restart_count: u32,
    /// Status of the last exit nobody asked for, and when (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<crate::upkeep::HealthCheck>,
    /// `starting`, `healthy` or `unhealthy` while it runs with a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::upkeep::Health>,
    /// The volumes it mounts.
    #[serde(default)]
    pub volumes: Vec<crate::volumes::VolumeRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerList {
    pub containers: Vec<Container>,
    /// The cursor of the next page (`?cursor=`); absent on the last page, so a list that fits
    /// one page is exactly the seeds' shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /compute/containers`, after validation (see `requests::CreateBody`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateContainer {
    pub name: String,
    pub instance_type: String,
    pub memory_mb: u64,
    pub storage_gb: u64,
    pub ssh_key_ids: Vec<u64>,
    pub ssh_enabled: bool,
    pub mount_paths: Vec<String>,
    pub image: Option<String>,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<u16>,
    pub region: Option<String>,
    pub host_key: Option<String>,
    pub runtime: crate::runtimes::Runtime,
    pub restart_policy: crate::upkeep::RestartPolicy,
    pub health_check: Option<crate::upkeep::HealthCheck>,
    /// Volumes to mount, each `{volume_id, mount_path}`.
    pub volumes: Vec<crate::volumes::VolumeRef>,
    /// Volumes to mount at `/mnt/<volume name>` (seed `004`).
    pub volume_ids: Vec<String>,
    pub pull_policy: crate::images::PullPolicy,
}

/// An ingress rule (seed `001`): external `port` on the container's host → `target_port`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngressRule {
    pub id: u64,
    pub port: u16,
    pub target_port: u16,
    /// Unix seconds, as the seed shows.
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngressList {
    pub rules: Vec<IngressRule>,
    /// The cursor of the next page (`?cursor=`); absent on the last page, so a list that fits
    /// one page is exactly the seeds' shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshAccess {
    pub ssh_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mounts {
    pub mount_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted: Option<bool>,
}

/// One entry of `GET /compute/images` (seed `002`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    pub image: String,
    pub source: String,
}

/// One lifecycle event of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventList {
    pub events: Vec<Event>,
    /// The cursor of the next page (`?cursor=`); absent on the last page, so a list that fits
    /// one page is exactly the seeds' shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One dimension of `GET /compute/quota`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaUsage {
    pub dimension: String,
    pub used: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub region: String,
    pub quotas: Vec<QuotaUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshKey {
    pub id: u64,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshKeyList {
    pub ssh_keys: Vec<SshKey>,
    /// The cursor of the next page (`?cursor=`); absent on the last page, so a list that fits
    /// one page is exactly the seeds' shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /compute/containers/:id/exec`: how the command ended and what it wrote. With
/// `"encoding": "base64"` the outputs are base64 (byte-exact); else UTF-8 text, with bytes that
/// are not UTF-8 replaced by U+FFFD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecOutput {
    pub exit_code: u32,
    pub stdout: String,
    pub stderr: String,
    pub encoding: String,
    /// Output past the limit (1 MiB of each stream) was dropped.
    pub truncated: bool,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
}

/// `GET /compute/containers/:id/wait`: the status reached, and the container then (none once
/// it is deleted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitOutcome {
    pub id: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// `GET`/`POST /compute/session`: who the token is, for a browser (the console).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    /// Whether the token grants `compute.admin` (the console shows the hosts).
    pub admin: bool,
    /// When the token, and the session cookie with it, expires (RFC 3339).
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusOk {
    pub status: String,
}

impl StatusOk {
    pub fn ok() -> StatusOk {
        StatusOk {
            status: "ok".into(),
        }
    }
}

/// The `detail` of a 403 `over_quota` (seed `000`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaDetail {
    pub dimension: String,
    pub requested: u64,
    pub max: u64,
}

/// Every error body the API answers with (seed `000`, plus `conflict` and `bad_request`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ErrorBody {
    Unauthenticated,
    Forbidden {
        message: String,
    },
    ContainerNotRunning {
        message: String,
    },
    NotFound,
    OverQuota {
        detail: QuotaDetail,
    },
    Invalid {
        details: BTreeMap<String, Vec<String>>,
    },
    Conflict {
        message: String,
    },
    BadRequest {
        message: String,
    },
    MethodNotAllowed,
    UnsupportedMediaType {
        message: String,
    },
    PayloadTooLarge {
        message: String,
    },
    Unavailable {
        message: String,
    },
    /// `exec` on a container that is not running.
    NotRunning {
        message: String,
    },
    /// `wait` ran out of time before the container reached the status.
    Timeout {
        message: String,
    },
    /// `If-Match` named a generation the container no longer has.
    PreconditionFailed {
        message: String,
    },
    /// Too many requests: try again after `Retry-After` seconds.
    RateLimited {
        message: String,
    },
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_bodies_have_the_seed_shapes() {
        let j = |e: &ErrorBody| serde_json::to_value(e).expect("json");
        assert_eq!(
            j(&ErrorBody::Unauthenticated),
            json!({"error": "unauthenticated"})
        );
        assert_eq!(j(&ErrorBody::NotFound), json!({"error": "not_found"}));
        assert_eq!(
            j(&ErrorBody::OverQuota {
                detail: QuotaDetail {
                    dimension: "containers".into(),
                    requested: 4,
                    max: 3
                }
            }),
            json!({"error": "over_quota", "detail": {"dimension": "containers", "requested": 4, "max": 3}})
        );
        let mut details = BTreeMap::new();
        details.insert("name".to_string(), vec!["is required".to_string()]);
        assert_eq!(
            j(&ErrorBody::Invalid { details }),
            json!({"error": "invalid", "details": {"name": ["is required"]}})
        );
    }
}
