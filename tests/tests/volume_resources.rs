//! Volumes as resources, end to end on the real containerd: data written through one
//! container is there in the next after the first is deleted; a volume is mounted by one
//! container at a time, grows with its data kept, is deleted only when detached (and then
//! gone from the host), is another user's 404 everywhere, and counts against the quota.

use anyhow::{Context, Result};
use berth_tests::{containerd, Cluster};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

async fn volume(u: &berth_tests::User, id: &str) -> Result<Value> {
    u.expect(200, "GET", &format!("/compute/volumes/{id}"), None)
        .await
}

/// A new 1 GiB volume of `u`'s named `name`: its id and its JSON.
async fn new_volume(u: &berth_tests::User, name: &str) -> Result<(String, Value)> {
    let v = u
        .expect(
            201,
            "POST",
            "/compute/volumes",
            Some(json!({"name": name, "size_gb": 1})),
        )
        .await?;
    Ok((v["id"].as_str().context("volume id")?.to_string(), v))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_volume_outlives_its_container_and_is_one_containers_at_a_time() -> Result<()> {
    let c = Cluster::start().await?;
    let ns = c.namespace.clone();
    let alice = c.user("alice")?;
    let key = alice.add_key("laptop").await?;

    let (vid, v) = new_volume(&alice, "pgdata").await?;
    let vp = format!("/compute/volumes/{vid}");
    assert_eq!(v["size_gb"], 1, "{v}");
    c.eventually(WAIT, "volume available", || async {
        Ok(volume(&alice, &vid).await?["status"] == "available")
    })
    .await?;
    let img = c
        .agent_data()
        .join("user-volumes")
        .join(format!("{vid}.ext4"));
    assert_eq!(
        std::fs::metadata(&img)?.len(),
        1 << 30,
        "a 1 GiB filesystem on the host"
    );
    let listed = alice.expect(200, "GET", "/compute/volumes", None).await?;
    assert_eq!(listed["volumes"][0]["id"], vid.as_str(), "{listed}");

    // Mounted by a container at /data; its data written there.
    let mounts = json!([{"volume_id": vid, "mount_path": "/data"}]);
    let a = c
        .running_container(
            &alice,
            json!({"name": "db", "ssh_key_ids": [key], "volumes": mounts}),
        )
        .await?;
    assert_eq!(alice.container(&a).await?["volumes"], mounts);
    let v = volume(&alice, &vid).await?;
    assert_eq!(
        (
            v["status"].as_str(),
            v["attached_to"]["container_id"].as_str()
        ),
        (Some("attached"), Some(a.as_str())),
        "{v}"
    );
    containerd::exec(&ns, &a, "echo kept > /data/marker")?;

    // One container at a time; no delete while attached.
    let (s, body) = alice
        .post_container(json!({"name": "db2", "ssh_key_ids": [key], "volumes": mounts}))
        .await?;
    assert_eq!(
        (s, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let body = alice.expect(409, "DELETE", &vp, None).await?;
    assert!(
        body["message"].as_str().unwrap_or("").contains(&a),
        "{body}"
    );

    // The container goes, the volume stays; a new container (seed `volume_ids`) has the data.
    alice
        .expect(200, "DELETE", &format!("/compute/containers/{a}"), None)
        .await?;
    c.eventually(WAIT, "volume detached by the delete", || async {
        Ok(volume(&alice, &vid).await?["status"] == "available")
    })
    .await?;
    assert!(img.exists(), "deleting the container kept the volume");
    let b = c
        .running_container(
            &alice,
            json!({"name": "db", "ssh_key_ids": [key], "volume_ids": [vid]}),
        )
        .await?;
    assert_eq!(
        containerd::exec(&ns, &b, "cat /mnt/pgdata/marker")?,
        "kept\n"
    );

    // Grow while attached: the container is re-created on the bigger filesystem, data kept.
    let body = alice
        .expect(422, "PATCH", &vp, Some(json!({"size_gb": 0})))
        .await?;
    assert!(body["details"]["size_gb"].is_array(), "{body}");
    let grown = alice
        .expect(200, "PATCH", &vp, Some(json!({"size_gb": 2, "name": "pg"})))
        .await?;
    assert_eq!(
        (grown["size_gb"].as_u64(), grown["name"].as_str()),
        (Some(2), Some("pg"))
    );
    c.eventually(WAIT, "re-created on 2 GiB", || async {
        Ok(df_kb(&ns, &b, "/mnt/pgdata") > 1_900_000 && std::fs::metadata(&img)?.len() == 2 << 30)
    })
    .await?;
    assert_eq!(
        containerd::exec(&ns, &b, "cat /mnt/pgdata/marker")?,
        "kept\n"
    );
    let body = alice
        .expect(422, "PATCH", &vp, Some(json!({"size_gb": 1})))
        .await?;
    assert!(
        body["details"]["size_gb"].is_array(),
        "it never shrinks: {body}"
    );

    // Detach and attach again elsewhere in the same container.
    let bp = format!("/compute/containers/{b}/volumes");
    let out = alice
        .expect(200, "DELETE", &format!("{bp}/{vid}"), None)
        .await?;
    assert_eq!(
        (
            out["volumes"].as_array().map(Vec::len),
            out["restarted"].as_bool()
        ),
        (Some(0), Some(true)),
        "{out}"
    );
    c.wait_running(&alice, &b, "running without the volume")
        .await?;
    c.eventually(WAIT, "unmounted from the container", || async {
        Ok(containerd::exec(
            &ns,
            &b,
            "test -e /mnt/pgdata/marker && echo there || echo gone",
        )
        .unwrap_or_default()
            == "gone\n")
    })
    .await?;
    let bad = alice
        .expect(
            422,
            "POST",
            &bp,
            Some(json!({"volume_id": vid, "mount_path": "/proc/x"})),
        )
        .await?;
    assert!(bad["details"]["mount_path"].is_array(), "{bad}");
    let out = alice
        .expect(
            200,
            "POST",
            &bp,
            Some(json!({"volume_id": vid, "mount_path": "/srv"})),
        )
        .await?;
    assert_eq!(out["restarted"], true, "{out}");
    c.eventually(WAIT, "mounted at /srv", || async {
        Ok(containerd::exec(&ns, &b, "cat /srv/marker").unwrap_or_default() == "kept\n")
    })
    .await?;

    // Another user: 404 on every volume route, and alice's volume is not one of theirs.
    let bob = c.user("bob")?;
    let bob_key = bob.add_key("bob").await?;
    for (m, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"name": "mine"}))),
        ("DELETE", None),
    ] {
        let (s, answer) = bob.call(m, &vp, body).await?;
        assert_eq!(
            (s, answer["error"].as_str()),
            (404, Some("not_found")),
            "{m}: {answer}"
        );
    }
    assert_eq!(
        bob.expect(200, "GET", "/compute/volumes", None).await?["volumes"],
        json!([])
    );
    let (s, body) = bob
        .post_container(json!({"name": "thief", "ssh_key_ids": [bob_key], "volume_ids": [vid]}))
        .await?;
    assert_eq!(s, 422, "{body}");
    let (s, _) = bob
        .call(
            "POST",
            &bp,
            Some(json!({"volume_id": vid, "mount_path": "/x"})),
        )
        .await?;
    assert_eq!(s, 404, "bob's call on alice's container");
    let reader = c.user_with_scope("alice", "compute.alice.volumes:read")?;
    assert_eq!(reader.call("GET", &vp, None).await?.0, 200);
    let (s, _) = reader
        .call(
            "POST",
            "/compute/volumes",
            Some(json!({"name": "x", "size_gb": 1})),
        )
        .await?;
    assert_eq!(s, 403, "a read-only token creates nothing");

    // The quota: five volumes each, their sizes in the storage total.
    for n in 2..=5 {
        alice
            .expect(
                201,
                "POST",
                "/compute/volumes",
                Some(json!({"name": format!("v{n}"), "size_gb": 1})),
            )
            .await?;
    }
    let over = alice
        .expect(
            403,
            "POST",
            "/compute/volumes",
            Some(json!({"name": "v6", "size_gb": 1})),
        )
        .await?;
    assert_eq!(
        (over["error"].as_str(), over["detail"]["dimension"].as_str()),
        (Some("over_quota"), Some("volumes")),
        "{over}"
    );
    let quota = alice.expect(200, "GET", "/compute/quota", None).await?;
    let dims = quota["quotas"].as_array().context("quotas")?;
    let used = |d: &str| {
        dims.iter()
            .find(|q| q["dimension"] == d)
            .and_then(|q| q["used"].as_f64())
    };
    assert_eq!(used("volumes"), Some(5.0), "{quota}");
    assert!(used("storage_gb").unwrap_or(0.0) >= 5.0 + 6.0, "{quota}");

    // Deleted once detached: gone from the host.
    alice
        .expect(200, "DELETE", &format!("{bp}/{vid}"), None)
        .await?;
    c.eventually(WAIT, "detached", || async {
        Ok(volume(&alice, &vid).await?["status"] == "available")
    })
    .await?;
    alice.expect(200, "DELETE", &vp, None).await?;
    c.eventually(WAIT, "volume gone", || async {
        Ok(alice.call("GET", &vp, None).await?.0 == 404 && !img.exists())
    })
    .await?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    assert!(!mounts.contains(&vid), "a mount of {vid} is left");
    Ok(())
}

fn df_kb(ns: &str, id: &str, path: &str) -> u64 {
    containerd::exec(ns, id, &format!("df -k {path} | tail -1"))
        .unwrap_or_default()
        .split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

/// The agent killed with SIGKILL while a container runs on a volume, the volume grown while
/// the agent is away: the task and its data survive the kill, and the restarted agent
/// re-creates the container on the grown filesystem with the data kept — one copy of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_volume_and_its_container_survive_an_agent_kill_and_grow_when_it_is_back() -> Result<()> {
    let mut c = Cluster::start().await?;
    let ns = c.namespace.clone();
    let alice = c.user("alice")?;
    let key = alice.add_key("laptop").await?;
    let (vid, _) = new_volume(&alice, "state").await?;
    let mounts = json!([{"volume_id": vid, "mount_path": "/state"}]);
    let a = c
        .running_container(
            &alice,
            json!({"name": "app", "ssh_key_ids": [key], "volumes": mounts}),
        )
        .await?;
    containerd::exec(&ns, &a, "echo before > /state/marker")?;
    let (pid, _) = containerd::task(&ns, &a)?.context("task")?;

    c.kill_agent()?;
    assert_eq!(
        containerd::task(&ns, &a)?,
        Some((pid, "RUNNING".to_string())),
        "the task survived the agent"
    );
    containerd::exec(&ns, &a, "echo during >> /state/marker")?;
    let grown = alice
        .expect(
            200,
            "PATCH",
            &format!("/compute/volumes/{vid}"),
            Some(json!({"size_gb": 2})),
        )
        .await?;
    assert_eq!(grown["size_gb"], 2, "{grown}");

    c.start_agent().await?;
    c.wait_agents(1).await?;
    c.eventually(WAIT, "re-created on 2 GiB and running", || async {
        Ok(alice.container(&a).await?["status"] == "running"
            && df_kb(&ns, &a, "/state") > 1_900_000)
    })
    .await?;
    assert_eq!(
        containerd::exec(&ns, &a, "cat /state/marker")?,
        "before\nduring\n",
        "written before and while the agent was away"
    );
    assert_eq!(containerd::containers(&ns)?, vec![a.clone()], "one copy");
    let v = volume(&alice, &vid).await?;
    assert_eq!(
        (v["status"].as_str(), v["size_gb"].as_u64()),
        (Some("attached"), Some(2)),
        "{v}"
    );
    alice
        .expect(200, "DELETE", &format!("/compute/containers/{a}"), None)
        .await?;
    c.eventually(WAIT, "kept and available", || async {
        Ok(volume(&alice, &vid).await?["status"] == "available")
    })
    .await?;
    alice
        .expect(200, "DELETE", &format!("/compute/volumes/{vid}"), None)
        .await?;
    Ok(())
}
