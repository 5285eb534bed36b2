//! `GET /compute/ws`: the caller's container list on connect, then every change to the
//! caller's containers (seed `001`, events of seed `003`). Each client has its own receiver
//! on the event bus, so a slow client lags (and gets the full list again) without slowing
//! the coordinator or anyone else.

use super::error::ApiRejection;
use super::filters::{allow, with_app};
use crate::app::{App, ContainerEvent};
use crate::auth::User;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::filters::BoxedFilter;
use warp::http::HeaderMap;
use warp::{Filter, Rejection, Reply};

/// Like `filters::user`, but browsers may also pass `?token=`.
pub fn ws_user(app: Arc<App>) -> impl Filter<Extract = (User,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::query::<HashMap<String, String>>())
        .and(with_app(app))
        .and_then(
            |headers: HeaderMap, q: HashMap<String, String>, app: Arc<App>| async move {
                let token = super::filters::token_from(&headers, &app.config.auth.cookie_name)
                    .map(str::to_string)
                    .or_else(|| q.get("token").cloned());
                let token =
                    token.ok_or_else(|| warp::reject::custom(ApiRejection::Unauthenticated))?;
                app.auth
                    .verify(&token)
                    .map_err(|_| warp::reject::custom(ApiRejection::Unauthenticated))
            },
        )
}

pub fn routes(app: Arc<App>) -> BoxedFilter<(Box<dyn Reply>,)> {
    warp::path!("compute" / "ws")
        .and(warp::get())
        .and(ws_user(app.clone()))
        .and(with_app(app))
        .and(warp::ws())
        .and_then(|u: User, app: Arc<App>, ws: Ws| async move {
            allow(&u, &format!("compute.{}", u.id), "read")?;
            let reply: Box<dyn Reply> =
                Box::new(ws.on_upgrade(move |socket| stream(socket, u, app)));
            Ok::<_, Rejection>(reply)
        })
        .boxed()
}

fn full_list(app: &App, user: &str) -> Option<Message> {
    let data = app.list(user).ok()?;
    Some(Message::text(
        json!({"type": "containers", "data": data}).to_string(),
    ))
}

fn event_message(ev: &ContainerEvent) -> Message {
    Message::text(
        json!({
            "type": ev.kind.as_str(),
            "data": {
                "container_id": ev.id,
                "status": ev.status.map(|s| s.as_str()),
                "external_ip": ev.external_ip,
            }
        })
        .to_string(),
    )
}

async fn stream(socket: WebSocket, u: User, app: Arc<App>) {
    let (mut tx, mut rx) = socket.split();
    let mut events = app.events.subscribe();
    let Some(first) = full_list(&app, &u.id) else {
        return;
    };
    if tx.send(first).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            ev = events.recv() => {
                let msg = match ev {
                    Ok(ev) if ev.owner == u.id => event_message(&ev),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => match full_list(&app, &u.id) {
                        Some(m) => m,
                        None => break,
                    },
                    Err(RecvError::Closed) => break,
                };
                if tx.send(msg).await.is_err() {
                    break;
                }
            }
            m = rx.next() => match m {
                Some(Ok(m)) if !m.is_close() => {}
                _ => break,
            },
        }
    }
    let _ = tx.close().await;
}
