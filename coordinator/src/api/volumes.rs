//! Handlers of `/compute/volumes` and of a container's volumes.

use super::call::{created, json, Call, Reply};
use super::error::ApiError;
use berth_shared::api::StatusOk;
use berth_shared::requests::{AttachBody, VolumeBody, VolumePatchBody};
use berth_shared::volumes::{ContainerVolumes, VolumeList};

pub async fn list(c: Call) -> Result<Reply, ApiError> {
    json(&VolumeList {
        volumes: c.svc.containers.volumes(&c.user.id).await?,
    })
}

pub async fn create(c: Call, body: VolumeBody) -> Result<Reply, ApiError> {
    created(&c.svc.containers.create_volume(&c.user.id, body).await?)
}

pub async fn get(c: Call) -> Result<Reply, ApiError> {
    json(
        &c.svc
            .containers
            .volume(&c.user.id, c.param("volume_id"))
            .await?,
    )
}

pub async fn patch(c: Call, body: VolumePatchBody) -> Result<Reply, ApiError> {
    let id = c.param("volume_id");
    json(&c.svc.containers.patch_volume(&c.user.id, id, body).await?)
}

pub async fn delete(c: Call) -> Result<Reply, ApiError> {
    let id = c.param("volume_id");
    c.svc.containers.delete_volume(&c.user.id, id).await?;
    json(&StatusOk::ok())
}

pub async fn of_container(c: Call) -> Result<Reply, ApiError> {
    json(&ContainerVolumes {
        volumes: c.container()?.volumes.clone(),
        restarted: false,
    })
}

pub async fn attach(c: Call, body: AttachBody) -> Result<Reply, ApiError> {
    json(&c.svc.containers.attach(c.container()?, body).await?)
}

pub async fn detach(c: Call) -> Result<Reply, ApiError> {
    let id = c.param("volume_id");
    json(&c.svc.containers.detach(c.container()?, id).await?)
}
