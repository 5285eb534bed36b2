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

/// Socket buffer asked for (the kernel caps it at `net.core.rmem_max` / `wmem_max`).
const SOCKET_BUFFER: usize = 8 << 20;

/// Gives a UDP socket room for a burst: a thousand agents dialling a restarted coordinator at
/// once overflow the default 208 KiB, and every Initial dropped there costs its agent a
/// retransmission timeout (seconds, doubling).
fn roomy(socket: &std::net::UdpSocket) {
    let s = socket2::SockRef::from(socket);
    if let Err(e) = s
        .set_recv_buffer_size(SOCKET_BUFFER)
        .and_then(|()| s.set_send_buffer_size(SOCKET_BUFFER))
    {
        tracing::warn!(error = %e, "cannot enlarge the QUIC socket's buffers");
    }
}

/// Random 8-byte connection ids that any later coordinator process answers with a reset.
struct RandomCids;

impl quinn::ConnectionIdGenerator for RandomCids {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        let mut id = [0u8; 8];
        // aws-lc's system RNG does not fail on Linux.
        let _ = aws_lc_rs::rand::fill(&mut id);
        quinn::ConnectionId::new(&id)
    }

    fn cid_len(&self) -> usize {
        8
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
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
    roomy(&socket);
    let runtime =
        quinn::default_runtime().ok_or_else(|| bind(std::io::Error::other("no async runtime")))?;
    let mut endpoint = quinn::EndpointConfig::new(Arc::new(reset));
    // quinn's default (one reset per 20 ms) would take a restarted coordinator 20 s to reset
    // a thousand agents; a reset is smaller than the packet that caused it, so there is no
    // amplification to guard against.
    endpoint.min_reset_interval(Duration::from_micros(50));
    // quinn's default connection ids are signed with a key of this process, and packets for
    // ids of an earlier process are dropped unanswered instead of reset: plain random ids.
    endpoint.cid_generator(|| Box::new(RandomCids));
    quinn::Endpoint::new(endpoint, Some(server), socket, runtime).map_err(bind)
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
    let bind = |source| QuicError::Bind { addr, source };
    let socket = std::net::UdpSocket::bind(addr).map_err(bind)?;
    roomy(&socket);
    let runtime =
        quinn::default_runtime().ok_or_else(|| bind(std::io::Error::other("no async runtime")))?;
    quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime).map_err(bind)
}
