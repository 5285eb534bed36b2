//! The agent's end of the link, shared by the real agent and the fleet simulator so that both
//! connect, say hello, heartbeat, report and reconnect with the same code: dial the
//! coordinator over QUIC with mutual TLS, say hello with the inventory, take in the desired
//! set of the welcome, then send heartbeats and status reports and serve the coordinator's
//! requests. Reconnects forever with jittered exponential backoff.
//!
//! What a host *is* — where its inventory comes from, how it applies a spec, how it answers a
//! request, how it renews its certificate — is the [`Host`] trait's business.

mod backoff;
mod session;

pub use backoff::Backoff;
pub use session::{run, Dial, Endpoints};

use berth_shared::images::RegistryAccess;
use berth_shared::protocol::{AgentMessage, ContainerSpec, FrameError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What a host failed at: reading its inventory (never sent as an empty one), installing a
/// renewed certificate.
pub type HostError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot read this agent's inventory: {0}")]
    Inventory(#[source] HostError),
    #[error(transparent)]
    Endpoint(#[from] berth_service::quic::QuicError),
    #[error("cannot resolve coordinator address {0:?}")]
    Resolve(String),
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream: {0}")]
    Frame(#[from] FrameError),
    #[error("the coordinator closed the control stream")]
    Closed,
    #[error("expected the coordinator's welcome, got {0}")]
    Unexpected(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("coordinator refused this agent: {0}")]
    Refused(String),
}

/// A certificate renewal under way: the new key's public half went to the coordinator; the
/// certificate it signs is installed with [`Renewal::install`].
pub trait Renewal: Send {
    /// The public half to send: an uncompressed P-256 point.
    fn public_key(&self) -> Vec<u8>;
    /// Puts the signed certificate (PEM) and the new key in place; the link then reconnects.
    fn install(self: Box<Self>, certificate: &str) -> Result<(), HostError>;
}

/// One host as the link sees it.
pub trait Host: Send + Sync + 'static {
    /// The hello that opens a session, with the full inventory.
    fn hello(&self) -> Result<AgentMessage, HostError>;
    /// A heartbeat with the full inventory.
    fn heartbeat(&self) -> Result<AgentMessage, HostError>;
    /// Takes in the desired set the welcome carried, and how to reach the registries its
    /// specs pull from (to keep in memory only).
    fn welcome(
        self: Arc<Self>,
        specs: Vec<ContainerSpec>,
        registries: Vec<RegistryAccess>,
    ) -> impl Future<Output = ()> + Send;
    /// Serves the streams the coordinator opens on `conn` until it closes.
    fn serve(self: Arc<Self>, conn: quinn::Connection) -> impl Future<Output = ()> + Send;
    /// The link came up (`true`) or went down.
    fn link_up(&self, _up: bool) {}
    /// How often to ask [`Host::start_renewal`].
    fn renewal_check(&self) -> Duration {
        Duration::from_secs(60)
    }
    /// A renewal to start now, if the certificate nears its end.
    fn start_renewal(&self) -> Option<Box<dyn Renewal>> {
        None
    }
    /// A renewal went through: count it.
    fn renewed(&self) {}
}

/// How often the agent pings an idle link, well inside the coordinator's heartbeat grace.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
