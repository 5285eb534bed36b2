//! Certificate rotation: with `[link] agent_cert_validity = "30s"` the agent renews its
//! certificate over the link when a third of its life is left (new key, 0600), reconnects with
//! it, and stays connected long after the first certificate expired; its container keeps the
//! same task throughout; a restarted agent comes back with the renewed pair.

use anyhow::{Context, Result};
use berth_tests::{containerd, Cluster};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn agents_renew_their_certificates_without_touching_containers() -> Result<()> {
    let mut c = Cluster::start().await?;
    let cfg = c.dir.join("coordinator.toml");
    let text = std::fs::read_to_string(&cfg)?.replace(
        "heartbeat_grace = \"3s\"",
        "heartbeat_grace = \"3s\"\nagent_cert_validity = \"30s\"",
    );
    std::fs::write(&cfg, text)?;
    c.kill_coordinator()?;
    c.kill_agent()?;
    let tls = c.dir.join("tls");
    c.issue_agent_certificate(&c.host_key, &tls)?;
    let issued_at = Instant::now();
    let first_cert = std::fs::read_to_string(tls.join("agent.pem"))?;
    let first_key = std::fs::read_to_string(tls.join("agent.key"))?;
    c.start_coordinator().await?;
    c.start_agent().await?;
    c.wait_agents(1).await?;

    let alice = c.user("alice")?;
    let key = alice.add_key("laptop").await?;
    let id = c
        .running_container(&alice, json!({"name": "steady", "ssh_key_ids": [key]}))
        .await?;
    let (pid, _) = containerd::task(&c.namespace, &id)?.context("task")?;

    c.eventually(
        Duration::from_secs(40),
        "the agent renews its certificate",
        || async {
            Ok(
                std::fs::read_to_string(tls.join("agent.pem"))? != first_cert
                    && c.read_log("berth-agent").contains("certificate renewed"),
            )
        },
    )
    .await?;
    let key_file = std::fs::metadata(tls.join("agent.key"))?;
    assert_eq!(key_file.permissions().mode() & 0o777, 0o600);
    assert_ne!(
        std::fs::read_to_string(tls.join("agent.key"))?,
        first_key,
        "a new key, not the old one re-signed"
    );
    assert!(
        c.read_log("berth-coordinator")
            .contains("agent certificate renewed"),
        "the coordinator logged the renewal"
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", c.agent_metrics))
        .await?
        .text()
        .await?;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("berth_agent_certificate_renewals_total ")
                && !l.ends_with(" 0")),
        "renewals counted: {metrics}"
    );

    // Past the first certificate's end: still connected (on a renewed one), same task.
    let past_expiry = Duration::from_secs(35).saturating_sub(issued_at.elapsed());
    tokio::time::sleep(past_expiry).await;
    c.wait_agents(1).await?;
    c.eventually(Duration::from_secs(10), "the host is reachable", || async {
        let body = alice.container(&id).await?;
        Ok(body["status"] == "running" && body.get("status_reason").is_none())
    })
    .await?;
    assert_eq!(
        containerd::task(&c.namespace, &id)?,
        Some((pid, "RUNNING".to_string())),
        "renewals did not touch the container"
    );

    // A restarted agent joins with the pair on disk (the first one has long expired).
    c.kill_agent()?;
    c.start_agent().await?;
    c.wait_agents(1).await?;
    assert_eq!(
        containerd::task(&c.namespace, &id)?,
        Some((pid, "RUNNING".to_string()))
    );
    Ok(())
}
