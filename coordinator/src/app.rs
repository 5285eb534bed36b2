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

/// A change to one container, for whoever waits on it (stop, and the status stream).
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub owner: String,
    pub id: String,
    pub status: Option<ContainerStatus>,
    pub generation: u64,
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub hub: Hub,
    pub auth: Authenticator,
    pub events: broadcast::Sender<ContainerEvent>,
    /// Serialises quota checks with the inserts they guard.
    pub(crate) quota_lock: tokio::sync::Mutex<()>,
}

impl App {
    pub fn new(config: Config, store: Store, auth: Authenticator) -> App {
        App {
            config,
            store,
            hub: Hub::default(),
            auth,
            events: broadcast::channel(1024).0,
            quota_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn publish(&self, ev: ContainerEvent) {
        // No receivers is fine.
        let _ = self.events.send(ev);
    }
}
