//! The shared ingress ports of a host: HTTP on 80, routed by the `Host` header, and HTTPS on
//! 443, terminated here with rustls and routed by SNI — both to `<id>.<domain>`'s container
//! and `target_port`, request by request ([`super::proxy`]). An unknown name gets a 404 page
//! at once, never a hang.

use super::proxy::{self, Front, Upstream};
use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// host name → destination, per scheme.
#[derive(Default)]
pub struct Routes {
    pub http: HashMap<String, SocketAddrV4>,
    pub https: HashMap<String, SocketAddrV4>,
}

#[derive(Clone, Default)]
pub struct Gateway {
    routes: Arc<RwLock<Routes>>,
    upstream: Upstream,
}

impl Gateway {
    pub fn set(&self, routes: Routes) {
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
    }

    pub(super) fn lookup(&self, https: bool, host: &str) -> Option<SocketAddrV4> {
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
            let Ok((conn, peer)) = listener.accept().await else {
                continue;
            };
            let _ = conn.set_nodelay(true);
            let front = Front {
                peer: peer.ip(),
                https: false,
                sni: None,
            };
            let (gw, up) = (self.clone(), self.upstream.clone());
            tokio::spawn(proxy::serve(conn, gw, up, front));
        }
    }

    pub async fn serve_https(self, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let Ok((conn, peer)) = listener.accept().await else {
                continue;
            };
            let (gw, acceptor) = (self.clone(), acceptor.clone());
            tokio::spawn(async move {
                let _ = conn.set_nodelay(true);
                let Ok(Ok(tls)) =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await
                else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(proxy::host_name);
                let front = Front {
                    peer: peer.ip(),
                    https: true,
                    sni,
                };
                let up = gw.upstream.clone();
                proxy::serve(tls, gw, up, front).await;
            });
        }
    }
}

#[cfg(test)]
mod tests;
