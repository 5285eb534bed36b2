//! The crash loop's vocabulary and its tally: the changes and victims a round picks, what one
//! check found, and the figures over every round (kills, retries, reconnect and convergence
//! times, and what was lost, doubled or left behind).

use anyhow::{bail, Result};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Create,
    Stop,
    Start,
    Rename,
    Mounts,
    Delete,
}

#[derive(Clone, Copy, Debug)]
pub enum Victim {
    Agent,
    Coordinator,
}

/// What one look at the API and containerd found wrong.
#[derive(Debug, Default)]
pub struct Check {
    /// An acknowledged container or change that is not there.
    pub lost: Vec<String>,
    /// Something there twice, or there without the API knowing it.
    pub duplicated: Vec<String>,
    /// What a deleted container left behind.
    pub orphaned: Vec<String>,
    /// A container the user stopped whose task runs.
    pub stopped_running: Vec<String>,
    /// Calls that failed while looking.
    pub errors: Vec<String>,
}

impl Check {
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.orphaned.is_empty()
            && self.stopped_running.is_empty()
            && self.errors.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct Figures {
    pub rounds: usize,
    pub agent_kills: usize,
    pub coordinator_kills: usize,
    /// Changes whose answer the kill cut short, asked again.
    pub retried: usize,
    /// Restart → the agent linked again.
    pub agent_reconnect_ms: Vec<u64>,
    pub coordinator_reconnect_ms: Vec<u64>,
    /// The round's change acknowledged → everything agrees.
    pub converge_ms: Vec<u64>,
    lost: usize,
    duplicated: usize,
    orphaned: usize,
    stopped_running: usize,
    findings: Vec<String>,
}

impl Figures {
    /// Counts what a round that never converged still showed.
    pub fn add(&mut self, c: &Check, round: usize) {
        self.lost += c.lost.len();
        self.duplicated += c.duplicated.len();
        self.orphaned += c.orphaned.len();
        self.stopped_running += c.stopped_running.len();
        let all = [
            &c.lost,
            &c.duplicated,
            &c.orphaned,
            &c.stopped_running,
            &c.errors,
        ];
        for f in all.into_iter().flatten() {
            self.findings.push(format!("round {round}: {f}"));
        }
    }

    pub fn report(&self, seed: u64) -> Value {
        json!({
            "seed": seed,
            "rounds": self.rounds,
            "agent_kills": self.agent_kills,
            "coordinator_kills": self.coordinator_kills,
            "retried": self.retried,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "orphaned": self.orphaned,
            "stopped_running": self.stopped_running,
            "agent_reconnect_ms": spread(&self.agent_reconnect_ms),
            "coordinator_reconnect_ms": spread(&self.coordinator_reconnect_ms),
            "converge_ms": spread(&self.converge_ms),
            "findings": self.findings,
        })
    }

    /// Fails when any round ended with something lost, doubled, left behind or running.
    pub fn verdict(&self) -> Result<()> {
        if !self.findings.is_empty() {
            bail!("the crash loop found:\n{}", self.findings.join("\n"));
        }
        Ok(())
    }
}

/// p50 / p99 / max of a set of durations (null when empty).
fn spread(ms: &[u64]) -> Value {
    if ms.is_empty() {
        return Value::Null;
    }
    let mut v = ms.to_vec();
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    json!({"p50": at(0.5), "p99": at(0.99), "max": v[v.len() - 1], "n": v.len()})
}
