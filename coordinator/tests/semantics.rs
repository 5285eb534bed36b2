//! API semantics a client builds on (issue 19), through real HTTP to an in-process coordinator
//! with its real store and no agents: pages stable under concurrent creates and deletes,
//! `ETag`/`If-Match`, `Idempotency-Key` (concurrent retries make one container), and the
//! per-user rate limit. `wait` and `exec` need a host: they are in `tests/tests/semantics.rs`.

mod common;

use anyhow::{ensure, Context, Result};
use common::{coordinator, coordinator_with, public_key, start_with, Coordinator};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// A request with extra headers: status, headers, JSON body.
async fn send(
    c: &Coordinator,
    token: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<(u16, reqwest::header::HeaderMap, Value)> {
    let mut req = reqwest::Client::new()
        .request(method.parse()?, format!("{}{path}", c.api))
        .bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await?;
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    Ok((status, headers, resp.json().await.unwrap_or(Value::Null)))
}

async fn roomy() -> Result<Coordinator> {
    let limits = "[limits]\nmax_containers = 100\nmax_total_cpu_millis = 1000000\n\
                  max_total_memory_mb = 10000000\nmax_total_storage_gb = 100000\n";
    start_with("", "", limits, |_| {
        Ok("secret = \"a-test-secret-of-at-least-32-bytes!!\"".into())
    })
    .await
}

/// The user's SSH key (made on first use from `seed`): containers need one.
async fn key(c: &Coordinator, token: &str, seed: u8) -> Result<u64> {
    let keys = c.get(token, "/compute/ssh-keys").await?;
    if let Some(id) = keys["ssh_keys"][0]["id"].as_u64() {
        return Ok(id);
    }
    let body = json!({"name": "k", "public_key": public_key(seed)});
    let (s, k) = c.call(token, "POST", "/compute/ssh-keys", &body).await?;
    ensure!(s == 201, "adding a key: {s} {k}");
    k["id"].as_u64().context("key id")
}

async fn create(c: &Coordinator, token: &str, name: &str) -> Result<String> {
    let key = key(c, token, 1).await?;
    let body = json!({"name": name, "ssh_key_ids": [key]});
    let (s, created) = c.call(token, "POST", "/compute/containers", &body).await?;
    ensure!(s == 201, "creating {name}: {s} {created}");
    Ok(created["id"].as_str().context("id")?.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_walk_25_containers_with_no_duplicate_and_no_gap_while_others_come_and_go(
) -> Result<()> {
    let c = roomy().await?;
    let alice = c.token("alice", None)?;
    let mut first = BTreeSet::new();
    for i in 0..25 {
        first.insert(create(&c, &alice, &format!("c{i}")).await?);
    }
    // The default page is the whole (short) list, as before pages existed.
    let all = c.get(&alice, "/compute/containers").await?;
    ensure!(
        all["containers"].as_array().map(Vec::len) == Some(25),
        "{all}"
    );
    ensure!(all["next_cursor"].is_null(), "one page: {all}");

    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut churn = Vec::new();
    for round in 0.. {
        let (s, h, page) = send(
            &c,
            &alice,
            "GET",
            &format!("/compute/containers?limit=10&cursor={cursor}"),
            &[],
            None,
        )
        .await?;
        ensure!(s == 200, "{s} {page}");
        let items = page["containers"].as_array().context("containers")?;
        ensure!(items.len() <= 10, "a page of 10: {}", items.len());
        seen.extend(
            items
                .iter()
                .map(|x| x["id"].as_str().unwrap_or("").to_string()),
        );
        // Between pages someone creates one and deletes one made during the walk.
        churn.push(create(&c, &alice, &format!("new{round}")).await?);
        if churn.len() > 1 {
            let gone = churn.remove(0);
            let (s, _) = c
                .call(
                    &alice,
                    "DELETE",
                    &format!("/compute/containers/{gone}"),
                    &Value::Null,
                )
                .await?;
            ensure!(s == 200, "delete {gone}: {s}");
        }
        match page["next_cursor"].as_str() {
            Some(n) => {
                ensure!(h.get("x-next-cursor").is_some(), "the header too");
                cursor = n.to_string();
            }
            None => break,
        }
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    ensure!(unique.len() == seen.len(), "a duplicate: {seen:?}");
    let missed: Vec<_> = first.difference(&unique).collect();
    ensure!(missed.is_empty(), "gaps: {missed:?}");

    for bad in ["limit=0", "limit=1001", "limit=ten", "cursor=zz"] {
        let (s, b) = c
            .call(
                &alice,
                "GET",
                &format!("/compute/containers?{bad}"),
                &Value::Null,
            )
            .await?;
        ensure!(s == 422 && b["error"] == "invalid", "{bad}: {s} {b}");
    }
    // Every other list pages the same way.
    let (s, keys) = c
        .call(&alice, "GET", "/compute/ssh-keys?limit=1", &Value::Null)
        .await?;
    ensure!(s == 200 && keys["next_cursor"].is_null(), "{keys}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_if_match_is_412_and_changes_nothing() -> Result<()> {
    let c = coordinator().await?;
    let alice = c.token("alice", None)?;
    let id = create(&c, &alice, "web").await?;
    let one = format!("/compute/containers/{id}");
    let (s, h, before) = send(&c, &alice, "GET", &one, &[], None).await?;
    ensure!(s == 200, "{s}");
    let etag = h.get("etag").context("ETag on GET")?.to_str()?.to_string();
    ensure!(etag == "\"1\"", "the generation: {etag}");

    let rename = |n: &str| json!({"name": n});
    let (s, _, b) = send(
        &c,
        &alice,
        "PATCH",
        &one,
        &[("if-match", "\"0\"")],
        Some(&rename("stale")),
    )
    .await?;
    ensure!(s == 412 && b["error"] == "precondition_failed", "{s} {b}");
    let after = c.get(&alice, &one).await?;
    ensure!(after == before, "nothing changed: {after}");

    let (s, h, b) = send(
        &c,
        &alice,
        "PATCH",
        &one,
        &[("if-match", &etag)],
        Some(&rename("fresh")),
    )
    .await?;
    ensure!(s == 200 && b["name"] == "fresh", "{s} {b}");
    let next = h
        .get("etag")
        .context("ETag on the write")?
        .to_str()?
        .to_string();
    ensure!(next != etag, "a new generation: {next}");
    // The ETag seen before the rename is stale now, for every kind of write.
    for (method, path, body) in [
        ("PATCH", one.clone(), Some(rename("again"))),
        (
            "PUT",
            format!("{one}/mounts"),
            Some(json!({"mount_paths": ["/data"]})),
        ),
        ("POST", format!("{one}/stop"), None),
        ("DELETE", one.clone(), None),
    ] {
        let (s, _, b) = send(
            &c,
            &alice,
            method,
            &path,
            &[("if-match", &etag)],
            body.as_ref(),
        )
        .await?;
        ensure!(s == 412, "{method} {path}: {s} {b}");
    }
    let still = c.get(&alice, &one).await?;
    ensure!(
        still["name"] == "fresh" && still["mount_paths"] == before["mount_paths"],
        "{still}"
    );
    let (s, _, _) = send(&c, &alice, "DELETE", &one, &[("if-match", "*")], None).await?;
    ensure!(s == 200, "If-Match: * matches any generation: {s}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_idempotency_key_makes_one_container_however_often_it_is_sent() -> Result<()> {
    let c = coordinator().await?;
    let alice = c.token("alice", None)?;
    let body = json!({"name": "once", "ssh_key_ids": [key(&c, &alice, 1).await?]});
    let once = [("idempotency-key", "create-once-1")];
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (api, token, body) = (c.api.clone(), alice.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(format!("{api}/compute/containers"))
                .bearer_auth(token)
                .header("idempotency-key", "create-once-1")
                .json(&body)
                .send()
                .await?;
            let s = r.status().as_u16();
            anyhow::Ok((s, r.json::<Value>().await?))
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        let (s, b) = t.await??;
        ensure!(s == 201, "every answer is the first one: {s} {b}");
        ids.insert(b["id"].as_str().context("id")?.to_string());
    }
    ensure!(ids.len() == 1, "one container: {ids:?}");
    let list = c.get(&alice, "/compute/containers").await?;
    ensure!(
        list["containers"].as_array().map(Vec::len) == Some(1),
        "{list}"
    );
    let (s, h, _) = send(
        &c,
        &alice,
        "POST",
        "/compute/containers",
        &once,
        Some(&body),
    )
    .await?;
    ensure!(
        s == 201 && h.get("idempotent-replayed").is_some(),
        "a replay says so: {s}"
    );

    // The same key with another body is refused; another user's same key is theirs.
    let (s, _, b) = send(
        &c,
        &alice,
        "POST",
        "/compute/containers",
        &once,
        Some(&json!({"name": "other"})),
    )
    .await?;
    ensure!(
        s == 422 && b["details"]["Idempotency-Key"].is_array(),
        "{s} {b}"
    );
    let bob = c.token("bob", None)?;
    let bobs = json!({"name": "once", "ssh_key_ids": [key(&c, &bob, 2).await?]});
    let (s, _, b) = send(&c, &bob, "POST", "/compute/containers", &once, Some(&bobs)).await?;
    ensure!(
        s == 201 && !ids.contains(b["id"].as_str().unwrap_or("")),
        "{s} {b}"
    );

    // A refused request keeps nothing: the key runs again once the body is right.
    let k2 = [("idempotency-key", "create-once-2")];
    let (s, _, _) = send(
        &c,
        &alice,
        "POST",
        "/compute/containers",
        &k2,
        Some(&json!({"name": "-bad"})),
    )
    .await?;
    ensure!(s == 422, "{s}");
    let (s, _, _) = send(
        &c,
        &alice,
        "POST",
        "/compute/containers",
        &k2,
        Some(&json!({"name": "-bad"})),
    )
    .await?;
    ensure!(s == 422, "validated again, not replayed: {s}");
    for bad in ["", "with space", &"k".repeat(256)] {
        let (s, _, b) = send(
            &c,
            &alice,
            "POST",
            "/compute/ssh-keys",
            &[("idempotency-key", bad)],
            Some(&json!({})),
        )
        .await?;
        ensure!(s == 422 || s == 400, "key {bad:?}: {s} {b}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_answers_429_with_retry_after_then_recovers() -> Result<()> {
    let c = coordinator_with("rate_limit = 2\nrate_burst = 5").await?;
    let alice = c.token("alice", None)?;
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..8 {
        let (s, h, b) = send(&c, &alice, "GET", "/compute/containers", &[], None).await?;
        if s == 429 {
            ensure!(b["error"] == "rate_limited", "{b}");
            retry = h
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        }
        statuses.push(s);
    }
    ensure!(
        statuses[..5].iter().all(|s| *s == 200),
        "the burst: {statuses:?}"
    );
    ensure!(
        statuses[5..].iter().all(|s| *s == 429),
        "then limited: {statuses:?}"
    );
    let retry = retry.context("Retry-After")?;
    ensure!((1..=2).contains(&retry), "Retry-After {retry}");
    // WebSocket upgrades count too.
    ensure!(
        c.upgrade_status("/compute/ws", &alice).await? == 429,
        "an upgrade is limited"
    );
    // Another user has a bucket of their own; operators have none.
    let bob = c.token("bob", None)?;
    ensure!(
        c.call(&bob, "GET", "/compute/containers", &Value::Null)
            .await?
            .0
            == 200
    );
    let admin = c.token("ops", Some(&[("compute.admin", "read")]))?;
    for _ in 0..10 {
        ensure!(
            c.call(&admin, "GET", "/compute/hosts", &Value::Null)
                .await?
                .0
                == 200,
            "operators are exempt"
        );
    }
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let (s, _, _) = send(&c, &alice, "GET", "/compute/containers", &[], None).await?;
    ensure!(s == 200, "recovered after Retry-After: {s}");
    Ok(())
}
