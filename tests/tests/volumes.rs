//! `storage_gb` is a real bound: each container's data lives on its own loop-mounted ext4 of
//! that size. Filling it fails with ENOSPC inside the container, `storage_used_gb` shows real
//! use, a PATCH that grows it keeps the data, and delete removes the filesystem.

use anyhow::Result;
use berth_tests::{containerd, Setup};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread")]
async fn storage_is_bounded_and_kept() -> Result<()> {
    let body = json!({"name": "db", "storage_gb": 1, "mount_paths": ["/root", "/data"]});
    let Setup { c, alice, id, .. } = Setup::running("laptop", body).await?;
    let p = format!("/compute/containers/{id}");
    let ns = c.namespace.clone();
    let img = c.agent_data().join("volumes").join(format!("{id}.ext4"));
    assert_eq!(std::fs::metadata(&img)?.len(), 1 << 30);

    // Past the bound: ENOSPC inside the container; both mounts share the one bound.
    let out = containerd::exec(&ns, &id, "dd if=/dev/zero of=/root/fill bs=1M count=600 2>&1; dd if=/dev/zero of=/data/fill bs=1M count=600 2>&1; echo rc=$?")?;
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.trim_end().ends_with("rc=1"), "{out}");
    c.eventually(WAIT, "storage_used_gb", || async {
        Ok(alice.container(&id).await?["storage_used_gb"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.9)
    })
    .await?;

    // Grow it: the container is re-created on the bigger filesystem, data kept.
    containerd::exec(
        &ns,
        &id,
        "rm /root/fill /data/fill; echo kept > /data/marker",
    )?;
    alice
        .expect(200, "PATCH", &p, Some(json!({"storage_gb": 2})))
        .await?;
    c.eventually(WAIT, "running at 2 GB", || async {
        Ok(alice.container(&id).await?["status"] == "running"
            && std::fs::metadata(&img)?.len() == 2 << 30)
    })
    .await?;
    c.eventually(WAIT, "re-created", || async {
        Ok(containerd::exec(&ns, &id, "cat /data/marker").unwrap_or_default() == "kept\n")
    })
    .await?;
    let df = containerd::exec(&ns, &id, "df -k /data | tail -1")?;
    let kb: u64 = df.split_whitespace().nth(1).unwrap_or("0").parse()?;
    assert!(kb > 1_900_000, "{df}");

    // It cannot shrink: the data might not fit.
    let body = alice
        .expect(422, "PATCH", &p, Some(json!({"storage_gb": 1})))
        .await?;
    assert!(body["details"]["storage_gb"].is_array(), "{body}");

    // Delete: the filesystem goes with the container.
    assert_eq!(alice.call("DELETE", &p, None).await?.0, 200);
    let dir = c.agent_data().join("volumes").join(&id);
    c.eventually(WAIT, "volume gone", || async {
        Ok(!img.exists() && !dir.exists())
    })
    .await?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    assert!(!mounts.contains(&id), "a mount of {id} is left");
    Ok(())
}
