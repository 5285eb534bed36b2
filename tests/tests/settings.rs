//! Settings of a running container through the public API: SSH access, mounts (re-created
//! with data kept), ingress rules, PATCH resize, reboot, events, quota, images, scopes, and
//! key deletion revoking the key from containers.

use anyhow::Result;
use berth_tests::{containerd, Setup};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn container_settings_round_trip() -> Result<()> {
    let body = json!({"name": "app", "env": {"GREETING": "hi"}, "ports": [8080]});
    let Setup { c, alice, key, id } = Setup::running("laptop", body).await?;
    let bob = c.user("bob")?;
    let p = |suffix: &str| format!("/compute/containers/{id}{suffix}");
    let ns = c.namespace.clone();
    assert_eq!(containerd::exec(&ns, &id, "echo $GREETING")?, "hi\n");

    // SSH access.
    assert_eq!(
        alice.call("GET", &p("/ssh"), None).await?,
        (200, json!({"ssh_enabled": false}))
    );
    assert_eq!(
        alice
            .call("PUT", &p("/ssh"), Some(json!({"ssh_enabled": true})))
            .await?,
        (200, json!({"ssh_enabled": true}))
    );
    alice
        .expect(422, "PUT", &p("/ssh"), Some(json!({"ssh_enabled": "yes"})))
        .await?;

    // Mounts: a running container is re-created with the new mounts, data kept.
    containerd::exec(&ns, &id, "echo kept > /root/f")?;
    let (s, body) = alice
        .call(
            "PUT",
            &p("/mounts"),
            Some(json!({"mount_paths": ["/root", "/data"]})),
        )
        .await?;
    assert_eq!(
        (s, body.clone()),
        (
            200,
            json!({"mount_paths": ["/root", "/data"], "restarted": true})
        ),
        "{body}"
    );
    let proc = json!({"mount_paths": ["/proc"]});
    alice.expect(422, "PUT", &p("/mounts"), Some(proc)).await?;
    c.eventually(WAIT, "re-created with /data", || async {
        Ok(alice.container(&id).await?["status"] == "running"
            && containerd::exec(&ns, &id, "cat /root/f && test -d /data && echo ok")
                .is_ok_and(|o| o == "kept\nok\n"))
    })
    .await?;

    // Ingress rules.
    let forward = json!({"port": 8080, "target_port": 3000});
    let rule = alice
        .expect(201, "POST", &p("/ingress"), Some(forward))
        .await?;
    assert_eq!(
        (rule["port"].as_u64(), rule["target_port"].as_u64()),
        (Some(8080), Some(3000))
    );
    // Port 22 is refused; 8080 has a rule already.
    for (port, want) in [(22, 422), (8080, 409)] {
        let rule = json!({"port": port});
        alice
            .expect(want, "POST", &p("/ingress"), Some(rule))
            .await?;
    }
    let (_, r443) = alice
        .call("POST", &p("/ingress"), Some(json!({"port": 443})))
        .await?;
    assert_eq!(r443["target_port"], 443);
    assert_eq!(alice.container(&id).await?["https_enabled"], true);
    let (_, rules) = alice.call("GET", &p("/ingress"), None).await?;
    assert_eq!(rules["rules"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        alice.call("DELETE", &p("/ingress/8080"), None).await?,
        (200, json!({"status": "ok"}))
    );
    alice
        .expect(404, "DELETE", &p("/ingress/8080"), None)
        .await?;

    // PATCH: rename and resize within limits; the cgroup follows.
    let resize = json!({"name": "app2", "memory_mb": 384});
    let patched = alice.expect(200, "PATCH", &p(""), Some(resize)).await?;
    assert_eq!(
        (patched["name"].as_str(), patched["restarted"].as_bool()),
        (Some("app2"), Some(true))
    );
    let too_much = json!({"cpu_millis": 99999});
    alice.expect(422, "PATCH", &p(""), Some(too_much)).await?;
    c.eventually(WAIT, "the new memory limit is in the cgroup", || async {
        Ok(containerd::cgroup("memory", &id, "memory.limit_in_bytes")
            .is_ok_and(|v| v == (384u64 << 20).to_string()))
    })
    .await?;

    // Reboot: a new task, same container.
    c.wait_running(&alice, &id, "running").await?;
    let (pid, _) = containerd::task(&ns, &id)?.expect("task");
    for (action, want) in [("reboot", 200), ("explode", 422)] {
        let action = json!({"type": action});
        alice
            .expect(want, "POST", &p("/actions"), Some(action))
            .await?;
    }
    c.eventually(WAIT, "rebooted", || async {
        Ok(containerd::task(&ns, &id)?.is_some_and(|(p, s)| p != pid && s == "RUNNING"))
    })
    .await?;

    // Events, newest first; quota; images.
    let (_, events) = alice.call("GET", &p("/events"), None).await?;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        kinds.last() == Some(&"created") && kinds.contains(&"container_updated"),
        "{kinds:?}"
    );
    let (_, quota) = alice.call("GET", "/compute/quota?region=*", None).await?;
    let containers = quota["quotas"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|q| q["dimension"] == "containers")
        .cloned();
    assert_eq!(
        containers,
        Some(json!({"dimension": "containers", "used": 1.0, "max": 3.0}))
    );
    let (_, images) = alice.call("GET", "/compute/images", None).await?;
    assert_eq!(images[0]["source"], "builtin");
    let evil = json!({"name": "x", "ssh_key_ids": [key], "image": "evil/image:1"});
    assert_eq!(alice.post_container(evil).await?.0, 422);

    // Other users get 404 on every settings route.
    for (m, path) in [
        ("GET", p("/ssh")),
        ("PUT", p("/ssh")),
        ("GET", p("/mounts")),
        ("PUT", p("/mounts")),
        ("GET", p("/ingress")),
        ("POST", p("/ingress")),
        ("DELETE", p("/ingress/8080")),
        ("GET", p("/events")),
        ("PATCH", p("")),
        ("POST", p("/actions")),
    ] {
        // A body each route would accept from the owner: the 404 is about ownership only.
        let body = match (m, path.rsplit('/').next()) {
            ("GET" | "DELETE", _) => None,
            (_, Some("ssh")) => Some(json!({"ssh_enabled": true})),
            (_, Some("mounts")) => Some(json!({"mount_paths": ["/data"]})),
            (_, Some("ingress")) => Some(json!({"port": 8123})),
            (_, Some("actions")) => Some(json!({"type": "reboot"})),
            _ => Some(json!({"name": "y"})),
        };
        assert_eq!(bob.call(m, &path, body).await?.0, 404, "{m} {path}");
    }

    // Scoped tokens: read-only may read but not change.
    let ro = c.user_with_scope("alice", "compute.alice.containers:read")?;
    assert_eq!(ro.call("GET", &p(""), None).await?.0, 200);
    assert_eq!(ro.call("POST", &p("/stop"), None).await?.0, 403);
    assert_eq!(ro.call("GET", "/compute/ssh-keys", None).await?.0, 403);

    // Deleting a key revokes it from the container.
    alice
        .expect(200, "DELETE", &format!("/compute/ssh-keys/{key}"), None)
        .await?;
    assert_eq!(alice.container(&id).await?["ssh_key_ids"], json!([]));
    Ok(())
}
