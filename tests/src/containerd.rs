//! What containerd and the host say about a container, read with `ctr` and cgroupfs —
//! independent of Berth's own reports.

use crate::run;
use anyhow::Result;
use serde_json::Value;
use std::process::Command;

fn ctr(ns: &str, args: &[&str]) -> Result<String> {
    run(Command::new("ctr").arg("-n").arg(ns).args(args))
}

/// `(pid, status)` of the container's task, if it has one.
pub fn task(ns: &str, id: &str) -> Result<Option<(u32, String)>> {
    let out = ctr(ns, &["tasks", "ls"])?;
    Ok(out.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.first() == Some(&id)).then(|| {
            (
                f.get(1).and_then(|p| p.parse().ok()).unwrap_or(0),
                f.get(2).unwrap_or(&"").to_string(),
            )
        })
    }))
}

/// Removes the container from containerd behind Berth's back (task, container, snapshot),
/// as a host wipe or an operator's `ctr rm` would.
pub fn remove_behind_berths_back(ns: &str, id: &str) -> Result<()> {
    let _ = ctr(ns, &["tasks", "kill", "-s", "KILL", id]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = ctr(ns, &["tasks", "rm", "-f", id]);
    ctr(ns, &["containers", "rm", id])?;
    let _ = ctr(ns, &["snapshots", "rm", id]);
    Ok(())
}

pub fn container_exists(ns: &str, id: &str) -> Result<bool> {
    Ok(ctr(ns, &["containers", "ls", "-q"])?
        .lines()
        .any(|l| l.trim() == id))
}

/// Every container in the namespace.
pub fn containers(ns: &str) -> Result<Vec<String>> {
    Ok(ctr(ns, &["containers", "ls", "-q"])?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

pub fn snapshot_exists(ns: &str, key: &str) -> Result<bool> {
    Ok(ctr(ns, &["snapshots", "ls"])?
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().next() == Some(key)))
}

/// The OCI spec containerd holds for the container.
pub fn spec(ns: &str, id: &str) -> Result<Value> {
    let info: Value = serde_json::from_str(&ctr(ns, &["containers", "info", id])?)?;
    Ok(info["Spec"].clone())
}

/// Runs a command inside the running container through containerd's exec API.
pub fn exec(ns: &str, id: &str, script: &str) -> Result<String> {
    let exec_id = format!("e2e-{}", std::process::id() ^ rand::random::<u32>());
    ctr(
        ns,
        &[
            "tasks",
            "exec",
            "--exec-id",
            &exec_id,
            id,
            "/bin/sh",
            "-c",
            script,
        ],
    )
}

/// A value from the container's cgroup (v1 layout: `/sys/fs/cgroup/<controller>/berth/<id>/`).
pub fn cgroup(controller: &str, id: &str, file: &str) -> Result<String> {
    Ok(
        std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}"))?
            .trim()
            .to_string(),
    )
}

/// Removes everything a test left in its namespace.
pub fn wipe_namespace(ns: &str) {
    let ids = ctr(ns, &["containers", "ls", "-q"]).unwrap_or_default();
    for id in ids.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let _ = ctr(ns, &["tasks", "kill", "-s", "SIGKILL", id]);
        for _ in 0..20 {
            if ctr(ns, &["tasks", "delete", id]).is_ok() || task(ns, id).ok().flatten().is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = ctr(ns, &["containers", "delete", id]);
        let _ = ctr(ns, &["snapshots", "rm", id]);
    }
    let images = ctr(ns, &["images", "ls", "-q"]).unwrap_or_default();
    for i in images.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let _ = ctr(ns, &["images", "rm", i]);
    }
    let _ = run(Command::new("ctr").args(["namespaces", "rm", ns]));
}

/// Unmounts (lazily) every mount point below `dir`.
pub fn unmount_under(dir: &std::path::Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.display().to_string();
    for mount_point in info.lines().filter_map(|l| l.split(' ').nth(4)) {
        if mount_point.starts_with(&prefix) {
            let _ = Command::new("umount").arg("-l").arg(mount_point).status();
        }
    }
}

/// Creates container `id` in namespace `ns` behind Berth's back (`ctr containers create`),
/// from the test image (imported into `ns` when it holds none), with `labels` (`k=v`): an
/// object of someone else's that the agent must leave alone.
pub fn plant(ns: &str, id: &str, labels: &[&str]) -> Result<()> {
    let mut image = ctr(ns, &["images", "ls", "-q"])?;
    if image.trim().is_empty() {
        run(Command::new("ctr")
            .args(["-n", ns, "images", "import", "--snapshotter", "overlayfs"])
            .arg(crate::image_tar()))?;
        image = ctr(ns, &["images", "ls", "-q"])?;
    }
    let image = image.lines().next().unwrap_or_default().trim().to_string();
    let mut args = vec!["containers", "create", "--snapshotter", "overlayfs"];
    for l in labels {
        args.extend(["--label", l]);
    }
    args.extend([image.as_str(), id]);
    ctr(ns, &args)?;
    Ok(())
}
