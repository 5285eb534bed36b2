//! Scope and tenancy, generated from the route table: for every route, a token without the
//! scope it needs gets 403 (operator routes 404), another user gets 404 on every
//! per-container route (WebSocket upgrades included), and a read-only token changes nothing.
//! A route added to the table later is covered here without anyone writing a test for it.
//! The coordinator runs in-process on port 0 with its real store, no agents.

mod common;

use anyhow::{ensure, Result};
use berth_coordinator::api::{table, Route, Scope};
use common::coordinator;
use serde_json::{json, Value};

fn concrete(r: &Route, id: &str, key: u64) -> String {
    r.path
        .replace("{id}", id)
        .replace("{port}", "8080")
        .replace("{key_id}", &key.to_string())
        .replace("{host_key}", "h1")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_checks_scope_and_owner_before_its_handler() -> Result<()> {
    let c = coordinator().await?;
    let alice = c.token("alice", None)?;
    let bob = c.token("bob", None)?;
    let nothing = c.token("alice", Some(&[("compute.alice.nothing", "*")]))?;
    let read_only = c.token("alice", Some(&[("compute.alice", "read")]))?;

    let (key_id, id) = c.key_and_container(&alice, 7).await?;
    let before = c.state(&alice, &id).await?;

    let mut checked = 0;
    for r in table().iter().filter(|r| r.scope.authenticated()) {
        let path = concrete(r, &id, key_id);
        let m = r.method.as_str();
        let what = format!("{m} {}", r.path);
        let hidden = if r.scope == Scope::Admin { 404 } else { 403 };
        if r.scope == Scope::Caller {
            // Any valid token may ask who it is, and is told only that.
            let (s, b) = c.call(&nothing, m, &path, &json!({})).await?;
            ensure!(
                s == 200 && b["user"] == "alice" && b["admin"] == false,
                "{what} answered {s} {b}"
            );
            ensure!(
                !r.scope.writes() && r.method == reqwest::Method::GET,
                "{what} writes"
            );
            checked += 1;
            continue;
        }

        let (s, b) = c.call(&nothing, m, &path, &json!({})).await?;
        ensure!(s == hidden, "{what} without its scope answered {s} {b}");
        // Every method but GET changes something, whatever scope the route declares.
        if r.method != reqwest::Method::GET || r.scope.writes() {
            let (s, b) = c.call(&read_only, m, &path, &json!({})).await?;
            ensure!(
                s == hidden,
                "{what} with a read-only token answered {s} {b}"
            );
        }
        if matches!(r.scope, Scope::Container(_)) {
            let (s, b) = c.call(&bob, m, &path, &json!({})).await?;
            ensure!(
                s == 404 && b["error"] == "not_found",
                "{what} for another user answered {s} {b}"
            );
        }
        if r.websocket {
            let s = c.upgrade_status(&path, &nothing).await?;
            ensure!(s == hidden, "{what} upgrade without its scope answered {s}");
            if matches!(r.scope, Scope::Container(_)) {
                let s = c.upgrade_status(&path, &bob).await?;
                ensure!(s == 404, "{what} upgrade for another user answered {s}");
            }
        }
        checked += 1;
    }
    ensure!(checked >= 25, "only {checked} routes checked");
    let after = c.state(&alice, &id).await?;
    ensure!(
        before == after,
        "refused calls changed something:\n{before}\n{after}"
    );
    let bobs = c.get(&bob, "/compute/containers").await?;
    ensure!(
        bobs["containers"] == json!([]),
        "bob gained containers: {bobs}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_are_typed_and_every_field_is_told_at_once() -> Result<()> {
    let c = coordinator().await?;
    let alice = c.token("alice", None)?;
    let resp = reqwest::Client::new()
        .post(format!("{}/compute/containers", c.api))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 400, "non-JSON: {}", resp.status());
    let bad = json!({"name": 5, "memory_mb": "lots", "ssh_key_ids": "x", "mount_paths": ["rel"]});
    let (s, b) = c.call(&alice, "POST", "/compute/containers", &bad).await?;
    ensure!(s == 422 && b["error"] == "invalid", "{s} {b}");
    for f in ["name", "memory_mb", "ssh_key_ids", "mount_paths"] {
        ensure!(b["details"][f].is_array(), "no message for {f}: {b}");
    }
    let (s, b) = c
        .call(&alice, "GET", "/compute/containers", &Value::Null)
        .await?;
    ensure!(
        s == 200 && b["containers"] == json!([]),
        "a refused body created something: {b}"
    );
    Ok(())
}
