//! SIGKILL the agent while a container runs: the container keeps running, the coordinator
//! shows its host unreachable, and after the agent restarts it reports `running` again with
//! the same task. SIGKILL the coordinator: its records survive.

use anyhow::Result;
use berth_tests::{containerd, Cluster};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn containers_survive_agent_and_coordinator_kills() -> Result<()> {
    let mut c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let key = alice.add_key("laptop").await?;
    let (s, created) = alice
        .call(
            "POST",
            "/compute/containers",
            Some(json!({"name": "db", "ssh_key_ids": [key]})),
        )
        .await?;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_string();
    c.eventually(WAIT, "the container runs", || async {
        Ok(alice.container(&id).await?["status"] == "running")
    })
    .await?;
    let ns = c.namespace.clone();
    let (pid, _) = containerd::task(&ns, &id)?.expect("task");

    c.kill_agent()?;
    c.eventually(
        WAIT,
        "the coordinator marks the host unreachable",
        || async {
            let body = alice.container(&id).await?;
            Ok(body["status_reason"]
                .as_str()
                .is_some_and(|r| r.contains("unreachable")))
        },
    )
    .await?;
    assert_eq!(
        containerd::task(&ns, &id)?,
        Some((pid, "RUNNING".to_string())),
        "the task survived the agent"
    );

    c.start_agent().await?;
    c.wait_agents(1).await?;
    c.eventually(WAIT, "running again, host reachable", || async {
        let body = alice.container(&id).await?;
        Ok(body["status"] == "running" && body.get("status_reason").is_none())
    })
    .await?;
    assert_eq!(
        containerd::task(&ns, &id)?,
        Some((pid, "RUNNING".to_string())),
        "restarting the agent did not restart the task"
    );

    // The coordinator's records survive SIGKILL, and a change made after it comes back works.
    c.kill_coordinator()?;
    c.start_coordinator().await?;
    c.wait_agents(1).await?;
    let body = alice.container(&id).await?;
    assert_eq!(body["name"], "db");
    let (s, stopped) = alice
        .call("POST", &format!("/compute/containers/{id}/stop"), None)
        .await?;
    assert_eq!(
        (s, stopped["status"].as_str()),
        (200, Some("stopped")),
        "{stopped}"
    );
    assert_eq!(containerd::task(&ns, &id)?, None);
    Ok(())
}
