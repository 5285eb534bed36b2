//! The agent's side of the link: dial the coordinator over QUIC with mutual TLS, say hello
//! with the inventory, apply the desired set it answers with, then send heartbeats and status
//! reports and serve its requests. Reconnects with backoff, forever. An inventory that cannot
//! be read is never sent as an empty one: no hello (no session) and no heartbeat until it can.

mod messages;

use crate::config::Config;
use crate::reconciler::Reconciler;
use crate::renew;
use crate::state::{State, StateError};
use berth_service::quic::{self, QuicError};
use berth_service::tls::TlsFiles;
use berth_shared::protocol::{
    read_frame, write_frame, AgentMessage, ContainerReport, CoordinatorMessage, FrameError,
    HostInfo, Response,
};
use messages::{heartbeat, hello};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::lookup_host;
use tokio::sync::mpsc;
use tokio::time::timeout;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot read this agent's inventory: {0}")]
    Inventory(#[from] StateError),
    #[error(transparent)]
    Endpoint(#[from] QuicError),
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

/// How often the agent pings an idle link, well inside the coordinator's heartbeat grace.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Application close code with which the coordinator refuses an agent.
const REFUSED: quinn::VarInt = quinn::VarInt::from_u32(3);

pub struct Link {
    pub cfg: Arc<Config>,
    pub host: HostInfo,
    pub state: State,
    pub reconciler: Arc<Reconciler>,
    pub services: Arc<crate::serve::Services>,
}

impl Link {
    /// Runs sessions until the task is dropped; reconnects with exponential backoff.
    pub async fn run(self: Arc<Self>, mut reports: mpsc::Receiver<ContainerReport>) {
        let mut backoff = Duration::from_millis(500);
        loop {
            let began = Instant::now();
            match self.session(&mut reports).await {
                Ok(()) => tracing::info!("link session ended"),
                Err(e @ (LinkError::Refused(_) | LinkError::Inventory(_))) => {
                    tracing::error!(error = %e, "link failed")
                }
                Err(e) => {
                    crate::telemetry::METRICS
                        .link_connected
                        .store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "link down")
                }
            }
            if began.elapsed() > Duration::from_secs(30) {
                backoff = Duration::from_millis(500);
            }
            tracing::info!(
                retry_in_ms = backoff.as_millis() as u64,
                "reconnecting to the coordinator"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    fn endpoint(&self, v6: bool) -> Result<quinn::Endpoint, QuicError> {
        let c = &self.cfg.coordinator;
        let files = TlsFiles {
            ca_cert: &c.ca_cert,
            cert: &c.cert,
            key: &c.key,
        };
        quic::client_endpoint(&files, v6, KEEP_ALIVE)
    }

    async fn session(
        &self,
        reports: &mut mpsc::Receiver<ContainerReport>,
    ) -> Result<(), LinkError> {
        // Read first: without an inventory to say hello with, there is no session.
        let hello = hello(&self.host, &self.state)?;
        let c = &self.cfg.coordinator;
        let addr = lookup_host(&c.address)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| LinkError::Resolve(c.address.clone()))?;
        let ep = self.endpoint(addr.is_ipv6())?;
        let conn = timeout(Duration::from_secs(10), ep.connect(addr, &c.server_name)?)
            .await
            .map_err(|_| LinkError::Timeout("the QUIC handshake"))??;
        // Whatever failed, a refusal by the coordinator is the reason worth logging.
        let result = self
            .converse(&conn, hello, reports)
            .await
            .map_err(|e| refusal(&conn, &e).unwrap_or(e));
        conn.close(0u32.into(), b"agent session ended");
        ep.close(0u32.into(), b"");
        result
    }

    async fn converse(
        &self,
        conn: &quinn::Connection,
        hello: AgentMessage,
        reports: &mut mpsc::Receiver<ContainerReport>,
    ) -> Result<(), LinkError> {
        let addr = conn.remote_address();
        let (mut send, mut recv) = conn.open_bi().await?;
        write_frame(&mut send, &hello).await?;
        // A refused client certificate only shows here, at the first read.
        let first = timeout(
            Duration::from_secs(15),
            read_frame::<_, CoordinatorMessage>(&mut recv),
        )
        .await;
        let welcome = match first {
            Err(_) => return Err(LinkError::Timeout("the coordinator's welcome")),
            Ok(Ok(w)) => w,
            Ok(Err(e)) => return Err(e.into()),
        };
        let interval = match welcome {
            Some(CoordinatorMessage::Welcome {
                heartbeat_interval_ms,
                specs,
                ..
            }) => {
                tracing::info!(address = %addr, containers = specs.len(), "connected to the coordinator");
                crate::telemetry::METRICS
                    .link_connected
                    .store(true, Ordering::Relaxed);
                for s in &specs {
                    self.offer(s).await;
                }
                self.reconciler.synced.store(true, Ordering::Relaxed);
                Duration::from_millis(heartbeat_interval_ms.max(200))
            }
            Some(CoordinatorMessage::Refused { reason }) => return Err(LinkError::Refused(reason)),
            Some(other) => return Err(LinkError::Unexpected(format!("{other:?}"))),
            None => return Err(LinkError::Closed),
        };

        let requests = tokio::spawn(self.services.clone().serve(conn.clone()));
        // Frames from the coordinator on the control stream, read apart (reads are not
        // cancel-safe inside select!).
        let (ctl_tx, mut ctl_rx) = mpsc::channel::<CoordinatorMessage>(4);
        let reader = tokio::spawn(async move {
            while let Ok(Some(m)) = read_frame::<_, CoordinatorMessage>(&mut recv).await {
                if ctl_tx.send(m).await.is_err() {
                    break;
                }
            }
        });
        let cert = &self.cfg.coordinator.cert;
        let mut renewal: Option<renew::Pending> = None;
        let mut renew_check = tokio::time::interval(
            renew::lifetime(cert).map_or(Duration::from_secs(60), |l| l.check_every()),
        );
        let mut tick = tokio::time::interval(interval);
        let result = loop {
            tokio::select! {
                _ = tick.tick() => {
                    let used = |id: &str| self.reconciler.volume_used_bytes(id);
                    match heartbeat(&self.host, &self.state, used) {
                        Ok(beat) => {
                            if let Err(e) = write_frame(&mut send, &beat).await {
                                break Err(e.into());
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "cannot read the inventory: heartbeat skipped"),
                    }
                }
                Some(r) = reports.recv() => {
                    if let Err(e) = write_frame(&mut send, &AgentMessage::Status(r)).await {
                        break Err(e.into());
                    }
                }
                _ = renew_check.tick(), if renewal.is_none() => {
                    if let Some(p) = self.start_renewal() {
                        let public_key = p.public_key();
                        if let Err(e) = write_frame(&mut send, &AgentMessage::Renew { public_key }).await {
                            break Err(e.into());
                        }
                        renewal = Some(p);
                    }
                }
                Some(m) = ctl_rx.recv() => match (m, renewal.take()) {
                    (CoordinatorMessage::Renewed { certificate }, Some(p)) => {
                        match renew::install(&self.cfg.coordinator, &p, &certificate) {
                            Ok(()) => {
                                crate::telemetry::METRICS.cert_renewals.fetch_add(1, Ordering::Relaxed);
                                tracing::info!(cert = %cert.display(), "certificate renewed; reconnecting with it");
                                break Ok(());
                            }
                            Err(e) => tracing::warn!(error = %e, "renewed certificate not installed"),
                        }
                    }
                    (CoordinatorMessage::RenewRefused { reason }, _) => {
                        tracing::warn!(%reason, "the coordinator refused to renew this agent's certificate");
                    }
                    (other, pending) => {
                        tracing::debug!(message = ?other, "unexpected control message");
                        renewal = pending;
                    }
                },
                e = conn.closed() => break Err(e.into()),
            }
        };
        reader.abort();
        requests.abort();
        result
    }

    /// A new key to renew with, when the certificate has less than a third of its life left.
    fn start_renewal(&self) -> Option<renew::Pending> {
        let cert = &self.cfg.coordinator.cert;
        let lifetime = renew::lifetime(cert)
            .map_err(|e| tracing::warn!(error = %e, "cannot read the link certificate's validity"))
            .ok()?;
        crate::telemetry::METRICS
            .cert_not_after
            .store(lifetime.not_after, Ordering::Relaxed);
        if !lifetime.due() {
            return None;
        }
        tracing::info!(
            not_after = %berth_shared::time::rfc3339(lifetime.not_after.max(0) as u64),
            "certificate nears its end; asking the coordinator to renew it"
        );
        renew::Pending::new()
            .map_err(|e| tracing::warn!(error = %e, "renewal key"))
            .ok()
    }

    async fn offer(&self, spec: &berth_shared::protocol::ContainerSpec) -> Response {
        self.services.offer(spec).await
    }
}

/// Why the coordinator ended the connection, when it said so: from the connection itself
/// or from the stream error that noticed first.
fn refusal(conn: &quinn::Connection, err: &LinkError) -> Option<LinkError> {
    let from_stream = match err {
        LinkError::Frame(FrameError::Io(io)) => io.get_ref().and_then(|inner| {
            if let Some(quinn::ReadError::ConnectionLost(c)) = inner.downcast_ref() {
                Some(c.clone())
            } else if let Some(quinn::WriteError::ConnectionLost(c)) = inner.downcast_ref() {
                Some(c.clone())
            } else {
                None
            }
        }),
        LinkError::Connection(c) => Some(c.clone()),
        _ => None,
    };
    tracing::debug!(error = ?err, close = ?from_stream, "link error");
    match from_stream.or_else(|| conn.close_reason())? {
        quinn::ConnectionError::ApplicationClosed(c) if c.error_code == REFUSED => Some(
            LinkError::Refused(String::from_utf8_lossy(&c.reason).into_owned()),
        ),
        quinn::ConnectionError::ConnectionClosed(c) => Some(LinkError::Refused(format!(
            "TLS handshake rejected ({c}); is this agent's certificate issued by the coordinator's cluster CA?"
        ))),
        _ => None,
    }
}
