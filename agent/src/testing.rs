//! Fixtures the agent's unit tests share.

use berth_shared::protocol::{ContainerSpec, DesiredState, IngressSpec};

/// A small spec of container `id` with `desired` and the ingress rules `(port, target_port)`.
pub fn spec(id: &str, desired: DesiredState, ingress: &[(u16, u16)]) -> ContainerSpec {
    ContainerSpec {
        id: id.into(),
        name: String::new(),
        generation: 1,
        desired,
        image: "berth.local/base:latest".into(),
        cpu_millis: 500,
        memory_mb: 256,
        storage_gb: 1,
        mount_paths: vec![],
        env: Default::default(),
        ssh_enabled: false,
        ssh_authorized_keys: vec![],
        ports: vec![],
        ingress: ingress
            .iter()
            .map(|&(port, target_port)| IngressSpec { port, target_port })
            .collect(),
        boot: 0,
        runtime: Default::default(),
        restart_policy: Default::default(),
        health_check: None,
        volumes: vec![],
        pull_policy: Default::default(),
        image_digest: None,
    }
}
