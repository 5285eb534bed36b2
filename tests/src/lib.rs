//! End-to-end harness: starts the real `berth-coordinator` and `berth-agent` binaries, each
//! test cluster in its own temp dir, ports and containerd namespace, against the host's real
//! containerd; and talks to them the way users do (HTTP) and the way operators look (ctr,
//! cgroupfs, the data dir).
//!
//! Needs root, a running containerd and the default image tarball: `scripts/test` provides
//! all three (`BERTH_BIN_DIR`, `BERTH_TEST_IMAGE`).
//!
//! [`Setup`] is the opening most suites share; [`User`] drives the public API (calls, expected
//! statuses, container creation, keys, WebSockets); [`ws`] reads those WebSockets;
//! [`containerd`] looks behind Berth's back.

use anyhow::{bail, Context, Result};
use net::{forget_network, free_udp_port};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod agents;
pub mod containerd;
mod hosts;
mod leftovers;
mod net;
mod peer;
pub mod postgres;
pub mod registry;
mod setup;
mod ssh;
mod user;
pub mod ws;

pub use agents::ExtraAgent;
pub use hosts::TestHost;
pub use net::{free_tcp_port, test_network};
pub use peer::Peer;
pub use setup::Setup;
pub use ssh::Ssh;
pub use user::User;

/// A binary of this workspace (`BERTH_BIN_DIR`, else `target/debug`).
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

fn bin_dir() -> PathBuf {
    std::env::var_os("BERTH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug"))
}

/// The static SFTP server agents mount into containers (`BERTH_SFTP_SERVER`, else where
/// `build_sftp_server` in scripts/lib.sh puts it).
pub fn sftp_server() -> PathBuf {
    std::env::var_os("BERTH_SFTP_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/static/berth-sftp-server")
        })
}

/// The built web console (`build_console` in scripts/lib.sh), served by every test
/// coordinator when it is there.
pub fn console_dir() -> PathBuf {
    std::env::var_os("BERTH_CONSOLE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/console/dist")
        })
}

fn console_section() -> String {
    let dir = console_dir();
    match dir.join("index.html").is_file() {
        true => format!("[console]\ndir = \"{}\"", dir.display()),
        false => String::new(),
    }
}

pub fn image_tar() -> PathBuf {
    std::env::var_os("BERTH_TEST_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/berth-test/base.tar")
        })
}

/// Where Debian's `runsc` (gVisor) is; agents offer gVisor when it is there.
pub const RUNSC: &str = "/usr/bin/runsc";

/// Whether gVisor's `runsc` is installed (`scripts/test` installs it).
pub fn runsc_installed() -> bool {
    Path::new(RUNSC).is_file()
}

fn suffix() -> String {
    use rand::Rng;
    let mut r = rand::rng();
    (0..6)
        .map(|_| (b'a' + r.random_range(0..26)) as char)
        .collect()
}

/// `to` becomes a copy of directory `from`.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(to);
    run(Command::new("cp").arg("-a").arg(from).arg(to))?;
    Ok(())
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

/// The shared test server `scripts/test` starts.
fn test_postgres() -> Result<String> {
    std::env::var("BERTH_TEST_POSTGRES")
        .context("a PostgreSQL store needs BERTH_TEST_POSTGRES (scripts/test sets it)")
}

/// The coordinator's `[store]`: sled in the test's directory, or a new database on the
/// PostgreSQL server at `admin` (`BERTH_TEST_STORE=postgres` runs any suite that way;
/// `scripts/test` runs the core suites so too).
fn store_section(dir: &Path, id: &str, admin: Option<&str>) -> Result<String> {
    let Some(admin) = admin else {
        return Ok(format!(
            "[store]\npath = \"{}/coordinator-db\"",
            dir.display()
        ));
    };
    let db = format!("berth_e2e_{id}");
    run(Command::new("psql")
        .arg(admin)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE {db}")))?;
    // key=value form: the last `dbname` wins.
    let url = format!("{admin} dbname={db}");
    Ok(format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\npool_size = 8\ntimeout = \"3s\""
    ))
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
    /// `ip:port` of the coordinator's QUIC endpoint.
    link: String,
    /// The bridge test hosts in network namespaces reach the coordinator through.
    hosts_net: Option<hosts::HostsNet>,
}

impl Cluster {
    pub async fn start() -> Result<Cluster> {
        let admin = match std::env::var("BERTH_TEST_STORE").as_deref() {
            Ok("postgres") => Some(test_postgres()?),
            _ => None,
        };
        Cluster::start_with(admin, None).await
    }

    /// A cluster whose coordinator's QUIC endpoint listens on a bridge of its own, where
    /// test hosts in network namespaces ([`Cluster::spawn_test_host`]) reach it; the
    /// cluster's own agent dials that address too.
    pub async fn start_for_test_hosts() -> Result<Cluster> {
        Cluster::start_with(None, Some(hosts::HostsNet::create(&suffix())?)).await
    }

    /// A cluster whose coordinator keeps its records in PostgreSQL (a new database on
    /// `BERTH_TEST_POSTGRES`), so that peers (`start_peer`) can share them.
    pub async fn start_on_postgres() -> Result<Cluster> {
        Cluster::start_with(Some(test_postgres()?), None).await
    }

    /// Like `start_on_postgres`, on the server at `admin` (a test's own, `Postgres`).
    pub async fn start_on_postgres_at(admin: &str) -> Result<Cluster> {
        Cluster::start_with(Some(admin.to_string()), None).await
    }

    async fn start_with(
        postgres: Option<String>,
        hosts_net: Option<hosts::HostsNet>,
    ) -> Result<Cluster> {
        let id = suffix();
        let dir = std::env::temp_dir().join(format!("berth-e2e-{id}"));
        std::fs::create_dir_all(&dir)?;
        let namespace = format!("berth-e2e-{id}");
        let api_port = free_tcp_port()?;
        let link_port = free_udp_port()?;
        let link_ip = hosts_net
            .as_ref()
            .map_or("127.0.0.1".into(), |n| n.gateway());
        let link = format!("{link_ip}:{link_port}");
        let ssh_port = free_tcp_port()?;
        let (http_port, https_port) = (free_tcp_port()?, free_tcp_port()?);
        let (coord_metrics, agent_metrics) = (free_tcp_port()?, free_tcp_port()?);
        let (bridge, subnet) = test_network(&id);
        let d = dir.display();
        let store = store_section(&dir, &id, postgres.as_deref())?;
        let console = console_section();
        std::fs::write(
            dir.join("coordinator.toml"),
            format!(
                r#"
[api]
listen = "127.0.0.1:{api_port}"
domain = "berth.test"
stop_wait = "20s"
# The limiter is on, well above what one test's polling asks (its own test lowers it).
rate_limit = 200
rate_burst = 1000
[link]
listen = "{link}"
ca_cert = "{d}/tls/ca.pem"
ca_key = "{d}/tls/ca.key"
cert = "{d}/tls/coordinator.pem"
key = "{d}/tls/coordinator.key"
server_names = ["localhost"]
heartbeat_interval = "1s"
heartbeat_grace = "3s"
{store}
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
{console}
"#
            ),
        )?;
        let host_key = "e2e-host".to_string();
        let sftp = sftp_server().display().to_string();
        let runtimes = if runsc_installed() {
            format!("[runtimes]\ngvisor = \"{RUNSC}\"")
        } else {
            String::new()
        };
        std::fs::write(
            dir.join("agent.toml"),
            format!(
                r#"
host_key = "{host_key}"
region = "test"
data_dir = "{d}/agent"
stop_grace = "5s"
reconcile_interval = "5s"
orphan_grace = "3s"
[ssh]
listen = "127.0.0.1:{ssh_port}"
public_address = "127.0.0.1"
banner_timeout = "3s"
login_grace = "15s"
sftp_server = "{sftp}"
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
{runtimes}
[containerd]
namespace = "{namespace}"
[coordinator]
address = "{link}"
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
            link,
            hosts_net,
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
        self.spawn_in(None, name, config, log)
    }

    /// Starts binary `name` with `config`, its stderr appended to `<log>.log`; inside the
    /// network namespace at `netns` when given (`nsenter --net`, which then executes it: the
    /// child is the program itself, and it shares the host's mounts).
    fn spawn_in(&self, netns: Option<&Path>, name: &str, config: &str, log: &str) -> Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{log}.log")))?;
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display()))
                    .arg(bin_dir().join(name));
                c
            }
            None => Command::new(bin_dir().join(name)),
        };
        Ok(cmd
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
            || async { Ok(self.healthz().await?.status().is_success()) },
        )
        .await
    }

    pub async fn start_agent(&mut self) -> Result<()> {
        self.agent = Some(self.spawn("berth-agent", "agent.toml")?);
        Ok(())
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

    /// `GET /healthz`, as it answers.
    async fn healthz(&self) -> Result<reqwest::Response> {
        let url = format!("{}/healthz", self.api);
        Ok(self.http.get(url).send().await?)
    }

    pub async fn health(&self) -> Result<Value> {
        Ok(self.healthz().await?.json().await?)
    }

    pub async fn wait_agents(&self, n: u64) -> Result<()> {
        self.eventually(Duration::from_secs(30), "the agent connects", || async {
            Ok(self.health().await?["agents_connected"].as_u64() == Some(n))
        })
        .await
    }

    /// Waits until the cluster's agent (this process of it) says its link is up: after an
    /// agent restart the coordinator may still count the old connection.
    pub async fn wait_agent_linked(&self) -> Result<()> {
        let url = format!("http://127.0.0.1:{}/metrics", self.agent_metrics);
        self.eventually(Duration::from_secs(30), "the agent links", || async {
            let text = self.http.get(&url).send().await?.text().await?;
            Ok(text.lines().any(|l| l == "berth_agent_link_connected 1"))
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
        Ok(self.user_with_token(self.token(name)?))
    }

    /// The user `name` with a token of only `scope` (`token --user <name> --scope <scope>`).
    pub fn user_with_scope(&self, name: &str, scope: &str) -> Result<User> {
        let token = self.coordinator_cmd(&["token", "--user", name, "--scope", scope])?;
        Ok(self.user_with_token(token.trim().to_string()))
    }

    fn user_with_token(&self, token: String) -> User {
        User {
            api: self.api.clone(),
            token,
            http: self.http.clone(),
        }
    }

    /// Copies the agent's state (its sled database) to `to`; with the agent stopped.
    pub fn backup_agent_state(&self, to: &Path) -> Result<()> {
        copy_dir(&self.agent_data().join("state"), to)
    }

    /// Puts the agent's state back from a backup, as an operator restoring a host would;
    /// with the agent stopped.
    pub fn restore_agent_state(&self, from: &Path) -> Result<()> {
        copy_dir(from, &self.agent_data().join("state"))
    }

    pub fn agent_data(&self) -> PathBuf {
        self.dir.join("agent")
    }

    /// Creates a container for `user` with `body` (POST /compute/containers, 201) and waits
    /// until it runs; returns its id.
    pub async fn running_container(&self, user: &User, body: Value) -> Result<String> {
        let (id, _) = user.create_container(body).await?;
        self.wait_running(user, &id, "the container runs").await?;
        Ok(id)
    }

    /// Waits (up to 60 s) until `user` sees container `id` running; `what` names the wait.
    pub async fn wait_running(&self, user: &User, id: &str, what: &str) -> Result<()> {
        self.eventually(Duration::from_secs(60), what, || async {
            Ok(user.container(id).await?["status"] == "running")
        })
        .await
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
        // A backtrace's frames (indented) would push the error itself out of the tail.
        let lines: Vec<&str> = s.lines().filter(|l| !l.starts_with("  ")).collect();
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
        drop(self.hosts_net.take());
        if std::env::var_os("BERTH_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
