//! Query parameters of the routes into a container (`logs`: `limit` 1–500, `tail` 0–10000;
//! `terminal`: `cols`, `rows` 1–1000) are checked before anything else, on a plain request
//! and on a WebSocket upgrade alike: out of range (negative, too large, not a number) is
//! `422` naming every bad parameter, never the container's state. In-process, no agents.

mod common;

use anyhow::{ensure, Result};
use common::coordinator;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_query_parameters_are_422_on_plain_and_upgrade_requests() -> Result<()> {
    let c = coordinator().await?;
    let alice = c.token("alice", None)?;
    let (_, id) = c.key_and_container(&alice, 3).await?;
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
        let s = c.upgrade_status(&format!("{path}?{query}"), &alice).await?;
        ensure!(s == 422, "the upgrade of {path}?{query} answered {s}");
    }
    // In range, the container's state decides: it is not running (no agent here), and a
    // terminal that is no upgrade is a bad request.
    let in_range = format!("{logs}?tail=10000&limit=500");
    let (s, b) = c.call(&alice, "GET", &in_range, &Value::Null).await?;
    ensure!(s == 409 && b["error"] == "container_not_running", "{s} {b}");
    let s = c.upgrade_status(&format!("{logs}?tail=0"), &alice).await?;
    ensure!(s == 409, "a logs upgrade in range answered {s}");
    let s = c
        .upgrade_status(&format!("{terminal}?cols=1000&rows=1"), &alice)
        .await?;
    ensure!(s == 409, "a terminal upgrade in range answered {s}");
    let plain = format!("{terminal}?cols=1000&rows=1");
    let (s, b) = c.call(&alice, "GET", &plain, &Value::Null).await?;
    ensure!(s == 400 && b["error"] == "bad_request", "{s} {b}");
    Ok(())
}
