//! Local port forwarding (`ssh -L`): a `direct-tcpip` channel becomes a TCP connection made
//! from inside the container's network namespace, to the container itself only — its
//! loopback or its own address. The host, other containers and anything beyond are refused
//! before any packet is sent; so is every forward when containers have no network of their
//! own (they would share the host's).

use russh::server::Msg;
use russh::Channel;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A connection inside the container that does not answer within this is refused.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Forwarded connections one SSH connection may hold at once.
pub(super) const MAX_FORWARDS: usize = 64;

/// Why a forward is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refused {
    #[error("port {0} is not a TCP port")]
    Port(u32),
    #[error("{0} is not this container: only its loopback and its own address are reachable")]
    Elsewhere(String),
    #[error("containers on this host have no network of their own")]
    NoNetwork,
}

/// The address `host:port` names inside the container whose own address is `own`.
pub(super) fn target(host: &str, port: u32, own: Option<Ipv4Addr>) -> Result<SocketAddr, Refused> {
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(Refused::Port(port))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "localhost" | "ip6-localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h
            .parse::<IpAddr>()
            .map_err(|_| Refused::Elsewhere(h.into()))?,
    };
    let inside = ip.is_loopback() || matches!((ip, own), (IpAddr::V4(a), Some(o)) if a == o);
    if !inside {
        return Err(Refused::Elsewhere(host.into()));
    }
    Ok(SocketAddr::new(
        if ip == IpAddr::V6(Ipv6Addr::LOCALHOST) {
            ip
        } else {
            ip.to_canonical()
        },
        port,
    ))
}

/// Connects to `addr` from inside the network namespace at `netns`: on a thread of its own
/// that enters the namespace (setns changes only the calling thread) and ends afterwards; the
/// socket stays in the namespace it was made in.
pub(super) async fn connect_in(
    netns: PathBuf,
    addr: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-forward".into())
        .spawn(move || {
            let _ = tx.send(connect_blocking(&netns, addr));
        })?;
    let stream = rx
        .await
        .map_err(|_| std::io::Error::other("the forwarding thread ended"))??;
    stream.set_nonblocking(true)?;
    let stream = tokio::net::TcpStream::from_std(stream)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn connect_blocking(netns: &Path, addr: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let ns = std::fs::File::open(netns)?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
    std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
}

/// Copies both ways between the channel and the connection until both ends are done.
pub(super) async fn bridge(channel: Channel<Msg>, mut stream: tokio::net::TcpStream) {
    let mut ch = channel.into_stream();
    match tokio::io::copy_bidirectional(&mut ch, &mut stream).await {
        Ok((up, down)) => tracing::debug!(up, down, "forwarded connection closed"),
        Err(e) => tracing::debug!(error = %e, "forwarded connection ended with an error"),
    }
}

#[cfg(test)]
mod tests {
    use super::{target, Refused};
    use std::net::Ipv4Addr;

    #[test]
    fn only_the_container_itself_is_reachable() {
        let own = Some(Ipv4Addr::new(10, 88, 0, 7));
        let ok = |h: &str| target(h, 8080, own).map(|a| a.to_string());
        assert_eq!(ok("localhost").as_deref(), Ok("127.0.0.1:8080"));
        assert_eq!(ok("127.0.0.1").as_deref(), Ok("127.0.0.1:8080"));
        assert_eq!(ok("::1").as_deref(), Ok("[::1]:8080"));
        assert_eq!(ok("[::1]").as_deref(), Ok("[::1]:8080"));
        assert_eq!(ok("10.88.0.7").as_deref(), Ok("10.88.0.7:8080"));
        for far in [
            "10.88.0.8",
            "10.88.0.1",
            "192.168.1.1",
            "example.com",
            "0.0.0.0",
            "",
        ] {
            assert!(
                matches!(target(far, 80, own), Err(Refused::Elsewhere(_))),
                "{far}"
            );
        }
        assert_eq!(target("localhost", 0, own), Err(Refused::Port(0)));
        assert_eq!(target("localhost", 70000, own), Err(Refused::Port(70000)));
        assert!(target("10.88.0.7", 80, None).is_err());
    }
}
