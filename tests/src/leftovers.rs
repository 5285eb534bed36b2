//! What a container leaves behind on its host, looked for everywhere the agent puts something:
//! containerd's container, task and snapshot, the network namespace and its ready marker, the
//! NAT rules CNI made, the volume (directory, image file, mounts) and the log. The fault suites
//! ask it of every container the API says is gone.

use crate::{containerd, Cluster};
use anyhow::Result;
use std::process::Command;

impl Cluster {
    /// Every trace of container `id` still on the cluster's own host, named; empty when it is
    /// wholly gone.
    pub fn leftovers(&self, id: &str) -> Result<Vec<String>> {
        let ns = &self.namespace;
        let mut found = Vec::new();
        if containerd::container_exists(ns, id)? {
            found.push("containerd container".to_string());
        }
        if containerd::task(ns, id)?.is_some() {
            found.push("containerd task".to_string());
        }
        if containerd::snapshot_exists(ns, id)? {
            found.push("snapshot".to_string());
        }
        let data = self.agent_data();
        let paths = [
            self.dir.join("netns").join(id),
            self.dir.join("netns").join(format!("{id}.ready")),
            data.join("volumes").join(id),
            data.join("volumes").join(format!("{id}.ext4")),
            data.join("logs").join(format!("{id}.log")),
        ];
        for p in paths.iter().filter(|p| p.exists()) {
            found.push(p.display().to_string());
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
        if let Some(m) = mounts.lines().find(|l| l.contains(id)) {
            found.push(format!("mount {m}"));
        }
        let nat = Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .output()?;
        if let Some(rule) = String::from_utf8_lossy(&nat.stdout)
            .lines()
            .find(|l| l.contains(id))
        {
            found.push(format!("NAT rule {rule}"));
        }
        Ok(found)
    }

    /// The veth ends attached to the agent's bridge (one per container network that exists).
    pub fn bridge_ports(&self) -> Result<usize> {
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &self.network.0])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().count())
    }
}
