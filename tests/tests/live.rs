//! `/compute/ws` with a real WebSocket client: the full list on connect, then create →
//! running → stop → stopped → delete as they happen; only the caller's containers, ever;
//! no token → refused before the upgrade.

use anyhow::{bail, Result};
use berth_tests::ws::{next_json, Ws};
use berth_tests::Cluster;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::connect_async;

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

    assert!(
        connect_async(format!("{}/compute/ws", c.api.replace("http://", "ws://")))
            .await
            .is_err(),
        "no token must be refused"
    );

    let mut a = alice.websocket("/compute/ws").await?;
    let mut b = bob.websocket("/compute/ws").await?;
    for ws in [&mut a, &mut b] {
        assert_eq!(
            next_json(ws, Duration::from_secs(5)).await?,
            json!({"type": "containers", "data": []})
        );
    }

    let key = alice.add_key("k").await?;
    let (id, _) = alice
        .create_container(json!({"name": "w", "ssh_key_ids": [key]}))
        .await?;
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
    alice
        .expect(200, "POST", &format!("/compute/containers/{id}/stop"), None)
        .await?;
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
