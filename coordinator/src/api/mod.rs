//! The public REST + WebSocket API: one declarative route table ([`table`]), one dispatcher
//! that authenticates, checks each route's scope and the caller's ownership before any
//! handler runs (`dispatch`), handlers grouped by resource, and `error`, the one mapping
//! from errors to HTTP. The OpenAPI document and the generated scope tests read the table.

mod account;
mod call;
mod containers;
mod dispatch;
pub mod error;
mod hosts;
mod inside;
mod invoke;
mod keys;
mod live;
pub(crate) mod page;
pub mod route;
mod session;
mod settings;
mod volumes;

pub use account::OPENAPI;
pub use route::{Action, Route, Scope};

use crate::services::Services;
use route::{body, plain};
use std::sync::Arc;
use warp::http::Method;
use warp::Filter;

/// Every route of the API. A route is added here or nowhere.
#[rustfmt::skip]
pub fn table() -> Vec<Route> {
    use Action::{Create, Delete, Read, Update};
    use Scope::{Admin, Caller, Container, Containers, Enroll, Keys, Public, User, Volumes};
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    const PUT: Method = Method::PUT;
    const ONE: &str = "/compute/containers/{id}";
    const VOL: &str = "/compute/volumes/{volume_id}";
    vec![
        Route::new(GET, "/healthz", Public, plain(account::health)),
        Route::new(GET, "/compute/openapi.json", Public, plain(account::openapi)),
        Route::new(POST, "/compute/session", Public, body(session::create)),
        Route::new(GET, "/compute/session", Caller, plain(session::get)),
        Route::new(Method::DELETE, "/compute/session", Public, plain(session::delete)),
        Route::new(GET, "/compute/containers", Containers(Read), plain(containers::list)),
        Route::new(POST, "/compute/containers", Containers(Create), body(containers::create)),
        Route::new(GET, ONE, Container(Read), plain(containers::get)),
        Route::new(Method::PATCH, ONE, Container(Update), body(containers::patch)),
        Route::new(Method::DELETE, ONE, Container(Delete), plain(containers::delete)),
        Route::new(POST, "/compute/containers/{id}/start", Container(Update), plain(containers::start)),
        Route::new(POST, "/compute/containers/{id}/stop", Container(Update), plain(containers::stop)),
        Route::new(POST, "/compute/containers/{id}/actions", Container(Update), body(containers::action)),
        Route::new(GET, "/compute/containers/{id}/events", Container(Read), plain(containers::events)),
        Route::new(GET, "/compute/containers/{id}/wait", Container(Read), plain(containers::wait)).sees_deleting(),
        Route::new(GET, "/compute/containers/{id}/ssh", Container(Read), plain(settings::ssh)),
        Route::new(PUT, "/compute/containers/{id}/ssh", Container(Update), body(settings::set_ssh)),
        Route::new(GET, "/compute/containers/{id}/mounts", Container(Read), plain(settings::mounts)),
        Route::new(PUT, "/compute/containers/{id}/mounts", Container(Update), body(settings::set_mounts)),
        Route::new(GET, "/compute/containers/{id}/ingress", Container(Read), plain(settings::ingress)),
        Route::new(POST, "/compute/containers/{id}/ingress", Container(Update), body(settings::add_ingress)),
        Route::new(Method::DELETE, "/compute/containers/{id}/ingress/{port}", Container(Update), plain(settings::delete_ingress)),
        Route::new(GET, "/compute/containers/{id}/volumes", Container(Read), plain(volumes::of_container)),
        Route::new(POST, "/compute/containers/{id}/volumes", Container(Update), body(volumes::attach)),
        Route::new(Method::DELETE, "/compute/containers/{id}/volumes/{volume_id}", Container(Update), plain(volumes::detach)),
        Route::new(GET, "/compute/containers/{id}/logs", Container(Read), plain(inside::logs)).websocket(),
        Route::new(GET, "/compute/containers/{id}/terminal", Container(Update), plain(inside::terminal)).websocket(),
        Route::new(GET, "/compute/containers/{id}/metrics", Container(Read), plain(inside::metrics)),
        Route::new(POST, "/compute/containers/{id}/exec", Container(Update), body(inside::exec)).unversioned(),
        Route::new(GET, "/compute/ws", User(Read), plain(live::status)).websocket(),
        Route::new(GET, "/compute/images", Containers(Read), plain(account::images)),
        Route::new(GET, "/compute/quota", Containers(Read), plain(account::quota)),
        Route::new(GET, "/compute/volumes", Volumes(Read), plain(volumes::list)),
        Route::new(POST, "/compute/volumes", Volumes(Create), body(volumes::create)),
        Route::new(GET, VOL, Volumes(Read), plain(volumes::get)),
        Route::new(Method::PATCH, VOL, Volumes(Update), body(volumes::patch)),
        Route::new(Method::DELETE, VOL, Volumes(Delete), plain(volumes::delete)),
        Route::new(GET, "/compute/ssh-keys", Keys(Read), plain(keys::list)),
        Route::new(POST, "/compute/ssh-keys", Keys(Create), body(keys::create)),
        Route::new(Method::DELETE, "/compute/ssh-keys/{key_id}", Keys(Delete), plain(keys::delete)),
        Route::new(GET, "/compute/hosts", Admin, plain(hosts::list)),
        Route::new(POST, "/compute/hosts/{host_key}/cordon", Admin, plain(hosts::cordon)),
        Route::new(POST, "/compute/hosts/{host_key}/uncordon", Admin, plain(hosts::uncordon)),
        Route::new(POST, "/compute/hosts/enroll", Enroll, body(hosts::enroll)),
    ]
}

/// The API as one warp filter.
pub fn routes(
    svc: Arc<Services>,
) -> impl Filter<Extract = (call::Reply,), Error = warp::Rejection> + Clone {
    dispatch::filter(svc, Arc::new(table()))
}

#[cfg(test)]
mod tests;
