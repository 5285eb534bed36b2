//! Request plumbing shared by all routes: the app handle, the caller, JSON bodies.

use super::error::ApiRejection;
use crate::app::App;
use crate::auth::User;
use std::convert::Infallible;
use std::sync::Arc;
use warp::http::HeaderMap;
use warp::{Filter, Rejection};

pub const MAX_BODY: u64 = 64 * 1024;

pub fn with_app(app: Arc<App>) -> impl Filter<Extract = (Arc<App>,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(warp::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(warp::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The token from `Authorization: Bearer` or the session cookie.
pub fn token_from<'a>(headers: &'a HeaderMap, cookie_name: &str) -> Option<&'a str> {
    bearer(headers).or_else(|| cookie(headers, cookie_name))
}

/// The verified caller: `Authorization: Bearer <jwt>` or the session cookie.
pub fn user(app: Arc<App>) -> impl Filter<Extract = (User,), Error = Rejection> + Clone {
    warp::header::headers_cloned().and_then(move |headers: HeaderMap| {
        let app = app.clone();
        async move {
            let token = token_from(&headers, &app.config.auth.cookie_name);
            let Some(token) = token else {
                return Err(warp::reject::custom(ApiRejection::Unauthenticated));
            };
            app.auth.verify(token).map_err(|e| {
                tracing::debug!(error = %e, "token rejected");
                warp::reject::custom(ApiRejection::Unauthenticated)
            })
        }
    })
}

/// A JSON body, size-limited; malformed JSON is a 400 that says where it broke.
pub fn json_body() -> impl Filter<Extract = (serde_json::Value,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_BODY)
        .and(warp::body::bytes())
        .and_then(|b: bytes_alias::Bytes| async move {
            serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| {
                warp::reject::custom(ApiRejection::BadBody(format!(
                    "body is not valid JSON: {e}"
                )))
            })
        })
}

mod bytes_alias {
    pub use warp::hyper::body::Bytes;
}

/// The caller and the app, for every authenticated route.
pub fn authed(app: Arc<App>) -> impl Filter<Extract = (User, Arc<App>), Error = Rejection> + Clone {
    user(app.clone()).and(with_app(app))
}

/// Scope check: 403 when the token's scopes do not grant `action` on `resource`.
pub fn allow(u: &User, resource: &str, action: &str) -> Result<(), Rejection> {
    if u.allows(resource, action) {
        Ok(())
    } else {
        Err(crate::app::Error::Forbidden(format!(
            "the token does not grant {action} on {resource}"
        ))
        .into())
    }
}

pub fn containers_res(u: &User) -> String {
    format!("compute.{}.containers", u.id)
}

pub fn container_res(u: &User, id: &str) -> String {
    format!("compute.{}.containers.{id}", u.id)
}

/// Erases a reply's type so route groups can be `unify`d and boxed (keeps compile times sane).
pub fn boxed<R: warp::Reply + 'static>(r: R) -> Box<dyn warp::Reply> {
    Box::new(r)
}
