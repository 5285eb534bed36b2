//! `/compute/ws` with a real WebSocket client: the full list on connect, then create →
//! running → stop → stopped → delete as they happen; only the caller's containers, ever;
//! no token → refused before the upgrade.

use anyhow::{bail, Context, Result};
use berth_tests::Cluster;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::connect_async;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws, limit: Duration) -> Result<Value> {
    loop {
        let msg = tokio::time::timeout(limit, ws.next())
            .await
            .context("no message in time")?
            .context("stream ended")??;
        if msg.is_text() {
            return Ok(serde_json::from_str(msg.to_text()?)?);
        }
    }
}

/// Reads until a message matching `pred` arrives; returns the types seen on the way.
async fn until(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let m = next_json(ws, Duration::from_secs(60)).await?;
        seen.push(format!(
            "{}:{}",
            m["type"].as_str().unwrap_or(""),
            m["data"]["status"].as_str().unwrap_or("")
        ));
        if pred(&m) {
            return Ok(seen);
        }
    }
    bail!("never saw {what}; saw {seen:?}")
}

#[tokio::test(flavor = "multi_thread")]
async fn status_stream_follows_the_callers_containers_only() -> Result<()> {
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let bob = c.user("bob")?;
    let ws_url = |token: &str| {
        format!(
            "{}/compute/ws?token={token}",
            c.api.replace("http://", "ws://")
        )
    };

    assert!(
        connect_async(format!("{}/compute/ws", c.api.replace("http://", "ws://")))
            .await
            .is_err(),
        "no token must be refused"
    );

    let (mut a, _) = connect_async(ws_url(&alice.token)).await?;
    let (mut b, _) = connect_async(ws_url(&bob.token)).await?;
    assert_eq!(
        next_json(&mut a, Duration::from_secs(5)).await?,
        json!({"type": "containers", "data": []})
    );
    assert_eq!(
        next_json(&mut b, Duration::from_secs(5)).await?,
        json!({"type": "containers", "data": []})
    );

    let key = alice.add_key("k").await?;
    let (s, created) = alice
        .call(
            "POST",
            "/compute/containers",
            Some(json!({"name": "w", "ssh_key_ids": [key]})),
        )
        .await?;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let is = |kind: &'static str, status: &'static str| {
        let id = id.clone();
        move |m: &Value| {
            m["type"] == kind
                && m["data"]["container_id"] == id.as_str()
                && (status.is_empty() || m["data"]["status"] == status)
        }
    };
    until(&mut a, "running", is("container_status", "running")).await?;
    until(&mut a, "container_started", is("container_started", "")).await?;
    let (s, _) = alice
        .call("POST", &format!("/compute/containers/{id}/stop"), None)
        .await?;
    assert_eq!(s, 200);
    until(&mut a, "stopped", is("container_status", "stopped")).await?;
    until(&mut a, "container_stopped", is("container_stopped", "")).await?;
    alice
        .call("DELETE", &format!("/compute/containers/{id}"), None)
        .await?;
    until(&mut a, "container_deleted", is("container_deleted", "")).await?;

    // Bob saw none of it.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), b.next())
            .await
            .is_err(),
        "bob received alice's events"
    );
    Ok(())
}
