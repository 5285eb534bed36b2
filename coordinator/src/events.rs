//! The event bus: every change to a container, for whoever waits on it (`stop`/`start`
//! waiting for the host's report, and the `/compute/ws` status stream).

use crate::store::ContainerRecord;
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Status,
    Started,
    Stopped,
    Deleted,
    Updated,
}

impl EventKind {
    /// The `type` of the message on `/compute/ws`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "container_status",
            EventKind::Started => "container_started",
            EventKind::Stopped => "container_stopped",
            EventKind::Deleted => "container_deleted",
            EventKind::Updated => "container_updated",
        }
    }
}

/// A change to one container: what happened, and the record as it is after it.
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub kind: EventKind,
    pub record: Arc<ContainerRecord>,
}

impl ContainerEvent {
    pub fn of(rec: &ContainerRecord, kind: EventKind) -> ContainerEvent {
        ContainerEvent {
            kind,
            record: Arc::new(rec.clone()),
        }
    }
}

/// One sender, a receiver per subscriber; a slow subscriber lags alone.
#[derive(Clone)]
pub struct EventBus(broadcast::Sender<ContainerEvent>);

impl Default for EventBus {
    fn default() -> Self {
        EventBus(broadcast::channel(1024).0)
    }
}

impl EventBus {
    pub fn publish(&self, ev: ContainerEvent) {
        // No subscribers is fine.
        let _ = self.0.send(ev);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ContainerEvent> {
        self.0.subscribe()
    }
}
