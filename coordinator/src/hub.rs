//! The agent hub: the QUIC endpoint agents dial, the registry of connected hosts, and dispatch
//! of requests to them over the connections they opened.

use crate::app::App;
use crate::placement::Candidate;
use berth_shared::protocol::{
    read_frame, write_frame, AgentMessage, CoordinatorMessage, FrameError, HostInfo, Request,
    Response, PROTOCOL_VERSION,
};
use berth_shared::tls::{server_config, TlsFiles};
use rustls_pki_types::{CertificateDer, ServerName};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::time::timeout;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("TLS material: {0}")]
    Tls(#[from] berth_shared::tls::TlsError),
    #[error("QUIC endpoint on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("QUIC TLS config: {0}")]
    QuicTls(String),
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

/// One host as the hub knows it.
#[derive(Debug, Clone)]
pub struct HostEntry {
    pub info: HostInfo,
    pub conn: Option<quinn::Connection>,
    pub last_seen: Instant,
    /// Unix seconds of the last message from the host.
    pub last_heartbeat: u64,
    pub cordoned: bool,
}

impl HostEntry {
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }
}

#[derive(Default)]
pub struct Hub {
    hosts: Mutex<HashMap<String, HostEntry>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostEntry>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn hosts(&self) -> Vec<HostEntry> {
        let mut v: Vec<HostEntry> = self.lock().values().cloned().collect();
        v.sort_by(|a, b| a.info.host_key.cmp(&b.info.host_key));
        v
    }

    pub fn host(&self, key: &str) -> Option<HostEntry> {
        self.lock().get(key).cloned()
    }

    pub fn candidates(&self) -> Vec<Candidate> {
        self.lock()
            .values()
            .map(|h| Candidate {
                host_key: h.info.host_key.clone(),
                region: h.info.region.clone(),
                arch: h.info.arch,
                capacity: h.info.capacity,
                connected: h.connected(),
                cordoned: h.cordoned,
            })
            .collect()
    }

    fn register(&self, info: HostInfo, conn: quinn::Connection) {
        let mut hosts = self.lock();
        let cordoned = hosts.get(&info.host_key).is_some_and(|h| h.cordoned);
        if let Some(old) = hosts.get(&info.host_key).and_then(|h| h.conn.clone()) {
            old.close(1u32.into(), b"replaced by a newer connection");
        }
        let key = info.host_key.clone();
        hosts.insert(
            key,
            HostEntry {
                info,
                conn: Some(conn),
                last_seen: Instant::now(),
                last_heartbeat: berth_shared::time::now_unix().0,
                cordoned,
            },
        );
    }

    fn touch(&self, key: &str, info: Option<HostInfo>) {
        if let Some(h) = self.lock().get_mut(key) {
            if let Some(info) = info {
                h.info = info;
            }
            h.last_seen = Instant::now();
            h.last_heartbeat = berth_shared::time::now_unix().0;
        }
    }

    /// Forgets the connection if it is still the host's current one.
    fn disconnect(&self, key: &str, conn: &quinn::Connection) {
        if let Some(h) = self.lock().get_mut(key) {
            if h.conn
                .as_ref()
                .is_some_and(|c| c.stable_id() == conn.stable_id())
            {
                h.conn = None;
            }
        }
    }

    /// Marks hosts silent for longer than `grace` unreachable and closes their connections.
    pub fn sweep(&self, grace: Duration) -> Vec<String> {
        let mut gone = Vec::new();
        for h in self.lock().values_mut() {
            if h.conn.is_some() && h.last_seen.elapsed() > grace {
                if let Some(c) = h.conn.take() {
                    c.close(2u32.into(), b"heartbeat grace exceeded");
                }
                gone.push(h.info.host_key.clone());
            }
        }
        gone
    }

    /// Opens a long-lived stream for `req` (logs, terminal) and reads the agent's first answer;
    /// the caller keeps both halves.
    pub async fn open(
        &self,
        host: &str,
        req: &Request,
    ) -> Result<(Response, quinn::SendStream, quinn::RecvStream), HubError> {
        let conn = self
            .host(host)
            .and_then(|h| h.conn)
            .ok_or_else(|| HubError::NotConnected(host.to_string()))?;
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
            Ok(Ok(Some(r))) => Ok((r, send, recv)),
            Ok(Ok(None)) => Err(HubError::Refused("stream closed without an answer".into())),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// Sends one request on its own stream and waits for the answer.
    pub async fn request(&self, host: &str, req: &Request) -> Result<Response, HubError> {
        let (resp, mut send, _recv) = self.open(host, req).await?;
        let _ = send.finish();
        Ok(resp)
    }
}

/// Binds the QUIC endpoint for agents.
pub fn bind(cfg: &crate::config::LinkConfig) -> Result<quinn::Endpoint, HubError> {
    let tls = server_config(&TlsFiles {
        ca_cert: &cfg.ca_cert,
        cert: &cfg.cert,
        key: &cfg.key,
    })?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| HubError::QuicTls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(cfg.heartbeat_grace)
            .unwrap_or(quinn::VarInt::from_u32(30_000).into()),
    ));
    server.transport_config(Arc::new(transport));
    quinn::Endpoint::server(server, cfg.listen).map_err(|source| HubError::Bind {
        addr: cfg.listen,
        source,
    })
}

/// Accepts agents until the endpoint closes.
pub async fn serve(app: Arc<App>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let app = app.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            if let Err(e) = serve_agent(app, incoming).await {
                tracing::warn!(%remote, error = %e, "agent connection ended");
            }
        });
    }
}

fn certificate_names(conn: &quinn::Connection, host_key: &str) -> bool {
    let Some(certs) = conn
        .peer_identity()
        .and_then(|i| i.downcast::<Vec<CertificateDer<'static>>>().ok())
    else {
        return false;
    };
    let Some(leaf) = certs.first() else {
        return false;
    };
    let (Ok(cert), Ok(name)) = (
        webpki::EndEntityCert::try_from(leaf),
        ServerName::try_from(host_key),
    ) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

async fn serve_agent(app: Arc<App>, incoming: quinn::Incoming) -> Result<(), HubError> {
    let conn = incoming.await?;
    let (mut send, mut recv) = timeout(Duration::from_secs(10), conn.accept_bi())
        .await
        .map_err(|_| HubError::Timeout("the control stream"))??;
    let hello = timeout(
        Duration::from_secs(10),
        read_frame::<_, AgentMessage>(&mut recv),
    )
    .await
    .map_err(|_| HubError::Timeout("hello"))??;
    let Some(AgentMessage::Hello {
        protocol,
        host,
        inventory,
    }) = hello
    else {
        return Err(HubError::Refused("first message was not hello".into()));
    };
    let why = if protocol != PROTOCOL_VERSION {
        Some(format!(
            "protocol {protocol} not supported (coordinator speaks {PROTOCOL_VERSION})"
        ))
    } else if !certificate_names(&conn, &host.host_key) {
        Some(format!(
            "certificate does not name host key {:?}",
            host.host_key
        ))
    } else {
        None
    };
    if let Some(why) = why {
        // Say why on the stream and in the close frame; give the agent a moment to read it.
        let refused = CoordinatorMessage::Refused {
            reason: why.clone(),
        };
        let _ = write_frame(&mut send, &refused).await;
        let _ = send.finish();
        let _ = timeout(Duration::from_secs(2), conn.closed()).await;
        conn.close(3u32.into(), why.as_bytes());
        return Err(HubError::Refused(why));
    }
    let key = host.host_key.clone();
    tracing::info!(host = %key, region = %host.region, arch = %host.arch, remote = %conn.remote_address(), "agent connected");
    app.hub.register(host, conn.clone());
    app.on_inventory(&key, inventory).await;
    let specs = app.desired_for_host(&key);
    write_frame(
        &mut send,
        &CoordinatorMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            heartbeat_interval_ms: app.config.link.heartbeat_interval.as_millis() as u64,
            specs,
        },
    )
    .await?;
    app.place_pending().await;

    let result = loop {
        match read_frame::<_, AgentMessage>(&mut recv).await {
            Ok(Some(AgentMessage::Heartbeat { host, inventory })) => {
                if host.host_key != key {
                    break Err(HubError::Refused(format!(
                        "heartbeat names host {:?}",
                        host.host_key
                    )));
                }
                app.hub.touch(&key, Some(host));
                app.on_inventory(&key, inventory).await;
            }
            Ok(Some(AgentMessage::Status(report))) => {
                app.hub.touch(&key, None);
                app.on_report(&key, report).await;
            }
            Ok(Some(AgentMessage::Renew { public_key })) => {
                // The host key comes from this connection's verified certificate (checked
                // at hello), never from the message.
                let answer = match crate::pki::issue_for_key(&app.config.link, &key, &public_key) {
                    Ok((certificate, _)) => {
                        tracing::info!(host = %key, "agent certificate renewed");
                        CoordinatorMessage::Renewed { certificate }
                    }
                    Err(e) => {
                        tracing::warn!(host = %key, error = %e, "agent certificate renewal refused");
                        CoordinatorMessage::RenewRefused {
                            reason: e.to_string(),
                        }
                    }
                };
                if let Err(e) = write_frame(&mut send, &answer).await {
                    break Err(e.into());
                }
            }
            Ok(Some(AgentMessage::Hello { .. })) => {
                break Err(HubError::Refused("second hello".into()))
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e.into()),
        }
    };
    app.hub.disconnect(&key, &conn);
    tracing::info!(host = %key, "agent disconnected");
    result
}
