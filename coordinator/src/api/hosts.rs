//! Operator handlers (`compute.admin`): the fleet's hosts and cordons; and enrollment, where
//! an agent trades a one-time join token for its certificate (the token is the credential).

use super::call::{created, json, Call, Reply};
use super::error::ApiError;
use super::page::{with_cursor, Page};
use crate::error::Error;
use berth_shared::requests::{EnrollBody, Validate};

pub async fn list(c: Call) -> Result<Reply, ApiError> {
    let page = Page::from_query(&c.query)?;
    let (hosts, next) = page.take(c.svc.fleet.view().await?, |h| h.host_key.clone());
    let mut body = serde_json::json!({ "hosts": hosts });
    if let Some(n) = &next {
        body["next_cursor"] = n.clone().into();
    }
    let reply = json(&body)?;
    Ok(with_cursor(reply, next.as_deref()))
}

pub async fn cordon(c: Call) -> Result<Reply, ApiError> {
    json(&c.svc.fleet.set_cordon(c.param("host_key"), true).await?)
}

pub async fn uncordon(c: Call) -> Result<Reply, ApiError> {
    json(&c.svc.fleet.set_cordon(c.param("host_key"), false).await?)
}

pub async fn enroll(c: Call, body: EnrollBody) -> Result<Reply, ApiError> {
    let (token, key) = body.validate(&()).map_err(Error::Invalid)?;
    let svc = &c.svc;
    created(&crate::enroll::redeem(&svc.config.link, &*svc.store, &token, &key).await?)
}
