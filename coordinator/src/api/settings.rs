//! Routes for a container's settings: SSH access, mounts and ingress rules.

use super::filters::{allow, authed, boxed, container_res, json_body};
use crate::app::App;
use crate::auth::User;
use berth_shared::api::{IngressList, StatusOk};
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

pub fn routes(app: Arc<App>) -> BoxedFilter<(Box<dyn Reply>,)> {
    let one = warp::path("compute")
        .and(warp::path("containers"))
        .and(warp::path::param::<String>());
    let ssh_get = one
        .and(warp::path!("ssh"))
        .and(warp::get())
        .and(authed(app.clone()))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            allow(&u, &container_res(&u, &id), "read")?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&app.ssh_access(&u.id, &id)?)))
        });
    let ssh_put = one
        .and(warp::path!("ssh"))
        .and(warp::put())
        .and(authed(app.clone()))
        .and(json_body())
        .and_then(
            |id: String, u: User, app: Arc<App>, body: serde_json::Value| async move {
                allow(&u, &container_res(&u, &id), "update")?;
                Ok::<_, Rejection>(boxed(warp::reply::json(
                    &app.set_ssh_access(&u.id, &id, &body).await?,
                )))
            },
        );
    let mounts_get = one
        .and(warp::path!("mounts"))
        .and(warp::get())
        .and(authed(app.clone()))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            allow(&u, &container_res(&u, &id), "read")?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&app.mounts(&u.id, &id)?)))
        });
    let mounts_put = one
        .and(warp::path!("mounts"))
        .and(warp::put())
        .and(authed(app.clone()))
        .and(json_body())
        .and_then(
            |id: String, u: User, app: Arc<App>, body: serde_json::Value| async move {
                allow(&u, &container_res(&u, &id), "update")?;
                Ok::<_, Rejection>(boxed(warp::reply::json(
                    &app.set_mounts(&u.id, &id, &body).await?,
                )))
            },
        );
    let ingress_list = one
        .and(warp::path!("ingress"))
        .and(warp::get())
        .and(authed(app.clone()))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            allow(&u, &container_res(&u, &id), "read")?;
            let rules = app.ingress(&u.id, &id)?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&IngressList { rules })))
        });
    let ingress_add = one
        .and(warp::path!("ingress"))
        .and(warp::post())
        .and(authed(app.clone()))
        .and(json_body())
        .and_then(
            |id: String, u: User, app: Arc<App>, body: serde_json::Value| async move {
                allow(&u, &container_res(&u, &id), "update")?;
                let rule = app.add_ingress(&u.id, &id, &body).await?;
                Ok::<_, Rejection>(boxed(warp::reply::with_status(
                    warp::reply::json(&rule),
                    StatusCode::CREATED,
                )))
            },
        );
    let ingress_delete = one
        .and(warp::path("ingress"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::delete())
        .and(authed(app))
        .and_then(
            |id: String, port: String, u: User, app: Arc<App>| async move {
                allow(&u, &container_res(&u, &id), "update")?;
                app.delete_ingress(&u.id, &id, &port).await?;
                Ok::<_, Rejection>(boxed(warp::reply::json(&StatusOk::ok())))
            },
        );
    ssh_get
        .or(ssh_put)
        .unify()
        .or(mounts_get)
        .unify()
        .or(mounts_put)
        .unify()
        .or(ingress_list)
        .unify()
        .or(ingress_add)
        .unify()
        .or(ingress_delete)
        .unify()
        .boxed()
}
