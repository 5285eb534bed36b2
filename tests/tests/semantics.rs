//! API calls a client builds on (issue 19), end to end on the real binaries and containerd:
//! `wait` (at once, blocking until running right after create, 408, deleted, a client that
//! goes away leaves nothing in flight), `exec` (exit status, stdin, stderr apart, env, output
//! bounded, bytes exact, timeout kills, 409/404/403), an `Idempotency-Key` that still names
//! its container after the coordinator was killed and restarted, 25 containers walked in pages
//! of 10 under churn, a stale `If-Match`, and the rate limit. `berth-coordinator`'s
//! `tests/semantics.rs` goes into more cases of the same in-process.

use anyhow::{ensure, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use berth_tests::{Cluster, Setup, User};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// `berth_api_requests_in_flight` of the coordinator.
async fn in_flight(c: &Cluster) -> Result<f64> {
    let url = format!("http://127.0.0.1:{}/metrics", c.coordinator_metrics);
    let text = reqwest::get(url).await?.text().await?;
    text.lines()
        .find_map(|l| l.strip_prefix("berth_api_requests_in_flight "))
        .context("the in-flight gauge")?
        .trim()
        .parse()
        .context("a number")
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_answers_when_the_status_is_reached_and_a_client_that_leaves_leaves_nothing(
) -> Result<()> {
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let key = alice.add_key("laptop").await?;
    let (id, created) = alice
        .create_container(json!({"name": "web", "ssh_key_ids": [key]}))
        .await?;
    ensure!(created["status"] != "running", "not running yet: {created}");
    let p = |q: &str| format!("/compute/containers/{id}/wait{q}");

    // Right after create: no 404 race, it blocks until the host reports running.
    let got = alice
        .expect(200, "GET", &p("?status=running&timeout=60s"), None)
        .await?;
    ensure!(
        got["status"] == "running" && got["container"]["status"] == "running",
        "{got}"
    );
    let started = Instant::now();
    alice.expect(200, "GET", &p(""), None).await?;
    println!(
        "wait on a running container answered in {:?}",
        started.elapsed()
    );

    let timeout = alice
        .expect(408, "GET", &p("?status=stopped&timeout=1s"), None)
        .await?;
    ensure!(timeout["error"] == "timeout", "{timeout}");
    for bad in [
        "?status=paused",
        "?timeout=11m",
        "?timeout=soon",
        "?timeout=0s",
    ] {
        let b = alice.expect(422, "GET", &p(bad), None).await?;
        ensure!(b["error"] == "invalid", "{bad}: {b}");
    }
    c.user("bob")?.expect(404, "GET", &p(""), None).await?;

    // A client that goes away mid-wait: the request is gone from the coordinator with it.
    let before = in_flight(&c).await?;
    let addr = c.api.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        p("?status=stopped&timeout=10m"),
        alice.token
    );
    sock.write_all(req.as_bytes()).await?;
    c.eventually(Duration::from_secs(10), "the wait is in flight", || async {
        Ok(in_flight(&c).await? > before)
    })
    .await?;
    drop(sock);
    c.eventually(Duration::from_secs(10), "the gauge is back", || async {
        Ok(in_flight(&c).await? <= before)
    })
    .await?;

    // Waiting for a stop, and for the delete to be torn down on the host.
    let stopping = {
        let (u, path) = (alice.clone(), p("?status=stopped"));
        tokio::spawn(async move { u.expect(200, "GET", &path, None).await })
    };
    alice
        .expect(200, "POST", &format!("/compute/containers/{id}/stop"), None)
        .await?;
    ensure!(stopping.await??["container"]["status"] == "stopped");
    let deleted = {
        let (u, path) = (alice.clone(), p("?status=deleted"));
        tokio::spawn(async move { u.expect(200, "GET", &path, None).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    alice
        .expect(200, "DELETE", &format!("/compute/containers/{id}"), None)
        .await?;
    let gone = deleted.await??;
    ensure!(
        gone["status"] == "deleted" && gone.get("container").is_none(),
        "{gone}"
    );
    alice
        .expect(404, "GET", &format!("/compute/containers/{id}"), None)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_runs_a_command_and_answers_its_status_and_output() -> Result<()> {
    let Setup { c, alice, id, .. } = Setup::running("laptop", json!({"name": "app"})).await?;
    let path = format!("/compute/containers/{id}/exec");
    let exec = |body: Value| {
        let (u, path) = (alice.clone(), path.clone());
        async move { u.expect(200, "POST", &path, Some(body)).await }
    };

    let r = exec(json!({"command": ["sh", "-c", "echo out; echo err >&2; exit 3"]})).await?;
    ensure!(
        r["exit_code"] == 3 && r["stdout"] == "out\n" && r["stderr"] == "err\n",
        "{r}"
    );
    ensure!(r["truncated"] == false && r["timed_out"] == false, "{r}");
    let r = exec(json!({"command": ["cat"], "stdin": "hello\nworld\n"})).await?;
    ensure!(
        r["stdout"] == "hello\nworld\n" && r["exit_code"] == 0,
        "stdin: {r}"
    );
    let r =
        exec(json!({"command": ["sh", "-c", "echo $GREETING"], "env": {"GREETING": "hi"}})).await?;
    ensure!(r["stdout"] == "hi\n", "env: {r}");

    // Every byte value through stdin and back, byte-exact in base64.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let r =
        exec(json!({"command": ["cat"], "stdin": STANDARD.encode(&bytes), "encoding": "base64"}))
            .await?;
    ensure!(r["encoding"] == "base64", "{r}");
    ensure!(
        STANDARD.decode(r["stdout"].as_str().context("stdout")?)? == bytes,
        "binary round trip"
    );

    // 10 MiB of output: the first MiB comes back, and says it was cut.
    let started = Instant::now();
    let r = exec(json!({"command": ["head", "-c", "10485760", "/dev/zero"], "encoding": "base64"}))
        .await?;
    let out = STANDARD.decode(r["stdout"].as_str().context("stdout")?)?;
    ensure!(
        r["truncated"] == true && out.len() == 1 << 20,
        "{} bytes, {}",
        out.len(),
        r["truncated"]
    );
    ensure!(
        r["exit_code"] == 0,
        "read to its end, not killed: {}",
        r["exit_code"]
    );
    println!("10 MiB exec answered in {:?}", started.elapsed());

    // A command past its timeout is killed, and nothing of it stays behind.
    let r = exec(json!({"command": ["sleep", "300"], "timeout": "1s"})).await?;
    ensure!(r["timed_out"] == true && r["exit_code"] == 137, "{r}");
    let left = exec(json!({"command": ["sh", "-c", "ps -o args | grep -c '^sleep 300'"]})).await?;
    ensure!(
        left["stdout"] == "0\n",
        "the killed command is gone: {left}"
    );

    for bad in [
        json!({}),
        json!({"command": []}),
        json!({"command": ["x"], "timeout": "0s"}),
    ] {
        let b = alice.expect(422, "POST", &path, Some(bad.clone())).await?;
        ensure!(b["error"] == "invalid", "{bad}: {b}");
    }
    c.user("bob")?
        .expect(404, "POST", &path, Some(json!({"command": ["true"]})))
        .await?;
    let ro = c.user_with_scope("alice", "compute.alice.containers:read")?;
    ro.expect(403, "POST", &path, Some(json!({"command": ["true"]})))
        .await?;
    alice
        .expect(200, "POST", &format!("/compute/containers/{id}/stop"), None)
        .await?;
    let b = alice
        .expect(409, "POST", &path, Some(json!({"command": ["true"]})))
        .await?;
    ensure!(b["error"] == "not_running", "{b}");
    Ok(())
}

/// `POST /compute/containers` of `body` with `key`: status, replay header, body.
async fn create_once(user: &User, key: &str, body: &Value) -> Result<(u16, bool, Value)> {
    let headers = [("idempotency-key", key)];
    let (s, h, v) = user
        .call_with("POST", "/compute/containers", &headers, Some(body.clone()))
        .await?;
    Ok((s, h.contains_key("idempotent-replayed"), v))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_names_one_container_across_a_coordinator_kill() -> Result<()> {
    let mut c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let key = alice.add_key("laptop").await?;
    let body = json!({"name": "once", "ssh_key_ids": [key]});

    // Two at once with one key: one container, both answers naming it.
    let (a, b) = tokio::join!(
        create_once(&alice, "deploy-42", &body),
        create_once(&alice, "deploy-42", &body)
    );
    let ((sa, _, a), (sb, _, b)) = (a?, b?);
    ensure!(
        sa == 201 && sb == 201 && a["id"] == b["id"],
        "{sa} {a} / {sb} {b}"
    );

    c.kill_coordinator()?;
    c.start_coordinator().await?;
    let (s, replayed, again) = create_once(&alice, "deploy-42", &body).await?;
    ensure!(
        s == 201 && replayed && again["id"] == a["id"],
        "after the restart: {s} {again}"
    );
    let list = alice
        .expect(200, "GET", "/compute/containers", None)
        .await?;
    let n = list["containers"].as_array().map(Vec::len);
    ensure!(n == Some(1), "one container: {list}");
    let id = a["id"].as_str().context("id")?;
    c.wait_running(&alice, id, "the one container runs").await?;
    Ok(())
}

/// Rewrites the coordinator's config with `edit` and restarts it.
async fn reconfigure(c: &mut Cluster, edit: impl Fn(String) -> String) -> Result<()> {
    let path = c.dir.join("coordinator.toml");
    std::fs::write(&path, edit(std::fs::read_to_string(&path)?))?;
    c.terminate_coordinator()?;
    c.start_coordinator().await?;
    c.wait_agents(1).await
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_if_match_and_the_rate_limit_on_the_real_coordinator() -> Result<()> {
    let mut c = Cluster::start().await?;
    reconfigure(&mut c, |t| {
        t + "[limits]\nmax_containers = 40\nmax_total_cpu_millis = 1000000\n\
             max_total_memory_mb = 10000000\nmax_total_storage_gb = 100000\n"
    })
    .await?;
    let alice = c.user("alice")?;
    let key = alice.add_key("laptop").await?;
    // Cordoned: the containers stay pending, nothing is started for this walk.
    let ops = c.user_with_scope("ops", "compute.admin:*")?;
    ops.expect(
        200,
        "POST",
        &format!("/compute/hosts/{}/cordon", c.host_key),
        None,
    )
    .await?;
    let create = |name: String| {
        let alice = alice.clone();
        async move {
            let (id, _) = alice
                .create_container(json!({"name": name, "ssh_key_ids": [key]}))
                .await?;
            anyhow::Ok(id)
        }
    };
    let mut first = std::collections::BTreeSet::new();
    for i in 0..25 {
        first.insert(create(format!("c{i}")).await?);
    }
    let mut seen = Vec::new();
    let (mut cursor, mut churn) = (String::new(), Vec::new());
    for round in 0.. {
        let page = alice
            .expect(
                200,
                "GET",
                &format!("/compute/containers?limit=10&cursor={cursor}"),
                None,
            )
            .await?;
        let items = page["containers"].as_array().context("containers")?;
        ensure!(items.len() <= 10, "pages of 10");
        seen.extend(
            items
                .iter()
                .filter_map(|x| x["id"].as_str().map(str::to_string)),
        );
        churn.push(create(format!("new{round}")).await?);
        if churn.len() > 1 {
            let gone = churn.remove(0);
            alice
                .expect(200, "DELETE", &format!("/compute/containers/{gone}"), None)
                .await?;
        }
        match page["next_cursor"].as_str() {
            Some(n) => cursor = n.to_string(),
            None => break,
        }
    }
    let unique: std::collections::BTreeSet<String> = seen.iter().cloned().collect();
    ensure!(unique.len() == seen.len(), "no duplicate: {seen:?}");
    ensure!(
        first.is_subset(&unique),
        "no gap: {:?}",
        first.difference(&unique).collect::<Vec<_>>()
    );

    // A stale If-Match is 412 and changes nothing.
    let id = first.iter().next().context("a container")?.clone();
    let one = format!("/compute/containers/{id}");
    let (s, h, before) = alice.call_with("GET", &one, &[], None).await?;
    let etag = h.get("etag").context("ETag")?.to_str()?.to_string();
    ensure!(s == 200, "{s}");
    let (s, _, b) = alice
        .call_with(
            "PATCH",
            &one,
            &[("if-match", "\"999\"")],
            Some(json!({"name": "x"})),
        )
        .await?;
    ensure!(s == 412 && b["error"] == "precondition_failed", "{s} {b}");
    ensure!(
        alice.expect(200, "GET", &one, None).await? == before,
        "nothing changed"
    );
    let (s, _, b) = alice
        .call_with(
            "PATCH",
            &one,
            &[("if-match", &etag)],
            Some(json!({"name": "renamed"})),
        )
        .await?;
    ensure!(s == 200 && b["name"] == "renamed", "{s} {b}");
    ops.expect(
        200,
        "POST",
        &format!("/compute/hosts/{}/uncordon", c.host_key),
        None,
    )
    .await?;

    // The rate limit of a quick-start-like config, lowered: 429 with Retry-After, then back.
    reconfigure(&mut c, |t| {
        t.replace("rate_limit = 200", "rate_limit = 2")
            .replace("rate_burst = 1000", "rate_burst = 5")
    })
    .await?;
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..8 {
        let (s, h, _) = alice.call_with("GET", "/compute/quota", &[], None).await?;
        retry = retry.or(h
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok()));
        statuses.push(s);
    }
    ensure!(
        statuses[..5].iter().all(|s| *s == 200) && statuses[5..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    tokio::time::sleep(Duration::from_secs(retry.context("Retry-After")?)).await;
    alice.expect(200, "GET", "/compute/quota", None).await?;
    Ok(())
}
