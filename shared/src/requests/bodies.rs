//! Every request body's fields, declared once (see [`super::body`]): each a struct of
//! `Input` fields that ignores fields it does not name.

use std::collections::BTreeMap;

super::body! {
    /// `POST /compute/containers`. Ownership of `ssh_key_ids` and the image's existence are
    /// checked by the caller, which knows the user's keys and the image list.
    CreateBody {
        name: String,
        instance_type: String,
        memory_mb: u64,
        storage_gb: u64,
        ssh_key_ids: Vec<u64>,
        ssh_enabled: bool,
        mount_paths: Vec<String>,
        image: String,
        env: BTreeMap<String, String>,
        region: String,
        host_key: String,
        ports: serde_json::Value,
        runtime: String,
        restart_policy: serde_json::Value,
        health_check: serde_json::Value,
        volumes: serde_json::Value,
        volume_ids: Vec<String>,
        pull_policy: String,
    }
    /// `PATCH /compute/containers/:id` (seeds `003`/`004`).
    PatchBody {
        name: String,
        memory_mb: u64,
        cpu_millis: u64,
        storage_gb: u64,
        restart_policy: serde_json::Value,
        health_check: serde_json::Value,
    }
    /// `PUT /compute/containers/:id/ssh`.
    SshBody { ssh_enabled: bool }
    /// `PUT /compute/containers/:id/mounts`.
    MountsBody { mount_paths: Vec<String> }
    /// `POST /compute/containers/:id/ingress`: external `port` → container `target_port`.
    IngressBody { port: u64, target_port: u64 }
    /// `POST /compute/containers/:id/actions` (seed `004`).
    ActionBody {
        #[serde(rename = "type")]
        kind: String,
    }
    /// `POST /compute/containers/:id/exec`.
    ExecBody {
        command: Vec<String>,
        stdin: String,
        env: BTreeMap<String, String>,
        timeout: String,
        encoding: String,
    }
    /// `POST /compute/ssh-keys`.
    KeyBody { name: String, public_key: String }
    /// `POST /compute/volumes`.
    VolumeBody { name: String, size_gb: u64, region: String, host_key: String }
    /// `PATCH /compute/volumes/:volume_id`: rename, grow.
    VolumePatchBody { name: String, size_gb: u64 }
    /// `POST /compute/containers/:id/volumes`.
    AttachBody { volume_id: String, mount_path: String }
    /// `POST /compute/hosts/enroll`: a one-time join token and the agent's own public key.
    EnrollBody { token: String, public_key: String }
    /// `POST /compute/session`: the API token a browser signs in with.
    SessionBody { token: String }
}
