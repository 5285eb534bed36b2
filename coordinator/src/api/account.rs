//! Per-user routes that are not about one container: images and quota.

use super::filters::{allow, authed, boxed, containers_res};
use crate::app::App;
use crate::auth::User;
use std::collections::HashMap;
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

pub fn routes(app: Arc<App>) -> BoxedFilter<(Box<dyn Reply>,)> {
    let images = warp::path!("compute" / "images")
        .and(warp::get())
        .and(authed(app.clone()))
        .and_then(|u: User, app: Arc<App>| async move {
            allow(&u, &containers_res(&u), "read")?;
            let list = app.images().await?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&list)))
        });
    let quota = warp::path!("compute" / "quota")
        .and(warp::get())
        .and(authed(app))
        .and(warp::query::<HashMap<String, String>>())
        .and_then(
            |u: User, app: Arc<App>, q: HashMap<String, String>| async move {
                allow(&u, &containers_res(&u), "read")?;
                let quota = app.quota(&u.id, q.get("region").map(String::as_str))?;
                Ok::<_, Rejection>(boxed(warp::reply::json(&quota)))
            },
        );
    images.or(quota).unify().boxed()
}
