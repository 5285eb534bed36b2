//! Volumes: data that outlives its container. What the API shows of one (`Volume`), how a
//! container names the volumes it mounts, and what an agent is told of one (`VolumeSpec`,
//! `VolumeMount`). A volume lives on one host and is mounted by at most one container.

use serde::{Deserialize, Serialize};

/// Volume ids are `vol` and 8 lowercase alphanumeric characters (`volab12cd34`).
pub const VOLUME_ID_PREFIX: &str = "vol";

/// A fresh random volume id.
pub fn new_volume_id() -> String {
    format!("{VOLUME_ID_PREFIX}{}", crate::ids::new_container_id())
}

/// Whether `s` has the shape of a volume id; anything else names no volume (404 unread).
pub fn is_volume_id(s: &str) -> bool {
    s.strip_prefix(VOLUME_ID_PREFIX)
        .is_some_and(crate::ids::is_container_id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeStatus {
    /// Stored; its host has not yet made its filesystem.
    Creating,
    /// On its host, mounted by no container.
    Available,
    /// Mounted by a container (`attached_to`).
    Attached,
    /// Deleted by its owner; its host has not yet removed it.
    Deleting,
}

/// Where a volume is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub container_id: String,
    pub mount_path: String,
}

/// One volume, as every volume endpoint returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub name: String,
    pub size_gb: u64,
    /// Bytes in use on its filesystem (GiB), as its host last measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_gb: Option<f64>,
    pub host_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub status: VolumeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_to: Option<Attachment>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeList {
    pub volumes: Vec<Volume>,
}

/// A volume a container mounts: in its create body, its JSON and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRef {
    pub volume_id: String,
    pub mount_path: String,
}

/// `POST` / `DELETE /compute/containers/:id/volumes…`: the container's volumes afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerVolumes {
    pub volumes: Vec<VolumeRef>,
    /// Whether the change re-created the running container.
    pub restarted: bool,
}

/// What a container's spec says of one volume it mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    pub id: String,
    pub mount_path: String,
    /// The volume's size: grown (offline) before the container starts.
    pub size_gb: u64,
}

/// What a host must do with one volume (`Request::Volume`): have it, `size_gb` large, or
/// remove it with its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub id: String,
    pub size_gb: u64,
    #[serde(default)]
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_ids_have_their_own_shape() {
        for _ in 0..100 {
            let id = new_volume_id();
            assert!(is_volume_id(&id), "{id}");
            assert!(!crate::ids::is_container_id(&id));
        }
        for bad in [
            "",
            "vol",
            "volABC12345",
            "ab12cd34",
            "vol../../etc",
            "vol1234567",
        ] {
            assert!(!is_volume_id(bad), "{bad}");
        }
    }
}
