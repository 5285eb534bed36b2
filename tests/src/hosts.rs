//! Test hosts: agents each in a network namespace of its own with its own address, joined to
//! the coordinator by a bridge on the machine (`10.251.X.0/24`, the coordinator's QUIC
//! endpoint on `.1`), so that a test can cut one host's link (a DROP rule inside its
//! namespace) or freeze its agent (SIGSTOP) while the others go on. Nothing leaves the
//! machine: the bridge has no route out and the hosts' only peer is the coordinator.

use crate::{run, Cluster, ExtraAgent};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// The bridge test hosts hang off; removed on drop.
pub(crate) struct HostsNet {
    bridge: String,
    /// `10.251.X`
    prefix: String,
}

impl HostsNet {
    pub(crate) fn create(id: &str) -> Result<HostsNet> {
        let x = rand::random_range(0..255u8);
        let net = HostsNet {
            bridge: format!("bh-{}", &id[..id.len().min(8)]),
            prefix: format!("10.251.{x}"),
        };
        ip(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", net.gateway()),
            "dev",
            &net.bridge,
        ])?;
        ip(&["link", "set", &net.bridge, "up"])?;
        Ok(net)
    }

    /// The machine's address on the bridge, where the coordinator listens.
    pub(crate) fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }
}

impl Drop for HostsNet {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// An agent in its own network namespace; on drop the agent is killed, its containers
/// removed and the namespace deleted.
pub struct TestHost {
    pub host_key: String,
    /// `ip netns` name.
    pub netns: String,
    /// The host's address on the bridge.
    pub address: String,
    /// The coordinator's address, the one the DROP rules of [`TestHost::cut`] name.
    coordinator: String,
    agent: Option<ExtraAgent>,
}

impl Cluster {
    /// Starts test host number `n` (1–200) as `host_key`, in a network namespace of its own
    /// on this cluster's test-host bridge (a cluster from [`Cluster::start_for_test_hosts`]).
    pub fn spawn_test_host(&self, host_key: &str, n: u8) -> Result<TestHost> {
        let net = self
            .hosts_net
            .as_ref()
            .context("test hosts need Cluster::start_for_test_hosts")?;
        let tag = format!("{}-{n}", &net.bridge[3..]);
        let netns = format!("bth-{tag}");
        let (outer, inner) = (format!("vh-{tag}"), format!("vn-{tag}"));
        let address = format!("{}.{}", net.prefix, 10 + u16::from(n));
        ip(&["netns", "add", &netns])?;
        let mut host = TestHost {
            host_key: host_key.to_string(),
            netns: netns.clone(),
            address: address.clone(),
            coordinator: net.gateway(),
            agent: None,
        };
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ])?;
        ip(&["link", "set", &inner, "netns", &netns])?;
        ip(&["link", "set", &outer, "master", &net.bridge, "up"])?;
        let inside = |args: &[&str]| -> Result<String> {
            let mut all = vec!["-n", netns.as_str()];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["link", "set", "lo", "up"])?;
        inside(&["addr", "add", &format!("{address}/24"), "dev", &inner])?;
        inside(&["link", "set", &inner, "up"])?;
        let tls = self.certificate(host_key)?;
        // The image its containers run, as on the cluster's own host.
        run(Command::new("ctr")
            .args(["-n", &format!("{}-{host_key}", self.namespace)])
            .args(["images", "import", "--snapshotter", "overlayfs"])
            .arg(crate::image_tar()))?;
        let link = format!("address = \"{}\"", self.link);
        let path = PathBuf::from("/run/netns").join(&netns);
        host.agent =
            Some(self.spawn_agent_config(host_key, host_key, &tls, &link, "", Some(&path))?);
        Ok(host)
    }
}

impl TestHost {
    /// Cuts the host's link: every packet between it and the coordinator is dropped, inside
    /// its namespace, both ways. The connection stays open on both ends, silent.
    pub fn cut(&self) -> Result<()> {
        self.iptables("-I")
    }

    /// Takes the DROP rules of [`TestHost::cut`] away.
    pub fn heal(&self) -> Result<()> {
        self.iptables("-D")
    }

    fn iptables(&self, op: &str) -> Result<()> {
        let ns = format!("--net=/run/netns/{}", self.netns);
        for (chain, dir) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
            run(Command::new("nsenter").args([
                ns.as_str(),
                "iptables",
                op,
                chain,
                dir,
                &self.coordinator,
                "-j",
                "DROP",
            ]))?;
        }
        Ok(())
    }

    /// SIGSTOP to the agent: its process stands still, its sockets stay open.
    pub fn freeze(&self) -> Result<()> {
        self.signal("-STOP")
    }

    /// SIGCONT: the agent goes on where it stood.
    pub fn thaw(&self) -> Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let pid = self.agent.as_ref().context("no agent")?.pid();
        run(Command::new("kill").args([sig, &pid.to_string()]))?;
        Ok(())
    }

    /// The containerd namespace of this host's agent.
    pub fn namespace(&self) -> Result<&str> {
        Ok(self.agent.as_ref().context("no agent")?.namespace())
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = self.thaw();
        drop(self.agent.take());
        let _ = ip(&["netns", "del", &self.netns]);
    }
}
