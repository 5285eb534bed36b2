//! Agents besides a cluster's own: their certificates (from the cluster's CA, or from one it
//! has never seen) and their processes, each with its own config, data dir, containerd
//! namespace and network.

use crate::net::{forget_network, test_network};
use crate::{bin_dir, containerd, run, suffix, Cluster};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

impl Cluster {
    /// Starts an extra agent, `name`, whose certificate comes from `tls_dir` and which claims
    /// `host_key`; its log is `<name>.log`. Returns the process (killed on drop by the caller).
    pub fn spawn_extra_agent(
        &self,
        name: &str,
        host_key: &str,
        tls_dir: &Path,
    ) -> Result<ExtraAgent> {
        self.spawn_agent_with(name, host_key, tls_dir, "")
    }

    /// Like [`Cluster::spawn_extra_agent`], with `coordinator_extra` appended to the
    /// `[coordinator]` table (e.g. an enrollment token).
    pub fn spawn_agent_with(
        &self,
        name: &str,
        host_key: &str,
        tls_dir: &Path,
        coordinator_extra: &str,
    ) -> Result<ExtraAgent> {
        let link = format!("address = \"{}\"", self.link);
        self.spawn_agent_config(name, host_key, tls_dir, &link, coordinator_extra, None)
    }

    /// Like [`Cluster::spawn_extra_agent`], with a link to this cluster's coordinator and to
    /// each of `peers` (`[coordinator] addresses`).
    pub fn spawn_agent_linked(
        &self,
        name: &str,
        host_key: &str,
        tls_dir: &Path,
        peers: &[&crate::Peer],
    ) -> Result<ExtraAgent> {
        let mut all = vec![format!("\"{}\"", self.link)];
        all.extend(peers.iter().map(|p| format!("\"{}\"", p.link)));
        let link = format!("addresses = [{}]", all.join(", "));
        self.spawn_agent_config(name, host_key, tls_dir, &link, "", None)
    }

    /// An agent `name` claiming `host_key` with the `[coordinator]` lines `link` and
    /// `coordinator_extra`, in the network namespace `netns` when given.
    pub(crate) fn spawn_agent_config(
        &self,
        name: &str,
        host_key: &str,
        tls_dir: &Path,
        link: &str,
        coordinator_extra: &str,
        netns: Option<&Path>,
    ) -> Result<ExtraAgent> {
        let d = self.dir.display();
        let t = tls_dir.display();
        let (bridge, subnet) = test_network(&suffix());
        std::fs::write(
            self.dir.join(format!("{name}.toml")),
            format!(
                r#"
host_key = "{host_key}"
region = "test"
data_dir = "{d}/{name}"
[ssh]
listen = "127.0.0.1:0"
public_address = "127.0.0.1"
[network]
bridge = "{bridge}"
subnet = "{subnet}"
netns_dir = "{d}/{name}-netns"
[containerd]
namespace = "{ns}-{name}"
[coordinator]
{link}
server_name = "localhost"
ca_cert = "{d}/tls/ca.pem"
cert = "{t}/agent.pem"
key = "{t}/agent.key"
{coordinator_extra}
"#,
                ns = self.namespace
            ),
        )?;
        Ok(ExtraAgent {
            child: self.spawn_in(netns, "berth-agent", &format!("{name}.toml"), name)?,
            namespace: format!("{}-{name}", self.namespace),
            network: (bridge, subnet),
        })
    }

    /// An agent certificate from a CA this cluster has never seen.
    pub fn foreign_certificate(&self, host_key: &str) -> Result<PathBuf> {
        let other = self.dir.join("foreign");
        let mut cfg = std::fs::read_to_string(self.dir.join("coordinator.toml"))?;
        cfg = cfg.replace(
            &format!("{}/tls/", self.dir.display()),
            &format!("{}/tls/", other.display()),
        );
        std::fs::create_dir_all(&other)?;
        std::fs::write(other.join("coordinator.toml"), cfg)?;
        let bin = bin_dir().join("berth-coordinator");
        run(Command::new(&bin)
            .arg("--config")
            .arg(other.join("coordinator.toml"))
            .args(["tls", "init"]))?;
        let out = other.join("agent");
        run(Command::new(&bin)
            .arg("--config")
            .arg(other.join("coordinator.toml"))
            .args(["tls", "issue-agent", "--host-key", host_key, "--out"])
            .arg(&out))?;
        Ok(out)
    }

    /// An agent certificate from this cluster's CA.
    pub fn certificate(&self, host_key: &str) -> Result<PathBuf> {
        let out = self.dir.join(format!("cert-{host_key}"));
        self.issue_agent_certificate(host_key, &out)?;
        Ok(out)
    }

    /// `tls issue-agent` for `host_key` into `out` (agent.pem, agent.key, ca.pem), with the
    /// coordinator config as it is on disk now.
    pub fn issue_agent_certificate(&self, host_key: &str, out: &Path) -> Result<()> {
        self.coordinator_cmd(&[
            "tls",
            "issue-agent",
            "--host-key",
            host_key,
            "--out",
            &out.display().to_string(),
        ])?;
        Ok(())
    }
}

/// An agent started in addition to the cluster's own; killed and cleaned up on drop.
pub struct ExtraAgent {
    child: Child,
    namespace: String,
    network: (String, String),
}

impl ExtraAgent {
    /// The agent's process id (it is the child itself, also in a network namespace).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its containerd namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

impl Drop for ExtraAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        containerd::wipe_namespace(&self.namespace);
        forget_network(&self.network);
    }
}
