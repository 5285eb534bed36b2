//! berth-coordinator: the public REST API (warp), JWT auth, users' records in sled, placement,
//! and dispatch of work to agents over the QUIC connections they open.
//!
//! Owns: `api` (HTTP routes and the one error→status mapping), `auth`, `store`, `placement`,
//! `hub` (QUIC endpoint + connected hosts), `containers`/`lifecycle`/`keys` (operations),
//! `pki` (cluster CA for `tls` subcommands), `config`.
//!
//! Must not touch: containerd, host paths or anything on a fleet host — agents own their hosts;
//! the coordinator only sends them desired specs.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
mod containers;
pub mod enroll;
mod hosts;
pub mod hub;
mod ingress;
mod inside;
mod keys;
mod lifecycle;
pub mod pki;
pub mod placement;
mod quota;
pub mod registry;
mod settings;
pub mod store;
pub mod telemetry;

use app::App;
use config::Config;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use warp::Filter;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("auth: {0}")]
    Auth(#[from] auth::AuthError),
    #[error("agent link: {0}")]
    Hub(#[from] hub::HubError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running coordinator: its bound addresses and the task that ends when it has shut down.
pub struct Running {
    pub api_addr: SocketAddr,
    pub link_addr: SocketAddr,
    pub app: Arc<App>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// Starts the API and the agent endpoint; both stop when `shutdown` resolves.
pub async fn start(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, Error> {
    let store = store::Store::open(&config.store.path)?;
    let authn = auth::Authenticator::from_config(&config.auth)?;
    let endpoint = hub::bind(&config.link)?;
    let link_addr = endpoint.local_addr().map_err(|source| Error::Listen {
        addr: config.link.listen,
        source,
    })?;
    let listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: config.api.listen,
            source,
        })?;
    let api_addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: config.api.listen,
        source,
    })?;
    let metrics_listener = match config.metrics.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Listen { addr, source })?,
        ),
        None => None,
    };
    let app = Arc::new(App::new(config, store, authn));
    let metrics_task = metrics_listener.map(|l| {
        let a = app.clone();
        let route = warp::path!("metrics").and(warp::get()).map(move || {
            warp::reply::with_header(
                a.telemetry.render(&a),
                "content-type",
                "text/plain; version=0.0.4",
            )
        });
        tokio::spawn(warp::serve(route).incoming(l).run())
    });

    let hub_task = tokio::spawn(hub::serve(app.clone(), endpoint.clone()));
    let housekeeping = tokio::spawn(housekeeping(app.clone()));
    let routes = api::routes(app.clone());
    let app2 = app.clone();
    let done = tokio::spawn(async move {
        warp::serve(routes)
            .incoming(listener)
            .graceful(shutdown)
            .run()
            .await;
        tracing::info!("API stopped; closing agent connections");
        endpoint.close(0u32.into(), b"coordinator shutting down");
        housekeeping.abort();
        if let Some(t) = metrics_task {
            t.abort();
        }
        let _ = hub_task.await;
        if let Err(e) = app2.store.flush().await {
            tracing::error!(error = %e, "final store flush failed");
        }
    });
    tracing::info!(%api_addr, %link_addr, "coordinator started");
    berth_shared::sdnotify::notify("READY=1");
    Ok(Running {
        api_addr,
        link_addr,
        app,
        done,
    })
}

/// Runs until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    start(config, shutdown).await?.wait().await;
    Ok(())
}

/// Heartbeat grace and placement retries.
async fn housekeeping(app: Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        for host in app.hub.sweep(app.config.link.heartbeat_grace) {
            tracing::warn!(%host, "host unreachable: no heartbeat within the grace period");
        }
        if n.is_multiple_of(10) {
            app.place_pending().await;
        }
    }
}
