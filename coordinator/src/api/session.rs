//! `/compute/session`: a browser (the console) signs in by handing over an API token, which
//! comes back as the session cookie — `HttpOnly` (no script reads it), `SameSite=Strict`,
//! `Secure` when the request came over HTTPS, expiring with the token — and asks who it is.
//! The cookie is the token itself: nothing is stored, every coordinator accepts it, and
//! signing out clears it. Cross-site writes with it are refused by `dispatch`.

use super::call::{header_value, json, Call, Reply};
use super::error::ApiError;
use crate::auth::User;
use crate::error::Error;
use berth_shared::api::{Session, StatusOk};
use berth_shared::requests::{SessionBody, Validate};
use warp::http::header::{HeaderValue, SET_COOKIE};

fn view(user: &User) -> Session {
    Session {
        user: user.id.clone(),
        admin: user.is_admin(),
        expires_at: berth_shared::time::rfc3339(user.expires),
    }
}

/// Whether the browser reached us over HTTPS: a TLS-terminating proxy says so in
/// `X-Forwarded-Proto`, a browser in `Origin`. Either only ever adds `Secure`.
fn over_https(c: &Call) -> bool {
    let https = |v: Option<&str>| v.is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    https(header_value(&c.headers, "x-forwarded-proto"))
        || header_value(&c.headers, "origin").is_some_and(|o| o.starts_with("https://"))
}

fn with_cookie(mut reply: Reply, c: &Call, value: &str, max_age: u64) -> Result<Reply, ApiError> {
    let secure = if over_https(c) { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
        c.svc.config.auth.cookie_name
    );
    let cookie = HeaderValue::from_str(&cookie)
        .map_err(|_| Error::invalid("token", "is not usable in a cookie"))?;
    reply.headers_mut().insert(SET_COOKIE, cookie);
    Ok(reply)
}

/// `POST /compute/session`: verifies the token; `401` if it is not one of ours.
pub async fn create(c: Call, body: SessionBody) -> Result<Reply, ApiError> {
    let token = body.validate(&()).map_err(Error::Invalid)?;
    let user = c.svc.auth.verify(&token).map_err(|e| {
        tracing::debug!(error = %e, "sign-in token rejected");
        ApiError::Unauthenticated
    })?;
    let max_age = user
        .expires
        .saturating_sub(berth_shared::time::now_unix().0);
    tracing::info!(user = %user.id, admin = user.is_admin(), "browser session started");
    with_cookie(json(&view(&user))?, &c, &token, max_age)
}

/// `GET /compute/session`: who the token (header, cookie) is.
pub async fn get(c: Call) -> Result<Reply, ApiError> {
    json(&view(&c.user))
}

/// `DELETE /compute/session`: clears the cookie (the token itself stays valid until its
/// `exp`: revoke a token by rotating the signing key).
pub async fn delete(c: Call) -> Result<Reply, ApiError> {
    with_cookie(json(&StatusOk::ok())?, &c, "", 0)
}
