//! The HTTP server of the API and the metrics endpoint: a [`Listener`] (backs off on accept
//! errors such as EMFILE, caps concurrent connections), HTTP/1.1 and HTTP/2 with upgrades for
//! WebSockets, and a graceful shutdown that lets answers in flight finish.

use berth_service::listener::Listener;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use warp::Filter;

/// How long a graceful shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `filter` on `listener` until `shutdown` resolves.
pub async fn serve<F, R>(listener: Listener, filter: F, shutdown: impl Future<Output = ()>)
where
    F: Filter<Extract = (R,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    F::Future: Send,
    R: warp::Reply,
{
    let graceful = GracefulShutdown::new();
    let builder = Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            () = &mut shutdown => break,
        };
        let svc = TowerToHyperService::new(warp::service(filter.clone()));
        let serving = builder
            .serve_connection_with_upgrades(TokioIo::new(conn.stream), svc)
            .into_owned();
        let watched = graceful.watch(serving);
        let (permit, peer) = (conn.permit, conn.peer);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
}
