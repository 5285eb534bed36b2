//! Waiting for a container to reach a status (`GET …/wait`): answered at once when it is
//! there already, else on the first change that gets it there, or `Timeout`. The bus is
//! subscribed to before the record is read, so a change in between is never missed; a
//! waiter whose client goes away is dropped with its request and leaves nothing behind.

use super::Containers;
use crate::error::Error;
use crate::store::ContainerRecord;
use berth_shared::api::ContainerStatus;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The statuses one can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    Running,
    Stopped,
    /// The host has torn it down and the record is gone.
    Deleted,
}

impl WaitFor {
    pub fn parse(s: &str) -> Option<WaitFor> {
        match s {
            "running" => Some(WaitFor::Running),
            "stopped" => Some(WaitFor::Stopped),
            "deleted" => Some(WaitFor::Deleted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WaitFor::Running => "running",
            WaitFor::Stopped => "stopped",
            WaitFor::Deleted => "deleted",
        }
    }

    fn reached(self, r: Option<&ContainerRecord>) -> bool {
        match (self, r) {
            (WaitFor::Deleted, r) => r.is_none(),
            (_, None) => false,
            (WaitFor::Running, Some(r)) => r.is_visible() && r.status == ContainerStatus::Running,
            (WaitFor::Stopped, Some(r)) => r.is_visible() && r.status == ContainerStatus::Stopped,
        }
    }
}

impl Containers {
    /// The record once it reaches `want` (`None` for `Deleted`); `NotFound` when it is
    /// deleted while waiting for another status; `Timeout` after `timeout`.
    pub async fn wait_for(
        &self,
        rec: &ContainerRecord,
        want: WaitFor,
        timeout: Duration,
    ) -> Result<Option<ContainerRecord>, Error> {
        let mut events = self.events.subscribe(&rec.owner);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now = self.store.container(&rec.id).await?;
            if want.reached(now.as_ref()) {
                return Ok(now);
            }
            if want != WaitFor::Deleted && now.as_ref().is_none_or(|r| !r.is_visible()) {
                return Err(Error::NotFound);
            }
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Err(_) => {
                        let status = now.as_ref().map_or("deleting", |r| r.status.as_str());
                        return Err(Error::Timeout(format!(
                            "the container did not become {} within {timeout:?} (it is {status})",
                            want.as_str()
                        )));
                    }
                    Ok(Ok(ev)) if ev.record.id != rec.id => continue,
                    Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => break,
                    Ok(Err(RecvError::Closed)) => {
                        return Err(Error::Unavailable("the coordinator is stopping".into()))
                    }
                }
            }
        }
    }
}
