//! The HTTP server of the API and the metrics endpoint: a [`Listener`] (backs off on accept
//! errors such as EMFILE, caps concurrent connections in all and per client address),
//! HTTP/1.1 with upgrades for WebSockets, a header-read timeout that also ends idle
//! keep-alive connections (and ones that never send a byte), and a graceful shutdown that
//! lets answers in flight finish.

use berth_service::listener::Listener;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use warp::Filter;

/// How long a graceful shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `filter` on `listener` until `shutdown` resolves. A client has `header_timeout` to
/// send each request's headers, counted from the connection's start or the previous answer.
pub async fn serve<F, R>(
    listener: Listener,
    filter: F,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter<Extract = (R,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    F::Future: Send,
    R: warp::Reply,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let (stop, stopping) = watch::channel(false);
    // Every connection holds a clone; `recv` returns `None` once all have ended.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            () = &mut shutdown => break,
        };
        let svc = TowerToHyperService::new(warp::service(filter.clone()));
        let serving = builder
            .serve_connection(TokioIo::new(conn.stream), svc)
            .with_upgrades();
        let (mut stopping, open) = (stopping.clone(), open.clone());
        let (permit, peer) = (conn.permit, conn.peer);
        tokio::spawn(async move {
            tokio::pin!(serving);
            let ended = tokio::select! {
                r = serving.as_mut() => r,
                _ = stopping.changed() => {
                    serving.as_mut().graceful_shutdown();
                    serving.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            drop((permit, open));
        });
    }
    let _ = stop.send(true);
    drop(open);
    if tokio::time::timeout(DRAIN, all_closed.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
}
