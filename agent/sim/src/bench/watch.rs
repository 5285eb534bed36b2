//! `/compute/ws` watchers: each records, per container id, when it first saw it `running`,
//! and when it saw any event for it after a mark — for create → running latency and the
//! fan-out of one status change to many watchers.

use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// What the watchers saw: id → when it was first seen `running`; and every event's arrival.
#[derive(Default)]
pub struct Seen {
    pub running: Mutex<HashMap<String, Instant>>,
    /// (watcher, container id, arrival) of every event.
    pub events: Mutex<Vec<(usize, String, Instant)>>,
}

/// Opens a watcher for `token`; it runs until aborted. Returns once the first message (the
/// full list) arrived.
pub async fn watch(
    api: SocketAddr,
    token: &str,
    n: usize,
    seen: Arc<Seen>,
    keep_events: bool,
) -> Result<JoinHandle<()>> {
    let mut req = format!("ws://{api}/compute/ws").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    let first = ws.next().await.context("no first message")??;
    anyhow::ensure!(first.is_text(), "first message is not the list");
    Ok(tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            let at = Instant::now();
            let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                continue;
            };
            let Some(id) = v["data"]["container_id"].as_str() else {
                continue;
            };
            if v["data"]["status"] == "running" {
                seen.running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(id.to_string())
                    .or_insert(at);
            }
            if keep_events {
                seen.events
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((n, id.to_string(), at));
            }
        }
    }))
}

/// The `q` quantile (0..1) of `xs`, which it sorts.
pub fn quantile(xs: &mut [f64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let i = ((xs.len() as f64 - 1.0) * q).round() as usize;
    Some((xs[i] * 100.0).round() / 100.0)
}
