//! create → running (real task, real cgroup limits, real bind mount) → write a file → stop →
//! start → the file is still there → delete → nothing left in containerd or on disk.

use anyhow::Result;
use berth_tests::{containerd, Cluster};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn container_lifecycle_on_real_containerd() -> Result<()> {
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let key = alice.add_key("laptop").await?;

    let (id, created) = alice
        .create_container(json!({"name": "web", "ssh_key_ids": [key], "memory_mb": 256}))
        .await?;
    assert_eq!(created["status"], "pending");
    assert_eq!(created["memory_mb"], 256);
    assert_eq!(created["storage_gb"], 5);
    assert_eq!(created["instance_type"], "tiny");
    assert_eq!(created["mount_paths"], json!(["/root"]));
    assert!(
        id.len() == 8
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(created["hostname"], format!("{id}.berth.test"));

    c.wait_running(&alice, &id, "the container runs").await?;
    let ns = &c.namespace;
    let (pid, status) = containerd::task(ns, &id)?.expect("a task");
    assert_eq!(status, "RUNNING");
    assert!(pid > 0);

    // Real limits in the cgroup: 256 MB, one core (tiny) = 100000/100000 µs.
    assert_eq!(
        containerd::cgroup("memory", &id, "memory.limit_in_bytes")?,
        (256u64 << 20).to_string()
    );
    assert_eq!(
        containerd::cgroup("cpu", &id, "cpu.cfs_quota_us")?,
        "100000"
    );
    // The bind mount of /root comes from the agent's data dir.
    let spec = containerd::spec(ns, &id)?;
    let volume = c.agent_data().join("volumes").join(&id).join("root");
    let mounts = spec["mounts"].as_array().cloned().unwrap_or_default();
    assert!(
        mounts
            .iter()
            .any(|m| m["destination"] == "/root" && m["source"] == volume.display().to_string()),
        "no /root bind mount from {}: {mounts:?}",
        volume.display()
    );
    // PID 1 is the init, which keeps the machine up.
    assert_eq!(
        containerd::exec(ns, &id, "cat /proc/1/cmdline | tr '\\0' ' '")?
            .split(' ')
            .next(),
        Some("/.berth/init")
    );

    containerd::exec(ns, &id, "echo persisted > /root/marker")?;
    assert_eq!(
        std::fs::read_to_string(volume.join("marker"))?,
        "persisted\n"
    );

    let p = format!("/compute/containers/{id}");
    let stopped = alice
        .expect(200, "POST", &format!("{p}/stop"), None)
        .await?;
    assert_eq!(stopped["status"], "stopped", "{stopped}");
    assert_eq!(
        containerd::task(ns, &id)?,
        None,
        "the task is gone after stop"
    );

    let started = alice
        .expect(200, "POST", &format!("{p}/start"), None)
        .await?;
    // start answers once the host reports the container running (seed 003)
    assert_eq!(started["status"], "running");
    c.wait_running(&alice, &id, "the container runs again")
        .await?;
    assert_eq!(
        containerd::exec(ns, &id, "cat /root/marker")?,
        "persisted\n"
    );

    assert_eq!(
        alice.call("DELETE", &p, None).await?,
        (200, json!({"status": "ok"}))
    );
    alice.expect(404, "GET", &p, None).await?;
    c.eventually(
        WAIT,
        "containerd and the disk hold nothing of it",
        || async {
            Ok(!containerd::container_exists(ns, &id)?
                && !containerd::snapshot_exists(ns, &id)?
                && containerd::task(ns, &id)?.is_none()
                && !volume.exists()
                && !c
                    .agent_data()
                    .join("logs")
                    .join(format!("{id}.log"))
                    .exists())
        },
    )
    .await?;
    let (_, list) = alice.call("GET", "/compute/containers", None).await?;
    assert_eq!(list, json!({"containers": []}));
    Ok(())
}
