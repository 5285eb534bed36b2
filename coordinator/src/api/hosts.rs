//! Operator routes (token scope `compute.admin`): `GET /compute/hosts`,
//! `POST /compute/hosts/:key/cordon`, `POST /compute/hosts/:key/uncordon`.
//! To anyone else these paths do not exist (`404 not_found`).

use super::filters::{authed, boxed};
use crate::app::{App, Error};
use crate::auth::User;
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

fn admin(u: &User) -> Result<(), Rejection> {
    if u.is_admin() {
        Ok(())
    } else {
        Err(Error::NotFound.into())
    }
}

pub fn routes(app: Arc<App>) -> BoxedFilter<(Box<dyn Reply>,)> {
    let list = warp::path!("compute" / "hosts")
        .and(warp::get())
        .and(authed(app.clone()))
        .and_then(|u: User, app: Arc<App>| async move {
            admin(&u)?;
            Ok::<_, Rejection>(boxed(warp::reply::json(
                &serde_json::json!({"hosts": app.hosts()?}),
            )))
        });
    let cordon = warp::path!("compute" / "hosts" / String / String)
        .and(warp::post())
        .and(authed(app))
        .and_then(
            |key: String, action: String, u: User, app: Arc<App>| async move {
                admin(&u)?;
                let on = match action.as_str() {
                    "cordon" => true,
                    "uncordon" => false,
                    _ => return Err(Error::NotFound.into()),
                };
                Ok::<_, Rejection>(boxed(warp::reply::json(&app.set_cordon(&key, on).await?)))
            },
        );
    list.or(cordon).unify().boxed()
}
