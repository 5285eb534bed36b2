//! Supervision of running tasks by their restart policy: one exit watch per task, which exits
//! were asked for (a stop) and which were not, and what an exit nobody asked for leads to —
//! a restart after a backoff (1 s doubling to 5 min, afresh after 10 min up), or staying
//! stopped (policy `no`, `on-failure` after status 0, a crash loop at `max_retries`). The
//! decision, the restart count and the time a restart is due are stored in sled before they
//! are acted on, so a kill -9 of the agent keeps the count and the schedule. The reconciler
//! asks, under its per-container lock: [`Supervisor::exited`] when it finds an exited task,
//! [`Supervisor::gate`] before it starts one.

use crate::runtime::Runtime;
use crate::state::{RestartRecord, State, StateError};
use berth_shared::protocol::ContainerSpec;
use berth_shared::upkeep::{AfterExit, STABLE_RUN};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Supervisor {
    rt: Runtime,
    state: State,
    /// Tasks with an exit watch running.
    watching: Mutex<HashSet<String>>,
    /// Tasks being stopped on purpose: their exit is no crash.
    expected_exit: Mutex<HashSet<String>>,
    /// Tasks the agent stopped for failing their health check, with what failed.
    unhealthy: Mutex<HashMap<String, String>>,
    /// Restarts with a timer set: id → unix ms due.
    scheduled: Mutex<HashMap<String, u64>>,
}

/// What the reconciler may do with a container whose task is not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Start it; `restart`: the policy's restart, now counted.
    Go,
    /// A restart waits for its backoff until this unix ms; say `reason` meanwhile.
    Wait { due_ms: u64, reason: String },
    /// The policy leaves it stopped, for this reason.
    Halt(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Supervisor {
    pub fn new(rt: Runtime, state: State) -> Supervisor {
        Supervisor {
            rt,
            state,
            watching: Mutex::default(),
            expected_exit: Mutex::default(),
            unhealthy: Mutex::default(),
            scheduled: Mutex::default(),
        }
    }

    fn record(&self, id: &str) -> Result<RestartRecord, StateError> {
        Ok(self.state.restarts(id)?.unwrap_or_default())
    }

    /// The task of `id` is being started: its next exit is no stop unless a stop comes first.
    pub fn starting(&self, id: &str) {
        lock(&self.expected_exit).remove(id);
        lock(&self.unhealthy).remove(id);
    }

    /// The task of `id` has started now: its next exit is counted.
    pub async fn started(&self, id: &str) -> Result<(), StateError> {
        let mut r = self.record(id)?;
        (r.started_at_ms, r.running) = (Some(now_ms()), true);
        (r.due_ms, r.reason) = (None, None);
        self.state.put_restarts(id, &r).await
    }

    /// The task of `id` is being stopped on purpose: its exit is no crash.
    pub fn stopping(&self, id: &str) {
        lock(&self.expected_exit).insert(id.to_string());
    }

    /// The task is being killed for failing its health check (`why`): its exit counts as a
    /// failure whatever its status.
    pub fn killing_unhealthy(&self, id: &str, why: String) {
        lock(&self.unhealthy).insert(id.to_string(), why);
    }

    /// The user stopped it: a crash loop or a waiting restart ends; the count stays.
    pub async fn stopped_on_purpose(&self, id: &str) -> Result<(), StateError> {
        let Some(mut r) = self.state.restarts(id)? else {
            return Ok(());
        };
        let before = r.clone();
        r.streak = 0;
        r.running = false;
        (r.due_ms, r.reason, r.halted_at_generation) = (None, None, None);
        if r != before {
            self.state.put_restarts(id, &r).await?;
        }
        Ok(())
    }

    /// Records an exit nobody asked for of the task of `spec` (found stopped with `status`)
    /// and decides what follows, stored before it is returned. An exit already recorded (the
    /// agent died before it deleted the task) is not counted again.
    pub async fn exited(&self, spec: &ContainerSpec, status: u32) -> Result<(), StateError> {
        let id = spec.id.as_str();
        let mut r = self.record(id)?;
        if !r.running && r.started_at_ms.is_some() {
            return Ok(());
        }
        let now = now_ms();
        let ran = Duration::from_millis(now.saturating_sub(r.started_at_ms.unwrap_or(now)));
        if ran >= STABLE_RUN {
            r.streak = 0;
        }
        let unhealthy = lock(&self.unhealthy).remove(id);
        r.running = false;
        r.last_exit_code = Some(status);
        r.last_exit_at = Some(now / 1000);
        let why = match &unhealthy {
            Some(w) => format!("stopped for failing its health check ({w})"),
            None => format!("process exited with status {status}"),
        };
        match spec
            .restart_policy
            .after_exit(status, r.streak, unhealthy.is_some())
        {
            AfterExit::Restart(wait) => {
                r.streak = r.streak.saturating_add(1);
                r.due_ms = Some(now + wait.as_millis() as u64);
                r.reason = Some(format!(
                    "{why}; restart {} in {}s",
                    r.count + 1,
                    wait.as_secs().max(1)
                ));
                tracing::info!(
                    id,
                    status,
                    wait_s = wait.as_secs(),
                    streak = r.streak,
                    "task exited; restarting after a backoff"
                );
            }
            AfterExit::Stay(reason) => {
                r.due_ms = None;
                r.reason = Some(match unhealthy {
                    Some(_) => format!("{reason}; {why}"),
                    None => reason,
                });
                r.halted_at_generation = Some(spec.generation);
                tracing::info!(id, status, reason = ?r.reason, "task exited; the restart policy leaves it stopped");
            }
        }
        self.state.put_restarts(id, &r).await
    }

    /// Whether the task of `spec`, not running, may start now. A due restart is counted
    /// here (stored before the start).
    pub async fn gate(&self, spec: &ContainerSpec) -> Result<Gate, StateError> {
        let id = spec.id.as_str();
        let Some(mut r) = self.state.restarts(id)? else {
            return Ok(Gate::Go);
        };
        if let Some(g) = r.halted_at_generation {
            if g >= spec.generation {
                return Ok(Gate::Halt(r.reason.clone().unwrap_or_default()));
            }
            // A newer spec: started again, or changed; the crash loop starts afresh.
            (r.halted_at_generation, r.streak, r.reason) = (None, 0, None);
            self.state.put_restarts(id, &r).await?;
            return Ok(Gate::Go);
        }
        let Some(due_ms) = r.due_ms else {
            return Ok(Gate::Go);
        };
        if now_ms() < due_ms {
            let reason = r.reason.clone().unwrap_or_default();
            return Ok(Gate::Wait { due_ms, reason });
        }
        r.count = r.count.saturating_add(1);
        r.due_ms = None;
        crate::telemetry::METRICS
            .restarts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.state.put_restarts(id, &r).await?;
        Ok(Gate::Go)
    }

    /// Whether a timer for the restart of `id` due at `due_ms` must be set (none is yet).
    pub fn schedule(&self, id: &str, due_ms: u64) -> bool {
        let mut s = lock(&self.scheduled);
        if s.get(id) == Some(&due_ms) {
            return false;
        }
        s.insert(id.to_string(), due_ms);
        true
    }

    /// The timer for `id` has fired.
    pub fn fired(&self, id: &str, due_ms: u64) {
        let mut s = lock(&self.scheduled);
        if s.get(id) == Some(&due_ms) {
            s.remove(id);
        }
    }

    /// The container is gone: its history with it (the state drops the stored record).
    pub fn forget(&self, id: &str) {
        lock(&self.unhealthy).remove(id);
        lock(&self.scheduled).remove(id);
    }

    /// Watches the exit of `id`'s task (once: a second call while watching does nothing). An
    /// exit nobody asked for goes to `on_exit`, which reconciles the container.
    pub fn watch<F, Fut>(self: &Arc<Self>, id: &str, on_exit: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        if !lock(&self.watching).insert(id.to_string()) {
            return;
        }
        let me = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let res = me.rt.wait(&id).await;
            lock(&me.watching).remove(&id);
            if res.is_err() || lock(&me.expected_exit).remove(&id) {
                return;
            }
            on_exit().await;
        });
    }
}
