//! Routes under `/compute/containers`.

use super::filters::{json_body, user, with_app};
use crate::app::App;
use crate::auth::User;
use berth_shared::api::{ContainerList, StatusOk};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

pub fn routes(app: Arc<App>) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let base = warp::path("compute").and(warp::path("containers"));
    let list = base
        .and(warp::path::end())
        .and(warp::get())
        .and(user(app.clone()))
        .and(with_app(app.clone()))
        .and_then(|u: User, app: Arc<App>| async move {
            let containers = app.list(&u.id)?;
            Ok::<_, Rejection>(warp::reply::json(&ContainerList { containers }))
        });
    let create = base
        .and(warp::path::end())
        .and(warp::post())
        .and(user(app.clone()))
        .and(with_app(app.clone()))
        .and(json_body())
        .and_then(
            |u: User, app: Arc<App>, body: serde_json::Value| async move {
                let c = app.create(&u.id, &body).await?;
                Ok::<_, Rejection>(warp::reply::with_status(
                    warp::reply::json(&c),
                    StatusCode::CREATED,
                ))
            },
        );
    let one = base.and(warp::path::param::<String>());
    let get = one
        .and(warp::path::end())
        .and(warp::get())
        .and(user(app.clone()))
        .and(with_app(app.clone()))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            let r = app.owned(&u.id, &id)?;
            Ok::<_, Rejection>(warp::reply::json(&app.view(&r)))
        });
    let delete = one
        .and(warp::path::end())
        .and(warp::delete())
        .and(user(app.clone()))
        .and(with_app(app.clone()))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            app.delete(&u.id, &id).await?;
            Ok::<_, Rejection>(warp::reply::json(&StatusOk::ok()))
        });
    let start = one
        .and(warp::path("start"))
        .and(warp::path::end())
        .and(warp::post())
        .and(user(app.clone()))
        .and(with_app(app.clone()))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            let c = app.start(&u.id, &id).await?;
            Ok::<_, Rejection>(warp::reply::json(&c))
        });
    let stop = one
        .and(warp::path("stop"))
        .and(warp::path::end())
        .and(warp::post())
        .and(user(app.clone()))
        .and(with_app(app))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            let c = app.stop(&u.id, &id).await?;
            Ok::<_, Rejection>(warp::reply::json(&c))
        });
    list.or(create).or(get).or(delete).or(start).or(stop)
}
