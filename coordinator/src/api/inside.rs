//! Routes into a running container: logs (JSON, or a WebSocket that follows), the terminal
//! WebSocket, and metrics. WebSockets take the token from the header, cookie or `?token=`.
//!
//! Terminal protocol: binary frames carry bytes both ways; a text frame
//! `{"type":"resize","cols":120,"rows":40}` resizes; any other text frame is typed input.

use super::filters::{allow, authed, boxed, container_res, with_app};
use super::live::ws_user;
use crate::app::{App, Error};
use crate::auth::User;
use crate::inside::AgentStream;
use berth_shared::protocol::{read_frame, write_frame, LogLine, TerminalInput};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

type Query = HashMap<String, String>;

/// An integer query parameter within `lo..=hi`, `default` when absent; else 422 on `name`.
fn bounded(q: &Query, name: &str, default: usize, lo: usize, hi: usize) -> Result<usize, Error> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| Error::invalid(name, format!("must be an integer from {lo} to {hi}"))),
    }
}

/// `<RFC3339Nano> <text>`: one WebSocket message per line (seed `002`).
fn line_message(l: &LogLine) -> Message {
    Message::text(format!("{} {}", l.timestamp, l.text))
}

/// `GET /compute/containers/:id/<leaf>` as a WebSocket upgrade: id, user, app, query, upgrade.
fn websocket(
    app: &Arc<App>,
    leaf: &'static str,
) -> impl Filter<Extract = (String, User, Arc<App>, Query, Ws), Error = Rejection> + Clone {
    warp::path!("compute" / "containers" / String / ..)
        .and(warp::path(leaf))
        .and(warp::path::end())
        .and(warp::get())
        .and(ws_user(app.clone()))
        .and(with_app(app.clone()))
        .and(warp::query::<Query>())
        .and(warp::ws())
}

pub fn routes(app: Arc<App>) -> BoxedFilter<(Box<dyn Reply>,)> {
    let one = warp::path("compute")
        .and(warp::path("containers"))
        .and(warp::path::param::<String>());
    let logs_ws = websocket(&app, "logs").and_then(
        |id: String, u: User, app: Arc<App>, q: Query, ws: Ws| async move {
            allow(&u, &container_res(&u, &id), "read")?;
            let tail = bounded(&q, "tail", 100, 0, 10_000)?;
            let s = app.follow_logs(&u.id, &id, tail).await?;
            Ok::<_, Rejection>(boxed(ws.on_upgrade(move |socket| follow(socket, s))))
        },
    );
    let logs_json = one
        .and(warp::path!("logs"))
        .and(warp::get())
        .and(authed(app.clone()))
        .and(warp::query::<Query>())
        .and_then(|id: String, u: User, app: Arc<App>, q: Query| async move {
            allow(&u, &container_res(&u, &id), "read")?;
            let limit = bounded(&q, "limit", 50, 1, 500)?;
            let lines = app.recent_logs(&u.id, &id, limit).await?;
            Ok::<_, Rejection>(boxed(warp::reply::json(
                &serde_json::json!({"container_id": id, "lines": lines}),
            )))
        });
    let terminal = websocket(&app, "terminal").and_then(
        |id: String, u: User, app: Arc<App>, q: Query, ws: Ws| async move {
            allow(&u, &container_res(&u, &id), "update")?;
            let cols = bounded(&q, "cols", 80, 1, 1000)? as u16;
            let rows = bounded(&q, "rows", 24, 1, 1000)? as u16;
            let s = app.terminal(&u.id, &id, cols, rows).await?;
            Ok::<_, Rejection>(boxed(ws.on_upgrade(move |socket| relay(socket, s))))
        },
    );
    let metrics = one
        .and(warp::path!("metrics"))
        .and(warp::get())
        .and(authed(app))
        .and_then(|id: String, u: User, app: Arc<App>| async move {
            allow(&u, &container_res(&u, &id), "read")?;
            Ok::<_, Rejection>(boxed(warp::reply::json(&app.metrics(&u.id, &id).await?)))
        });
    logs_ws
        .or(logs_json)
        .unify()
        .or(terminal)
        .unify()
        .or(metrics)
        .unify()
        .boxed()
}

/// Agent log frames → one WebSocket message per line, until the container stops or the
/// client leaves (dropping the stream tells the agent to stop).
async fn follow(socket: WebSocket, mut s: AgentStream) {
    let (mut tx, mut rx) = socket.split();
    let _ = s.send.finish();
    loop {
        tokio::select! {
            batch = read_frame::<_, Vec<LogLine>>(&mut s.recv) => match batch {
                Ok(Some(lines)) => {
                    for l in &lines {
                        if tx.feed(line_message(l)).await.is_err() {
                            return;
                        }
                    }
                    if tx.flush().await.is_err() {
                        return;
                    }
                }
                _ => break,
            },
            m = rx.next() => match m {
                Some(Ok(m)) if !m.is_close() => {}
                _ => return,
            },
        }
    }
    let _ = tx.close().await;
}

fn input_of(m: &Message) -> Option<TerminalInput> {
    if m.is_binary() {
        return Some(TerminalInput::Data {
            data: m.as_bytes().to_vec(),
        });
    }
    let text = m.to_str().ok()?;
    if let Ok(TerminalInput::Resize { cols, rows }) = serde_json::from_str::<TerminalInput>(text) {
        return Some(TerminalInput::Resize { cols, rows });
    }
    Some(TerminalInput::Data {
        data: text.as_bytes().to_vec(),
    })
}

/// WebSocket ⇄ agent terminal stream, until either side ends.
async fn relay(socket: WebSocket, s: AgentStream) {
    let (mut tx, mut rx) = socket.split();
    let AgentStream { mut send, mut recv } = s;
    let upstream = async {
        while let Some(Ok(m)) = rx.next().await {
            if m.is_close() {
                break;
            }
            let Some(input) = input_of(&m) else { continue };
            if write_frame(&mut send, &input).await.is_err() {
                break;
            }
        }
        let _ = send.finish();
    };
    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match recv.read(&mut buf).await {
                Ok(None) | Ok(Some(0)) | Err(_) => break,
                Ok(Some(n)) => {
                    if tx.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.close().await;
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
