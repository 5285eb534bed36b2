//! Handlers of `/compute/ssh-keys`.

use super::call::{created, json, Call, Reply};
use super::error::ApiError;
use berth_shared::api::{SshKeyList, StatusOk};
use berth_shared::requests::KeyBody;

pub async fn list(c: Call) -> Result<Reply, ApiError> {
    let ssh_keys = c.svc.keys.list(&c.user.id).await?;
    json(&SshKeyList { ssh_keys })
}

pub async fn create(c: Call, body: KeyBody) -> Result<Reply, ApiError> {
    created(&c.svc.keys.add(&c.user.id, body).await?)
}

pub async fn delete(c: Call) -> Result<Reply, ApiError> {
    c.svc.keys.delete(&c.user.id, c.param("key_id")).await?;
    json(&StatusOk::ok())
}
