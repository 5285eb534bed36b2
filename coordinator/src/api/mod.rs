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
mod keys;
mod live;
pub mod route;
mod settings;

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
    use Scope::{Admin, Container, Containers, Enroll, Keys, Public, User};
    let (get, post, put, patch, delete) = (
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    );
    const ONE: &str = "/compute/containers/{id}";
    vec![
        Route::new(get.clone(), "/healthz", Public, plain(account::health)),
        Route::new(
            get.clone(),
            "/compute/openapi.json",
            Public,
            plain(account::openapi),
        ),
        Route::new(
            get.clone(),
            "/compute/containers",
            Containers(Read),
            plain(containers::list),
        ),
        Route::new(
            post.clone(),
            "/compute/containers",
            Containers(Create),
            body(containers::create),
        ),
        Route::new(get.clone(), ONE, Container(Read), plain(containers::get)),
        Route::new(patch, ONE, Container(Update), body(containers::patch)),
        Route::new(
            delete.clone(),
            ONE,
            Container(Delete),
            plain(containers::delete),
        ),
        Route::new(
            post.clone(),
            "/compute/containers/{id}/start",
            Container(Update),
            plain(containers::start),
        ),
        Route::new(
            post.clone(),
            "/compute/containers/{id}/stop",
            Container(Update),
            plain(containers::stop),
        ),
        Route::new(
            post.clone(),
            "/compute/containers/{id}/actions",
            Container(Update),
            body(containers::action),
        ),
        Route::new(
            get.clone(),
            "/compute/containers/{id}/events",
            Container(Read),
            plain(containers::events),
        ),
        Route::new(
            get.clone(),
            "/compute/containers/{id}/ssh",
            Container(Read),
            plain(settings::ssh),
        ),
        Route::new(
            put.clone(),
            "/compute/containers/{id}/ssh",
            Container(Update),
            body(settings::set_ssh),
        ),
        Route::new(
            get.clone(),
            "/compute/containers/{id}/mounts",
            Container(Read),
            plain(settings::mounts),
        ),
        Route::new(
            put,
            "/compute/containers/{id}/mounts",
            Container(Update),
            body(settings::set_mounts),
        ),
        Route::new(
            get.clone(),
            "/compute/containers/{id}/ingress",
            Container(Read),
            plain(settings::ingress),
        ),
        Route::new(
            post.clone(),
            "/compute/containers/{id}/ingress",
            Container(Update),
            body(settings::add_ingress),
        ),
        Route::new(
            delete.clone(),
            "/compute/containers/{id}/ingress/{port}",
            Container(Update),
            plain(settings::delete_ingress),
        ),
        Route::new(
            get.clone(),
            "/compute/containers/{id}/logs",
            Container(Read),
            plain(inside::logs),
        )
        .websocket(),
        Route::new(
            get.clone(),
            "/compute/containers/{id}/terminal",
            Container(Update),
            plain(inside::terminal),
        )
        .websocket(),
        Route::new(
            get.clone(),
            "/compute/containers/{id}/metrics",
            Container(Read),
            plain(inside::metrics),
        ),
        Route::new(get.clone(), "/compute/ws", User(Read), plain(live::status)).websocket(),
        Route::new(
            get.clone(),
            "/compute/images",
            Containers(Read),
            plain(account::images),
        ),
        Route::new(
            get.clone(),
            "/compute/quota",
            Containers(Read),
            plain(account::quota),
        ),
        Route::new(
            get.clone(),
            "/compute/ssh-keys",
            Keys(Read),
            plain(keys::list),
        ),
        Route::new(
            post.clone(),
            "/compute/ssh-keys",
            Keys(Create),
            body(keys::create),
        ),
        Route::new(
            delete,
            "/compute/ssh-keys/{key_id}",
            Keys(Delete),
            plain(keys::delete),
        ),
        Route::new(get, "/compute/hosts", Admin, plain(hosts::list)),
        Route::new(
            post.clone(),
            "/compute/hosts/{host_key}/cordon",
            Admin,
            plain(hosts::cordon),
        ),
        Route::new(
            post.clone(),
            "/compute/hosts/{host_key}/uncordon",
            Admin,
            plain(hosts::uncordon),
        ),
        Route::new(post, "/compute/hosts/enroll", Enroll, body(hosts::enroll)),
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
