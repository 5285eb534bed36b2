//! The shared ingress ports of a host: HTTP on 80, routed by the `Host` header, and HTTPS on
//! 443, terminated here with rustls and routed by SNI — both to `<id>.<domain>`'s container
//! and `target_port`, request by request ([`super::proxy`], over the [`RouteTable`]). An
//! unknown name gets a 404 page at once, never a hang.

use super::proxy::{self, Front, Upstream};
use super::routes::{RouteTable, Routes};
use berth_service::listener::Listener;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Client connections served at once on each gateway port (each holds a socket to its
/// container too); further clients wait in the kernel's backlog until one ends.
pub const MAX_CONNECTIONS: usize = 1024;

#[derive(Clone, Default)]
pub struct Gateway {
    routes: RouteTable,
    upstream: Upstream,
}

impl Gateway {
    /// Replaces every route at once.
    pub fn set(&self, routes: Routes) {
        self.routes.set(routes);
    }

    /// The routes in force.
    pub fn routes(&self) -> Routes {
        self.routes.get()
    }

    /// Serves plain HTTP on `listener` (port 80), routed by `Host`.
    pub async fn serve_http(self, listener: Listener) {
        self.serve(listener, None).await
    }

    /// Serves HTTPS on `listener` (port 443), terminated with `tls` and routed by SNI.
    pub async fn serve_https(self, listener: Listener, tls: Arc<rustls::ServerConfig>) {
        self.serve(listener, Some(TlsAcceptor::from(tls))).await
    }

    async fn serve(self, listener: Listener, tls: Option<TlsAcceptor>) {
        loop {
            let c = listener.accept().await;
            let (gw, tls) = (self.clone(), tls.clone());
            tokio::spawn(async move {
                let _permit = c.permit;
                let _ = c.stream.set_nodelay(true);
                let peer = c.peer.ip();
                let Some(acceptor) = tls else {
                    let front = Front {
                        peer,
                        https: false,
                        sni: None,
                    };
                    return proxy::serve(c.stream, gw.routes, gw.upstream, front).await;
                };
                let Ok(Ok(tls)) =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(c.stream)).await
                else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(proxy::host_name);
                let front = Front {
                    peer,
                    https: true,
                    sni,
                };
                proxy::serve(tls, gw.routes, gw.upstream, front).await;
            });
        }
    }
}

#[cfg(test)]
mod tests;
