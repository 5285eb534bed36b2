//! Query parameters of the routes into a container (`logs`: `limit` 1–500, `tail` 0–10000;
//! `terminal`: `cols`, `rows` 1–1000) are checked before anything else, on a plain request
//! and on a WebSocket upgrade alike: out of range (negative, too large, not a number) is
//! `422` naming every bad parameter, never the container's state. In-process, no agents.

mod common;

use anyhow::{ensure, Context, Result};
use common::{coordinator, public_key};
use serde_json::{json, Value};

/// The HTTP status of a WebSocket handshake to `path` (which has a query already).
async fn upgrade_status(api: &str, path: &str, token: &str) -> Result<u16> {
    let url = format!("{}{path}&token={token}", api.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => Ok(101),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Ok(r.status().as_u16()),
        Err(e) => Err(e.into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_query_parameters_are_422_on_plain_and_upgrade_requests() -> Result<()> {
    let c = coordinator().await?;
    let alice = c.token("alice", None)?;
    let key = json!({"name": "k", "public_key": public_key(3)});
    let (s, key) = c.call(&alice, "POST", "/compute/ssh-keys", &key).await?;
    ensure!(s == 201, "adding a key: {s} {key}");
    let body = json!({"name": "web", "ssh_key_ids": [key["id"]]});
    let (s, created) = c.call(&alice, "POST", "/compute/containers", &body).await?;
    ensure!(s == 201, "creating a container: {s} {created}");
    let id = created["id"].as_str().context("container id")?;
    let logs = format!("/compute/containers/{id}/logs");
    let terminal = format!("/compute/containers/{id}/terminal");

    for (path, query, fields) in [
        (&logs, "tail=10001", &["tail"][..]),
        (&logs, "tail=-5", &["tail"]),
        (&logs, "tail=x", &["tail"]),
        (&logs, "limit=0", &["limit"]),
        (&logs, "limit=501", &["limit"]),
        (&logs, "limit=-1", &["limit"]),
        (&logs, "tail=10001&limit=0", &["tail", "limit"]),
        (&terminal, "cols=0", &["cols"]),
        (&terminal, "rows=1001", &["rows"]),
        (&terminal, "cols=-1&rows=0", &["cols", "rows"]),
    ] {
        let (s, b) = c
            .call(&alice, "GET", &format!("{path}?{query}"), &Value::Null)
            .await?;
        ensure!(
            s == 422 && b["error"] == "invalid",
            "{path}?{query}: {s} {b}"
        );
        for f in fields {
            ensure!(
                b["details"][f].is_array(),
                "{path}?{query}: no message for {f}: {b}"
            );
        }
        let s = upgrade_status(&c.api, &format!("{path}?{query}"), &alice).await?;
        ensure!(s == 422, "the upgrade of {path}?{query} answered {s}");
    }
    // In range, the container's state decides: it is not running (no agent here), and a
    // terminal that is no upgrade is a bad request.
    let in_range = format!("{logs}?tail=10000&limit=500");
    let (s, b) = c.call(&alice, "GET", &in_range, &Value::Null).await?;
    ensure!(s == 409 && b["error"] == "container_not_running", "{s} {b}");
    let s = upgrade_status(&c.api, &format!("{logs}?tail=0"), &alice).await?;
    ensure!(s == 409, "a logs upgrade in range answered {s}");
    let s = upgrade_status(&c.api, &format!("{terminal}?cols=1000&rows=1"), &alice).await?;
    ensure!(s == 409, "a terminal upgrade in range answered {s}");
    let plain = format!("{terminal}?cols=1000&rows=1");
    let (s, b) = c.call(&alice, "GET", &plain, &Value::Null).await?;
    ensure!(s == 400 && b["error"] == "bad_request", "{s} {b}");
    Ok(())
}
