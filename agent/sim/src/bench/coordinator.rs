//! The coordinator under test: a release `berth-coordinator` in its own process, with its own
//! config (from the repository's example file), CA, store and ports in a temporary directory;
//! started, killed (SIGKILL) and restarted; its tokens minted with its own `token` command;
//! its RSS and CPU read from `/proc`.

use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running coordinator's pid, for the signal handler to take it down with the bench.
pub static CHILD: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Another child for the signal handler to kill (the hello-world).
static OTHER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub fn also_kill(pid: u32) {
    OTHER.store(pid, std::sync::atomic::Ordering::Relaxed);
}

/// Kills the coordinator (and the hello-world) when the bench is interrupted (SIGINT,
/// SIGTERM), then exits.
pub fn kill_on_signal() {
    tokio::spawn(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        for pid in [&CHILD, &OTHER].map(|p| p.load(std::sync::atomic::Ordering::Relaxed)) {
            if pid != 0 {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        std::process::exit(130);
    });
}

const EXAMPLE: &str = include_str!("../../../../coordinator/coordinator.example.toml");

pub struct Coordinator {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub config: PathBuf,
    pub api: SocketAddr,
    pub link: SocketAddr,
    pub metrics: SocketAddr,
    pub heartbeat_grace: Duration,
    child: Option<Child>,
}

fn free_tcp() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn free_udp() -> Result<SocketAddr> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?)
}

fn set(doc: &mut toml::Table, section: &str, key: &str, v: impl Into<toml::Value>) {
    if let Some(toml::Value::Table(t)) = doc.get_mut(section) {
        t.insert(key.to_string(), v.into());
    }
}

impl Coordinator {
    /// Writes the config and the cluster TLS material; `limits` raises the per-user container
    /// limit so `users` × `per_user` containers fit.
    pub fn prepare(bin: &Path, dir: &Path, max_containers: u64) -> Result<Coordinator> {
        std::fs::create_dir_all(dir)?;
        let (api, link, metrics) = (free_tcp()?, free_udp()?, free_tcp()?);
        let mut doc: toml::Table = EXAMPLE.parse().context("the example config")?;
        let d = |p: &str| dir.join(p).display().to_string();
        std::fs::write(
            dir.join("jwt.secret"),
            format!("{:064x}", rand::random::<u128>()),
        )?;
        set(&mut doc, "api", "listen", api.to_string());
        set(&mut doc, "api", "domain", "berth.localhost");
        // The bench is many clients on one address.
        set(&mut doc, "api", "max_connections", 20_000);
        set(&mut doc, "api", "max_connections_per_ip", 20_000);
        // Thousands of requests a second from a few users: the bench measures the API, not
        // the per-user limit.
        set(&mut doc, "api", "rate_limit", 0);
        set(&mut doc, "link", "listen", link.to_string());
        set(&mut doc, "link", "server_names", vec!["localhost"]);
        for (k, f) in [
            ("ca_cert", "ca.pem"),
            ("ca_key", "ca.key"),
            ("cert", "coordinator.pem"),
            ("key", "coordinator.key"),
        ] {
            set(&mut doc, "link", k, d(f));
        }
        set(&mut doc, "store", "path", d("db"));
        // `BERTH_BENCH_POSTGRES`: the store is PostgreSQL at that address instead (a new,
        // empty database; `scripts/bench-store` makes one per run).
        if let Ok(url) = std::env::var("BERTH_BENCH_POSTGRES") {
            set(&mut doc, "store", "backend", "postgres");
            set(&mut doc, "store", "url", url);
            set(&mut doc, "store", "pool_size", 32);
        }
        set(&mut doc, "auth", "secret_file", d("jwt.secret"));
        set(&mut doc, "limits", "max_containers", max_containers as i64);
        set(&mut doc, "limits", "max_total_cpu_millis", 1_000_000);
        set(&mut doc, "limits", "max_total_memory_mb", 100_000_000);
        set(&mut doc, "limits", "max_total_storage_gb", 1_000_000);
        set(&mut doc, "metrics", "listen", metrics.to_string());
        set(&mut doc, "catalog", "default_instance_type", "tiny");
        let config = dir.join("coordinator.toml");
        std::fs::write(&config, toml::to_string(&doc)?)?;
        let c = Coordinator {
            dir: dir.to_path_buf(),
            bin: bin.to_path_buf(),
            config,
            api,
            link,
            metrics,
            heartbeat_grace: Duration::from_secs(15),
            child: None,
        };
        c.cli(&["tls", "init"])?;
        Ok(c)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(self.bin.join("berth-coordinator"));
        cmd.arg("--config").arg(&self.config);
        cmd
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        let out = self.command().args(args).output()?;
        if !out.status.success() {
            bail!(
                "berth-coordinator {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// A token for `user` (a full session), or with `scopes`.
    pub fn token(&self, user: &str, scopes: &[&str]) -> Result<String> {
        let mut args = vec!["token", "--user", user, "--ttl", "24h"];
        for s in scopes {
            args.extend(["--scope", s]);
        }
        self.cli(&args)
    }

    pub fn ca(&self) -> Result<(String, String)> {
        Ok((
            std::fs::read_to_string(self.dir.join("ca.pem"))?,
            std::fs::read_to_string(self.dir.join("ca.key"))?,
        ))
    }

    /// Starts `serve` and waits for `/healthz`.
    pub async fn start(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("coordinator.log"))?;
        let child = self
            .command()
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        CHILD.store(child.id(), std::sync::atomic::Ordering::Relaxed);
        self.child = Some(child);
        let url = format!("http://{}/healthz", self.api);
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the coordinator did not come up; see {}",
            self.dir.join("coordinator.log").display()
        )
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Resident memory, MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let kb: f64 = s
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    /// User + system CPU time so far, seconds.
    pub fn cpu_s(&self) -> Option<f64> {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        let rest = &s[s.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        // Fields 14 and 15 of stat, counted after the command name (field 3 is index 0).
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.kill();
    }
}
