//! One session after another: resolve, dial, hello, welcome, then heartbeats, reports,
//! renewal and the coordinator's control messages until the connection ends; then a jittered
//! delay and the next. An inventory that cannot be read is never sent as an empty one: no
//! hello (no session) and no heartbeat until it can.

use crate::{Backoff, Host, LinkError, Renewal, KEEP_ALIVE};
use berth_service::quic;
use berth_service::tls::TlsFiles;
use berth_shared::protocol::{
    read_frame, write_frame, AgentMessage, ContainerReport, CoordinatorMessage, FrameError,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::lookup_host;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Application close code with which the coordinator refuses an agent.
const REFUSED: quinn::VarInt = quinn::VarInt::from_u32(3);

/// Where the endpoint a session dials from comes from.
pub enum Endpoints {
    /// A fresh endpoint per session presenting the certificate in these files, read anew
    /// each time (a renewal replaces them). The agent's way.
    Files {
        ca_cert: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
    /// An endpoint shared with other hosts (one UDP socket for many) and this host's own
    /// client config. The fleet simulator's way.
    Shared {
        endpoint: quinn::Endpoint,
        config: quinn::ClientConfig,
    },
}

/// Whom to dial and how.
pub struct Dial {
    /// `host:port` of the coordinator's QUIC endpoint.
    pub address: String,
    /// The name its certificate must carry.
    pub server_name: String,
    pub endpoints: Endpoints,
}

impl Dial {
    async fn connect(&self) -> Result<(quinn::Connection, Option<quinn::Endpoint>), LinkError> {
        let addr = lookup_host(&self.address)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| LinkError::Resolve(self.address.clone()))?;
        let (connecting, own) = match &self.endpoints {
            Endpoints::Files { ca_cert, cert, key } => {
                let files = TlsFiles { ca_cert, cert, key };
                let ep = quic::client_endpoint(&files, addr.is_ipv6(), KEEP_ALIVE)?;
                (ep.connect(addr, &self.server_name)?, Some(ep))
            }
            Endpoints::Shared { endpoint, config } => (
                endpoint.connect_with(config.clone(), addr, &self.server_name)?,
                None,
            ),
        };
        let conn = timeout(Duration::from_secs(10), connecting)
            .await
            .map_err(|_| LinkError::Timeout("the QUIC handshake"))??;
        Ok((conn, own))
    }
}

/// Runs sessions for `host` until the task is dropped, reconnecting with [`Backoff`].
pub async fn run<H: Host>(host: Arc<H>, dial: Dial, mut reports: mpsc::Receiver<ContainerReport>) {
    let mut backoff = Backoff::default();
    loop {
        let mut welcomed = false;
        match session(&host, &dial, &mut reports, &mut welcomed).await {
            Ok(()) => tracing::info!("link session ended"),
            Err(e @ (LinkError::Refused(_) | LinkError::Inventory(_))) => {
                tracing::error!(error = %e, "link failed")
            }
            Err(e) => tracing::warn!(error = %e, "link down"),
        }
        host.link_up(false);
        // A session that was welcomed ends the run of failures: a host that just came back
        // and then lost a restarting coordinator dials again as soon as anyone.
        if welcomed {
            backoff.reset();
        }
        let delay = backoff.delay();
        tracing::info!(
            retry_in_ms = delay.as_millis() as u64,
            "reconnecting to the coordinator"
        );
        tokio::time::sleep(delay).await;
    }
}

async fn session<H: Host>(
    host: &Arc<H>,
    dial: &Dial,
    reports: &mut mpsc::Receiver<ContainerReport>,
    welcomed: &mut bool,
) -> Result<(), LinkError> {
    // Read first: without an inventory to say hello with, there is no session.
    let hello = host.hello().map_err(LinkError::Inventory)?;
    let (conn, own) = dial.connect().await?;
    // Whatever failed, a refusal by the coordinator is the reason worth logging.
    let result = converse(host, &conn, hello, reports, welcomed)
        .await
        .map_err(|e| refusal(&conn, &e).unwrap_or(e));
    conn.close(0u32.into(), b"agent session ended");
    if let Some(ep) = own {
        ep.close(0u32.into(), b"");
    }
    result
}

async fn converse<H: Host>(
    host: &Arc<H>,
    conn: &quinn::Connection,
    hello: AgentMessage,
    reports: &mut mpsc::Receiver<ContainerReport>,
    welcomed: &mut bool,
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
            registries,
            ..
        }) => {
            tracing::info!(address = %addr, containers = specs.len(), "connected to the coordinator");
            host.link_up(true);
            *welcomed = true;
            host.clone().welcome(specs, registries).await;
            Duration::from_millis(heartbeat_interval_ms.max(200))
        }
        Some(CoordinatorMessage::Refused { reason }) => return Err(LinkError::Refused(reason)),
        Some(other) => return Err(LinkError::Unexpected(format!("{other:?}"))),
        None => return Err(LinkError::Closed),
    };

    let requests = tokio::spawn(host.clone().serve(conn.clone()));
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
    let mut renewal: Option<Box<dyn Renewal>> = None;
    let mut renew_check = tokio::time::interval(host.renewal_check());
    let mut tick = tokio::time::interval(interval);
    let result = loop {
        tokio::select! {
            _ = tick.tick() => match host.heartbeat() {
                Ok(beat) => {
                    if let Err(e) = write_frame(&mut send, &beat).await {
                        break Err(e.into());
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read the inventory: heartbeat skipped"),
            },
            Some(r) = reports.recv() => {
                if let Err(e) = write_frame(&mut send, &AgentMessage::Status(r)).await {
                    break Err(e.into());
                }
            }
            _ = renew_check.tick(), if renewal.is_none() => {
                if let Some(p) = host.start_renewal() {
                    let public_key = p.public_key();
                    if let Err(e) = write_frame(&mut send, &AgentMessage::Renew { public_key }).await {
                        break Err(e.into());
                    }
                    renewal = Some(p);
                }
            }
            Some(m) = ctl_rx.recv() => match (m, renewal.take()) {
                (CoordinatorMessage::Renewed { certificate }, Some(p)) => match p.install(&certificate) {
                    Ok(()) => {
                        host.renewed();
                        tracing::info!("certificate renewed; reconnecting with it");
                        break Ok(());
                    }
                    Err(e) => tracing::warn!(error = %e, "renewed certificate not installed"),
                },
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
