//! Handlers of `/compute/ssh-keys`.

use super::call::{created, json, Call, Reply};
use super::error::ApiError;
use super::page::{ascending, with_cursor, Page};
use berth_shared::api::{SshKeyList, StatusOk};
use berth_shared::requests::KeyBody;

pub async fn list(c: Call) -> Result<Reply, ApiError> {
    let page = Page::from_query(&c.query)?;
    let keys = c.svc.keys.list(&c.user.id).await?;
    let (ssh_keys, next_cursor) = page.take(keys, |k| ascending(k.id));
    let reply = json(&SshKeyList {
        ssh_keys,
        next_cursor: next_cursor.clone(),
    })?;
    Ok(with_cursor(reply, next_cursor.as_deref()))
}

pub async fn create(c: Call, body: KeyBody) -> Result<Reply, ApiError> {
    created(&c.svc.keys.add(&c.user.id, body).await?)
}

pub async fn delete(c: Call) -> Result<Reply, ApiError> {
    c.svc.keys.delete(&c.user.id, c.param("key_id")).await?;
    json(&StatusOk::ok())
}
