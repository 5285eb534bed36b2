//! The one place where errors become HTTP statuses and JSON bodies (seed `000`).

use crate::app::Error;
use berth_shared::api::ErrorBody;
use std::convert::Infallible;
use warp::http::StatusCode;
use warp::reject::Reject;
use warp::{Rejection, Reply};

/// Carries an API error through warp's rejection machinery.
#[derive(Debug)]
pub enum ApiRejection {
    Unauthenticated,
    App(Error),
    BadBody(String),
}

impl Reject for ApiRejection {}

impl From<Error> for Rejection {
    fn from(e: Error) -> Rejection {
        warp::reject::custom(ApiRejection::App(e))
    }
}

pub fn status_and_body(e: &ApiRejection) -> (StatusCode, ErrorBody) {
    match e {
        ApiRejection::Unauthenticated => (StatusCode::UNAUTHORIZED, ErrorBody::Unauthenticated),
        ApiRejection::BadBody(message) => (
            StatusCode::BAD_REQUEST,
            ErrorBody::BadRequest {
                message: message.clone(),
            },
        ),
        ApiRejection::App(e) => match e {
            Error::NotFound => (StatusCode::NOT_FOUND, ErrorBody::NotFound),
            Error::Invalid(f) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorBody::Invalid {
                    details: f.0.clone(),
                },
            ),
            Error::OverQuota(detail) => (
                StatusCode::FORBIDDEN,
                ErrorBody::OverQuota {
                    detail: detail.clone(),
                },
            ),
            Error::Conflict(message) => (
                StatusCode::CONFLICT,
                ErrorBody::Conflict {
                    message: message.clone(),
                },
            ),
            Error::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                ErrorBody::Forbidden {
                    message: message.clone(),
                },
            ),
            Error::NotRunning(message) => (
                StatusCode::CONFLICT,
                ErrorBody::ContainerNotRunning {
                    message: message.clone(),
                },
            ),
            Error::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::Unavailable {
                    message: message.clone(),
                },
            ),
            Error::Store(err) => {
                tracing::error!(error = %err, "store failure");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorBody::Internal)
            }
        },
    }
}

/// Turns every rejection, ours or warp's, into a JSON error.
pub async fn recover(r: Rejection) -> Result<impl Reply, Infallible> {
    let (status, body) = if let Some(e) = r.find::<ApiRejection>() {
        status_and_body(e)
    } else if r.is_not_found() {
        (StatusCode::NOT_FOUND, ErrorBody::NotFound)
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, ErrorBody::MethodNotAllowed)
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorBody::BadRequest {
                message: "request body is too large".into(),
            },
        )
    } else {
        tracing::debug!(rejection = ?r, "unhandled rejection");
        (
            StatusCode::BAD_REQUEST,
            ErrorBody::BadRequest {
                message: format!("{r:?}"),
            },
        )
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), status))
}
