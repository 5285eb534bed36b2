//! `berth-fleet-bench`: one release `berth-coordinator` and N simulated hosts
//! ([`berth_sim::Fleet`]) on this machine, driven through the public API; prints a table and
//! writes the figures to `target/bench/fleet.json`. A benchmark, not a test: nothing here
//! passes or fails on a number. `scripts/bench-fleet` builds and runs it.
//!
//! Settings come from the environment: `BERTH_BENCH_HOSTS` (1000), `_CONTAINERS` (10000),
//! `_USERS` (1000), `_CONCURRENCY` (64), `_DURATION` (seconds per read run, 8), `_WATCHERS`
//! (1000), `_DELAY_MS` (simulated apply → report, 50), `_PHASES` (all of
//! `connect rest create read ws down reconnect`), `_BIN` (target/release), `_OUT`.

mod api;
mod coordinator;
mod phases;
mod watch;
mod wrk;

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;

pub struct Settings {
    pub hosts: usize,
    pub containers: usize,
    pub users: usize,
    pub concurrency: usize,
    pub duration: u64,
    pub watchers: usize,
    pub delay_ms: u64,
    pub phases: Vec<String>,
    pub bin: PathBuf,
    pub out: PathBuf,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(format!("BERTH_BENCH_{name}"))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Settings {
        let all = "connect rest create read ws down reconnect";
        Settings {
            hosts: env("HOSTS", 1000),
            containers: env("CONTAINERS", 10_000),
            users: env("USERS", 1000).max(1),
            concurrency: env("CONCURRENCY", 64).max(1),
            duration: env("DURATION", 8),
            watchers: env("WATCHERS", 1000),
            delay_ms: env("DELAY_MS", 50),
            phases: env("PHASES", all.to_string())
                .split_whitespace()
                .map(String::from)
                .collect(),
            bin: env("BIN", PathBuf::from("target/release")),
            out: env("OUT", PathBuf::from("target/bench/fleet.json")),
        }
    }

    pub fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

/// Every figure of a run; `None` (null) where it was not measured.
#[derive(Debug, Default, Serialize)]
pub struct Figures {
    pub hosts: usize,
    pub connect_s: Option<f64>,
    pub reconnect_s: Option<f64>,
    pub rss_mib_rest: Option<f64>,
    pub cpu_pct_rest: Option<f64>,
    pub creates_per_s: Option<f64>,
    pub create_running_p50_ms: Option<f64>,
    pub create_running_p99_ms: Option<f64>,
    pub dispatch_p50_ms: Option<f64>,
    pub dispatch_p99_ms: Option<f64>,
    pub read_req_s: Option<f64>,
    pub read_get_req_s: Option<f64>,
    pub hello_req_s: Option<f64>,
    pub read_ratio: Option<f64>,
    pub read_get_ratio: Option<f64>,
    pub read_p50_ms: Option<f64>,
    pub read_p99_ms: Option<f64>,
    pub hello_p99_ms: Option<f64>,
    pub ws_watchers: Option<usize>,
    pub ws_fanout_p50_ms: Option<f64>,
    pub ws_fanout_p99_ms: Option<f64>,
    pub node_down_hosts: Option<usize>,
    pub node_down_s: Option<f64>,
    pub heartbeat_grace_s: Option<f64>,
    pub stored_containers: Option<usize>,
    pub rss_mib_loaded: Option<f64>,
    pub rss_mib_end: Option<f64>,
}

fn row(name: &str, v: Option<f64>, unit: &str) {
    match v {
        Some(v) => println!("  {name:<28} {v:>12.2} {unit}"),
        None => println!("  {name:<28} {:>12} {unit}", "-"),
    }
}

impl Figures {
    fn print(&self) {
        println!("fleet bench: {} simulated hosts", self.hosts);
        row("connect storm", self.connect_s, "s");
        row("reconnect after SIGKILL", self.reconnect_s, "s");
        row("RSS at rest", self.rss_mib_rest, "MiB");
        row("CPU at rest", self.cpu_pct_rest, "% of a core");
        row("creates", self.creates_per_s, "/s");
        row("create -> running p50", self.create_running_p50_ms, "ms");
        row("create -> running p99", self.create_running_p99_ms, "ms");
        row("dispatch p50", self.dispatch_p50_ms, "ms");
        row("dispatch p99", self.dispatch_p99_ms, "ms");
        row(
            "stored containers",
            self.stored_containers.map(|n| n as f64),
            "",
        );
        row("GET /compute/containers", self.read_req_s, "req/s");
        row("GET /compute/containers/:id", self.read_get_req_s, "req/s");
        row("warp hello-world", self.hello_req_s, "req/s");
        row("list / hello", self.read_ratio, "");
        row("get / hello", self.read_get_ratio, "");
        row("read p50", self.read_p50_ms, "ms");
        row("read p99", self.read_p99_ms, "ms");
        row("hello p99", self.hello_p99_ms, "ms");
        row("ws watchers", self.ws_watchers.map(|n| n as f64), "");
        row("ws fan-out p50", self.ws_fanout_p50_ms, "ms");
        row("ws fan-out p99", self.ws_fanout_p99_ms, "ms");
        row("silenced hosts", self.node_down_hosts.map(|n| n as f64), "");
        row("node-down", self.node_down_s, "s");
        row("heartbeat grace", self.heartbeat_grace_s, "s");
        row("RSS loaded", self.rss_mib_loaded, "MiB");
        row("RSS at the end", self.rss_mib_end, "MiB");
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.get(1).map(String::as_str) == Some("hello") {
        let addr = args.get(2).context("hello ADDR")?.parse()?;
        rt.block_on(wrk::hello(addr));
        return Ok(());
    }
    let s = Settings::from_env();
    let figures = rt.block_on(phases::run(&s))?;
    figures.print();
    if let Some(dir) = s.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&s.out, serde_json::to_string_pretty(&figures)?)?;
    println!("figures written to {}", s.out.display());
    Ok(())
}
