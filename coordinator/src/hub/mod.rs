//! The agent hub: transport only. It holds the QUIC connections agents opened, sends
//! requests on them, and hands everything agents say to the domain as typed [`AgentEvent`]s
//! over a channel. It knows nothing of containers, placement or the store.

mod accept;

pub use accept::{bind, serve};

use berth_shared::prom::Histograms;
use berth_shared::protocol::{
    read_frame, write_frame, ContainerReport, ContainerSpec, CoordinatorMessage, FrameError,
    HostInfo, Request, Response,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Endpoint(#[from] berth_service::quic::QuicError),
    #[error("host {0} is not connected")]
    NotConnected(String),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream: {0}")]
    Frame(#[from] FrameError),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("agent refused: {0}")]
    Refused(String),
}

/// A host's welcome: its full desired set, and how to reach the registries those specs pull
/// from (credentials included; they travel on this mutual-TLS link only).
#[derive(Debug, Default)]
pub struct DesiredSet {
    pub specs: Vec<ContainerSpec>,
    pub registries: Vec<berth_shared::images::RegistryAccess>,
}

/// What an agent said, for the domain to act on. Replies travel back on the `oneshot`s;
/// dropping one unanswered closes that agent's connection (it reconnects and tries again).
#[derive(Debug)]
pub enum AgentEvent {
    /// A verified hello: answer with the host's full desired set for the welcome.
    Connected {
        host: HostInfo,
        inventory: Vec<ContainerReport>,
        welcome: oneshot::Sender<DesiredSet>,
    },
    Heartbeat {
        host: HostInfo,
        inventory: Vec<ContainerReport>,
    },
    Report {
        host: String,
        report: ContainerReport,
    },
    /// Sign `public_key` for `host` (the host key of the connection's verified certificate).
    Renew {
        host: String,
        public_key: Vec<u8>,
        answer: oneshot::Sender<CoordinatorMessage>,
    },
    Disconnected {
        host: String,
    },
}

impl AgentEvent {
    /// The host the event is from.
    pub fn host(&self) -> &str {
        match self {
            AgentEvent::Connected { host, .. } | AgentEvent::Heartbeat { host, .. } => {
                &host.host_key
            }
            AgentEvent::Report { host, .. }
            | AgentEvent::Renew { host, .. }
            | AgentEvent::Disconnected { host } => host,
        }
    }
}

/// The connected hosts, by host key.
pub struct Hub {
    conns: Mutex<HashMap<String, quinn::Connection>>,
    events: mpsc::Sender<AgentEvent>,
    heartbeat_interval: Duration,
    /// From opening a request's stream to the agent's answer, by request kind.
    round_trips: Histograms,
}

impl Hub {
    /// A hub and the receiving end of its events.
    pub fn new(heartbeat_interval: Duration) -> (Hub, mpsc::Receiver<AgentEvent>) {
        let (tx, rx) = mpsc::channel(4096);
        let hub = Hub {
            conns: Mutex::new(HashMap::new()),
            events: tx,
            heartbeat_interval,
            round_trips: Histograms::default(),
        };
        (hub, rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, quinn::Connection>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with a test of whether a host is connected, over one look at the table (a
    /// placement asks it of every host).
    pub fn with_connected<R>(&self, f: impl FnOnce(&dyn Fn(&str) -> bool) -> R) -> R {
        let conns = self.lock();
        f(&|k| conns.contains_key(k))
    }

    pub fn is_connected(&self, host: &str) -> bool {
        self.lock().contains_key(host)
    }

    /// Makes `conn` the host's connection, closing the one it replaces.
    fn register(&self, host: &str, conn: quinn::Connection) {
        if let Some(old) = self.lock().insert(host.to_string(), conn) {
            old.close(1u32.into(), b"replaced by a newer connection");
        }
    }

    /// Forgets `conn` if it is still the host's current one; `true` if it was.
    fn unregister(&self, host: &str, conn: &quinn::Connection) -> bool {
        let mut conns = self.lock();
        if conns
            .get(host)
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            conns.remove(host);
            return true;
        }
        false
    }

    /// Closes the host's connection (e.g. its heartbeat grace passed).
    pub fn close(&self, host: &str, reason: &str) {
        if let Some(c) = self.lock().remove(host) {
            c.close(2u32.into(), reason.as_bytes());
        }
    }

    async fn emit(&self, ev: AgentEvent) -> Result<(), HubError> {
        self.events
            .send(ev)
            .await
            .map_err(|_| HubError::Refused("the coordinator is shutting down".into()))
    }

    /// Opens a long-lived stream for `req` (logs, terminal) and reads the agent's first answer;
    /// the caller keeps both halves.
    pub async fn open(
        &self,
        host: &str,
        req: &Request,
    ) -> Result<(Response, quinn::SendStream, quinn::RecvStream), HubError> {
        let conn = self
            .lock()
            .get(host)
            .cloned()
            .ok_or_else(|| HubError::NotConnected(host.to_string()))?;
        let began = Instant::now();
        let (mut send, mut recv) = timeout(Duration::from_secs(10), conn.open_bi())
            .await
            .map_err(|_| HubError::Timeout("a stream"))??;
        write_frame(&mut send, req).await?;
        match timeout(
            Duration::from_secs(30),
            read_frame::<_, Response>(&mut recv),
        )
        .await
        {
            Err(_) => Err(HubError::Timeout("the agent's answer")),
            Ok(Ok(Some(r))) => {
                self.round_trips.observe(kind(req), began.elapsed());
                Ok((r, send, recv))
            }
            Ok(Ok(None)) => Err(HubError::Refused("stream closed without an answer".into())),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// The round-trip histograms in Prometheus text.
    pub fn render_round_trips(&self, out: &mut String) {
        self.round_trips.render(
            out,
            "berth_agent_request_seconds",
            "Requests to agents, from opening the stream to the agent's answer, by kind.",
            "request",
        );
    }

    /// Sends one request on its own stream and waits for the answer.
    pub async fn request(&self, host: &str, req: &Request) -> Result<Response, HubError> {
        let (resp, mut send, _recv) = self.open(host, req).await?;
        let _ = send.finish();
        Ok(resp)
    }
}

fn kind(req: &Request) -> &'static str {
    match req {
        Request::Apply(_) | Request::ApplyWithRegistry { .. } => "apply",
        Request::Logs { .. } => "logs",
        Request::Terminal { .. } => "terminal",
        Request::Metrics { .. } => "metrics",
        Request::Exec(_) => "exec",
        Request::Disown { .. } => "disown",
        Request::Volume(_) => "volume",
    }
}
