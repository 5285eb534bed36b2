//! The coordinator with a fleet of simulated hosts (`berth-sim`: real QUIC + mutual TLS on the
//! agent's own link code, no containerd): placement spreads containers over the fleet, the
//! hosts report them running, and a silenced group is marked unreachable — its containers
//! stay where they are — then comes back. Keeps the simulator of `scripts/bench-fleet`
//! working in CI.

mod common;

use anyhow::{Context, Result};
use berth_shared::protocol::Resources;
use berth_sim::{Fleet, FleetConfig};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const HOSTS: usize = 50;

async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        anyhow::ensure!(Instant::now() < until, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn hosts(c: &common::Coordinator, admin: &str) -> Result<HashMap<String, String>> {
    let (s, v) = c.call(admin, "GET", "/compute/hosts", &Value::Null).await?;
    anyhow::ensure!(s == 200, "GET /compute/hosts: {s} {v}");
    Ok(v["hosts"]
        .as_array()
        .context("hosts")?
        .iter()
        .filter_map(|h| Some((h["host_key"].as_str()?.into(), h["status"].as_str()?.into())))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_simulated_hosts_spread_containers_and_a_silenced_group_goes_unreachable(
) -> Result<()> {
    let limits = "[limits]\nmax_containers = 60\nmax_total_cpu_millis = 1000000\nmax_total_memory_mb = 1000000\nmax_total_storage_gb = 100000\n";
    let c = common::start_with(
        "",
        "heartbeat_interval = \"1s\"\nheartbeat_grace = \"3s\"",
        limits,
        |_| Ok("secret = \"a-test-secret-of-at-least-32-bytes!!\"".into()),
    )
    .await?;
    let ca = std::fs::read_to_string(c.dir.join("ca.pem"))?;
    let ca_key = std::fs::read_to_string(c.dir.join("ca.key"))?;
    let mut cfg = FleetConfig::new(&c.link.to_string(), ca, ca_key, HOSTS);
    cfg.delay = Duration::from_millis(20);
    // Room for two 1-core containers per host: spreading is the only way 50 fit.
    cfg.capacity = Resources {
        cpu_millis: 2000,
        memory_mb: 4096,
        disk_gb: 100,
    };
    let fleet = Fleet::start(&cfg)?;
    let admin = c.token("ops", Some(&[("compute.admin", "*")]))?;
    eventually("all hosts connected", Duration::from_secs(60), async || {
        let h = hosts(&c, &admin).await?;
        Ok((h.values().filter(|s| *s == "connected").count() == HOSTS).then_some(()))
    })
    .await?;

    // 25 amd64 (tiny) and 25 arm64 (nano) containers over 25 hosts of each.
    let user = c.token("alice", None)?;
    let key = json!({"name": "k", "public_key": common::public_key(7)});
    let (s, key) = c.call(&user, "POST", "/compute/ssh-keys", &key).await?;
    anyhow::ensure!(s == 201, "key: {s} {key}");
    let mut placed: HashMap<String, (String, &str)> = HashMap::new();
    for n in 0..HOSTS {
        let itype = if n % 2 == 0 { "tiny" } else { "nano" };
        let body =
            json!({"name": format!("c{n}"), "instance_type": itype, "ssh_key_ids": [key["id"]]});
        let (s, v) = c.call(&user, "POST", "/compute/containers", &body).await?;
        anyhow::ensure!(s == 201, "create {n}: {s} {v}");
        let host = v["host_key"]
            .as_str()
            .context("placed at once")?
            .to_string();
        placed.insert(v["id"].as_str().context("id")?.into(), (host, itype));
    }
    let distinct: HashSet<&String> = placed.values().map(|(h, _)| h).collect();
    assert_eq!(distinct.len(), HOSTS, "one container per host: {placed:?}");
    for (id, (host, itype)) in &placed {
        let n: usize = host.trim_start_matches("sim-").parse()?;
        let arch_ok = n.is_multiple_of(2) == (*itype == "tiny");
        assert!(arch_ok, "{id} ({itype}) on {host}: wrong arch");
    }
    eventually("all running", Duration::from_secs(30), async || {
        let (_, list) = c
            .call(&user, "GET", "/compute/containers", &Value::Null)
            .await?;
        let running = list["containers"]
            .as_array()
            .context("list")?
            .iter()
            .filter(|v| v["status"] == "running")
            .count();
        Ok((running == HOSTS).then_some(()))
    })
    .await?;
    let held: usize = fleet.held();
    assert_eq!(held, HOSTS, "the hosts hold what was placed");

    // A fifth of the fleet stops answering (sockets kept): unreachable, containers stay put.
    let silenced: Vec<String> = fleet.hosts[..10]
        .iter()
        .map(|h| h.host_key().to_string())
        .collect();
    fleet.silence(0..10, true);
    eventually(
        "silenced hosts unreachable",
        Duration::from_secs(20),
        async || {
            let h = hosts(&c, &admin).await?;
            let down = silenced.iter().all(|k| h[k] == "unreachable");
            Ok(down.then_some(h))
        },
    )
    .await
    .map(|h| {
        let up = h.values().filter(|s| *s == "connected").count();
        assert_eq!(up, HOSTS - 10, "only the silenced hosts are down: {h:?}");
    })?;
    let (_, list) = c
        .call(&user, "GET", "/compute/containers", &Value::Null)
        .await?;
    for v in list["containers"].as_array().context("list")? {
        let id = v["id"].as_str().context("id")?;
        assert_eq!(
            v["host_key"].as_str(),
            Some(placed[id].0.as_str()),
            "{id} moved"
        );
    }

    fleet.silence(0..10, false);
    eventually("the fleet back", Duration::from_secs(60), async || {
        let h = hosts(&c, &admin).await?;
        Ok((h.values().filter(|s| *s == "connected").count() == HOSTS).then_some(()))
    })
    .await?;
    assert_eq!(
        fleet.held(),
        HOSTS,
        "nothing lost or doubled across the silence"
    );
    Ok(())
}
