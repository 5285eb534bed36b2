//! Reading the public API's WebSockets (`/compute/ws`, a container's `/logs` and
//! `/terminal`) as a client does: the next text message, or terminal output up to a
//! string, within a time limit.

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// A client WebSocket to the coordinator, as `connect_async` opens it.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The text of the next text message (others are skipped); fails if none comes in `limit`
/// or the stream ends.
pub async fn next_text(ws: &mut Ws, limit: Duration) -> Result<String> {
    loop {
        let msg = tokio::time::timeout(limit, ws.next())
            .await
            .context("no message in time")?
            .context("stream ended")??;
        if msg.is_text() {
            return Ok(msg.to_text()?.to_string());
        }
    }
}

/// The next text message, parsed as JSON ([`next_text`]).
pub async fn next_json(ws: &mut Ws, limit: Duration) -> Result<Value> {
    Ok(serde_json::from_str(&next_text(ws, limit).await?)?)
}

/// Terminal output (binary messages) until it contains `needle`; all of it, as text. Fails
/// when `limit` passes first or the terminal closes.
pub async fn read_until(ws: &mut Ws, needle: &str, limit: Duration) -> Result<String> {
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + limit;
    while !seen.contains(needle) {
        if std::time::Instant::now() > deadline {
            bail!("never saw {needle:?} in {seen:?}");
        }
        let m = tokio::time::timeout(limit, ws.next())
            .await
            .with_context(|| format!("no {needle:?} in time; output so far: {seen:?}"))?
            .context("terminal closed")??;
        if m.is_binary() {
            seen.push_str(&String::from_utf8_lossy(&m.into_data()));
        }
    }
    Ok(seen)
}
