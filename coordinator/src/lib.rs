//! berth-coordinator: the public REST API (warp), JWT auth, users' records in a store,
//! placement, and dispatch of work to agents over the QUIC connections they open.
//!
//! Layers, top down (a module imports only from below it): `api` (the route table, the
//! dispatcher, the one error→status mapping) → `services` (the handle the API holds) →
//! `agents` (the hub's events handed to the domain) → `keys` → `containers` (the containers
//! service) → `fleet` (hosts, liveness, placement) → `inside` → `enroll` → `hub` (QUIC
//! transport only) → `placement` (pure), `events`, `telemetry` (given counters), `auth`,
//! `pki`, `registry`, `config` → `error` → `store` (the interface and its sled backend).
//! `http` serves the API and metrics filters on capped listeners; `console` the web
//! console's static assets beside the API.
//!
//! Must not touch: containerd, host paths or anything on a fleet host — agents own their hosts;
//! the coordinator only sends them desired specs.

mod agents;
pub mod api;
pub mod auth;
pub mod config;
pub mod console;
mod containers;
pub mod enroll;
pub mod error;
mod events;
mod feed;
mod fleet;
mod http;
pub mod hub;
mod idempotency;
mod inside;
mod keys;
mod leader;
pub mod pki;
pub mod placement;
mod ratelimit;
pub mod registry;
pub mod services;
pub mod store;
pub mod telemetry;

use berth_service::listener::Listener;
use config::Config;
use containers::Containers;
use fleet::Fleet;
use services::Services;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use store::Store;
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
    pub services: Arc<Services>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// Prometheus scrapers are few.
const METRICS_MAX_CONNECTIONS: usize = 64;

async fn listen(
    addr: SocketAddr,
    cap: usize,
    per_ip: usize,
) -> Result<(Listener, SocketAddr), Error> {
    let l = Listener::bind(addr, cap)
        .await
        .map_err(|source| Error::Listen { addr, source })?
        .per_peer(per_ip);
    let bound = l
        .local_addr()
        .map_err(|source| Error::Listen { addr, source })?;
    Ok((l, bound))
}

/// The gauges of a scrape, read now. A store that cannot be read leaves its series out.
async fn gauges(svc: &Services) -> telemetry::Gauges {
    let hosts = svc.fleet.hosts();
    let by_status = match svc.store.all_containers().await {
        Ok(all) => {
            let mut m = std::collections::BTreeMap::new();
            for s in ["pending", "initializing", "running", "stopped", "failed"] {
                m.insert(s, 0);
            }
            for r in all.iter().filter(|r| r.is_visible()) {
                *m.entry(r.status.as_str()).or_default() += 1;
            }
            Some(m)
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot read the store");
            None
        }
    };
    telemetry::Gauges {
        agents_connected: hosts.iter().filter(|h| h.connected).count(),
        agents_known: hosts.len(),
        containers_by_status: by_status,
    }
}

/// Starts the API and the agent endpoint; both stop when `shutdown` resolves.
pub async fn start(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, Error> {
    let store: Arc<dyn Store> = store::open(&config.store).await?;
    let auth = auth::Authenticator::from_config(&config.auth)?;
    let endpoint = hub::bind(&config.link)?;
    let link_addr = endpoint.local_addr().map_err(|source| Error::Listen {
        addr: config.link.listen,
        source,
    })?;
    let api = &config.api;
    let (listener, api_addr) =
        listen(api.listen, api.max_connections, api.max_connections_per_ip).await?;
    let header_timeout = api.header_timeout;
    let metrics_listener = match config.metrics.listen {
        Some(addr) => Some(
            listen(addr, METRICS_MAX_CONNECTIONS, METRICS_MAX_CONNECTIONS)
                .await?
                .0,
        ),
        None => None,
    };

    let (hub, agent_events) = hub::Hub::new(config.link.heartbeat_interval);
    let hub = Arc::new(hub);
    let fleet = Arc::new(Fleet::new(hub.clone(), store.clone(), config.link.clone()));
    // A store shared with other coordinators carries a feed of changes between them.
    let (bus, feed_task) = match store.feed() {
        Some(_) => {
            let (bus, outbox) = events::EventBus::with_outbox();
            let origin = berth_shared::ids::new_container_id();
            tracing::info!(%origin, "store shared: changes go to and come from the feed");
            let task = feed::run(store.clone(), origin, bus.clone(), outbox);
            (bus, Some(tokio::spawn(task)))
        }
        None => (events::EventBus::default(), None),
    };
    let containers = Arc::new(Containers::new(
        &config,
        store.clone(),
        fleet.clone(),
        hub.clone(),
        bus,
    ));
    let grace = config.link.heartbeat_grace;
    let leadership = Arc::new(leader::Leadership::new(store.clone()));
    let svc = Arc::new(Services {
        leadership: leadership.clone(),
        keys: keys::Keys::new(
            store.clone(),
            containers.clone(),
            config.limits.max_ssh_keys,
        ),
        inside: inside::Inside::new(hub.clone()),
        limiter: ratelimit::RateLimiter::new(config.api.rate_limit, config.api.rate_burst),
        idempotency: Arc::new(idempotency::Idempotency::new(
            store.clone(),
            config.api.idempotency_ttl,
        )),
        config,
        auth,
        store,
        fleet: fleet.clone(),
        containers: containers.clone(),
        telemetry: Default::default(),
    });

    let metrics_task = metrics_listener.map(|l| {
        let (s, hub) = (svc.clone(), hub.clone());
        let route = warp::path!("metrics").and(warp::get()).then(move || {
            let (s, hub) = (s.clone(), hub.clone());
            async move {
                let mut out = s.telemetry.render(&gauges(&s).await);
                hub.render_round_trips(&mut out);
                warp::reply::with_header(out, "content-type", "text/plain; version=0.0.4")
            }
        });
        tokio::spawn(http::serve(
            l,
            route,
            header_timeout,
            std::future::pending(),
        ))
    });
    let hub_task = tokio::spawn(hub::serve(hub.clone(), endpoint.clone()));
    let agents_task = tokio::spawn(agents::run(agent_events, fleet.clone(), containers.clone()));
    let housekeeping = tokio::spawn(agents::housekeeping(
        fleet,
        containers,
        leadership.clone(),
        grace,
    ));
    let expiry = tokio::spawn(expire_idempotency(svc.idempotency.clone(), leadership));
    let api_routes = api::routes(svc.clone());
    let routes = match &svc.config.console.dir {
        Some(dir) => {
            tracing::info!(dir = %dir.display(), "serving the web console at /console/");
            console::filter(dir).or(api_routes).unify().boxed()
        }
        None => api_routes.boxed(),
    };
    let svc2 = svc.clone();
    let done = tokio::spawn(async move {
        http::serve(listener, routes, header_timeout, shutdown).await;
        tracing::info!("API stopped; closing agent connections");
        endpoint.close(0u32.into(), b"coordinator shutting down");
        housekeeping.abort();
        expiry.abort();
        if let Some(t) = feed_task {
            t.abort();
        }
        if let Some(t) = metrics_task {
            t.abort();
        }
        let _ = hub_task.await;
        agents_task.abort();
        if let Err(e) = svc2.store.flush().await {
            tracing::error!(error = %e, "final store flush failed");
        }
    });
    tracing::info!(%api_addr, %link_addr, "coordinator started");
    berth_service::sdnotify::notify("READY=1");
    Ok(Running {
        api_addr,
        link_addr,
        services: svc,
        done,
    })
}

/// Forgets `Idempotency-Key` answers past their TTL, hourly, on the leader.
async fn expire_idempotency(
    idem: Arc<idempotency::Idempotency>,
    leadership: Arc<leader::Leadership>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        if !leadership.refresh().await {
            continue; // the leader does it
        }
        match idem.expire().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "expired idempotency keys"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot expire idempotency keys; retrying in an hour")
            }
        }
    }
}

/// Runs until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    start(config, shutdown).await?.wait().await;
    Ok(())
}
