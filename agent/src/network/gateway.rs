//! The shared ingress ports of a host: HTTP on 80, routed by the `Host` header, and HTTPS on
//! 443, terminated here with rustls and routed by SNI — both to `<id>.<domain>`'s container
//! and `target_port`. An unknown name gets a 404 page at once, never a hang.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::{Arc, RwLock};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head read before routing.
const MAX_HEAD: usize = 16 * 1024;

/// host name → destination, per scheme.
#[derive(Default)]
pub struct Routes {
    pub http: HashMap<String, SocketAddrV4>,
    pub https: HashMap<String, SocketAddrV4>,
}

#[derive(Clone, Default)]
pub struct Gateway {
    routes: Arc<RwLock<Routes>>,
}

fn not_found(host: &str) -> Vec<u8> {
    let body = format!("no container answers at {host}\n");
    format!(
        "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The `Host` header of a request head, lower-cased, without a port.
fn host_of(head: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case("host").then(|| {
            let v = v.trim();
            v.rsplit_once(':')
                .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
                .map_or(v, |(h, _)| h)
                .to_ascii_lowercase()
        })
    })
}

const BAD_GATEWAY: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Connects to the container and sends it what was already read from the client.
async fn upstream(dest: SocketAddrV4, head: &[u8]) -> Option<TcpStream> {
    let mut up = TcpStream::connect(dest).await.ok()?;
    let _ = up.set_nodelay(true);
    up.write_all(head).await.ok()?;
    Some(up)
}

/// Plain HTTP: after the head, bytes move with `splice(2)`.
async fn pass_plain(mut client: TcpStream, dest: SocketAddrV4, head: &[u8]) {
    match upstream(dest, head).await {
        Some(up) => {
            let _ = super::relay::relay(&client, &up).await;
        }
        None => {
            let _ = client.write_all(BAD_GATEWAY).await;
        }
    }
}

/// TLS: decrypted here, so bytes go through user space in large buffers.
async fn pass_tls<S>(mut client: S, dest: SocketAddrV4)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match upstream(dest, &[]).await {
        Some(mut up) => {
            let _ = tokio::io::copy_bidirectional_with_sizes(
                &mut client,
                &mut up,
                super::RELAY_BUF,
                super::RELAY_BUF,
            )
            .await;
        }
        None => {
            let _ = client.write_all(BAD_GATEWAY).await;
        }
    }
}

impl Gateway {
    pub fn set(&self, routes: Routes) {
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
    }

    fn lookup(&self, https: bool, host: &str) -> Option<SocketAddrV4> {
        let r = self.routes.read().unwrap_or_else(|p| p.into_inner());
        if https {
            r.https.get(host)
        } else {
            r.http.get(host)
        }
        .copied()
    }

    pub async fn serve_http(self, listener: TcpListener) {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let gw = self.clone();
            tokio::spawn(async move {
                let _ = conn.set_nodelay(true);
                let mut head = Vec::with_capacity(1024);
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let host = host_of(&head).unwrap_or_default();
                match gw.lookup(false, &host) {
                    Some(dest) => pass_plain(conn, dest, &head).await,
                    None => {
                        let _ = conn.write_all(&not_found(&host)).await;
                    }
                }
            });
        }
    }

    pub async fn serve_https(self, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            let (gw, acceptor) = (self.clone(), acceptor.clone());
            tokio::spawn(async move {
                let _ = conn.set_nodelay(true);
                let Ok(Ok(mut tls)) =
                    tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(conn))
                        .await
                else {
                    return;
                };
                let host = tls
                    .get_ref()
                    .1
                    .server_name()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                match gw.lookup(true, &host) {
                    Some(dest) => pass_tls(tls, dest).await,
                    None => {
                        let _ = tls.write_all(&not_found(&host)).await;
                        let _ = tls.shutdown().await;
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_are_found_in_any_case_without_ports() {
        let head = b"GET / HTTP/1.1\r\nUser-Agent: x\r\nHOST: Abc12345.Berth.Test:80\r\n\r\n";
        assert_eq!(host_of(head).as_deref(), Some("abc12345.berth.test"));
        assert_eq!(host_of(b"GET / HTTP/1.0\r\n\r\n"), None);
    }
}
