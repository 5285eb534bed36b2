//! The coordinator's shared state and the error type of its operations. The operations
//! themselves live in `containers` and `keys`; `api` maps `Error` to HTTP in one place.

use crate::auth::Authenticator;
use crate::config::Config;
use crate::hub::Hub;
use crate::store::{Store, StoreError};
use berth_shared::api::{ContainerStatus, QuotaDetail};
use berth_shared::validation::FieldErrors;
use tokio::sync::broadcast;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("invalid input: {0:?}")]
    Invalid(FieldErrors),
    #[error("over quota: {0:?}")]
    OverQuota(QuotaDetail),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("container is not running: {0}")]
    NotRunning(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl Error {
    pub fn invalid(field: &str, msg: impl Into<String>) -> Error {
        let mut e = FieldErrors::default();
        e.add(field, msg);
        Error::Invalid(e)
    }
}

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

/// A change to one container, for whoever waits on it (stop, and the status stream).
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub owner: String,
    pub id: String,
    pub kind: EventKind,
    pub status: Option<ContainerStatus>,
    pub generation: u64,
    pub external_ip: Option<String>,
}

impl ContainerEvent {
    pub fn of(rec: &crate::store::ContainerRecord, kind: EventKind) -> ContainerEvent {
        ContainerEvent {
            owner: rec.owner.clone(),
            id: rec.id.clone(),
            kind,
            status: Some(rec.status),
            generation: rec.generation,
            external_ip: rec.external_ip.clone(),
        }
    }

    pub fn updated(rec: &crate::store::ContainerRecord) -> ContainerEvent {
        Self::of(rec, EventKind::Updated)
    }
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub hub: Hub,
    pub auth: Authenticator,
    pub events: broadcast::Sender<ContainerEvent>,
    /// Serialises quota checks with the inserts they guard.
    pub(crate) quota_lock: tokio::sync::Mutex<()>,
    pub telemetry: crate::telemetry::Telemetry,
    pub registry: Option<crate::registry::Registry>,
}

impl App {
    pub fn new(config: Config, store: Store, auth: Authenticator) -> App {
        let registry = config
            .images
            .registry
            .as_deref()
            .map(crate::registry::Registry::new);
        App {
            config,
            store,
            hub: Hub::default(),
            auth,
            events: broadcast::channel(1024).0,
            quota_lock: tokio::sync::Mutex::new(()),
            telemetry: Default::default(),
            registry,
        }
    }

    pub(crate) fn publish(&self, ev: ContainerEvent) {
        // No receivers is fine.
        let _ = self.events.send(ev);
    }
}
