//! Routes under `/compute/ssh-keys`.

use super::filters::{allow, json_body, user, with_app};
use crate::app::App;
use crate::auth::User;
use berth_shared::api::{SshKeyList, StatusOk};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

pub fn routes(app: Arc<App>) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let base = warp::path("compute").and(warp::path("ssh-keys"));
    let list = base
        .and(warp::path::end())
        .and(warp::get())
        .and(user(app.clone()))
        .and(with_app(app.clone()))
        .and_then(|u: User, app: Arc<App>| async move {
            allow(&u, &format!("compute.{}.keys", u.id), "read")?;
            let ssh_keys = app.list_keys(&u.id)?;
            Ok::<_, Rejection>(warp::reply::json(&SshKeyList { ssh_keys }))
        });
    let create = base
        .and(warp::path::end())
        .and(warp::post())
        .and(user(app.clone()))
        .and(with_app(app.clone()))
        .and(json_body())
        .and_then(
            |u: User, app: Arc<App>, body: serde_json::Value| async move {
                let k = app.add_key(&u.id, &body).await?;
                Ok::<_, Rejection>(warp::reply::with_status(
                    warp::reply::json(&k),
                    StatusCode::CREATED,
                ))
            },
        );
    let delete = base
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::delete())
        .and(user(app.clone()))
        .and(with_app(app))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            allow(&u, &format!("compute.{}.keys", u.id), "delete")?;
            app.delete_key(&u.id, &id).await?;
            Ok::<_, Rejection>(warp::reply::json(&StatusOk::ok()))
        });
    list.or(create).or(delete)
}
