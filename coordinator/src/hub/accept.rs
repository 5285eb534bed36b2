//! The QUIC endpoint agents dial: mutual TLS, the hello handshake (protocol version, the
//! certificate must name the host key the agent claims), then the control stream's messages
//! turned into [`AgentEvent`]s.

use super::{AgentEvent, DesiredSet, Hub, HubError};
use berth_service::quic;
use berth_service::tls::TlsFiles;
use berth_shared::protocol::{
    read_frame, write_frame, AgentMessage, CoordinatorMessage, PROTOCOL_VERSION,
};
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::timeout;

/// Binds the QUIC endpoint for agents.
pub fn bind(cfg: &crate::config::LinkConfig) -> Result<quinn::Endpoint, HubError> {
    let files = TlsFiles {
        ca_cert: &cfg.ca_cert,
        cert: &cfg.cert,
        key: &cfg.key,
    };
    Ok(quic::server_endpoint(
        cfg.listen,
        &files,
        cfg.heartbeat_grace,
    )?)
}

/// Accepts agents until the endpoint closes.
pub async fn serve(hub: Arc<Hub>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let hub = hub.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            if let Err(e) = serve_agent(&hub, incoming).await {
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

async fn serve_agent(hub: &Hub, incoming: quinn::Incoming) -> Result<(), HubError> {
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
    hub.register(&key, conn.clone());
    let result = control(hub, &key, host, inventory, &mut send, &mut recv).await;
    if hub.unregister(&key, &conn) {
        let _ = hub
            .emit(AgentEvent::Disconnected { host: key.clone() })
            .await;
    }
    tracing::info!(host = %key, "agent disconnected");
    result
}

/// The welcome, then every message on the control stream until it ends.
async fn control(
    hub: &Hub,
    key: &str,
    host: berth_shared::protocol::HostInfo,
    inventory: Vec<berth_shared::protocol::ContainerReport>,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
) -> Result<(), HubError> {
    let (welcome, specs) = oneshot::channel();
    hub.emit(AgentEvent::Connected {
        host,
        inventory,
        welcome,
    })
    .await?;
    let DesiredSet { specs, registries } = specs.await.map_err(|_| {
        HubError::Refused("the coordinator could not read this host's desired set".into())
    })?;
    write_frame(
        send,
        &CoordinatorMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            heartbeat_interval_ms: hub.heartbeat_interval.as_millis() as u64,
            specs,
            registries,
        },
    )
    .await?;
    loop {
        let ev = match read_frame::<_, AgentMessage>(recv).await? {
            None => return Ok(()),
            Some(AgentMessage::Heartbeat { host, inventory }) => {
                if host.host_key != key {
                    return Err(HubError::Refused(format!(
                        "heartbeat names host {:?}",
                        host.host_key
                    )));
                }
                AgentEvent::Heartbeat { host, inventory }
            }
            Some(AgentMessage::Status(report)) => AgentEvent::Report {
                host: key.to_string(),
                report,
            },
            Some(AgentMessage::Renew { public_key }) => {
                // The host key comes from this connection's verified certificate (checked
                // at hello), never from the message.
                let (answer, reply) = oneshot::channel();
                hub.emit(AgentEvent::Renew {
                    host: key.to_string(),
                    public_key,
                    answer,
                })
                .await?;
                let answer = reply
                    .await
                    .map_err(|_| HubError::Refused("renewal not answered".into()))?;
                write_frame(send, &answer).await?;
                continue;
            }
            Some(AgentMessage::Hello { .. }) => {
                return Err(HubError::Refused("second hello".into()))
            }
        };
        hub.emit(ev).await?;
    }
}
