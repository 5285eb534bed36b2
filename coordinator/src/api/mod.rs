//! The public REST API (warp). Route groups live in their own files; `error` is the single
//! mapping from errors to HTTP.

mod account;
mod containers;
pub mod error;
mod filters;
mod hosts;
mod inside;
mod keys;
mod live;
mod settings;

use crate::app::App;
use std::sync::Arc;
use warp::{Filter, Reply};

/// The OpenAPI 3 document of this API; `tests/tests/openapi.rs` fails when a route is missing
/// from it or it names a route the server does not have.
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

pub fn routes(
    app: Arc<App>,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let a = app.clone();
    let health = warp::path!("healthz").and(warp::get()).map(move || {
        let hosts = a.hub.hosts();
        let connected = hosts.iter().filter(|h| h.connected()).count();
        warp::reply::json(&serde_json::json!({"status": "ok", "agents_connected": connected, "agents_known": hosts.len()}))
    });
    let openapi = warp::path!("compute" / "openapi.json")
        .and(warp::get())
        .map(|| warp::reply::with_header(OPENAPI, "content-type", "application/json"));
    health
        .or(openapi)
        .or(containers::routes(app.clone()))
        .or(settings::routes(app.clone()))
        .or(account::routes(app.clone()))
        .or(live::routes(app.clone()))
        .or(inside::routes(app.clone()))
        .or(hosts::routes(app.clone()))
        .or(keys::routes(app.clone()))
        .recover(error::recover)
        .with(warp::log::custom(move |info| {
            tracing::debug!(method = %info.method(), path = info.path(), status = info.status().as_u16(), elapsed_ms = info.elapsed().as_millis() as u64, "request");
            app.telemetry.record(info.method().as_str(), info.path(), info.status().as_u16(), info.elapsed());
        }))
}
