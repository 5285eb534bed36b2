//! Into a running container through the API: logs as JSON (`?limit=`) and as a following
//! WebSocket (`?tail=`, 100,000 lines counted), the terminal WebSocket (echo, resize, keystroke
//! round trip) and metrics (memory held, CPU burnt); another user's container is 404 on each,
//! and a stopped container is 409 where it must run.

use anyhow::{bail, Context, Result};
use berth_tests::ws::{next_text, read_until};
use berth_tests::{containerd, Setup};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(60);

fn is_rfc3339_nano(ts: &str) -> bool {
    ts.len() == 30 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.'
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_terminal_and_metrics() -> Result<()> {
    let Setup { c, alice, id, .. } = Setup::running("laptop", json!({"name": "app"})).await?;
    let bob = c.user("bob")?;
    let p = |suffix: &str| format!("/compute/containers/{id}{suffix}");
    let ns = c.namespace.clone();

    // Lines the container writes (to its own stdout and stderr) become its log.
    // (stdout and stderr are copied apart, so their relative order is only kept across time)
    containerd::exec(
        &ns,
        &id,
        "for i in 1 2 3 4 5; do echo line$i; done > /proc/1/fd/1",
    )?;
    c.eventually(WAIT, "stdout logged", || async {
        let (s, body) = alice.call("GET", &p("/logs"), None).await?;
        Ok(s == 200 && body["lines"].as_array().map(Vec::len) == Some(5))
    })
    .await?;
    containerd::exec(&ns, &id, "echo oops > /proc/1/fd/2")?;
    c.eventually(WAIT, "logs", || async {
        let (s, body) = alice.call("GET", &p("/logs"), None).await?;
        Ok(s == 200 && body["lines"].as_array().map(Vec::len) == Some(6))
    })
    .await?;
    let (_, logs) = alice.call("GET", &p("/logs?limit=3"), None).await?;
    let lines = logs["lines"].as_array().context("lines")?;
    let texts: Vec<&str> = lines.iter().filter_map(|l| l["text"].as_str()).collect();
    assert_eq!(texts, ["line4", "line5", "oops"]);
    assert_eq!(lines[1]["stream"], "stdout");
    assert_eq!(lines[2]["stream"], "stderr");
    assert!(
        lines
            .iter()
            .all(|l| is_rfc3339_nano(l["timestamp"].as_str().unwrap_or(""))),
        "{logs}"
    );
    let (_, all) = alice.call("GET", &p("/logs"), None).await?;
    assert_eq!(all["lines"].as_array().map(Vec::len), Some(6), "{all}");
    for bad in ["0", "501", "abc", "-1"] {
        let (s, body) = alice
            .call("GET", &p(&format!("/logs?limit={bad}")), None)
            .await?;
        assert_eq!(s, 422, "limit={bad}: {body}");
        assert_eq!(body["error"], "invalid");
    }
    for path in ["/logs", "/metrics"] {
        assert_eq!(
            bob.call("GET", &p(path), None).await?,
            (404, json!({"error": "not_found"}))
        );
    }
    for path in ["/logs", "/terminal"] {
        let url = bob.ws_url(&p(path));
        assert!(connect_async(url).await.is_err(), "bob reached {path}");
    }

    // WebSocket: the tail, then new lines as they come, 100,000 of them in order.
    let mut ws = alice.websocket(&p("/logs?tail=2")).await?;
    let first = next_text(&mut ws, WAIT).await?;
    let (ts, text) = first.split_once(' ').context("format")?;
    assert!(is_rfc3339_nano(ts) && text == "line5", "{first}");
    assert!(next_text(&mut ws, WAIT).await?.ends_with(" oops"));
    containerd::exec(&ns, &id, "seq 1 100000 > /proc/1/fd/1")?;
    let t0 = Instant::now();
    for want in 1..=100_000u32 {
        let m = next_text(&mut ws, WAIT).await?;
        let got = m.split_once(' ').map(|x| x.1).unwrap_or_default();
        assert_eq!(got, want.to_string(), "line {want} out of order");
    }
    println!("100000 log lines followed in {:?}", t0.elapsed());
    drop(ws);

    // Terminal: a shell on a PTY, echo, resize, keystroke round trip.
    let mut term = alice.websocket(&p("/terminal")).await?;
    // Like a person, type once the prompt is there (input sent earlier may be flushed).
    read_until(&mut term, "# ", WAIT).await?;
    term.send(Message::binary(b"echo hi-$((40+2))\n".to_vec()))
        .await?;
    read_until(&mut term, "hi-42", WAIT).await?;
    term.send(Message::text(r#"{"type":"resize","cols":100,"rows":30}"#))
        .await?;
    term.send(Message::binary(b"stty size; echo T=$TERM\n".to_vec()))
        .await?;
    let out = read_until(&mut term, "T=xterm-256color", WAIT).await?;
    assert!(out.contains("30 100"), "{out:?}");
    let mut rtts = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        term.send(Message::binary(b"x".to_vec())).await?;
        read_until(&mut term, "x", WAIT).await?;
        rtts.push(t.elapsed());
    }
    rtts.sort();
    println!(
        "terminal keystroke round trip: median {:?}, max {:?}",
        rtts[25], rtts[49]
    );
    term.send(Message::binary(b"\x15exit\n".to_vec())).await?; // ^U clears the x's
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(Ok(m)) = term.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "terminal did not end with its shell");

    // Metrics: memory held in /dev/shm shows; a busy loop shows CPU.
    let (s, before) = alice.call("GET", &p("/metrics"), None).await?;
    assert_eq!(s, 200, "{before}");
    for k in [
        "cpu_usage_percent",
        "memory_usage_bytes",
        "memory_total_bytes",
        "disk_read_bytes",
        "disk_write_bytes",
    ] {
        assert!(before[k].is_number(), "{k} in {before}");
    }
    assert_eq!(before["memory_total_bytes"], json!(512u64 * 1024 * 1024));
    containerd::exec(
        &ns,
        &id,
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 2>/dev/null",
    )?;
    containerd::exec(&ns, &id, "(while :; do :; done) >/dev/null 2>&1 &")?;
    c.eventually(WAIT, "memory and cpu in metrics", || async {
        let after = alice.call("GET", &p("/metrics"), None).await?.1;
        let grew = after["memory_usage_bytes"].as_u64().unwrap_or(0)
            >= before["memory_usage_bytes"].as_u64().unwrap_or(0) + 40 * 1024 * 1024;
        Ok(grew && after["cpu_usage_percent"].as_f64().unwrap_or(0.0) > 30.0)
    })
    .await?;
    println!(
        "metrics: before {before} after {}",
        alice.call("GET", &p("/metrics"), None).await?.1
    );
    c.eventually(WAIT, "memory_used_mb in the container", || async {
        Ok(alice.container(&id).await?["memory_used_mb"]
            .as_u64()
            .unwrap_or(0)
            >= 40)
    })
    .await?;

    // Lines written while the agent is down are kept (the log driver is the shim's child).
    let mut c = c;
    c.kill_agent()?;
    containerd::exec(&ns, &id, "echo while-agent-away > /proc/1/fd/1")?;
    c.start_agent().await?;
    c.eventually(WAIT, "line written while the agent was away", || async {
        let (s, body) = alice.call("GET", &p("/logs?limit=5"), None).await?;
        Ok(s == 200 && body.to_string().contains("while-agent-away"))
    })
    .await?;

    // Stopped: metrics and terminal say so; the log is still readable.
    assert_eq!(alice.call("POST", &p("/stop"), None).await?.0, 200);
    let (s, body) = alice.call("GET", &p("/metrics"), None).await?;
    assert_eq!(
        (s, body["error"].clone()),
        (409, json!("container_not_running"))
    );
    match connect_async(alice.ws_url(&p("/terminal"))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 409),
        other => bail!("terminal on a stopped container: {other:?}"),
    }
    let (s, body) = alice.call("GET", &p("/logs?limit=1"), None).await?;
    assert_eq!(s, 200, "{body}");
    Ok(())
}
