//! Handlers of a container's settings: SSH access, mounts and ingress rules.

use super::call::{created, json, Call, Reply};
use super::error::ApiError;
use super::page::{ascending, with_cursor, Page};
use crate::containers::ingress_view;
use crate::error::Error;
use berth_shared::api::{IngressList, Mounts, SshAccess, StatusOk};
use berth_shared::requests::{IngressBody, MountsBody, SshBody, Validate};

pub async fn ssh(c: Call) -> Result<Reply, ApiError> {
    json(&SshAccess {
        ssh_enabled: c.container()?.ssh_enabled,
    })
}

pub async fn set_ssh(c: Call, body: SshBody) -> Result<Reply, ApiError> {
    let on = body.validate(&()).map_err(Error::Invalid)?;
    json(&c.svc.containers.set_ssh_access(c.container()?, on).await?)
}

pub async fn mounts(c: Call) -> Result<Reply, ApiError> {
    json(&Mounts {
        mount_paths: c.container()?.mount_paths.clone(),
        restarted: None,
    })
}

pub async fn set_mounts(c: Call, body: MountsBody) -> Result<Reply, ApiError> {
    let paths = body.validate(&()).map_err(Error::Invalid)?;
    json(&c.svc.containers.set_mounts(c.container()?, paths).await?)
}

pub async fn ingress(c: Call) -> Result<Reply, ApiError> {
    let page = Page::from_query(&c.query)?;
    let rules = c.container()?.ingress.iter().map(ingress_view).collect();
    let (rules, next_cursor) = page.take(rules, |r| ascending(r.id));
    let reply = json(&IngressList {
        rules,
        next_cursor: next_cursor.clone(),
    })?;
    Ok(with_cursor(reply, next_cursor.as_deref()))
}

pub async fn add_ingress(c: Call, body: IngressBody) -> Result<Reply, ApiError> {
    let rule = body.validate(&()).map_err(Error::Invalid)?;
    created(&c.svc.containers.add_ingress(c.container()?, rule).await?)
}

pub async fn delete_ingress(c: Call) -> Result<Reply, ApiError> {
    let port = c.param("port");
    c.svc
        .containers
        .delete_ingress(c.container()?, port)
        .await?;
    json(&StatusOk::ok())
}
