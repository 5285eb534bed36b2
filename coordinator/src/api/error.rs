//! The one place where errors become HTTP statuses and JSON bodies (seed `000`).

use crate::error::Error;
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
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error(transparent)]
    App(#[from] Error),
}

pub fn status_and_body(e: &ApiError) -> (StatusCode, ErrorBody) {
    use ErrorBody as B;
    use StatusCode as S;
    let message = |m: &str| m.to_string();
    match e {
        ApiError::Unauthenticated => (S::UNAUTHORIZED, B::Unauthenticated),
        ApiError::BadBody(m) => (
            S::BAD_REQUEST,
            B::BadRequest {
                message: message(m),
            },
        ),
        ApiError::TooLarge => {
            let m = "request body is too large";
            (
                S::PAYLOAD_TOO_LARGE,
                B::BadRequest {
                    message: message(m),
                },
            )
        }
        ApiError::NoRoute => (S::NOT_FOUND, B::NotFound),
        ApiError::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, B::MethodNotAllowed),
        ApiError::App(e) => match e {
            Error::NotFound => (S::NOT_FOUND, B::NotFound),
            Error::Invalid(f) => (
                S::UNPROCESSABLE_ENTITY,
                B::Invalid {
                    details: f.0.clone(),
                },
            ),
            Error::OverQuota(d) => (S::FORBIDDEN, B::OverQuota { detail: d.clone() }),
            Error::Conflict(m) => (
                S::CONFLICT,
                B::Conflict {
                    message: message(m),
                },
            ),
            Error::Forbidden(m) => (
                S::FORBIDDEN,
                B::Forbidden {
                    message: message(m),
                },
            ),
            Error::NotRunning(m) => (
                S::CONFLICT,
                B::ContainerNotRunning {
                    message: message(m),
                },
            ),
            Error::Unavailable(m) => (
                S::SERVICE_UNAVAILABLE,
                B::Unavailable {
                    message: message(m),
                },
            ),
            Error::Store(err) => {
                tracing::error!(error = %err, "store failure");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorBody::Internal)
            }
        },
    }
}

/// The JSON error response.
pub fn response(e: &ApiError) -> warp::reply::Response {
    let (status, body) = status_and_body(e);
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}
