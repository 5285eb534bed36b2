//! The gateway's route table: which container address answers a host name, per scheme. The
//! ingress writes it whole whenever the specs change; the proxy reads it on every request.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddrV4;
use std::sync::{Arc, RwLock};

/// host name → destination, per scheme; and the names whose container is unhealthy (they
/// answer 503 rather than reach it).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Routes {
    pub http: HashMap<String, SocketAddrV4>,
    pub https: HashMap<String, SocketAddrV4>,
    pub down: HashSet<String>,
}

/// Where a request for a name goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    To(SocketAddrV4),
    /// The container fails its health check.
    Down,
}

/// The routes in force, shared by the ingress (writer) and every gateway connection (readers).
#[derive(Clone, Default)]
pub struct RouteTable(Arc<RwLock<Routes>>);

impl RouteTable {
    /// Replaces every route at once.
    pub fn set(&self, routes: Routes) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = routes;
    }

    /// Where a request for `host` (lower-cased, without a port) goes, on 443 or on 80.
    pub fn lookup(&self, https: bool, host: &str) -> Option<Route> {
        let r = self.0.read().unwrap_or_else(|p| p.into_inner());
        if r.down.contains(host) {
            return Some(Route::Down);
        }
        if https {
            r.https.get(host)
        } else {
            r.http.get(host)
        }
        .copied()
        .map(Route::To)
    }

    /// A copy of the routes in force.
    pub fn get(&self) -> Routes {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
