//! Reading the public API's WebSockets (`/compute/ws`, a container's `/logs` and
//! `/terminal`) as a client does: the next text message, within a time limit.

use anyhow::{Context, Result};
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
