//! The QUIC endpoints of the agent<->coordinator link: the coordinator's server endpoint that
//! agents dial and the agent's client endpoint, both over [`crate::tls`]'s mutual-TLS configs.

use crate::tls::{client_config, server_config, TlsError, TlsFiles};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    #[error("TLS material: {0}")]
    Tls(#[from] TlsError),
    #[error("QUIC TLS config: {0}")]
    Crypto(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    #[error("QUIC endpoint on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Idle timeout used when the asked-for one is beyond what QUIC can carry.
const FALLBACK_IDLE: quinn::VarInt = quinn::VarInt::from_u32(30_000);

/// The coordinator's endpoint on `listen`: only clients with a certificate of the cluster CA
/// get in, and a connection silent for `idle_timeout` is closed.
pub fn server_endpoint(
    listen: SocketAddr,
    files: &TlsFiles,
    idle_timeout: Duration,
) -> Result<quinn::Endpoint, QuicError> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(server_config(files)?)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(idle_timeout).unwrap_or(FALLBACK_IDLE.into()),
    ));
    server.transport_config(Arc::new(transport));
    quinn::Endpoint::server(server, listen).map_err(|source| QuicError::Bind {
        addr: listen,
        source,
    })
}

/// The agent's endpoint, on an ephemeral port of the address family of the coordinator's
/// address (`v6`); it presents the agent's certificate and pings every `keep_alive`.
pub fn client_endpoint(
    files: &TlsFiles,
    v6: bool,
    keep_alive: Duration,
) -> Result<quinn::Endpoint, QuicError> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_config(files)?)?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(keep_alive));
    client.transport_config(Arc::new(transport));
    let addr: SocketAddr = if v6 {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let mut ep =
        quinn::Endpoint::client(addr).map_err(|source| QuicError::Bind { addr, source })?;
    ep.set_default_client_config(client);
    Ok(ep)
}
