//! Containers that look after themselves (issue 18), on the real binaries and containerd: a
//! process that exits is restarted with backoff and counted (`restart_count`,
//! `last_exit_code`, events `exited` / `restarted` / `crash_loop`), a crash loop ends at
//! `max_retries` as `stopped` with reason `crash_loop` and `start` gives it another chance, a
//! stopped container is never restarted, a kill -9 of the agent during a backoff keeps the
//! count and the schedule; HTTP, TCP and exec health checks pass and fail, the gateway answers
//! 503 and the forward refuses while unhealthy, an unhealthy container is restarted when its
//! policy allows; bad policies and checks are 422 per field and change nothing.

use anyhow::{ensure, Context, Result};
use berth_tests::{containerd, run, Cluster, Setup, User};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// Kills the container's main process (`sleep`, under the init) from inside, through the API.
async fn crash(u: &User, id: &str) -> Result<()> {
    let body = json!({"command": ["sh", "-c", "kill $(pidof sleep)"]});
    let (s, out) = u
        .call(
            "POST",
            &format!("/compute/containers/{id}/exec"),
            Some(body),
        )
        .await?;
    ensure!(s == 200, "exec {s}: {out}");
    Ok(())
}

/// Waits until `id` runs with `restart_count` `n`; returns the container.
async fn running_after(c: &Cluster, u: &User, id: &str, n: u64) -> Result<Value> {
    let what = format!("running again after restart {n}");
    c.eventually(WAIT, &what, || async {
        let v = u.container(id).await?;
        Ok(v["status"] == "running" && v["restart_count"] == n)
    })
    .await?;
    u.container(id).await
}

async fn event_types(u: &User, id: &str) -> Result<Vec<String>> {
    let ev = u
        .expect(
            200,
            "GET",
            &format!("/compute/containers/{id}/events?limit=1000"),
            None,
        )
        .await?;
    Ok(ev["events"]
        .as_array()
        .context("events")?
        .iter()
        .filter_map(|e| e["type"].as_str().map(String::from))
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn exits_are_restarted_with_backoff_and_a_crash_loop_ends_at_max_retries() -> Result<()> {
    let policy = json!({"mode": "on-failure", "max_retries": 2});
    let Setup { c, alice, id, .. } =
        Setup::running("k", json!({"name": "flaky", "restart_policy": policy})).await?;
    let v = alice.container(&id).await?;
    ensure!(
        v["restart_policy"] == policy && v["restart_count"] == 0,
        "{v}"
    );

    crash(&alice, &id).await?;
    c.eventually(WAIT, "restarting with a reason", || async {
        let v = alice.container(&id).await?;
        Ok(v["status"] == "restarting" || v["restart_count"] == 1)
    })
    .await?;
    let v = running_after(&c, &alice, &id, 1).await?;
    // tini passes on the signal that ended `sleep`: 128 + SIGTERM.
    ensure!(
        v["last_exit_code"] == 143 && v["last_exit_at"].is_string(),
        "{v}"
    );
    crash(&alice, &id).await?;
    running_after(&c, &alice, &id, 2).await?;
    crash(&alice, &id).await?;
    c.eventually(WAIT, "the crash loop ends at max_retries", || async {
        let v = alice.container(&id).await?;
        Ok(v["status"] == "stopped"
            && v["status_reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("crash_loop")))
    })
    .await?;
    let types = event_types(&alice, &id).await?;
    for t in ["exited", "restarted", "crash_loop"] {
        ensure!(types.iter().any(|x| x == t), "no {t} event: {types:?}");
    }
    // Left stopped: not restarted by the agent's periodic passes either.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let v = alice.container(&id).await?;
    ensure!(v["status"] == "stopped" && v["restart_count"] == 2, "{v}");
    ensure!(containerd::task(&c.namespace, &id)?.is_none_or(|(_, s)| s != "RUNNING"));

    // `start` gives it another chance; the count stays.
    let started = alice
        .expect(
            200,
            "POST",
            &format!("/compute/containers/{id}/start"),
            None,
        )
        .await?;
    ensure!(started["status"] == "running", "{started}");

    // A container the user stopped is never restarted.
    alice
        .expect(200, "POST", &format!("/compute/containers/{id}/stop"), None)
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let v = alice.container(&id).await?;
    ensure!(
        v["status"] == "stopped" && v.get("status_reason").is_none(),
        "{v}"
    );
    ensure!(
        containerd::task(&c.namespace, &id)?.is_none(),
        "a task runs"
    );

    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", c.agent_metrics))
        .await?
        .text()
        .await?;
    ensure!(
        metrics.contains("berth_agent_container_restarts_total 2"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_of_the_agent_during_a_backoff_keeps_the_count_and_the_schedule() -> Result<()> {
    let Setup {
        mut c, alice, id, ..
    } = Setup::running("k", json!({"name": "keeper"})).await?;
    // The default policy: always, without a limit. Backoffs of 1 s, 2 s, 4 s, then 8 s.
    for n in 1..=3 {
        crash(&alice, &id).await?;
        running_after(&c, &alice, &id, n).await?;
    }
    let crashed = Instant::now();
    crash(&alice, &id).await?;
    c.eventually(WAIT, "restarting, the fourth wait", || async {
        let v = alice.container(&id).await?;
        Ok(v["status"] == "restarting")
    })
    .await?;
    let v = alice.container(&id).await?;
    let reason = v["status_reason"].as_str().unwrap_or_default().to_string();
    ensure!(reason.contains("restart 4 in 8s"), "{v}");
    let exited_at = v["last_exit_at"]
        .as_str()
        .context("last_exit_at")?
        .to_string();
    c.kill_agent()?;
    c.start_agent().await?;
    c.wait_agents(1).await?;
    // Back, the agent waits out the stored backoff rather than starting it at once.
    let v = alice.container(&id).await?;
    let waiting = v["status"] == "restarting" && v["restart_count"] == 3;
    let done = v["status"] == "running" && v["restart_count"] == 4;
    ensure!(
        (waiting || done) && v["last_exit_at"] == exited_at.as_str(),
        "{v}"
    );
    let v = running_after(&c, &alice, &id, 4).await?;
    ensure!(v["last_exit_at"] == exited_at.as_str(), "{v}");
    let types = event_types(&alice, &id).await?;
    let restarted = types.iter().filter(|t| *t == "restarted").count();
    ensure!(restarted == 4, "{types:?}");
    // Due 8 s after the exit (which came after the crash was asked for), not when the agent
    // came back.
    ensure!(
        crashed.elapsed() >= Duration::from_secs(8),
        "restarted {:?} after the crash, before its backoff was over",
        crashed.elapsed()
    );
    Ok(())
}

fn curl_status(args: &[&str]) -> Result<String> {
    run(Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(args))
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_gate_the_ingress_and_restart_an_unhealthy_container() -> Result<()> {
    // Policy `no`: an unhealthy container is left running (and told), not restarted.
    let check = json!({"type": "http", "port": 8080, "path": "/", "interval": "1s",
        "timeout": "1s", "failures": 2, "grace": "0s"});
    let Setup { c, alice, id, key } = Setup::running(
        "k",
        json!({"name": "site", "restart_policy": {"mode": "no"}, "health_check": check}),
    )
    .await?;
    let serve = json!({"command": ["sh", "-c",
        "mkdir -p /root/www && echo ok > /root/www/index.html && httpd -p 8080 -h /root/www"]});
    let exec = format!("/compute/containers/{id}/exec");
    let health = |want: &'static str| {
        let (alice, id) = (&alice, &id);
        async move { Ok(alice.container(id).await?["health"] == want) }
    };
    c.eventually(WAIT, "unhealthy before its server runs", || {
        health("unhealthy")
    })
    .await?;
    for rule in [
        json!({"port": 80, "target_port": 8080}),
        json!({"port": 8733, "target_port": 8080}),
    ] {
        alice
            .expect(
                201,
                "POST",
                &format!("/compute/containers/{id}/ingress"),
                Some(rule),
            )
            .await?;
    }
    let site = format!("http://{id}.berth.test:{}/", c.http_port);
    let resolve = format!("{id}.berth.test:{}:127.0.0.1", c.http_port);
    let gateway = || curl_status(&["--resolve", &resolve, &site]);
    c.eventually(WAIT, "the gateway answers 503", || async {
        Ok(gateway()? == "503")
    })
    .await?;
    ensure!(
        std::net::TcpStream::connect(("127.0.0.1", 8733)).is_err(),
        "the forward of an unhealthy container accepted a connection"
    );
    alice
        .expect(200, "POST", &exec, Some(serve.clone()))
        .await?;
    c.eventually(WAIT, "healthy once httpd serves", || health("healthy"))
        .await?;
    c.eventually(WAIT, "the gateway reaches it", || async {
        Ok(gateway()? == "200")
    })
    .await?;
    c.eventually(WAIT, "the forward is back", || async {
        Ok(curl_status(&["http://127.0.0.1:8733/"]).unwrap_or_default() == "200")
    })
    .await?;
    let stop_httpd = json!({"command": ["sh", "-c", "kill $(pidof httpd)"]});
    alice
        .expect(200, "POST", &exec, Some(stop_httpd.clone()))
        .await?;
    c.eventually(WAIT, "unhealthy when httpd stops", || health("unhealthy"))
        .await?;
    let v = alice.container(&id).await?;
    ensure!(v["status"] == "running" && v["restart_count"] == 0, "{v}");
    ensure!(gateway()? == "503");

    // TCP, changed by PATCH without a restart: passes while httpd listens, fails once not.
    let tcp = json!({"health_check": {"type": "tcp", "port": 8080, "interval": "1s",
        "failures": 1, "grace": "0s"}});
    let patched = alice
        .expect(
            200,
            "PATCH",
            &format!("/compute/containers/{id}"),
            Some(tcp),
        )
        .await?;
    ensure!(
        patched["restarted"] == false && patched["health_check"]["type"] == "tcp",
        "{patched}"
    );
    alice.expect(200, "POST", &exec, Some(serve)).await?;
    c.eventually(WAIT, "tcp: healthy", || health("healthy"))
        .await?;
    alice.expect(200, "POST", &exec, Some(stop_httpd)).await?;
    c.eventually(WAIT, "tcp: unhealthy", || health("unhealthy"))
        .await?;
    let types = event_types(&alice, &id).await?;
    ensure!(
        types.iter().filter(|t| *t == "health").count() >= 4,
        "{types:?}"
    );

    // Exec, with the default policy: unhealthy → restarted; healthy again once the file is
    // back (the volume outlives the restart).
    let exec_check = json!({"type": "exec", "command": ["test", "-f", "/root/ok"],
        "interval": "1s", "failures": 2, "grace": "0s"});
    let id2 = c
        .running_container(
            &alice,
            json!({"name": "probe", "ssh_key_ids": [key], "health_check": exec_check}),
        )
        .await?;
    let exec2 = format!("/compute/containers/{id2}/exec");
    alice
        .expect(
            200,
            "POST",
            &exec2,
            Some(json!({"command": ["touch", "/root/ok"]})),
        )
        .await?;
    let healthy2 = || async { Ok(alice.container(&id2).await?["health"] == "healthy") };
    c.eventually(WAIT, "exec: healthy", healthy2).await?;
    alice
        .expect(
            200,
            "POST",
            &exec2,
            Some(json!({"command": ["rm", "/root/ok"]})),
        )
        .await?;
    c.eventually(WAIT, "exec: unhealthy, then restarted", || async {
        let v = alice.container(&id2).await?;
        Ok(v["restart_count"].as_u64() >= Some(1))
    })
    .await?;
    let v = alice.container(&id2).await?;
    ensure!(
        v["last_exit_at"].is_string() && types_include(&alice, &id2, "restarted").await?,
        "{v}"
    );
    c.eventually(WAIT, "running after the restart", || async {
        Ok(alice.container(&id2).await?["status"] == "running")
    })
    .await?;
    // It may be between restarts: the exec is 409 then, and tried again.
    c.eventually(WAIT, "exec: healthy after its restart", || async {
        let touch = json!({"command": ["touch", "/root/ok"]});
        let (s, _) = alice.call("POST", &exec2, Some(touch)).await?;
        Ok(s == 200 && alice.container(&id2).await?["health"] == "healthy")
    })
    .await?;
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", c.agent_metrics))
        .await?
        .text()
        .await?;
    ensure!(
        metrics.contains("berth_agent_containers_health{health=\"healthy\"} 1"),
        "{metrics}"
    );
    Ok(())
}

async fn types_include(u: &User, id: &str, t: &str) -> Result<bool> {
    Ok(event_types(u, id).await?.iter().any(|x| x == t))
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_policies_and_checks_are_422_per_field_and_change_nothing() -> Result<()> {
    // `c` held: the cluster lives as long as it is bound.
    let Setup {
        c: _cluster,
        alice,
        id,
        key,
    } = Setup::running("k", json!({"name": "steady"})).await?;
    let before = alice.container(&id).await?;
    let cases = [
        (
            json!({"restart_policy": {"mode": "sometimes"}}),
            "restart_policy.mode",
        ),
        (
            json!({"restart_policy": {"max_retries": -1}}),
            "restart_policy.max_retries",
        ),
        (
            json!({"health_check": {"type": "tcp", "port": 80, "interval": "500ms"}}),
            "health_check.interval",
        ),
        (
            json!({"health_check": {"type": "tcp", "port": 65536}}),
            "health_check.port",
        ),
        (
            json!({"health_check": {"type": "exec", "command": []}}),
            "health_check.command",
        ),
    ];
    for (body, field) in &cases {
        let e = alice
            .expect(
                422,
                "PATCH",
                &format!("/compute/containers/{id}"),
                Some(body.clone()),
            )
            .await?;
        ensure!(
            e["error"] == "invalid" && e["details"][field].is_array(),
            "{body}: {e}"
        );
        let mut create = body.clone();
        create["name"] = json!("other");
        create["ssh_key_ids"] = json!([key]);
        let e = alice
            .expect(422, "POST", "/compute/containers", Some(create))
            .await?;
        ensure!(e["details"][field].is_array(), "{body}: {e}");
    }
    let mut after = alice.container(&id).await?;
    let mut before = before;
    for v in [&mut before, &mut after] {
        v.as_object_mut()
            .context("object")?
            .remove("memory_used_mb");
        v.as_object_mut()
            .context("object")?
            .remove("storage_used_gb");
    }
    ensure!(
        before == after,
        "a refused change changed {before} into {after}"
    );
    let list = alice
        .expect(200, "GET", "/compute/containers", None)
        .await?;
    ensure!(
        list["containers"].as_array().map(Vec::len) == Some(1),
        "{list}"
    );
    Ok(())
}
