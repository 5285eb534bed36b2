//! What keeps containers up between passes: the timer of a restart waiting for its backoff
//! (set again after an agent restart from the stored due time), the health checker of each
//! running task, and the health verdicts — reported, followed by the ingress (an unhealthy
//! container's sites answer 503 and its forwards refuse) and, when the restart policy allows,
//! the unhealthy task stopped so that the policy restarts it.

use super::{lock, ReconcileError, Reconciler, SIGKILL, SIGTERM};
use crate::health::Verdict;
use crate::runtime::TaskState;
use crate::supervise::now_ms;
use berth_shared::protocol::{ContainerSpec, ObservedState};
use berth_shared::upkeep::Health;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

impl Reconciler {
    /// Reconciles `id` once its restart is due at `due_ms` (one timer per due time).
    pub(super) fn restart_at(self: &Arc<Self>, id: &str, due_ms: u64) {
        if !self.supervisor.schedule(id, due_ms) {
            return;
        }
        let (me, id) = (self.clone(), id.to_string());
        tokio::spawn(async move {
            let wait = due_ms.saturating_sub(now_ms());
            tokio::time::sleep(Duration::from_millis(wait)).await;
            me.supervisor.fired(&id, due_ms);
            me.reconcile(&id).await;
        });
    }

    /// Runs `spec`'s health check against the task that runs now (none without a check).
    pub(super) fn check_health(&self, spec: &ContainerSpec) -> Result<(), ReconcileError> {
        let since = self
            .state
            .restarts(&spec.id)?
            .and_then(|r| r.started_at_ms)
            .unwrap_or(0);
        self.checks.ensure(spec, since);
        Ok(())
    }

    /// Handles health verdicts until the checkers' channel closes.
    pub async fn on_verdicts(self: Arc<Self>, mut verdicts: mpsc::Receiver<Verdict>) {
        while let Some(v) = verdicts.recv().await {
            let me = self.clone();
            tokio::spawn(async move { me.on_verdict(v).await });
        }
    }

    async fn on_verdict(self: &Arc<Self>, v: Verdict) {
        if !self.checks.accept(&v) {
            return;
        }
        let spec = match self.state.spec(&v.id) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => return tracing::error!(id = %v.id, error = %e, "cannot read spec"),
        };
        self.reporter.report(&spec, ObservedState::Running, None);
        self.sync_ingress().await;
        if v.health == Health::Unhealthy && spec.restart_policy.restarts_unhealthy() {
            let why = v.reason.unwrap_or_else(|| "unhealthy".into());
            if let Err(e) = self.stop_unhealthy(&spec, why).await {
                tracing::warn!(id = %v.id, error = %e, "cannot stop the unhealthy task");
            }
        }
    }

    /// Stops the unhealthy task of `spec` (SIGTERM, SIGKILL after the grace) as an exit
    /// nobody asked for: the exit watch reconciles it and the policy restarts it.
    async fn stop_unhealthy(
        &self,
        spec: &ContainerSpec,
        why: String,
    ) -> Result<(), ReconcileError> {
        let id = spec.id.as_str();
        let l = lock(&self.locks).entry(id.to_string()).or_default().clone();
        let _g = l.lock().await;
        if !matches!(self.rt.task_state(id).await?, TaskState::Running) {
            return Ok(());
        }
        tracing::info!(id, reason = %why, "stopping the unhealthy task for its restart policy");
        self.supervisor.killing_unhealthy(id, why);
        self.rt.kill(id, SIGTERM, false).await?;
        if tokio::time::timeout(self.cfg.stop_grace, self.rt.wait(id))
            .await
            .is_err()
        {
            self.rt.kill(id, SIGKILL, true).await?;
        }
        Ok(())
    }
}
