//! SIGKILL the agent while a container runs: the container keeps running, the coordinator
//! shows its host unreachable, and after the agent restarts it reports `running` again with
//! the same task. SIGKILL the coordinator: its records survive.

use anyhow::Result;
use berth_tests::{containerd, Setup};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn containers_survive_agent_and_coordinator_kills() -> Result<()> {
    let Setup {
        mut c, alice, id, ..
    } = Setup::running("laptop", json!({"name": "db"})).await?;
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

/// Seed `003`: starting a container that vanished from its host re-creates it with the same
/// volume, and the answer says so; an ordinary start says nothing of the kind.
#[tokio::test(flavor = "multi_thread")]
async fn start_recreates_a_container_containerd_lost() -> Result<()> {
    let Setup { c, alice, id, .. } = Setup::running("laptop", json!({"name": "db"})).await?;
    let p = |suffix: &str| format!("/compute/containers/{id}{suffix}");
    let ns = c.namespace.clone();
    // One file on the volume, one on the writable root filesystem.
    let markers = "echo kept > /root/marker; echo rootfs > /etc/marker";
    containerd::exec(&ns, &id, markers)?;

    // An ordinary stop/start: running when it answers, nothing re-created, even the writable
    // root filesystem kept.
    assert_eq!(
        alice.call("POST", &p("/stop"), None).await?.1["status"],
        "stopped"
    );
    let (s, started) = alice.call("POST", &p("/start"), None).await?;
    assert_eq!(
        (s, started["status"].clone()),
        (200, json!("running")),
        "{started}"
    );
    assert!(started.get("recreated").is_none(), "{started}");
    assert_eq!(containerd::exec(&ns, &id, "cat /etc/marker")?, "rootfs\n");

    // Gone from containerd while stopped: start re-creates it, volume and all.
    assert_eq!(
        alice.call("POST", &p("/stop"), None).await?.1["status"],
        "stopped"
    );
    containerd::remove_behind_berths_back(&ns, &id)?;
    assert!(!containerd::container_exists(&ns, &id)?);
    let (s, started) = alice.call("POST", &p("/start"), None).await?;
    assert_eq!(s, 200, "{started}");
    assert_eq!(started["status"], "running", "{started}");
    assert_eq!(started["recreated"], true, "{started}");
    assert_eq!(started["volume_preserved"], true, "{started}");
    assert_eq!(containerd::exec(&ns, &id, "cat /root/marker")?, "kept\n");
    Ok(())
}
