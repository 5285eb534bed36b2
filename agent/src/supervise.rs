//! Supervision of running tasks: one exit watch per task, which exits were asked for (a stop)
//! and which were not (a crash), and the restart backoff of a task that keeps crashing — 2 s,
//! doubling to 60 s, back to 2 s once a run lasted 30 s. What a crash leads to (a report, a
//! reconcile) is the caller's, handed in as `on_crash`.

use crate::runtime::Runtime;
use crate::state::State;
use berth_shared::protocol::{ContainerSpec, DesiredState};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A run at least this long counts as healthy: the next crash starts the backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// The longest wait before restarting a crashed task.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);

pub struct Supervisor {
    rt: Runtime,
    state: State,
    /// Tasks with an exit watch running.
    watching: Mutex<HashSet<String>>,
    /// Tasks being stopped on purpose: their exit is no crash.
    expected_exit: Mutex<HashSet<String>>,
    /// id → (last start, crashes in a row).
    started: Mutex<HashMap<String, (Instant, u32)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The wait before a restart after `crashes` crashes in a row: 2^crashes seconds, at most 60.
fn restart_delay(crashes: u32) -> Duration {
    Duration::from_secs(1u64 << crashes.min(6)).min(MAX_RESTART_DELAY)
}

impl Supervisor {
    pub fn new(rt: Runtime, state: State) -> Supervisor {
        Supervisor {
            rt,
            state,
            watching: Mutex::default(),
            expected_exit: Mutex::default(),
            started: Mutex::default(),
        }
    }

    /// The task of `id` is being started: its next exit is a crash unless a stop comes first.
    pub fn starting(&self, id: &str) {
        lock(&self.expected_exit).remove(id);
    }

    /// The task of `id` has started now.
    pub fn started(&self, id: &str) {
        let mut started = lock(&self.started);
        let e = started.entry(id.to_string()).or_insert((Instant::now(), 0));
        e.0 = Instant::now();
    }

    /// The task of `id` is being stopped on purpose: its exit is no crash.
    pub fn stopping(&self, id: &str) {
        lock(&self.expected_exit).insert(id.to_string());
    }

    /// The container is gone: its crash history with it.
    pub fn forget(&self, id: &str) {
        lock(&self.started).remove(id);
    }

    /// Counts a crash of `id` and returns the wait before its restart.
    fn crashed(&self, id: &str) -> Duration {
        let mut started = lock(&self.started);
        let e = started.entry(id.to_string()).or_insert((Instant::now(), 0));
        e.1 = if e.0.elapsed() < HEALTHY_RUN {
            e.1 + 1
        } else {
            1
        };
        restart_delay(e.1)
    }

    /// Watches the exit of `id`'s task (once: a second call while watching does nothing). An
    /// exit nobody asked for, of a container that should run, goes to `on_crash` with the spec,
    /// the exit status and the wait before a restart.
    pub fn watch<F, Fut>(self: &Arc<Self>, id: &str, on_crash: F)
    where
        F: FnOnce(ContainerSpec, u32, Duration) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        if !lock(&self.watching).insert(id.to_string()) {
            return;
        }
        let me = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let res = me.rt.wait(&id).await;
            lock(&me.watching).remove(&id);
            let Ok(status) = res else { return };
            if lock(&me.expected_exit).remove(&id) {
                return;
            }
            let spec = match me.state.spec(&id) {
                Ok(Some(spec)) => spec,
                Ok(None) => return,
                Err(e) => {
                    return tracing::error!(%id, error = %e, "task exited; cannot read its spec")
                }
            };
            if spec.desired != DesiredState::Running {
                return;
            }
            let delay = me.crashed(&id);
            on_crash(spec, status, delay).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_from_two_seconds_to_a_minute() {
        let secs: Vec<u64> = (1..=8).map(|n| restart_delay(n).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
