//! What the agent removes that no spec wants, and nothing else: only containers of its own
//! containerd namespace that carry its `berth.container` label. An orphan (a labelled
//! container without a spec, left by a crash or a lost record) loses its containerd objects
//! and network after the coordinator's welcome, its volume kept for an operator to look at;
//! a container the coordinator disowned goes entirely, volume and log included, once
//! `orphan_grace` has passed since the first disown.

use super::{lock, ReconcileError, Reconciler, LABEL_CONTAINER};
use crate::supervise::now_ms;

impl Reconciler {
    /// Containers in the namespace that no spec wants: their containerd objects and network
    /// go; their volumes stay.
    pub(super) async fn remove_orphans(&self) -> Result<(), ReconcileError> {
        for c in self.rt.containers_with_label(LABEL_CONTAINER).await? {
            if self.state.spec(&c.id)?.is_none() {
                tracing::warn!(id = %c.id, "removing orphaned container (volumes kept)");
                self.teardown(&c.id, false).await?;
            }
        }
        Ok(())
    }

    /// Marks `id` disowned (the first mark stands); returns when it goes, or `None` when no
    /// spec of it is held.
    pub async fn disown(&self, id: &str) -> Result<Option<u64>, ReconcileError> {
        if self.state.spec(id)?.is_none() {
            return Ok(None);
        }
        let now = now_ms();
        let since = self.state.disown(id, now)?;
        let at = since + self.cfg.orphan_grace.as_millis() as u64;
        if since == now {
            self.state.flush().await?;
            tracing::warn!(id, removal_at_ms = at, "the coordinator disowned this container; it is removed, volume and all, after the orphan grace unless claimed again");
        }
        Ok(Some(at))
    }

    /// Tears down every disowned container whose grace has passed, under its lock; one that
    /// cannot be torn down now is tried again on the next pass.
    pub(super) async fn reap_disowned(&self) {
        let disowned = match self.state.disowned() {
            Ok(d) => d,
            Err(e) => return tracing::error!(error = %e, "cannot read disowned containers"),
        };
        let grace = self.cfg.orphan_grace.as_millis() as u64;
        for (id, since) in disowned {
            if now_ms() < since.saturating_add(grace) {
                continue;
            }
            if let Err(e) = self.reap(&id).await {
                tracing::warn!(id, error = %e, "removing a disowned container failed; retrying");
            }
        }
    }

    async fn reap(&self, id: &str) -> Result<(), ReconcileError> {
        let l = lock(&self.locks).entry(id.to_string()).or_default().clone();
        let _g = l.lock().await;
        // Claimed again while waiting for the lock: it stays.
        if !self.state.is_disowned(id)? {
            return Ok(());
        }
        tracing::warn!(
            id,
            "removing a container the coordinator disowned, volume and log included"
        );
        self.teardown(id, true).await?;
        match self.state.spec(id)? {
            Some(spec) => self.forget(&spec).await,
            // No spec left to report on: only the mark.
            None => self.state.remove(id)?,
        }
        Ok(())
    }
}
