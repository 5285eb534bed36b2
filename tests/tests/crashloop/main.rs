//! The crash loop: kill -9 the agent or the coordinator at a random moment of a create, stop,
//! start, rename, mounts PUT or delete, restart it as the quick start does, and after every
//! round check that the API and containerd agree, nothing is there twice, a deleted container
//! left nothing behind, every acknowledged change survived and no stopped container runs.
//!
//! Seeded (`BERTH_CRASH_SEED`, else random; printed) and sized by `BERTH_CRASH_ROUNDS` (10 in
//! CI; `scripts/soak-crash` runs 100). The figures are printed and, with
//! `BERTH_CRASH_REPORT=path`, written there as JSON.

use anyhow::{bail, Context, Result};
use berth_tests::{containerd, Cluster, User};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

mod figures;

use figures::{Check, Figures, Op, Victim};

/// What the user was told about one container: the state every acknowledged change left.
#[derive(Clone, Debug, PartialEq)]
struct Expect {
    name: String,
    running: bool,
    mounts: Vec<String>,
}

/// One change the round asks for, and what the model holds once it is acknowledged.
struct Change {
    op: Op,
    id: Option<String>,
    method: &'static str,
    path: String,
    body: Option<Value>,
    after: Option<Expect>,
}

struct Loop {
    c: Cluster,
    alice: User,
    key: u64,
    seed: u64,
    rng: StdRng,
    model: BTreeMap<String, Expect>,
    gone: BTreeSet<String>,
    figures: Figures,
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_lost_doubled_or_left_behind_across_kills() -> Result<()> {
    let rounds: usize = env_or("BERTH_CRASH_ROUNDS", 10);
    let seed: u64 = env_or("BERTH_CRASH_SEED", rand::random::<u32>() as u64);
    println!(
        "crash loop: {rounds} rounds, seed {seed} (BERTH_CRASH_SEED={seed} repeats the choices)"
    );
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let key = alice.add_key("crash").await?;
    let mut l = Loop {
        c,
        alice,
        key,
        seed,
        rng: StdRng::seed_from_u64(seed),
        model: BTreeMap::new(),
        gone: BTreeSet::new(),
        figures: Figures::default(),
    };
    for n in 0..rounds {
        l.round(n)
            .await
            .with_context(|| format!("round {n} of seed {seed}"))?;
    }
    let report = l.figures.report(seed);
    println!("crash loop figures: {report}");
    if let Ok(path) = std::env::var("BERTH_CRASH_REPORT") {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    }
    l.figures.verdict()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Loop {
    async fn round(&mut self, n: usize) -> Result<()> {
        let change = self.pick(n);
        let victim = if self.rng.random_bool(0.5) {
            Victim::Agent
        } else {
            Victim::Coordinator
        };
        let delay = Duration::from_millis(self.rng.random_range(0..400));
        println!(
            "round {n}: {:?} {} — kill -9 the {victim:?} after {delay:?}",
            change.op,
            change.id.as_deref().unwrap_or("")
        );
        let alice = self.alice.clone();
        let (method, path, body) = (change.method, change.path.clone(), change.body.clone());
        let idem = format!("crash-{}-{n}", self.seed);
        let call = tokio::spawn(async move {
            alice
                .call_with(method, &path, &[("idempotency-key", &idem)], body)
                .await
        });
        tokio::time::sleep(delay).await;
        self.kill(victim)?;
        let first = tokio::time::timeout(Duration::from_secs(60), call).await;
        self.restart(victim).await?;
        let answer = match first {
            Ok(Ok(Ok((s, _, body)))) if (200..300).contains(&s) => Some(body),
            _ => None,
        };
        let id = match answer {
            Some(body) => acknowledged(&change, &body)?,
            None => {
                self.figures.retried += 1;
                self.retry(&change, n).await?
            }
        };
        match change.after {
            Some(after) => {
                self.model.insert(id, after);
            }
            None => {
                self.model.remove(&id);
                self.gone.insert(id);
            }
        }
        self.figures.rounds += 1;
        self.converge(n).await
    }

    /// The round's change: a create while there are few containers, else any that applies.
    fn pick(&mut self, n: usize) -> Change {
        let ids: Vec<String> = self.model.keys().cloned().collect();
        let running: Vec<&String> = ids.iter().filter(|i| self.model[*i].running).collect();
        let stopped: Vec<&String> = ids.iter().filter(|i| !self.model[*i].running).collect();
        let mut ops = vec![Op::Rename, Op::Mounts, Op::Delete];
        // The default quota is three containers.
        if ids.len() < 3 {
            ops.push(Op::Create);
        }
        if !running.is_empty() {
            ops.push(Op::Stop);
        }
        if !stopped.is_empty() {
            ops.push(Op::Start);
        }
        let op = if ids.len() < 2 {
            Op::Create
        } else {
            ops[self.rng.random_range(0..ops.len())]
        };
        let of = |from: &[&String], rng: &mut StdRng| from[rng.random_range(0..from.len())].clone();
        let all: Vec<&String> = ids.iter().collect();
        let id = match op {
            Op::Create => None,
            Op::Stop => Some(of(&running, &mut self.rng)),
            Op::Start => Some(of(&stopped, &mut self.rng)),
            _ => Some(of(&all, &mut self.rng)),
        };
        let one = |suffix: &str| {
            format!(
                "/compute/containers/{}{suffix}",
                id.as_deref().unwrap_or("")
            )
        };
        let now = id.as_ref().map(|i| self.model[i].clone());
        let with = |f: &dyn Fn(&mut Expect)| {
            now.clone().map(|mut e| {
                f(&mut e);
                e
            })
        };
        let (method, path, body, after) = match op {
            Op::Create => {
                let name = format!("c{n}");
                let body = json!({"name": name, "ssh_key_ids": [self.key]});
                let after = Expect {
                    name,
                    running: true,
                    mounts: vec!["/root".to_string()],
                };
                (
                    "POST",
                    "/compute/containers".to_string(),
                    Some(body),
                    Some(after),
                )
            }
            Op::Stop => ("POST", one("/stop"), None, with(&|e| e.running = false)),
            Op::Start => ("POST", one("/start"), None, with(&|e| e.running = true)),
            Op::Rename => {
                let name = format!("r{n}");
                let body = json!({"name": name});
                (
                    "PATCH",
                    one(""),
                    Some(body),
                    with(&|e| e.name = name.clone()),
                )
            }
            Op::Mounts => {
                let choices: [&[&str]; 3] = [&["/root"], &["/data"], &["/root", "/srv"]];
                let mounts: Vec<String> = choices[self.rng.random_range(0..3)]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                let body = json!({ "mount_paths": mounts });
                (
                    "PUT",
                    one("/mounts"),
                    Some(body),
                    with(&|e| e.mounts = mounts.clone()),
                )
            }
            Op::Delete => ("DELETE", one(""), None, None),
        };
        Change {
            op,
            id,
            method,
            path,
            body,
            after,
        }
    }

    fn kill(&mut self, victim: Victim) -> Result<()> {
        match victim {
            Victim::Agent => {
                self.figures.agent_kills += 1;
                self.c.kill_agent()
            }
            Victim::Coordinator => {
                self.figures.coordinator_kills += 1;
                self.c.kill_coordinator()
            }
        }
    }

    /// Restarts the killed process as the quick start does, and times the link's return.
    async fn restart(&mut self, victim: Victim) -> Result<()> {
        let start = Instant::now();
        match victim {
            Victim::Agent => self.c.start_agent().await?,
            Victim::Coordinator => self.c.start_coordinator().await?,
        }
        self.c.wait_agent_linked().await?;
        self.c.wait_agents(1).await?;
        let took = start.elapsed().as_millis() as u64;
        match victim {
            Victim::Agent => self.figures.agent_reconnect_ms.push(took),
            Victim::Coordinator => self.figures.coordinator_reconnect_ms.push(took),
        }
        Ok(())
    }

    /// An answer cut short by the kill: the user looks, then asks again (with a new key, as
    /// a cut-short key's 409 says) until the change is acknowledged; the container's id.
    async fn retry(&self, change: &Change, n: usize) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = 0;
        loop {
            if let (Op::Create, Some(after)) = (change.op, &change.after) {
                if let Some(id) = self.by_name(&after.name).await? {
                    return Ok(id);
                }
            }
            attempt += 1;
            let idem = format!("crash-{}-{n}-retry-{attempt}", self.seed);
            let body = change.body.clone();
            let answer = self
                .alice
                .call_with(
                    change.method,
                    &change.path,
                    &[("idempotency-key", &idem)],
                    body,
                )
                .await;
            match answer {
                Ok((s, _, body)) if (200..300).contains(&s) => return acknowledged(change, &body),
                Ok((404, _, _)) if change.op == Op::Delete => {
                    return Ok(change.id.clone().unwrap_or_default())
                }
                Ok((s, _, body)) if s < 500 && s != 409 && s != 429 => {
                    bail!("{:?} retried: {s} {body}", change.op)
                }
                other if Instant::now() > deadline => {
                    bail!("{:?} never acknowledged: {other:?}", change.op)
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    async fn by_name(&self, name: &str) -> Result<Option<String>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.alice.call("GET", "/compute/containers", None).await {
                Ok((200, list)) => {
                    let found = containers(&list)?
                        .iter()
                        .find(|c| c["name"] == name)
                        .and_then(|c| c["id"].as_str().map(str::to_string));
                    return Ok(found);
                }
                other if Instant::now() > deadline => bail!("listing: {other:?}"),
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }

    /// Waits for the API and containerd to agree with the model; what does not by then is
    /// counted, and the model takes the API's word so that one finding is not counted again.
    async fn converge(&mut self, n: usize) -> Result<()> {
        let start = Instant::now();
        let mut last = Check::default();
        while start.elapsed() < Duration::from_secs(90) {
            match self.check().await {
                Ok(found) if found.is_clean() => {
                    self.figures
                        .converge_ms
                        .push(start.elapsed().as_millis() as u64);
                    return Ok(());
                }
                Ok(found) => last = found,
                Err(e) => last.errors.push(format!("{e:#}")),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        println!("round {n}: did not converge: {last:?}");
        self.figures.add(&last, n);
        let (_, list) = self.alice.call("GET", "/compute/containers", None).await?;
        self.model = containers(&list)?
            .iter()
            .filter_map(|c| {
                let id = c["id"].as_str()?.to_string();
                let e = Expect {
                    name: c["name"].as_str()?.to_string(),
                    running: c["status"] == "running",
                    mounts: self
                        .model
                        .get(&id)
                        .map(|e| e.mounts.clone())
                        .unwrap_or_default(),
                };
                Some((id, e))
            })
            .collect();
        Ok(())
    }

    /// How the API and containerd differ from the model now.
    async fn check(&self) -> Result<Check> {
        let mut found = Check::default();
        let (s, list) = self.alice.call("GET", "/compute/containers", None).await?;
        if s != 200 {
            bail!("list: {s} {list}");
        }
        let listed = containers(&list)?;
        let mut names = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for v in listed {
            let id = v["id"].as_str().context("id")?.to_string();
            if !names.insert(v["name"].to_string()) || !seen.insert(id.clone()) {
                found.duplicated.push(format!("listed twice: {v}"));
            }
            let Some(want) = self.model.get(&id) else {
                found
                    .duplicated
                    .push(format!("a container nobody kept: {v}"));
                continue;
            };
            if v["name"] != want.name.as_str() {
                found
                    .lost
                    .push(format!("{id}: name {} not {}", v["name"], want.name));
            }
            let status = if want.running { "running" } else { "stopped" };
            if v["status"] != status {
                found
                    .lost
                    .push(format!("{id}: status {} not {status}", v["status"]));
            }
            let (_, mounts) = self
                .alice
                .call("GET", &format!("/compute/containers/{id}/mounts"), None)
                .await?;
            if mounts["mount_paths"] != json!(want.mounts) {
                found
                    .lost
                    .push(format!("{id}: mounts {mounts} not {:?}", want.mounts));
            }
            let task = containerd::task(&self.c.namespace, &id)?;
            let task_runs = task.as_ref().is_some_and(|(_, s)| s == "RUNNING");
            if want.running && !task_runs {
                found.lost.push(format!("{id}: no running task ({task:?})"));
            }
            if !want.running && task_runs {
                found.stopped_running.push(id.clone());
            }
        }
        for id in self.model.keys().filter(|id| !seen.contains(*id)) {
            found.lost.push(format!("{id}: not in the API"));
        }
        for id in containerd::containers(&self.c.namespace)? {
            if !self.model.contains_key(&id) && !self.gone.contains(&id) {
                found
                    .duplicated
                    .push(format!("{id}: in containerd, unknown to the API"));
            }
        }
        for id in &self.gone {
            for what in self.c.leftovers(id)? {
                found.orphaned.push(format!("{id}: {what}"));
            }
        }
        let ports = self.c.bridge_ports()?;
        if ports > self.model.len() {
            found.orphaned.push(format!(
                "{ports} veths on the bridge for {} containers",
                self.model.len()
            ));
        }
        Ok(found)
    }
}

/// The container's id once a change was acknowledged.
fn acknowledged(change: &Change, body: &Value) -> Result<String> {
    match &change.id {
        Some(id) => Ok(id.clone()),
        None => Ok(body["id"]
            .as_str()
            .context("a create's answer has an id")?
            .to_string()),
    }
}

fn containers(list: &Value) -> Result<&Vec<Value>> {
    list["containers"]
        .as_array()
        .context("a list of containers")
}
