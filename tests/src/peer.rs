//! A second coordinator of a cluster on PostgreSQL: the same database, CA, coordinator
//! certificate and JWT secret, its own API, link and metrics ports — one more replica behind
//! a load balancer, as an operator runs them.

use crate::net::{free_tcp_port, free_udp_port};
use crate::{bin_dir, Cluster, User};
use anyhow::{ensure, Context, Result};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Peer {
    /// `http://127.0.0.1:<port>` of its API.
    pub api: String,
    /// `127.0.0.1:<port>` of its QUIC endpoint.
    pub link: String,
    pub name: String,
    child: Option<Child>,
}

impl Cluster {
    /// Starts coordinator `name` beside the first, on the same store (a cluster started with
    /// `start_on_postgres`); returns once its API answers.
    pub async fn start_peer(&self, name: &str) -> Result<Peer> {
        let config = std::fs::read_to_string(self.dir.join("coordinator.toml"))?;
        ensure!(
            config.contains("backend = \"postgres\""),
            "peers share a PostgreSQL store: start the cluster with Cluster::start_on_postgres"
        );
        let (api, link, metrics) = (free_tcp_port()?, free_udp_port()?, free_tcp_port()?);
        // The [api], [link] and [metrics] `listen` lines, in that order.
        let mut ports = [
            format!("127.0.0.1:{api}"),
            format!("127.0.0.1:{link}"),
            format!("127.0.0.1:{metrics}"),
        ]
        .into_iter();
        let peer_config: String = config
            .lines()
            .map(|l| match l.starts_with("listen = ") {
                true => format!("listen = \"{}\"\n", ports.next().unwrap_or_default()),
                false => format!("{l}\n"),
            })
            .collect();
        let file = self.dir.join(format!("{name}.toml"));
        std::fs::write(&file, peer_config)?;
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))?;
        let child = Command::new(bin_dir().join("berth-coordinator"))
            .arg("--config")
            .arg(&file)
            .env("RUST_LOG", "info,berth_coordinator=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting a peer coordinator")?;
        let peer = Peer {
            api: format!("http://127.0.0.1:{api}"),
            link: format!("127.0.0.1:{link}"),
            name: name.to_string(),
            child: Some(child),
        };
        self.eventually(
            Duration::from_secs(20),
            "the peer answers /healthz",
            || async { Ok(peer.health().await.is_ok()) },
        )
        .await
        .with_context(|| format!("peer {name}'s log:\n{}", self.read_log(name)))?;
        Ok(peer)
    }
}

impl Cluster {
    /// Restarts the agent with a link to the first coordinator and to each of `peers`
    /// (`[coordinator] addresses`), and `extra` appended to its config; returns once every
    /// coordinator has it connected. Its containers keep running across the restart.
    pub async fn link_agent_to(&mut self, peers: &[&Peer], extra: &str) -> Result<()> {
        let file = self.dir.join("agent.toml");
        let config = std::fs::read_to_string(&file)?;
        let mut addresses = Vec::new();
        let mut relinked: String = config
            .lines()
            .map(|l| match l.strip_prefix("address = ") {
                Some(first) => {
                    addresses.push(first.to_string());
                    addresses.extend(peers.iter().map(|p| format!("\"{}\"", p.link)));
                    format!("addresses = [{}]\n", addresses.join(", "))
                }
                None => format!("{l}\n"),
            })
            .collect();
        ensure!(!addresses.is_empty(), "agent.toml has no `address` line");
        relinked.push_str(extra);
        std::fs::write(&file, relinked)?;
        self.kill_agent()?;
        self.start_agent().await?;
        self.wait_agents(1).await?;
        for p in peers {
            p.wait_agents(self, 1).await?;
        }
        Ok(())
    }
}

impl Peer {
    /// `GET /healthz` of this coordinator.
    pub async fn health(&self) -> Result<serde_json::Value> {
        let r = reqwest::get(format!("{}/healthz", self.api)).await?;
        Ok(r.error_for_status()?.json().await?)
    }

    /// Waits until `n` agents are connected to this coordinator.
    pub async fn wait_agents(&self, cluster: &Cluster, n: u64) -> Result<()> {
        let what = format!("{n} agents connect to {}", self.name);
        cluster
            .eventually(Duration::from_secs(30), &what, || async {
                Ok(self.health().await?["agents_connected"].as_u64() == Some(n))
            })
            .await
    }

    /// `user` as seen through this coordinator (same token, this API).
    pub fn user(&self, user: &User) -> User {
        User {
            api: self.api.clone(),
            ..user.clone()
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
