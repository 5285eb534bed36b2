//! End-to-end harness: starts the real `berth-coordinator` and `berth-agent` binaries, each
//! test cluster in its own temp dir, ports and containerd namespace, against the host's real
//! containerd; and talks to them the way users do (HTTP) and the way operators look (ctr,
//! cgroupfs, the data dir).
//!
//! Needs root, a running containerd and the default image tarball: `scripts/test` provides
//! all three (`BERTH_BIN_DIR`, `BERTH_TEST_IMAGE`).

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod containerd;

fn bin_dir() -> PathBuf {
    std::env::var_os("BERTH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug"))
}

pub fn image_tar() -> PathBuf {
    std::env::var_os("BERTH_TEST_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/berth-test/base.tar")
        })
}

pub fn free_tcp_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_udp_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A bridge and a /24 of its own for each test agent, so parallel tests never share one.
pub fn test_network(id: &str) -> (String, String) {
    use rand::Rng;
    let mut r = rand::rng();
    (
        format!("bt-{}", &id[..id.len().min(6)]),
        format!(
            "10.{}.{}.0/24",
            r.random_range(200..250),
            r.random_range(0..255)
        ),
    )
}

/// Removes a killed test agent's bridge and the NAT rules CNI made for its containers (their
/// `CNI DEL` never ran): each is `-A POSTROUTING -s <ip>/32 -m comment --comment "…" -j CNI-…`
/// plus the chain it jumps to. Only addresses of this test's own /24 are touched.
fn forget_network((bridge, subnet): &(String, String)) {
    let _ = Command::new("ip").args(["link", "del", bridge]).status();
    let Some(prefix) = subnet.strip_suffix("0/24") else {
        return;
    };
    let Ok(out) = Command::new("iptables")
        .args(["-t", "nat", "-S", "POSTROUTING"])
        .output()
    else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix("-A POSTROUTING -s ") else {
            continue;
        };
        let Some((source, rest)) = rest.split_once(' ') else {
            continue;
        };
        let comment = rest
            .strip_prefix("-m comment --comment \"")
            .and_then(|r| r.split_once("\" -j "));
        let Some((comment, chain)) = comment else {
            continue;
        };
        if !source.starts_with(prefix) || !chain.starts_with("CNI-") {
            continue;
        }
        let comment = comment.replace("\\\"", "\"");
        let nat = |args: &[&str]| {
            let _ = Command::new("iptables")
                .args(["-t", "nat"])
                .args(args)
                .status();
        };
        nat(&[
            "-D",
            "POSTROUTING",
            "-s",
            source,
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            chain,
        ]);
        nat(&["-F", chain]);
        nat(&["-X", chain]);
    }
}

fn suffix() -> String {
    use rand::Rng;
    let mut r = rand::rng();
    (0..6)
        .map(|_| (b'a' + r.random_range(0..26)) as char)
        .collect()
}

pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One coordinator and one agent, started from the real binaries.
pub struct Cluster {
    pub dir: PathBuf,
    pub namespace: String,
    pub api: String,
    pub host_key: String,
    /// Port of the agent's SSH server on 127.0.0.1.
    pub ssh_port: u16,
    /// The agent's HTTP (as if 80) and HTTPS (as if 443) ingress gateway on 127.0.0.1.
    pub http_port: u16,
    pub https_port: u16,
    /// Prometheus `/metrics` of the coordinator and of the agent.
    pub coordinator_metrics: u16,
    pub agent_metrics: u16,
    coordinator: Option<Child>,
    agent: Option<Child>,
    http: reqwest::Client,
    /// The agent's bridge and subnet, removed on drop.
    network: (String, String),
}

impl Cluster {
    pub async fn start() -> Result<Cluster> {
        let id = suffix();
        let dir = std::env::temp_dir().join(format!("berth-e2e-{id}"));
        std::fs::create_dir_all(&dir)?;
        let namespace = format!("berth-e2e-{id}");
        let api_port = free_tcp_port()?;
        let link_port = free_udp_port()?;
        let ssh_port = free_tcp_port()?;
        let (http_port, https_port) = (free_tcp_port()?, free_tcp_port()?);
        let (coord_metrics, agent_metrics) = (free_tcp_port()?, free_tcp_port()?);
        let (bridge, subnet) = test_network(&id);
        let d = dir.display();
        std::fs::write(
            dir.join("coordinator.toml"),
            format!(
                r#"
[api]
listen = "127.0.0.1:{api_port}"
domain = "berth.test"
stop_wait = "20s"
[link]
listen = "127.0.0.1:{link_port}"
ca_cert = "{d}/tls/ca.pem"
ca_key = "{d}/tls/ca.key"
cert = "{d}/tls/coordinator.pem"
key = "{d}/tls/coordinator.key"
server_names = ["localhost"]
heartbeat_interval = "1s"
heartbeat_grace = "3s"
[store]
path = "{d}/coordinator-db"
[metrics]
listen = "127.0.0.1:{coord_metrics}"
[auth]
secret = "e2e-secret-e2e-secret-e2e-secret-e2e"
leeway_secs = 0
[catalog]
default_instance_type = "tiny"
instance_types = [
  {{ name = "nano", arch = "arm64", cpu_cores = 0.5 }},
  {{ name = "tiny", arch = "amd64", cpu_cores = 1.0 }},
  {{ name = "small", arch = "amd64", cpu_cores = 2.0 }},
]
"#
            ),
        )?;
        let host_key = "e2e-host".to_string();
        std::fs::write(
            dir.join("agent.toml"),
            format!(
                r#"
host_key = "{host_key}"
region = "test"
data_dir = "{d}/agent"
stop_grace = "5s"
reconcile_interval = "5s"
[ssh]
listen = "127.0.0.1:{ssh_port}"
public_address = "127.0.0.1"
[network]
bridge = "{bridge}"
subnet = "{subnet}"
netns_dir = "{d}/netns"
[metrics]
listen = "127.0.0.1:{agent_metrics}"
[ingress]
domain = "berth.test"
http_listen = "127.0.0.1:{http_port}"
https_listen = "127.0.0.1:{https_port}"
tls_cert = "{d}/tls/ingress.pem"
tls_key = "{d}/tls/ingress.key"
[containerd]
namespace = "{namespace}"
[coordinator]
address = "127.0.0.1:{link_port}"
server_name = "localhost"
ca_cert = "{d}/tls/ca.pem"
cert = "{d}/tls/agent.pem"
key = "{d}/tls/agent.key"
"#
            ),
        )?;
        let mut c = Cluster {
            dir,
            namespace,
            api: format!("http://127.0.0.1:{api_port}"),
            host_key,
            ssh_port,
            http_port,
            https_port,
            coordinator_metrics: coord_metrics,
            agent_metrics,
            coordinator: None,
            agent: None,
            http: reqwest::Client::new(),
            network: (bridge, subnet),
        };
        c.coordinator_cmd(&["tls", "init"])?;
        let tls = c.dir.join("tls");
        c.issue_agent_certificate(&c.host_key, &tls)?;
        c.coordinator_cmd(&["tls", "issue-ingress", "--out", &tls.display().to_string()])?;
        run(Command::new("ctr")
            .args([
                "-n",
                &c.namespace,
                "images",
                "import",
                "--snapshotter",
                "overlayfs",
            ])
            .arg(image_tar()))?;
        c.start_coordinator().await?;
        c.start_agent().await?;
        c.wait_agents(1).await?;
        Ok(c)
    }

    pub fn coordinator_cmd(&self, args: &[&str]) -> Result<String> {
        run(Command::new(bin_dir().join("berth-coordinator"))
            .arg("--config")
            .arg(self.dir.join("coordinator.toml"))
            .args(args))
    }

    fn spawn(&self, name: &str, config: &str) -> Result<Child> {
        self.spawn_logged(name, config, name)
    }

    fn spawn_logged(&self, name: &str, config: &str, log: &str) -> Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{log}.log")))?;
        Ok(Command::new(bin_dir().join(name))
            .arg("--config")
            .arg(self.dir.join(config))
            .env("RUST_LOG", "info,berth_agent=debug,berth_coordinator=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?)
    }

    pub async fn start_coordinator(&mut self) -> Result<()> {
        self.coordinator = Some(self.spawn("berth-coordinator", "coordinator.toml")?);
        self.eventually(
            Duration::from_secs(20),
            "the coordinator answers /healthz",
            || async {
                Ok(self
                    .http
                    .get(format!("{}/healthz", self.api))
                    .send()
                    .await?
                    .status()
                    .is_success())
            },
        )
        .await
    }

    pub async fn start_agent(&mut self) -> Result<()> {
        self.agent = Some(self.spawn("berth-agent", "agent.toml")?);
        Ok(())
    }

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
        let d = self.dir.display();
        let t = tls_dir.display();
        let link = self.link_addr()?;
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
address = "{link}"
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
            child: self.spawn_logged("berth-agent", &format!("{name}.toml"), name)?,
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

    fn link_addr(&self) -> Result<String> {
        let cfg = std::fs::read_to_string(self.dir.join("coordinator.toml"))?;
        let port = cfg
            .lines()
            .filter(|l| l.starts_with("listen = \"127.0.0.1:"))
            .nth(1)
            .and_then(|l| {
                l.trim_end_matches('"')
                    .rsplit(':')
                    .next()
                    .map(str::to_string)
            })
            .context("link port in coordinator.toml")?;
        Ok(format!("127.0.0.1:{port}"))
    }

    /// SIGTERM to the coordinator; returns its exit status once it has shut down.
    pub fn terminate_coordinator(&mut self) -> Result<std::process::ExitStatus> {
        let mut c = self.coordinator.take().context("no coordinator running")?;
        run(Command::new("kill").args(["-TERM", &c.id().to_string()]))?;
        Ok(c.wait()?)
    }

    pub fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn kill_agent(&mut self) -> Result<()> {
        if let Some(mut a) = self.agent.take() {
            a.kill()?; // SIGKILL
            a.wait()?;
        }
        Ok(())
    }

    pub fn kill_coordinator(&mut self) -> Result<()> {
        if let Some(mut c) = self.coordinator.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    pub async fn health(&self) -> Result<Value> {
        Ok(self
            .http
            .get(format!("{}/healthz", self.api))
            .send()
            .await?
            .json()
            .await?)
    }

    pub async fn wait_agents(&self, n: u64) -> Result<()> {
        self.eventually(Duration::from_secs(30), "the agent connects", || async {
            Ok(self.health().await?["agents_connected"].as_u64() == Some(n))
        })
        .await
    }

    pub fn token(&self, user: &str) -> Result<String> {
        Ok(self
            .coordinator_cmd(&["token", "--user", user, "--ttl", "1h"])?
            .trim()
            .to_string())
    }

    pub fn user(&self, name: &str) -> Result<User> {
        Ok(User {
            api: self.api.clone(),
            token: self.token(name)?,
            http: self.http.clone(),
        })
    }

    pub fn agent_data(&self) -> PathBuf {
        self.dir.join("agent")
    }

    /// Creates a container for `user` with `body` (POST /compute/containers, 201) and waits
    /// until it runs; returns its id.
    pub async fn running_container(&self, user: &User, body: Value) -> Result<String> {
        let (s, created) = user.call("POST", "/compute/containers", Some(body)).await?;
        if s != 201 {
            bail!("create: {s} {created}");
        }
        let id = created["id"].as_str().context("id")?.to_string();
        self.eventually(Duration::from_secs(60), "the container runs", || async {
            Ok(user.container(&id).await?["status"] == "running")
        })
        .await?;
        Ok(id)
    }

    /// Polls `check` every 200 ms until it is true; fails with `what` after `limit`.
    pub async fn eventually<F, Fut>(&self, limit: Duration, what: &str, mut check: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < limit {
            match check().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "timed out after {limit:?} waiting until {what} (last error: {last:?})\n--- coordinator log tail ---\n{}\n--- agent log tail ---\n{}",
            self.log_tail("berth-coordinator"),
            self.log_tail("berth-agent")
        )
    }

    pub fn log_tail(&self, name: &str) -> String {
        let s = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.kill_agent();
        let _ = self.kill_coordinator();
        containerd::wipe_namespace(&self.namespace);
        // Containers' volumes are loop-mounted filesystems under the test dir.
        containerd::unmount_under(&self.dir);
        forget_network(&self.network);
        if std::env::var_os("BERTH_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// An agent started in addition to the cluster's own; killed and cleaned up on drop.
pub struct ExtraAgent {
    child: Child,
    namespace: String,
    network: (String, String),
}

impl Drop for ExtraAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        containerd::wipe_namespace(&self.namespace);
        forget_network(&self.network);
    }
}

/// A user of the public API, with a token of their own.
#[derive(Clone)]
pub struct User {
    pub api: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl User {
    pub fn with_token(&self, token: &str) -> User {
        User {
            token: token.to_string(),
            ..self.clone()
        }
    }

    /// Sends a request; returns the status and the JSON body (`Null` when there is none).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self.http.request(m, format!("{}{path}", self.api));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("body: {text}"))?
        };
        Ok((status, json))
    }

    pub async fn raw(&self, method: &str, path: &str, body: &'static str) -> Result<(u16, Value)> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let resp = self
            .http
            .request(m, format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Registers a fresh ed25519 key made by ssh-keygen; returns its id.
    pub async fn add_key(&self, name: &str) -> Result<u64> {
        let dir = std::env::temp_dir().join(format!("berth-key-{}", suffix()));
        let r = self.add_key_in(name, &dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(r?.0)
    }

    /// Like [`User::add_key`], keeping the private key: returns the id and its path in `dir`.
    pub async fn add_key_in(&self, name: &str, dir: &Path) -> Result<(u64, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("id_{name}_{}", suffix()));
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path))?;
        let public = std::fs::read_to_string(path.with_extension("pub"))?;
        let (s, body) = self
            .call(
                "POST",
                "/compute/ssh-keys",
                Some(serde_json::json!({"name": name, "public_key": public.trim()})),
            )
            .await?;
        if s != 201 {
            bail!("adding a key: {s} {body}");
        }
        Ok((body["id"].as_u64().context("key id")?, path))
    }

    pub async fn container(&self, id: &str) -> Result<Value> {
        let (s, body) = self
            .call("GET", &format!("/compute/containers/{id}"), None)
            .await?;
        if s != 200 {
            bail!("GET container {id}: {s} {body}");
        }
        Ok(body)
    }
}
