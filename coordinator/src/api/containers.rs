//! Routes under `/compute/containers` for the containers themselves.

use super::filters::{allow, authed, boxed, container_res, containers_res, json_body};
use crate::app::App;
use crate::auth::User;
use berth_shared::api::{ContainerList, EventList, StatusOk};
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

pub fn routes(app: Arc<App>) -> BoxedFilter<(Box<dyn Reply>,)> {
    let base = warp::path("compute").and(warp::path("containers"));
    let list = base
        .and(warp::path::end())
        .and(warp::get())
        .and(authed(app.clone()))
        .and_then(|u: User, app: Arc<App>| async move {
            allow(&u, &containers_res(&u), "read")?;
            let containers = app.list(&u.id)?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&ContainerList { containers })))
        });
    let create = base
        .and(warp::path::end())
        .and(warp::post())
        .and(authed(app.clone()))
        .and(json_body())
        .and_then(
            |u: User, app: Arc<App>, body: serde_json::Value| async move {
                allow(&u, &containers_res(&u), "create")?;
                let c = app.create(&u.id, &body).await?;
                Ok::<_, Rejection>(boxed(warp::reply::with_status(
                    warp::reply::json(&c),
                    StatusCode::CREATED,
                )))
            },
        );
    let one = base.and(warp::path::param::<String>());
    let get = one
        .and(warp::path::end())
        .and(warp::get())
        .and(authed(app.clone()))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            allow(&u, &container_res(&u, &id), "read")?;
            let r = app.owned(&u.id, &id)?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&app.view(&r))))
        });
    let patch = one
        .and(warp::path::end())
        .and(warp::patch())
        .and(authed(app.clone()))
        .and(json_body())
        .and_then(
            |id: String, u: User, app: Arc<App>, body: serde_json::Value| async move {
                allow(&u, &container_res(&u, &id), "update")?;
                let c = app.patch(&u.id, &id, &body).await?;
                Ok::<_, Rejection>(boxed(warp::reply::json(&c)))
            },
        );
    let delete = one
        .and(warp::path::end())
        .and(warp::delete())
        .and(authed(app.clone()))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            allow(&u, &container_res(&u, &id), "delete")?;
            app.delete(&u.id, &id).await?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&StatusOk::ok())))
        });
    let start = one
        .and(warp::path!("start"))
        .and(warp::post())
        .and(authed(app.clone()))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            allow(&u, &container_res(&u, &id), "update")?;
            let c = app.start(&u.id, &id).await?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&c)))
        });
    let stop = one
        .and(warp::path!("stop"))
        .and(warp::post())
        .and(authed(app.clone()))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            allow(&u, &container_res(&u, &id), "update")?;
            let c = app.stop(&u.id, &id).await?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&c)))
        });
    let actions = one
        .and(warp::path!("actions"))
        .and(warp::post())
        .and(authed(app.clone()))
        .and(json_body())
        .and_then(
            |id: String, u: User, app: Arc<App>, body: serde_json::Value| async move {
                allow(&u, &container_res(&u, &id), "update")?;
                let c = app.action(&u.id, &id, &body).await?;
                Ok::<_, Rejection>(boxed(warp::reply::json(&c)))
            },
        );
    let events = one
        .and(warp::path!("events"))
        .and(warp::get())
        .and(authed(app))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            allow(&u, &container_res(&u, &id), "read")?;
            let events = app.events(&u.id, &id)?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&EventList { events })))
        });
    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(patch)
        .unify()
        .or(delete)
        .unify()
        .or(start)
        .unify()
        .or(stop)
        .unify()
        .or(actions)
        .unify()
        .or(events)
        .unify()
        .boxed()
}
