//! The bench's phases in order, each adding its figures: connect storm, rest, creates,
//! reads beside a hello-world, `/compute/ws` fan-out, node-down, reconnect storm.

use crate::api::{Api, User};
use crate::coordinator::Coordinator;
use crate::watch::{quantile, watch, Seen};
use crate::wrk::{spawn_hello, wrk};
use crate::{Figures, Settings};
use anyhow::{bail, Result};
use berth_sim::{Fleet, FleetConfig};
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn secs(d: Duration) -> Option<f64> {
    Some((d.as_secs_f64() * 100.0).round() / 100.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run(s: &Settings) -> Result<Figures> {
    crate::coordinator::kill_on_signal();
    let dir = std::env::temp_dir().join(format!("berth-fleet-bench-{}", std::process::id()));
    let per_user = s.containers.div_ceil(s.users) as u64 + 3;
    let mut coord = Coordinator::prepare(&s.bin, &dir, per_user)?;
    coord.start().await?;
    let result = phases(s, &mut coord).await;
    coord.kill();
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("coordinator files kept in {}", dir.display());
    }
    result
}

async fn phases(s: &Settings, coord: &mut Coordinator) -> Result<Figures> {
    let api = Api::new(coord)?;
    let admin = coord.token("bench-admin", &["compute.admin:*"])?;
    let mut f = Figures {
        hosts: s.hosts,
        heartbeat_grace_s: secs(coord.heartbeat_grace),
        ..Figures::default()
    };
    let (ca, ca_key) = coord.ca()?;
    let mut cfg = FleetConfig::new(&coord.link.to_string(), ca, ca_key, s.hosts);
    cfg.delay = Duration::from_millis(s.delay_ms);
    eprintln!("issuing {} host certificates", s.hosts);
    let fleet = Fleet::start(&cfg)?;
    let began = Instant::now();
    wait_connected(&api, s.hosts as u64, Duration::from_secs(300)).await?;
    if s.runs("connect") {
        f.connect_s = secs(began.elapsed());
        eprintln!("connect storm: {:?}", f.connect_s);
    }
    if s.runs("rest") {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (c0, t0) = (coord.cpu_s(), Instant::now());
        tokio::time::sleep(Duration::from_secs(15)).await;
        if let (Some(a), Some(b)) = (c0, coord.cpu_s()) {
            f.cpu_pct_rest = Some(((b - a) / t0.elapsed().as_secs_f64() * 1000.0).round() / 10.0);
        }
        f.rss_mib_rest = coord.rss_mib().map(|m| (m * 10.0).round() / 10.0);
        eprintln!("rest: {:?} MiB, {:?} %", f.rss_mib_rest, f.cpu_pct_rest);
    }
    let users = if s.runs("create") || s.runs("read") || s.runs("ws") {
        eprintln!("registering {} users", s.users);
        api.users(coord, s.users).await?
    } else {
        vec![]
    };
    if s.runs("create") {
        creates(s, coord, &api, &users, &mut f).await?;
        f.rss_mib_loaded = coord.rss_mib();
    }
    if s.runs("read") {
        reads(s, coord, &api, &admin, &mut f).await?;
    }
    if s.runs("ws") {
        fanout(s, coord, &api, &mut f).await?;
    }
    if s.runs("down") {
        node_down(&api, &admin, &fleet, &mut f).await?;
        wait_connected(&api, s.hosts as u64, Duration::from_secs(120)).await?;
    }
    if s.runs("reconnect") {
        let t = Instant::now();
        coord.kill();
        coord.start().await?;
        wait_connected(&api, s.hosts as u64, Duration::from_secs(300)).await?;
        f.reconnect_s = secs(t.elapsed());
        eprintln!("reconnect storm: {:?}", f.reconnect_s);
    }
    f.rss_mib_end = coord.rss_mib();
    drop(fleet);
    Ok(f)
}

async fn wait_connected(api: &Api, n: u64, limit: Duration) -> Result<()> {
    let until = Instant::now() + limit;
    let mut last = 0;
    while Instant::now() < until {
        match api.connected().await {
            Ok(c) if c >= n => return Ok(()),
            Ok(c) => last = c,
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("only {last} of {n} hosts connected after {limit:?}")
}

/// The creates: every user watches `/compute/ws`; `concurrency` workers post creates in turn
/// over the users; each container's create → running is from just before its POST to the
/// `running` event on its owner's stream.
async fn creates(
    s: &Settings,
    coord: &Coordinator,
    api: &Api,
    users: &[User],
    f: &mut Figures,
) -> Result<()> {
    let seen = Arc::new(Seen::default());
    let mut watchers = Vec::new();
    for u in users {
        watchers.push(watch(coord.api, &u.token, 0, seen.clone(), false).await?);
    }
    let dispatch_before = dispatch_buckets(coord).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let sent: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let failures = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let mut workers = Vec::new();
    let users: Arc<Vec<(String, u64)>> =
        Arc::new(users.iter().map(|u| (u.token.clone(), u.key_id)).collect());
    for _ in 0..s.concurrency {
        let (api, next, sent, failures, users) = (
            api.clone(),
            next.clone(),
            sent.clone(),
            failures.clone(),
            users.clone(),
        );
        let total = s.containers;
        workers.push(tokio::spawn(async move {
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= total {
                    break;
                }
                let (token, key) = &users[j % users.len()];
                let body = json!({
                    "name": format!("c{j}"),
                    "instance_type": if j % 2 == 0 { "tiny" } else { "nano" },
                    "ssh_key_ids": [key],
                });
                let at = Instant::now();
                match api
                    .call(Method::POST, token, "/compute/containers", Some(&body))
                    .await
                {
                    Ok((201, v)) => {
                        if let Some(id) = v["id"].as_str() {
                            sent.lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push((id.to_string(), at));
                        }
                    }
                    Ok((code, v)) => {
                        if failures.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("create {j}: {code} {v}");
                        }
                    }
                    Err(e) => {
                        if failures.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("create {j}: {e}");
                        }
                    }
                }
            }
        }));
    }
    let progress = {
        let (next, seen) = (next.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let running = seen.running.lock().unwrap_or_else(|p| p.into_inner()).len();
                eprintln!(
                    "  {:>6.1} s: {} posted, {running} running",
                    began.elapsed().as_secs_f64(),
                    next.load(Ordering::Relaxed)
                );
            }
        })
    };
    for w in workers {
        w.await?;
    }
    let posted = began.elapsed();
    let sent = std::mem::take(&mut *sent.lock().unwrap_or_else(|p| p.into_inner()));
    f.creates_per_s = Some((sent.len() as f64 / posted.as_secs_f64()).round());
    eprintln!(
        "{} creates in {posted:?}, {} failed; waiting for running",
        sent.len(),
        failures.load(Ordering::Relaxed)
    );
    let until = Instant::now() + Duration::from_secs(120);
    while Instant::now() < until {
        let running = seen.running.lock().unwrap_or_else(|p| p.into_inner()).len();
        if running >= sent.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let running = seen
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut lat: Vec<f64> = sent
        .iter()
        .filter_map(|(id, at)| running.get(id).map(|r| ms(r.duration_since(*at))))
        .collect();
    if lat.len() < sent.len() {
        eprintln!(
            "{} of {} containers never seen running",
            sent.len() - lat.len(),
            sent.len()
        );
    }
    f.create_running_p50_ms = quantile(&mut lat, 0.5);
    f.create_running_p99_ms = quantile(&mut lat, 0.99);
    progress.abort();
    for w in watchers {
        w.abort();
    }
    let after = dispatch_buckets(coord).await?;
    let diff: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let before = dispatch_before
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, b)| *b);
            (*le, n - before)
        })
        .collect();
    f.dispatch_p50_ms = bucket_quantile(&diff, 0.5);
    f.dispatch_p99_ms = bucket_quantile(&diff, 0.99);
    Ok(())
}

/// `(le seconds, cumulative count)` of the coordinator's apply round trips to agents.
async fn dispatch_buckets(coord: &Coordinator) -> Result<Vec<(f64, f64)>> {
    let text = reqwest::get(format!("http://{}/metrics", coord.metrics))
        .await?
        .text()
        .await?;
    let mut out = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("berth_agent_request_seconds_bucket{") else {
            continue;
        };
        if !rest.contains("request=\"apply\"") {
            continue;
        }
        let le = rest.split("le=\"").nth(1).and_then(|r| r.split('"').next());
        let n = l.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok());
        if let (Some(le), Some(n)) = (le, n) {
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse()?
            };
            out.push((le, n));
        }
    }
    Ok(out)
}

/// The `q` quantile in ms from cumulative buckets, interpolated within its bucket.
fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.iter().find(|(le, _)| le.is_infinite())?.1;
    if total <= 0.0 {
        return None;
    }
    let want = total * q;
    let (mut lo, mut below) = (0.0, 0.0);
    for &(le, n) in buckets {
        if n >= want {
            if le.is_infinite() {
                return Some(lo * 1000.0);
            }
            let frac = if n > below {
                (want - below) / (n - below)
            } else {
                1.0
            };
            return Some(((lo + (le - lo) * frac) * 1000.0 * 100.0).round() / 100.0);
        }
        (lo, below) = (le, n);
    }
    None
}

/// A user with 3 containers; `GET /compute/containers` and `GET …/:id` with wrk, in
/// interleaved rounds beside a bare warp hello-world on the same client settings.
async fn reads(
    s: &Settings,
    coord: &Coordinator,
    api: &Api,
    admin: &str,
    f: &mut Figures,
) -> Result<()> {
    let reader = api.user(coord, "reader").await?;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(api.create(&reader, &format!("r{n}")).await?);
    }
    let hosts = api.hosts(admin).await?;
    f.stored_containers = Some(
        hosts
            .iter()
            .map(|h| h["containers"].as_u64().unwrap_or(0) as usize)
            .sum(),
    );
    let hello_addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let hello = spawn_hello(hello_addr).await?;
    let list = format!("http://{}/compute/containers", coord.api);
    let one = format!("http://{}/compute/containers/{}", coord.api, ids[0]);
    let hello_url = format!("http://{hello_addr}/");
    let (mut h, mut l, mut g) = (vec![], vec![], vec![]);
    for _ in 0..3 {
        h.push(wrk(&hello_url, Some(&reader.token), 32, s.duration)?);
        l.push(wrk(&list, Some(&reader.token), 32, s.duration)?);
        g.push(wrk(&one, Some(&reader.token), 32, s.duration)?);
    }
    drop(hello);
    let med = |runs: &[crate::wrk::Run], pick: fn(&crate::wrk::Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(pick).collect();
        quantile(&mut v, 0.5)
    };
    f.hello_req_s = med(&h, |r| r.req_s);
    f.hello_p99_ms = med(&h, |r| r.p99_ms);
    f.read_req_s = med(&l, |r| r.req_s);
    f.read_get_req_s = med(&g, |r| r.req_s);
    let (lp99, gp99) = (med(&l, |r| r.p99_ms), med(&g, |r| r.p99_ms));
    f.read_p99_ms = lp99.zip(gp99).map(|(a, b)| a.max(b));
    f.read_p50_ms = med(&l, |r| r.p50_ms)
        .zip(med(&g, |r| r.p50_ms))
        .map(|(a, b)| a.max(b));
    let ratio = |a: Option<f64>| {
        a.zip(f.hello_req_s)
            .map(|(a, h)| (a / h * 1000.0).round() / 1000.0)
    };
    f.read_ratio = ratio(f.read_req_s);
    f.read_get_ratio = ratio(f.read_get_req_s);
    Ok(())
}

/// `watchers` streams of one user; its container stopped, then started: from just before
/// each POST to each watcher's first event for it.
async fn fanout(s: &Settings, coord: &Coordinator, api: &Api, f: &mut Figures) -> Result<()> {
    let user = api.user(coord, "watched").await?;
    let id = api.create(&user, "watched").await?;
    let seen = Arc::new(Seen::default());
    let mut tasks = Vec::new();
    for n in 0..s.watchers {
        tasks.push(watch(coord.api, &user.token, n, seen.clone(), true).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut lat = Vec::new();
    for action in ["stop", "start", "stop", "start"] {
        seen.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let t = Instant::now();
        let path = format!("/compute/containers/{id}/{action}");
        let (code, v) = api.call(Method::POST, &user.token, &path, None).await?;
        if !(200..300).contains(&code) {
            bail!("{action}: {code} {v}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let events = seen.events.lock().unwrap_or_else(|p| p.into_inner());
        let mut first = std::collections::HashMap::new();
        for (w, cid, at) in events.iter() {
            if *cid == id {
                first.entry(*w).or_insert(*at);
            }
        }
        if first.len() < s.watchers {
            eprintln!(
                "{action}: {} of {} watchers saw it",
                first.len(),
                s.watchers
            );
        }
        lat.extend(first.values().map(|at| ms(at.duration_since(t))));
    }
    for t in tasks {
        t.abort();
    }
    f.ws_watchers = Some(s.watchers);
    f.ws_fanout_p50_ms = quantile(&mut lat, 0.5);
    f.ws_fanout_p99_ms = quantile(&mut lat, 0.99);
    Ok(())
}

/// A tenth of the hosts stop answering at once (their sockets stay); the time until
/// `GET /compute/hosts` shows every one of them `unreachable`. Then they wake.
async fn node_down(api: &Api, admin: &str, fleet: &Fleet, f: &mut Figures) -> Result<()> {
    let n = (fleet.hosts.len() / 10).max(1);
    let keys: Vec<String> = fleet.hosts[..n]
        .iter()
        .map(|h| h.host_key().to_string())
        .collect();
    let t = Instant::now();
    fleet.silence(0..n, true);
    let until = t + Duration::from_secs(120);
    loop {
        let status = api.host_status(admin).await?;
        if keys
            .iter()
            .all(|k| status.get(k).is_some_and(|s| s == "unreachable"))
        {
            break;
        }
        if Instant::now() > until {
            bail!("silenced hosts still shown connected after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    f.node_down_hosts = Some(n);
    f.node_down_s = secs(t.elapsed());
    eprintln!("node-down: {:?} s", f.node_down_s);
    fleet.silence(0..n, false);
    Ok(())
}
