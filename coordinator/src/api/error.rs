//! The one place where errors become HTTP statuses and JSON bodies (seed `000`).

use crate::error::Error;
use crate::store::StoreError;
use berth_shared::api::ErrorBody;
use warp::http::StatusCode;
use warp::Reply;

/// Everything a request can fail with, the operations' errors and the request's own.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no valid token")]
    Unauthenticated,
    #[error("bad request: {0}")]
    BadBody(String),
    #[error("request body is too large")]
    TooLarge,
    #[error("a JSON body needs Content-Type: application/json")]
    NotJson,
    #[error("no such route")]
    NoRoute,
    /// The path exists for these methods only (the `Allow` header).
    #[error("method not allowed")]
    MethodNotAllowed(Vec<warp::http::Method>),
    /// The caller's bucket is empty for this long (`Retry-After`).
    #[error("rate limited for {0:?}")]
    RateLimited(std::time::Duration),
    /// `If-Match` named another generation than the container's `current` one.
    #[error("precondition failed: the container is at generation {current}")]
    PreconditionFailed { current: u64 },
    /// `exec` on a container that is not running.
    #[error("not running: {0}")]
    ExecNotRunning(String),
    #[error(transparent)]
    App(#[from] Error),
}

#[rustfmt::skip]
pub fn status_and_body(e: &ApiError) -> (StatusCode, ErrorBody) {
    use ErrorBody as B;
    use StatusCode as S;
    let m = |m: &str| m.to_string();
    match e {
        ApiError::Unauthenticated => (S::UNAUTHORIZED, B::Unauthenticated),
        ApiError::BadBody(t) => (S::BAD_REQUEST, B::BadRequest { message: m(t) }),
        ApiError::TooLarge => {
            let message = m("request body is too large (at most 64 KiB)");
            (S::PAYLOAD_TOO_LARGE, B::PayloadTooLarge { message })
        }
        ApiError::NotJson => {
            let message = m("send the body as JSON with Content-Type: application/json");
            (S::UNSUPPORTED_MEDIA_TYPE, B::UnsupportedMediaType { message })
        }
        ApiError::NoRoute => (S::NOT_FOUND, B::NotFound),
        ApiError::MethodNotAllowed(_) => (S::METHOD_NOT_ALLOWED, B::MethodNotAllowed),
        ApiError::RateLimited(wait) => {
            let message = format!("too many requests: retry in {} s", retry_after(*wait));
            (S::TOO_MANY_REQUESTS, B::RateLimited { message })
        }
        ApiError::PreconditionFailed { current } => {
            let message = format!("If-Match does not name the container's generation: it is at \"{current}\" (its ETag)");
            (S::PRECONDITION_FAILED, B::PreconditionFailed { message })
        }
        ApiError::ExecNotRunning(t) => (S::CONFLICT, B::NotRunning { message: m(t) }),
        ApiError::App(e) => match e {
            Error::NotFound => (S::NOT_FOUND, B::NotFound),
            Error::Invalid(f) => (S::UNPROCESSABLE_ENTITY, B::Invalid { details: f.0.clone() }),
            Error::OverQuota(d) => (S::FORBIDDEN, B::OverQuota { detail: d.clone() }),
            Error::Conflict(t) => (S::CONFLICT, B::Conflict { message: m(t) }),
            Error::Forbidden(t) => (S::FORBIDDEN, B::Forbidden { message: m(t) }),
            Error::NotRunning(t) => (S::CONFLICT, B::ContainerNotRunning { message: m(t) }),
            Error::Unavailable(t) => (S::SERVICE_UNAVAILABLE, B::Unavailable { message: m(t) }),
            Error::Timeout(t) => (S::REQUEST_TIMEOUT, B::Timeout { message: m(t) }),
            Error::Store(err) => match err {
                StoreError::NameTaken { .. } | StoreError::KeyTaken { .. } => {
                    (S::CONFLICT, B::Conflict { message: err.to_string() })
                }
                StoreError::Unavailable(_) => {
                    tracing::warn!(error = %err, "store unavailable");
                    let message = "the database is unavailable; try again shortly".to_string();
                    (S::SERVICE_UNAVAILABLE, B::Unavailable { message })
                }
                _ => {
                    tracing::error!(error = %err, "store failure");
                    (S::INTERNAL_SERVER_ERROR, B::Internal)
                }
            },
        },
    }
}

/// Whole seconds to wait, at least 1.
fn retry_after(wait: std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The JSON error response (with `Allow` on a 405, `Retry-After` on a 429).
pub fn response(e: &ApiError) -> warp::reply::Response {
    let (status, body) = status_and_body(e);
    let mut r = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    if let ApiError::RateLimited(wait) = e {
        r.headers_mut()
            .insert(warp::http::header::RETRY_AFTER, retry_after(*wait).into());
    }
    if let ApiError::MethodNotAllowed(methods) = e {
        let allow: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
        if let Ok(v) = warp::http::HeaderValue::from_str(&allow.join(", ")) {
            r.headers_mut().insert(warp::http::header::ALLOW, v);
        }
    }
    r
}
