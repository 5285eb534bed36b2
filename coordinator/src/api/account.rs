//! Handlers that are not about one container: health, the OpenAPI document, images, quota.

use super::call::{json, Call, Reply};
use super::error::ApiError;
use super::page::{with_cursor, Page};
use warp::Reply as _;

/// The OpenAPI 3 document of this API; a unit test fails when it and the route table differ.
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

pub async fn health(c: Call) -> Result<Reply, ApiError> {
    let hosts = c.svc.fleet.hosts();
    let connected = hosts.iter().filter(|h| h.connected).count();
    json(&serde_json::json!({
        "status": "ok",
        "agents_connected": connected,
        "agents_known": hosts.len(),
        // Whether this coordinator does the cluster's once-only work now.
        "leader": c.svc.leadership.is_leader(),
    }))
}

pub async fn openapi(_: Call) -> Result<Reply, ApiError> {
    Ok(warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response())
}

pub async fn images(c: Call) -> Result<Reply, ApiError> {
    let page = Page::from_query(&c.query)?;
    let images = c
        .svc
        .containers
        .images()
        .await?
        .into_iter()
        .enumerate()
        .collect();
    // The catalog's own order (builtin first), by position.
    let (images, next) = page.take(images, |(i, _)| super::page::ascending(*i as u64));
    let images: Vec<_> = images.into_iter().map(|(_, im)| im).collect();
    Ok(with_cursor(json(&images)?, next.as_deref()))
}

pub async fn quota(c: Call) -> Result<Reply, ApiError> {
    let region = c.query.get("region").map(String::as_str);
    json(&c.svc.containers.quota(&c.user.id, region).await?)
}
