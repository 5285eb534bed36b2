//! The agent reaps what it owns and nothing else. A host restored from a backup of its state
//! holds a container the coordinator has since deleted (the delete reached a host that then
//! forgot it): the coordinator, reading its store, disowns it and the agent removes every trace
//! of it — containerd objects, network, volume, log — after its orphan grace, while the
//! container the store does place there keeps its task. A container without Berth's label in
//! the agent's namespace, and one with it in another namespace, are never touched.

use anyhow::Result;
use berth_tests::{containerd, Setup};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_container_the_coordinator_disowns_is_removed_and_nothing_else() -> Result<()> {
    let Setup {
        mut c,
        alice,
        id: kept,
        key,
    } = Setup::running("laptop", json!({"name": "kept"})).await?;
    let gone = c
        .running_container(
            &alice,
            json!({"name": "gone", "mount_paths": ["/data"], "ssh_key_ids": [key]}),
        )
        .await?;
    let ns = c.namespace.clone();
    let (kept_pid, _) = containerd::task(&ns, &kept)?.expect("kept runs");

    // A backup of the host's state while both containers are on it.
    let backup = c.dir.join("state-backup");
    c.kill_agent()?;
    c.backup_agent_state(&backup)?;
    c.start_agent().await?;
    c.wait_agent_linked().await?;

    alice
        .expect(200, "DELETE", &format!("/compute/containers/{gone}"), None)
        .await?;
    c.eventually(WAIT, "the deleted container is gone everywhere", || async {
        let (s, _) = alice
            .call("GET", &format!("/compute/containers/{gone}"), None)
            .await?;
        Ok(s == 404 && c.leftovers(&gone)?.is_empty())
    })
    .await?;

    // Someone else's objects: unlabelled in the agent's namespace, labelled in another one.
    let other_ns = format!("{ns}-other");
    containerd::plant(&ns, "not-berths", &[])?;
    containerd::plant(&other_ns, &gone, &[&format!("berth.container={gone}")])?;
    let cleanup = WipeOnDrop(other_ns.clone());

    // The host comes back from its backup: it holds `gone` again and starts it.
    c.kill_agent()?;
    c.restore_agent_state(&backup)?;
    c.start_agent().await?;
    c.eventually(WAIT, "the restored host disowns and removes it", || async {
        Ok(c.read_log("berth-agent")
            .contains("removing a container the coordinator disowned"))
    })
    .await?;
    c.eventually(
        WAIT,
        "nothing of the disowned container is left",
        || async { Ok(c.leftovers(&gone)?.is_empty()) },
    )
    .await?;
    let log = c.read_log("berth-coordinator");
    assert!(
        log.contains("disowning it"),
        "the coordinator says why it disowned the container"
    );

    assert_eq!(
        containerd::task(&ns, &kept)?,
        Some((kept_pid, "RUNNING".to_string())),
        "the container the store places here kept its task"
    );
    let (s, body) = alice
        .call("GET", &format!("/compute/containers/{kept}"), None)
        .await?;
    assert_eq!((s, body["status"].as_str()), (200, Some("running")));
    // A reconcile pass (every 5 s here) and its orphan sweep have run since.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        containerd::container_exists(&ns, "not-berths")?,
        "a container without Berth's label is left alone"
    );
    assert!(
        containerd::container_exists(&other_ns, &gone)?,
        "another namespace is left alone"
    );
    let (s, _) = alice
        .call("GET", &format!("/compute/containers/{gone}"), None)
        .await?;
    assert_eq!(s, 404, "the deleted container stays deleted");
    drop(cleanup);
    Ok(())
}

struct WipeOnDrop(String);

impl Drop for WipeOnDrop {
    fn drop(&mut self) {
        containerd::wipe_namespace(&self.0);
    }
}
