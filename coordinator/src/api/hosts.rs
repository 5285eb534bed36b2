//! Operator routes (token scope `compute.admin`): `GET /compute/hosts`,
//! `POST /compute/hosts/:key/cordon`, `POST /compute/hosts/:key/uncordon`.
//! To anyone else these paths do not exist (`404 not_found`). And `POST /compute/hosts/enroll`,
//! where an agent trades a one-time join token for its certificate.

use super::filters::{authed, boxed, json_body, with_app};
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
    let app_enroll = app.clone();
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
    // Agents redeem a one-time join token for their certificate; the token is the credential.
    let enroll = warp::path!("compute" / "hosts" / "enroll")
        .and(warp::post())
        .and(with_app(app_enroll))
        .and(json_body())
        .and_then(|app: Arc<App>, body: serde_json::Value| async move {
            let field = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let (Some(token), Some(key)) = (field("token"), field("public_key")) else {
                let mut e = berth_shared::validation::FieldErrors::default();
                e.add("token", "token and public_key are required strings");
                return Err(Rejection::from(Error::Invalid(e)));
            };
            let done = app.enroll(&token, &key).await?;
            Ok::<_, Rejection>(boxed(warp::reply::with_status(
                warp::reply::json(&done),
                warp::http::StatusCode::CREATED,
            )))
        });
    enroll.or(list).unify().or(cordon).unify().boxed()
}
