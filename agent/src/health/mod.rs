//! Health checks of running containers: one checker task per running container with a
//! `health_check`, started afresh with every start of its task (the grace counts from it).
//! It probes every `interval` ([`probe`]); within the grace a failure does not count, a
//! success makes it `healthy`; `failures` failures in a row make it `unhealthy`, one success
//! `healthy` again. Each new verdict goes to the reconciler as a [`Verdict`] over a channel
//! (it reports it, moves the ingress and restarts the container when its policy says so);
//! the [`Board`] holds the verdicts in force for reports and the ingress.

pub mod probe;

use crate::runtime::Runtime;
use crate::state::State;
use berth_shared::protocol::ContainerSpec;
use berth_shared::upkeep::{Health, HealthCheck};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A new verdict on one container's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub id: String,
    pub health: Health,
    /// What failed, for `unhealthy`.
    pub reason: Option<String>,
    /// The start of the task it is about.
    pub since_ms: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The verdicts in force, by container: written by the reconciler, read by reports and the
/// ingress.
#[derive(Clone, Default)]
pub struct Board(Arc<Mutex<HashMap<String, Entry>>>);

/// A verdict and, for `unhealthy`, what failed.
type Entry = (Health, Option<String>);

impl Board {
    pub fn get(&self, id: &str) -> Option<(Health, Option<String>)> {
        lock(&self.0).get(id).cloned()
    }

    /// Sets a verdict; whether it changed anything.
    pub fn set(&self, id: &str, health: Health, reason: Option<String>) -> bool {
        lock(&self.0).insert(id.to_string(), (health, reason.clone())) != Some((health, reason))
    }

    /// No verdict for `id` (not running, or no check); whether it had one.
    pub fn clear(&self, id: &str) -> bool {
        lock(&self.0).remove(id).is_some()
    }

    /// Containers whose ingress must not be served: unhealthy ones.
    pub fn unhealthy(&self) -> HashSet<String> {
        lock(&self.0)
            .iter()
            .filter(|(_, (h, _))| *h == Health::Unhealthy)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// One checker: the check it runs, the start of the task it checks, the task.
struct Checker {
    check: HealthCheck,
    since_ms: u64,
    task: JoinHandle<()>,
}

pub struct Checks {
    rt: Runtime,
    state: State,
    run_dir: PathBuf,
    /// Without container networking a container shares the host's: probes go to loopback.
    host_network: bool,
    verdicts: mpsc::Sender<Verdict>,
    pub board: Board,
    checkers: Mutex<HashMap<String, Checker>>,
}

impl Checks {
    pub fn new(
        rt: Runtime,
        state: State,
        run_dir: PathBuf,
        host_network: bool,
        verdicts: mpsc::Sender<Verdict>,
    ) -> Checks {
        Checks {
            rt,
            state,
            run_dir,
            host_network,
            verdicts,
            board: Board::default(),
            checkers: Mutex::default(),
        }
    }

    /// `spec`'s task runs, started at `since_ms`: a checker runs for exactly this start and
    /// this check (a new start or a changed check starts it afresh; no check, none).
    pub fn ensure(self: &Arc<Self>, spec: &ContainerSpec, since_ms: u64) {
        let mut checkers = lock(&self.checkers);
        let Some(check) = spec.health_check.clone() else {
            if let Some(c) = checkers.remove(&spec.id) {
                c.task.abort();
                self.board.clear(&spec.id);
            }
            return;
        };
        if let Some(c) = checkers.get(&spec.id) {
            if c.check == check && c.since_ms == since_ms {
                return;
            }
            c.task.abort();
        }
        self.board.set(&spec.id, Health::Starting, None);
        let task = tokio::spawn(self.clone().check(spec.id.clone(), check.clone(), since_ms));
        checkers.insert(
            spec.id.clone(),
            Checker {
                check,
                since_ms,
                task,
            },
        );
    }

    /// The task of `id` is not running (stopped, exited, gone): no checker, no verdict.
    /// Whether it had a verdict.
    pub fn stop(&self, id: &str) -> bool {
        if let Some(c) = lock(&self.checkers).remove(id) {
            c.task.abort();
        }
        self.board.clear(id)
    }

    fn address(&self, id: &str) -> Option<IpAddr> {
        if self.host_network {
            return Some(IpAddr::from([127, 0, 0, 1]));
        }
        match self.state.address_of(id) {
            Ok(a) => a.map(IpAddr::V4),
            Err(e) => {
                tracing::error!(id, error = %e, "health check: cannot read the address");
                None
            }
        }
    }

    /// Puts `v` on the board if it is about the start being checked now (a verdict on an
    /// earlier start is dropped); whether the board changed.
    pub fn accept(&self, v: &Verdict) -> bool {
        let current = lock(&self.checkers)
            .get(&v.id)
            .is_some_and(|c| c.since_ms == v.since_ms);
        current && self.board.set(&v.id, v.health, v.reason.clone())
    }

    async fn check(self: Arc<Self>, id: String, check: HealthCheck, since_ms: u64) {
        let started = Instant::now();
        let (mut health, mut failures) = (Health::Starting, 0u32);
        let mut tick = tokio::time::interval(check.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let target = probe::Target {
                id: &id,
                address: self.address(&id),
                rt: &self.rt,
                run_dir: &self.run_dir,
            };
            let result = probe::run(&check.probe, &target, check.timeout).await;
            let verdict = match result {
                Ok(()) => {
                    failures = 0;
                    (health != Health::Healthy).then_some((Health::Healthy, None))
                }
                Err(why) => {
                    tracing::debug!(%id, reason = %why, "health check failed");
                    if started.elapsed() < check.grace {
                        continue;
                    }
                    failures = failures.saturating_add(1);
                    (failures >= check.failures && health != Health::Unhealthy)
                        .then_some((Health::Unhealthy, Some(why)))
                }
            };
            if let Some((h, reason)) = verdict {
                health = h;
                tracing::info!(%id, health = h.as_str(), reason = ?reason, "health verdict");
                let v = Verdict {
                    id: id.clone(),
                    health: h,
                    reason,
                    since_ms,
                };
                if self.verdicts.send(v).await.is_err() {
                    return;
                }
            }
        }
    }
}
