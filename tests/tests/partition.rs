//! Partitions with test hosts, each agent in a network namespace of its own: one host's link
//! is cut (a DROP rule inside its namespace, both ways) and another host's agent frozen
//! (SIGSTOP) for `BERTH_PARTITION_SECS` (90 s by default). The coordinator marks both
//! unreachable within `heartbeat_grace` (3 s here) + 2 s; their containers keep running and
//! nothing is started anywhere else; API calls for them answer at once, saying the host is
//! unreachable; a stop and a rename made meanwhile apply when the hosts come back, and every
//! host converges. Prints the detection, reconnect and convergence times.

use anyhow::{ensure, Context, Result};
use berth_tests::{containerd, Cluster, User};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const GRACE: Duration = Duration::from_secs(3);
/// A call that takes longer than this hangs.
const AT_ONCE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread")]
async fn cut_and_frozen_hosts_keep_their_containers_and_converge_on_heal() -> Result<()> {
    let cut_for = Duration::from_secs(
        std::env::var("BERTH_PARTITION_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(90),
    );
    let c = Cluster::start_for_test_hosts().await?;
    let h1 = c.spawn_test_host("h1", 1)?;
    let h2 = c.spawn_test_host("h2", 2)?;
    c.wait_agents(3).await?;
    let ops = c.user_with_scope("ops", "compute.admin:*")?;
    let alice = c.user("alice")?;
    let key = alice.add_key("k").await?;

    // Two containers on h1, one on h2: the other hosts cordoned while each is placed.
    let all = [c.host_key.as_str(), "h1", "h2"];
    let mut placed = Vec::new();
    for (name, host) in [("a1", "h1"), ("a2", "h1"), ("b1", "h2")] {
        for h in all {
            let verb = if h == host { "uncordon" } else { "cordon" };
            ops.expect(200, "POST", &format!("/compute/hosts/{h}/{verb}"), None)
                .await?;
        }
        let body = json!({"name": name, "ssh_key_ids": [key]});
        let id = c.running_container(&alice, body).await?;
        let v = alice.container(&id).await?;
        ensure!(v["host_key"] == host, "{name} placed on {host}: {v}");
        placed.push((id, host));
    }
    for h in all {
        ops.expect(200, "POST", &format!("/compute/hosts/{h}/uncordon"), None)
            .await?;
    }
    let ns = |host: &str| -> Result<String> {
        Ok(match host {
            "h1" => h1.namespace()?.to_string(),
            "h2" => h2.namespace()?.to_string(),
            _ => c.namespace.clone(),
        })
    };
    let mut pids = Vec::new();
    for (id, host) in &placed {
        let (pid, _) = containerd::task(&ns(host)?, id)?.context("a task")?;
        pids.push(pid);
    }
    let (a1, a2, b1) = (&placed[0].0, &placed[1].0, &placed[2].0);

    // The cut and the freeze, at one moment.
    let t0 = Instant::now();
    h1.cut()?;
    h2.freeze()?;
    let own = c.host_key.clone();
    let detected = until_both(&ops, "unreachable", t0, Duration::from_secs(30), |hosts| {
        ensure!(
            hosts.get(own.as_str()).map(String::as_str) == Some("connected"),
            "the cluster's own host stays connected: {hosts:?}"
        );
        Ok(())
    })
    .await?;
    for (h, d) in ["h1 (cut)", "h2 (frozen)"].iter().zip(detected) {
        ensure!(
            d <= GRACE + Duration::from_secs(2),
            "{h} marked unreachable after {d:?}, over heartbeat_grace + 2 s"
        );
    }

    // The API answers at once for containers on unreachable hosts, and says so.
    for (id, _) in &placed {
        let (s, v) = at_once(alice.call("GET", &format!("/compute/containers/{id}"), None)).await?;
        ensure!(s == 200, "GET {id}: {s} {v}");
        let reason = v["status_reason"].as_str().unwrap_or_default();
        ensure!(
            reason.contains("unreachable"),
            "{id} says its host is unreachable: {v}"
        );
    }
    for id in [a1, b1] {
        let (s, v) =
            at_once(alice.call("POST", &format!("/compute/containers/{id}/stop"), None)).await?;
        ensure!(s == 200, "stop {id} while its host is away: {s} {v}");
    }
    let rename = json!({"name": "a2-renamed"});
    let (s, v) =
        at_once(alice.call("PATCH", &format!("/compute/containers/{a2}"), Some(rename))).await?;
    ensure!(
        s == 200 && v["name"] == "a2-renamed",
        "rename while away: {s} {v}"
    );

    // While they are away: their tasks run on, the same processes, and nothing of theirs is
    // started anywhere else.
    let until = t0 + cut_for;
    loop {
        for ((id, host), pid) in placed.iter().zip(&pids) {
            ensure!(
                containerd::task(&ns(host)?, id)? == Some((*pid, "RUNNING".to_string())),
                "{id} keeps running on {host} while its host is away"
            );
            for other in all.iter().filter(|h| *h != host) {
                ensure!(
                    !containerd::container_exists(&ns(other)?, id)?,
                    "{id} appeared on {other} too"
                );
            }
        }
        if Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_secs(5).min(until - Instant::now())).await;
    }

    // Heal: both come back, the queued changes apply, every host converges.
    let t1 = Instant::now();
    h1.heal()?;
    h2.thaw()?;
    let back = until_both(&ops, "connected", t1, Duration::from_secs(60), |_| Ok(())).await?;
    c.eventually(Duration::from_secs(60), "the hosts converge", || async {
        for (id, host) in &placed {
            let v = alice.container(id).await?;
            let task = containerd::task(&ns(host)?, id)?;
            let want_running = id == a2;
            let api = if want_running { "running" } else { "stopped" };
            let on_host = task.as_ref().is_some_and(|(_, s)| s == "RUNNING");
            if v["status"] != api || on_host != want_running || v.get("status_reason").is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    let converged = t1.elapsed();
    ensure!(
        containerd::task(&ns("h1")?, a2)? == Some((pids[1], "RUNNING".to_string())),
        "a2 ran through the partition and the heal with the same task"
    );
    ensure!(alice.container(a2).await?["name"] == "a2-renamed");
    println!(
        "partition: unreachable after {:?} (cut) and {:?} (frozen), heartbeat_grace {GRACE:?}; \
         away {cut_for:?}; connected again {:?} (cut) and {:?} (frozen) after the heal; \
         converged {converged:?} after the heal",
        detected[0], detected[1], back[0], back[1],
    );
    Ok(())
}

type Statuses = std::collections::HashMap<String, String>;

/// Polls the host list until h1 and h2 each show `want`; returns when each did, counted from
/// `since`. `check` runs on every list; fails after `limit`.
async fn until_both(
    ops: &User,
    want: &str,
    since: Instant,
    limit: Duration,
    check: impl Fn(&Statuses) -> Result<()>,
) -> Result<[Duration; 2]> {
    let mut seen = [None, None];
    while seen.iter().any(Option::is_none) {
        let hosts = host_status(ops).await?;
        ensure!(since.elapsed() < limit, "h1 and h2 never {want}: {hosts:?}");
        for (i, h) in ["h1", "h2"].iter().enumerate() {
            if seen[i].is_none() && hosts.get(*h).map(String::as_str) == Some(want) {
                seen[i] = Some(since.elapsed());
            }
        }
        check(&hosts)?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(seen.map(|d| d.unwrap_or_default()))
}

/// Each host's `status` in `GET /compute/hosts`.
async fn host_status(ops: &User) -> Result<Statuses> {
    let body = ops.expect(200, "GET", "/compute/hosts", None).await?;
    Ok(body["hosts"]
        .as_array()
        .context("hosts")?
        .iter()
        .map(|h| {
            let s = |k: &str| h[k].as_str().unwrap_or_default().to_string();
            (s("host_key"), s("status"))
        })
        .collect())
}

/// `call`, failing when it does not answer within [`AT_ONCE`].
async fn at_once(
    call: impl std::future::Future<Output = Result<(u16, Value)>>,
) -> Result<(u16, Value)> {
    tokio::time::timeout(AT_ONCE, call)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {AT_ONCE:?}: the call hangs"))?
}
