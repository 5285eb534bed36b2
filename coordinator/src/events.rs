//! The event bus: every change to a container, for whoever waits on it (`stop`/`start`
//! waiting for the host's report, and the `/compute/ws` status stream).

use crate::store::ContainerRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Status,
    Started,
    Stopped,
    Deleted,
    Updated,
    /// The host confirmed a delete and the record is gone (for waiters; not on the stream).
    Removed,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Status,
        EventKind::Started,
        EventKind::Stopped,
        EventKind::Deleted,
        EventKind::Updated,
        EventKind::Removed,
    ];

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The `type` of the message on `/compute/ws`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "container_status",
            EventKind::Started => "container_started",
            EventKind::Stopped => "container_stopped",
            EventKind::Deleted => "container_deleted",
            EventKind::Updated => "container_updated",
            EventKind::Removed => "container_removed",
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

/// How many events one subscriber may fall behind by before it lags (and is told so).
const BACKLOG: usize = 1024;

/// Events the feed to other coordinators may fall behind by before new ones are dropped
/// (while the database is away).
const OUTBOX: usize = 65_536;

/// A channel per owner with subscribers, a receiver per subscriber: an event wakes only the
/// subscribers of its owner (a thousand watchers of one user cost the others nothing), and a
/// slow subscriber lags alone. An owner's channel goes once nobody listens. With several
/// coordinators, what is published here also goes to the outbox (`feed` sends it to the
/// others), and what they published is delivered here.
#[derive(Clone, Default)]
pub struct EventBus {
    owners: Arc<Mutex<HashMap<String, broadcast::Sender<ContainerEvent>>>>,
    outbox: Option<mpsc::Sender<ContainerEvent>>,
}

impl EventBus {
    /// A bus whose publications also go to the returned outbox.
    pub fn with_outbox() -> (EventBus, mpsc::Receiver<ContainerEvent>) {
        let (tx, rx) = mpsc::channel(OUTBOX);
        let bus = EventBus {
            owners: Arc::default(),
            outbox: Some(tx),
        };
        (bus, rx)
    }

    fn owners(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<ContainerEvent>>> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A change made here: to this coordinator's subscribers and to the others.
    pub fn publish(&self, ev: ContainerEvent) {
        if let Some(out) = &self.outbox {
            if let Err(mpsc::error::TrySendError::Full(ev)) = out.try_send(ev.clone()) {
                tracing::warn!(id = %ev.record.id, "feed outbox full: other coordinators miss this event");
            }
        }
        self.deliver(ev);
    }

    /// A change, to this coordinator's subscribers only (what another coordinator made).
    pub fn deliver(&self, ev: ContainerEvent) {
        let mut owners = self.owners();
        let owner = ev.record.owner.clone();
        if let Some(tx) = owners.get(&owner) {
            if tx.send(ev).is_err() {
                // Its last subscriber has gone.
                owners.remove(&owner);
            }
        }
    }

    /// Every event of `owner`'s containers from now on.
    pub fn subscribe(&self, owner: &str) -> broadcast::Receiver<ContainerEvent> {
        self.owners()
            .entry(owner.to_string())
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe()
    }

    /// Owners with a channel (for tests: channels do not outlive their subscribers).
    pub fn channels(&self) -> usize {
        self.owners().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(owner: &str) -> ContainerEvent {
        let mut rec = crate::store::conformance::record("aaaa0001", owner, 1);
        rec.owner = owner.into();
        ContainerEvent::of(&rec, EventKind::Status)
    }

    #[test]
    fn subscribers_see_only_their_owners_events_and_channels_go_with_them() {
        let bus = EventBus::default();
        let mut alice = bus.subscribe("alice");
        let mut bob = bus.subscribe("bob");
        bus.publish(event("alice"));
        assert_eq!(alice.try_recv().expect("alice's").record.owner, "alice");
        assert!(bob.try_recv().is_err(), "bob hears nothing of alice");
        drop(bob);
        bus.publish(event("bob"));
        assert_eq!(
            bus.channels(),
            1,
            "bob's channel went with his last subscriber"
        );
        bus.publish(event("carol"));
        assert_eq!(bus.channels(), 1, "publishing to nobody makes no channel");
    }
}
