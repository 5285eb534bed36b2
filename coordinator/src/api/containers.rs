//! Handlers of `/compute/containers` and `/compute/containers/{id}` (and its start, stop,
//! actions, events).

use super::call::{created, json, Call, Reply};
use super::error::ApiError;
use berth_shared::api::{ContainerList, EventList, StatusOk};
use berth_shared::requests::{ActionBody, CreateBody, PatchBody, Validate};

pub async fn list(c: Call) -> Result<Reply, ApiError> {
    let containers = c.svc.containers.list(&c.user.id).await?;
    json(&ContainerList { containers })
}

pub async fn create(c: Call, body: CreateBody) -> Result<Reply, ApiError> {
    created(&c.svc.containers.create(&c.user.id, body).await?)
}

pub async fn get(c: Call) -> Result<Reply, ApiError> {
    json(&c.svc.containers.view(c.container()?))
}

pub async fn patch(c: Call, body: PatchBody) -> Result<Reply, ApiError> {
    json(&c.svc.containers.patch(c.container()?, body).await?)
}

pub async fn delete(c: Call) -> Result<Reply, ApiError> {
    c.svc.containers.delete(c.container()?).await?;
    json(&StatusOk::ok())
}

pub async fn start(c: Call) -> Result<Reply, ApiError> {
    json(&c.svc.containers.start(c.container()?).await?)
}

pub async fn stop(c: Call) -> Result<Reply, ApiError> {
    json(&c.svc.containers.stop(c.container()?).await?)
}

pub async fn action(c: Call, body: ActionBody) -> Result<Reply, ApiError> {
    let action = body.validate(&()).map_err(crate::error::Error::Invalid)?;
    json(&c.svc.containers.action(c.container()?, action).await?)
}

pub async fn events(c: Call) -> Result<Reply, ApiError> {
    let events = c.svc.containers.history(c.container()?).await?;
    json(&EventList { events })
}
