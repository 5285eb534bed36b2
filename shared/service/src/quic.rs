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
///
/// Its stateless-reset key is derived from the coordinator's private key, so a coordinator
/// restarted after a crash resets the connections its previous process held at the first
/// packet of each, and agents dial again at once instead of waiting out the idle timeout.
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
    let bind = |source| QuicError::Bind {
        addr: listen,
        source,
    };
    let key = std::fs::read(files.key).map_err(bind)?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"berth-quic-stateless-reset-v1\n");
    ctx.update(&key);
    let reset = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, ctx.finish().as_ref());
    let socket = std::net::UdpSocket::bind(listen).map_err(bind)?;
    let runtime =
        quinn::default_runtime().ok_or_else(|| bind(std::io::Error::other("no async runtime")))?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::new(Arc::new(reset)),
        Some(server),
        socket,
        runtime,
    )
    .map_err(bind)
}

/// The agent's endpoint, on an ephemeral port of the address family of the coordinator's
/// address (`v6`); it presents the agent's certificate and pings every `keep_alive`.
pub fn client_endpoint(
    files: &TlsFiles,
    v6: bool,
    keep_alive: Duration,
) -> Result<quinn::Endpoint, QuicError> {
    let mut ep = unbound_client(v6)?;
    ep.set_default_client_config(client(client_config(files)?, keep_alive)?);
    Ok(ep)
}

/// The QUIC client config over a rustls one: pings every `keep_alive`.
pub fn client(
    tls: rustls::ClientConfig,
    keep_alive: Duration,
) -> Result<quinn::ClientConfig, QuicError> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(keep_alive));
    client.transport_config(Arc::new(transport));
    Ok(client)
}

/// A client endpoint with no default config, on an ephemeral port of the family of `v6`:
/// each connection brings its own (see [`client`]).
pub fn unbound_client(v6: bool) -> Result<quinn::Endpoint, QuicError> {
    let addr: SocketAddr = if v6 {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    quinn::Endpoint::client(addr).map_err(|source| QuicError::Bind { addr, source })
}
