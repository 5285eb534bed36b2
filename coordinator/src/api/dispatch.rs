//! The one way into a handler: match the request against the route table (404 / 405),
//! authenticate (401), the caller's rate limit (429), check the route's scope (403; admin
//! routes 404 to others), then `invoke` (idempotency, the container's turn and ownership,
//! `If-Match`, the handler); every answer is recorded for Prometheus by its route.

use super::call::{BodyStream, Incoming, Params, Reply};
use super::error::{self, ApiError};
use super::route::{Route, Scope};
use crate::auth::User;
use crate::error::Error;
use crate::services::Services;
use bytes::Buf;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use warp::filters::path::FullPath;
use warp::filters::ws::Ws;
use warp::http::{HeaderMap, Method};
use warp::Filter;

/// Every request of the API, through `dispatch`.
pub fn filter(
    svc: Arc<Services>,
    table: Arc<Vec<Route>>,
) -> impl Filter<Extract = (Reply,), Error = warp::Rejection> + Clone {
    let ws = warp::ws().map(Some).or(warp::any().map(|| None)).unify();
    let query = warp::query::<HashMap<String, String>>()
        .or(warp::any().map(HashMap::new))
        .unify();
    let body = warp::body::stream().map(boxed_body);
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(query)
        .and(ws)
        .and(body)
        .then(
            move |method: Method,
                  path: FullPath,
                  headers: HeaderMap,
                  query: HashMap<String, String>,
                  ws: Option<Ws>,
                  body: BodyStream| {
                let (svc, table) = (svc.clone(), table.clone());
                async move {
                    let req = Incoming {
                        method,
                        headers,
                        query,
                        ws,
                        body,
                    };
                    dispatch(svc, &table, path.as_str(), req).await
                }
            },
        )
}

fn boxed_body<B: Buf + Send + 'static>(
    s: impl futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
) -> BodyStream {
    s.map(|r| r.map(|mut b| b.copy_to_bytes(b.remaining())))
        .boxed()
}

async fn dispatch(svc: Arc<Services>, table: &[Route], path: &str, req: Incoming) -> Reply {
    let started = Instant::now();
    let _in_flight = svc.telemetry.in_flight();
    let method = req.method.clone();
    // HEAD is a GET without the body (hyper leaves the body out).
    let as_method = if req.method == Method::HEAD {
        Method::GET
    } else {
        req.method.clone()
    };
    let (label, result) = match find(table, &as_method, path) {
        Ok((route, params)) => (
            route.label(),
            run(svc.clone(), route, params, req, path).await,
        ),
        Err(e) => ("unmatched".to_string(), Err(e)),
    };
    let reply = result.unwrap_or_else(|e| error::response(&e));
    let status = reply.status().as_u16();
    tracing::debug!(%method, path, status, elapsed_ms = started.elapsed().as_millis() as u64, "request");
    svc.telemetry
        .record(method.as_str(), &label, status, started.elapsed());
    reply
}

/// The route for `method path`: `NoRoute` when no pattern matches the path,
/// `MethodNotAllowed` when one does for another method.
fn find<'t>(
    table: &'t [Route],
    method: &Method,
    path: &str,
) -> Result<(&'t Route, Params), ApiError> {
    let mut allowed = Vec::new();
    for r in table {
        if let Some(params) = r.matches(path) {
            if r.method == method {
                return Ok((r, params));
            }
            allowed.push(r.method.clone());
        }
    }
    Err(if allowed.is_empty() {
        ApiError::NoRoute
    } else {
        ApiError::MethodNotAllowed(allowed)
    })
}

/// Where the token came from: a browser sends the cookie on its own, even cross-site.
#[derive(PartialEq)]
enum Source {
    Header,
    Cookie,
    Query,
}

/// The token from `Authorization: Bearer`, the session cookie, or — on a WebSocket upgrade —
/// `?token=` (browsers cannot set headers there).
fn token<'a>(svc: &Services, route: &Route, req: &'a Incoming) -> Option<(&'a str, Source)> {
    let bearer = req
        .headers
        .get(warp::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let cookie = || {
        req.headers
            .get_all(warp::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == svc.config.auth.cookie_name)
            .map(|(_, v)| v)
    };
    let query = || {
        (route.websocket && req.ws.is_some())
            .then(|| req.query.get("token").map(String::as_str))
            .flatten()
    };
    bearer
        .map(|t| (t, Source::Header))
        .or_else(|| cookie().map(|t| (t, Source::Cookie)))
        .or_else(|| query().map(|t| (t, Source::Query)))
}

/// A cookie-authenticated request that changes something (or opens a WebSocket) must come
/// from the API's own origin: browsers attach the cookie to cross-site form posts and
/// WebSocket handshakes, so `Sec-Fetch-Site` or `Origin` must say same-origin when present.
fn same_origin(req: &Incoming) -> bool {
    let h = &req.headers;
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    match (header("origin"), header("host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    }
}

/// A route that reads a JSON body gets it as `application/json` (`+json` types too).
fn is_json(req: &Incoming) -> bool {
    req.headers
        .get(warp::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .is_some_and(|t| t == "application/json" || t.ends_with("+json"))
}

/// Authentication, the rate limit, scope, then the handler (once per `Idempotency-Key`).
async fn run(
    svc: Arc<Services>,
    route: &Route,
    params: Params,
    req: Incoming,
    path: &str,
) -> Result<Reply, ApiError> {
    let user = if route.scope.authenticated() {
        let (token, source) = token(&svc, route, &req).ok_or(ApiError::Unauthenticated)?;
        let user = svc.auth.verify(token).map_err(|e| {
            tracing::debug!(error = %e, "token rejected");
            ApiError::Unauthenticated
        })?;
        let read_only = req.method == Method::GET || req.method == Method::HEAD;
        let unsafe_call = !read_only || req.ws.is_some();
        if source == Source::Cookie && unsafe_call && !same_origin(&req) {
            let msg = "a cross-site request cannot use the session cookie".to_string();
            return Err(Error::Forbidden(msg).into());
        }
        if !user.is_admin() {
            svc.limiter.take(&user.id).map_err(ApiError::RateLimited)?;
        }
        user
    } else {
        // No token to steal, but a cross-site page must not sign a browser in (or out) as
        // someone else, nor enroll hosts: unsafe calls without a token are same-origin too.
        let unsafe_call = !(req.method == Method::GET || req.method == Method::HEAD);
        if unsafe_call && !same_origin(&req) {
            let msg = "a cross-site request cannot call this route".to_string();
            return Err(Error::Forbidden(msg).into());
        }
        User::anonymous()
    };
    let id = super::invoke::param(&params, "id").to_string();
    if route.scope == Scope::Admin && !user.is_admin() {
        return Err(Error::NotFound.into());
    }
    if let Some((resource, action)) = route.scope.grant(&user.id, &id) {
        if !user.allows(&resource, action.as_str()) {
            let msg = format!("the token does not grant {} on {resource}", action.as_str());
            return Err(Error::Forbidden(msg).into());
        }
    }
    if route.body.is_some() && !is_json(&req) {
        return Err(ApiError::NotJson);
    }
    let declared = req
        .headers
        .get(warp::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if route.body.is_some() && declared.is_some_and(|n| n > super::call::MAX_BODY as u64) {
        return Err(ApiError::TooLarge);
    }
    // A key that is not visible ASCII is kept as is for `check_key` to refuse (not ignored).
    let key = req
        .headers
        .get("idempotency-key")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match key {
        Some(key) if req.method == Method::POST && route.scope.authenticated() => {
            super::invoke::once(svc, route.clone(), params, req, user, path, key).await
        }
        _ => super::invoke::serve(svc, route, params, req, user).await,
    }
}
