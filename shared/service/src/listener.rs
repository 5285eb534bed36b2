//! A TCP accept loop that survives its errors and caps its connections (after mini-redis's
//! `Listener::accept`). `accept` failures — most often `EMFILE`/`ENFILE` when descriptors run
//! out, or `ECONNABORTED` — are retried after a pause that doubles from 1 ms to 1 s, so a
//! listener never spins on an error that the next call would repeat. Each connection comes
//! with an owned semaphore permit; holding it for the connection's life caps how many run at
//! once, and the next `accept` waits while the cap is reached. An optional cap per client
//! address ([`Listener::per_peer`]) keeps one client from taking every place: its next
//! connection is closed at once while it holds that many.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The first pause after a failed `accept`.
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// The longest pause between two failed `accept`s.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A bound listener with a cap on concurrent connections.
pub struct Listener {
    listener: TcpListener,
    limit: Arc<Semaphore>,
    per_peer: usize,
    peers: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One accepted connection. Keep `permit` until the connection is done: dropping it frees a
/// place under the listener's caps.
pub struct Connection {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub permit: Permit,
}

/// A connection's places under the listener's caps, given back when dropped.
pub struct Permit {
    _all: OwnedSemaphorePermit,
    peer: IpAddr,
    peers: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = peers.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                peers.remove(&self.peer);
            }
        }
    }
}

impl Listener {
    /// Serves `listener` with at most `max_connections` connections at once.
    pub fn new(listener: TcpListener, max_connections: usize) -> Listener {
        Listener {
            listener,
            limit: Arc::new(Semaphore::new(max_connections)),
            per_peer: usize::MAX,
            peers: Arc::default(),
        }
    }

    /// At most `max` connections at once from one client address.
    pub fn per_peer(mut self, max: usize) -> Listener {
        self.per_peer = max.max(1);
        self
    }

    /// Binds `addr` and serves it with at most `max_connections` connections at once.
    pub async fn bind(addr: SocketAddr, max_connections: usize) -> io::Result<Listener> {
        Ok(Listener::new(
            TcpListener::bind(addr).await?,
            max_connections,
        ))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection, once the cap leaves room for it. Never fails: errors are logged
    /// and retried with backoff.
    pub async fn accept(&self) -> Connection {
        let Ok(all) = self.limit.clone().acquire_owned().await else {
            unreachable!("a listener never closes its semaphore")
        };
        loop {
            let (stream, peer) = retry(|| self.listener.accept()).await;
            let ip = peer.ip();
            {
                let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
                let n = peers.entry(ip).or_default();
                if *n >= self.per_peer {
                    tracing::debug!(%peer, cap = self.per_peer, "connection refused: too many from this address");
                    continue;
                }
                *n += 1;
            }
            let permit = Permit {
                _all: all,
                peer: ip,
                peers: self.peers.clone(),
            };
            return Connection {
                stream,
                peer,
                permit,
            };
        }
    }
}

/// Pauses between failed attempts: 1 ms, doubling, at most 1 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(FIRST_BACKOFF)
    }

    /// The pause before the next attempt; the one after it is twice as long.
    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        now
    }
}

/// Runs `attempt` until it succeeds, pausing with [`Backoff`] after each failure.
async fn retry<T, F, Fut>(mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut backoff = Backoff::new();
    loop {
        match attempt().await {
            Ok(v) => return v,
            Err(e) => {
                let pause = backoff.next();
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "accept failed");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Instant;

    #[tokio::test]
    async fn the_cap_holds_until_a_permit_is_dropped() {
        let l = Listener::bind((Ipv4Addr::LOCALHOST, 0).into(), 2)
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.expect("connect"));
        }
        let first = l.accept().await;
        let _second = l.accept().await;
        let third = tokio::time::timeout(Duration::from_millis(200), l.accept()).await;
        assert!(
            third.is_err(),
            "a third connection was handed out over a cap of 2"
        );
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), l.accept()).await;
        assert!(
            third.is_ok(),
            "a freed place was not handed to the waiting connection"
        );
    }

    #[tokio::test]
    async fn one_address_cannot_take_more_than_its_share() {
        let l = Listener::bind((Ipv4Addr::LOCALHOST, 0).into(), 10)
            .await
            .expect("bind")
            .per_peer(2);
        let addr = l.local_addr().expect("addr");
        let near = |ip: [u8; 4]| async move {
            let s = tokio::net::TcpSocket::new_v4().expect("socket");
            s.bind((Ipv4Addr::from(ip), 0).into()).expect("bind client");
            s.connect(addr).await.expect("connect")
        };
        let _a = [near([127, 0, 0, 2]).await, near([127, 0, 0, 2]).await];
        let mut over = near([127, 0, 0, 2]).await;
        let _b = near([127, 0, 0, 3]).await;
        let (first, second) = (l.accept().await, l.accept().await);
        // The third from 127.0.0.2 is closed; the one from 127.0.0.3 is served.
        let third = l.accept().await;
        assert_eq!(third.peer.ip(), Ipv4Addr::new(127, 0, 0, 3));
        let n = tokio::io::AsyncReadExt::read(&mut over, &mut [0u8; 1]).await;
        assert!(
            matches!(n, Ok(0) | Err(_)),
            "the over-cap connection stayed open"
        );
        drop((first, second));
        let _again = near([127, 0, 0, 2]).await;
        tokio::time::timeout(Duration::from_secs(5), l.accept())
            .await
            .expect("freed places were not given back to the address");
    }

    #[tokio::test]
    async fn errors_are_retried_with_growing_pauses_not_in_a_spin() {
        let mut calls = 0u32;
        let began = Instant::now();
        let got = retry(|| {
            calls += 1;
            let n = calls;
            async move {
                if n <= 5 {
                    Err(io::Error::from_raw_os_error(24)) // EMFILE
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(got, 6);
        // 1 + 2 + 4 + 8 + 16 ms of pauses: five failures, not a busy loop of thousands.
        assert_eq!(calls, 6);
        assert!(
            began.elapsed() >= Duration::from_millis(31),
            "{:?}",
            began.elapsed()
        );
    }

    #[test]
    fn backoff_doubles_from_a_millisecond_to_a_second() {
        let mut b = Backoff::new();
        let pauses: Vec<u64> = (0..12).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000]);
    }
}
