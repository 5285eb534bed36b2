//! `GET /compute/ws`: the caller's container list on connect, then every change to the
//! caller's containers (seed `001`, events of seed `003`). Each client has its own receiver
//! on the event bus, so a slow client lags (and gets the full list again) without slowing
//! the coordinator or anyone else.

use super::call::{Call, Reply};
use super::error::ApiError;
use crate::events::{ContainerEvent, EventKind};
use crate::services::Services;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use warp::filters::ws::{Message, WebSocket};
use warp::Reply as _;

pub async fn status(mut c: Call) -> Result<Reply, ApiError> {
    let ws = c.upgrade()?;
    let until = c.svc.auth.valid_until(&c.user);
    let (svc, user) = (c.svc, c.user.id);
    Ok(ws
        .on_upgrade(move |socket| stream(socket, user, svc, until))
        .into_response())
}

async fn full_list(svc: &Services, user: &str) -> Option<Message> {
    let data = match svc.containers.list(user).await {
        Ok(d) => d,
        Err(e) => {
            // Never an empty list for a failed read: end the stream, the client reconnects.
            tracing::error!(user, error = %e, "cannot list containers for the status stream");
            return None;
        }
    };
    Some(Message::text(
        json!({"type": "containers", "data": data}).to_string(),
    ))
}

fn event_message(ev: &ContainerEvent) -> Message {
    Message::text(
        json!({
            "type": ev.kind.as_str(),
            "data": {
                "container_id": ev.record.id,
                "status": ev.record.status.as_str(),
                "external_ip": ev.record.external_ip,
            }
        })
        .to_string(),
    )
}

/// Streams until the client goes, or its token stops verifying at `until` (Unix seconds):
/// then the socket closes with 1008 "token expired", and a reconnect needs a valid token.
async fn stream(socket: WebSocket, user: String, svc: Arc<Services>, until: u64) {
    // A token verifies through the second `until` itself.
    let left = (until + 1).saturating_sub(berth_shared::time::now_unix().0);
    let expiry = tokio::time::sleep(std::time::Duration::from_secs(left));
    tokio::pin!(expiry);
    let (mut tx, mut rx) = socket.split();
    let mut events = svc.containers.events().subscribe(&user);
    let Some(first) = full_list(&svc, &user).await else {
        return;
    };
    if tx.send(first).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            ev = events.recv() => {
                let msg = match ev {
                    // The bus is per owner already; another's event is never sent, whatever happens.
                    Ok(ev) if ev.kind == EventKind::Removed => continue,
                    Ok(ev) if ev.record.owner == user => event_message(&ev),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => match full_list(&svc, &user).await {
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
            _ = &mut expiry => {
                tracing::debug!(user, "status stream: token expired");
                let _ = tx.send(Message::close_with(1008u16, "token expired")).await;
                break;
            }
        }
    }
    let _ = tx.close().await;
}
