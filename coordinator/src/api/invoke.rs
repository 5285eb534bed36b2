//! What runs after `dispatch`'s checks: a POST with an `Idempotency-Key` once (or its kept
//! answer again), a per-container write in the container's turn with `If-Match` checked in
//! it, the caller's own container loaded (404 for anyone else's), the handler, and the
//! container's `ETag` on the answer.

use super::call::{header_value, Call, Incoming, Params, Reply};
use super::error::{self, ApiError};
use super::route::{Route, Scope};
use crate::auth::User;
use crate::error::Error;
use crate::idempotency::{self, Begin};
use crate::services::Services;
use crate::store::StoredAnswer;
use futures_util::StreamExt;
use std::sync::Arc;
use warp::http::{header, HeaderMap, HeaderValue, StatusCode};

pub(super) fn param<'p>(params: &'p Params, name: &str) -> &'p str {
    params
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// A POST with an `Idempotency-Key`: the first answer for the key, or the request run once
/// now — in its own task, so a client that goes away does not leave the key half-used.
pub(super) async fn once(
    svc: Arc<Services>,
    route: Route,
    params: Params,
    mut req: Incoming,
    user: User,
    path: &str,
    key: String,
) -> Result<Reply, ApiError> {
    let body = std::mem::replace(&mut req.body, futures_util::stream::empty().boxed());
    let raw =
        match tokio::time::timeout(super::call::BODY_TIMEOUT, super::call::collect(body)).await {
            Ok(r) => bytes::Bytes::from(r?),
            Err(_) => return Err(ApiError::BadBody("the body did not arrive in time".into())),
        };
    let fingerprint = idempotency::fingerprint(req.method.as_str(), path, &raw);
    let task = tokio::spawn(async move {
        let idem = svc.idempotency.clone();
        let reservation = match idem.begin(&user.id, &key, fingerprint).await? {
            Begin::Replay(answer) => return Ok(replay(answer)),
            Begin::Run(r) => r,
        };
        let replayable = raw.clone();
        req.body = futures_util::stream::once(async move { Ok(replayable) }).boxed();
        let reply = serve(svc, &route, params, req, user)
            .await
            .unwrap_or_else(|e| error::response(&e));
        let (parts, body) = reply.into_parts();
        let bytes = http_body_util::BodyExt::collect(body)
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| ApiError::BadBody(format!("answer body: {e}")))?;
        reservation.finish(parts.status.as_u16(), &bytes).await?;
        Ok(Reply::from_parts(parts, bytes.into()))
    });
    task.await
        .unwrap_or_else(|e| Err(Error::Unavailable(format!("the request failed: {e}")).into()))
}

/// A kept answer, as it was first sent.
fn replay(answer: StoredAnswer) -> Reply {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut r = Reply::new(answer.body.into());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    r
}

/// `If-Match`: `*` or a list of entity tags (weak ones compared by their value).
fn if_match(headers: &HeaderMap, generation: u64) -> bool {
    let Some(v) = header_value(headers, "if-match") else {
        return true;
    };
    let want = generation.to_string();
    v.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == want)
}

fn etag(generation: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{generation}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// Ownership, then the handler: per-container writes take the container's turn first and
/// check `If-Match` in it; answers about one container carry its `ETag`.
pub(super) async fn serve(
    svc: Arc<Services>,
    route: &Route,
    params: Params,
    req: Incoming,
    user: User,
) -> Result<Reply, ApiError> {
    let id = param(&params, "id").to_string();
    let containers = svc.containers.clone();
    let _turn = match route.versioned {
        true => Some(containers.write_turn(&id).await?),
        false => None,
    };
    let container = match route.scope {
        Scope::Container(_) if route.sees_deleting => {
            Some(svc.containers.owned_or_deleting(&user.id, &id).await?)
        }
        Scope::Container(_) => Some(svc.containers.owned(&user.id, &id).await?),
        _ => None,
    };
    let generation = container.as_ref().map(|r| r.generation);
    if let Some(current) = generation {
        if !if_match(&req.headers, current) {
            return Err(ApiError::PreconditionFailed { current });
        }
    }
    let call = Call {
        svc: svc.clone(),
        user,
        container,
        params,
        query: req.query,
        headers: req.headers,
        ws: req.ws,
        body: Some(req.body),
    };
    let mut reply = (route.handler)(call).await?;
    let Some(mut generation) = generation.filter(|_| !route.websocket) else {
        return Ok(reply);
    };
    if route.versioned && reply.status().is_success() {
        match svc.store.container(&id).await {
            Ok(Some(now)) if now.is_visible() => generation = now.generation,
            _ => return Ok(reply),
        }
    }
    reply.headers_mut().insert(header::ETAG, etag(generation));
    Ok(reply)
}
