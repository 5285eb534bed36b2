//! One request as a handler sees it, after `dispatch` checked it: the services, the verified
//! caller, the caller's own container for per-container routes, path parameters, query,
//! the WebSocket upgrade if there is one, and the body (read on demand, size-capped).

use super::error::ApiError;
use crate::auth::User;
use crate::error::Error;
use crate::services::Services;
use crate::store::ContainerRecord;
use bytes::{Buf, Bytes};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use warp::filters::ws::Ws;
use warp::http::StatusCode;
use warp::http::{HeaderMap, Method};
use warp::Reply as _;

/// Bodies larger than this are refused (`413`).
pub const MAX_BODY: usize = 64 * 1024;

pub type Reply = warp::reply::Response;
/// A matched path's parameters, by their names in the pattern.
pub type Params = Vec<(&'static str, String)>;
pub type BodyStream = BoxStream<'static, Result<Bytes, warp::Error>>;

/// A body must arrive whole within this long: a slow sender cannot hold a connection.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The whole body, at most `MAX_BODY` bytes.
pub(super) async fn collect(mut s: BodyStream) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        let mut chunk = chunk.map_err(|e| ApiError::BadBody(format!("reading the body: {e}")))?;
        if out.len() + chunk.remaining() > MAX_BODY {
            return Err(ApiError::TooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out)
}

/// A request as it arrived, before any check.
pub(super) struct Incoming {
    pub(super) method: Method,
    pub(super) headers: HeaderMap,
    pub(super) query: HashMap<String, String>,
    pub(super) ws: Option<Ws>,
    pub(super) body: BodyStream,
}

/// A header's value as text (`None` when absent or not visible ASCII).
pub(super) fn header_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub struct Call {
    pub svc: Arc<Services>,
    /// The verified caller; an anonymous one (no scopes at all) on public routes.
    pub user: User,
    pub(super) container: Option<ContainerRecord>,
    pub(super) params: Params,
    pub query: HashMap<String, String>,
    /// The request's headers, for the few handlers that read one (the session cookie's).
    pub(super) headers: HeaderMap,
    pub ws: Option<Ws>,
    pub(super) body: Option<BodyStream>,
}

impl Call {
    /// The caller's container named by `{id}` (checked by `dispatch` for `Scope::Container`).
    pub fn container(&self) -> Result<&ContainerRecord, Error> {
        self.container.as_ref().ok_or(Error::NotFound)
    }

    /// A path parameter by its name in the pattern.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The WebSocket upgrade; `400` when the request is not one.
    pub fn upgrade(&mut self) -> Result<Ws, ApiError> {
        self.ws.take().ok_or_else(|| {
            ApiError::BadBody("this is a WebSocket endpoint: send an upgrade".into())
        })
    }

    /// The whole body, at most `MAX_BODY` bytes.
    pub(super) async fn take_body(&mut self) -> Result<Vec<u8>, ApiError> {
        let Some(s) = self.body.take() else {
            return Ok(Vec::new());
        };
        match tokio::time::timeout(BODY_TIMEOUT, collect(s)).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::BadBody(format!(
                "the body did not arrive within {BODY_TIMEOUT:?}"
            ))),
        }
    }
}

pub fn json<T: Serialize>(v: &T) -> Result<Reply, ApiError> {
    Ok(warp::reply::json(v).into_response())
}

pub fn created<T: Serialize>(v: &T) -> Result<Reply, ApiError> {
    Ok(warp::reply::with_status(warp::reply::json(v), StatusCode::CREATED).into_response())
}
