//! Operator endpoints: the host list (capacity, use, connection, cordon), cordon keeping new
//! containers off a host until uncordon, cordons surviving a coordinator restart, and the
//! endpoints not existing (404) for anyone without the `compute.admin` scope.

use anyhow::Result;
use berth_tests::Cluster;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn operators_list_and_cordon_hosts() -> Result<()> {
    let mut c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let ops = c.user_with_scope("ops", "compute.admin:*")?;
    let host = c.host_key.clone();
    let cordon = format!("/compute/hosts/{host}/cordon");
    let uncordon = format!("/compute/hosts/{host}/uncordon");

    // Not an operator: the endpoints do not exist.
    let nf = (404, json!({"error": "not_found"}));
    assert_eq!(alice.call("GET", "/compute/hosts", None).await?, nf);
    assert_eq!(alice.call("POST", &cordon, None).await?, nf);

    let (s, body) = ops.call("GET", "/compute/hosts", None).await?;
    assert_eq!(s, 200, "{body}");
    let h = &body["hosts"][0];
    assert_eq!(h["host_key"], json!(host));
    assert_eq!(h["status"], "connected");
    assert_eq!(h["cordoned"], false);
    assert_eq!(h["region"], "test");
    assert!(h["capacity"]["memory_mb"].as_u64().unwrap_or(0) > 0, "{h}");
    assert!(h["last_heartbeat"].is_string());
    assert_eq!(
        ops.call("POST", "/compute/hosts/nosuch/cordon", None)
            .await?,
        nf
    );

    // Cordoned: a new container waits, pending, with a reason.
    let (s, body) = ops.call("POST", &cordon, None).await?;
    assert_eq!((s, body["cordoned"].clone()), (200, json!(true)), "{body}");
    let key = alice.add_key("k").await?;
    let (id, _) = alice
        .create_container(json!({"name": "app", "ssh_key_ids": [key]}))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = alice.container(&id).await?;
    assert_eq!(v["status"], "pending", "{v}");
    assert!(v["status_reason"].is_string(), "{v}");

    // The cordon is stored: it survives a coordinator restart.
    c.kill_coordinator()?;
    c.start_coordinator().await?;
    c.wait_agents(1).await?;
    let (_, body) = ops.call("GET", "/compute/hosts", None).await?;
    assert_eq!(body["hosts"][0]["cordoned"], true, "{body}");

    // Uncordoned: the waiting container is placed and runs; the list counts it.
    let (s, body) = ops.call("POST", &uncordon, None).await?;
    assert_eq!((s, body["cordoned"].clone()), (200, json!(false)), "{body}");
    c.wait_running(&alice, &id, "placed and running").await?;
    let (_, body) = ops.call("GET", "/compute/hosts", None).await?;
    assert_eq!(body["hosts"][0]["containers"], 1, "{body}");
    assert_eq!(body["hosts"][0]["used"]["cpu_millis"], 1000, "{body}");
    Ok(())
}

/// CPU is overcommitted by default (`[capacity] cpu_overcommit = 4.0`): a user's quota of three
/// default (1-core) containers all run on this machine's one 2-core test host, and the host
/// list shows the physical and the placeable capacity side by side.
#[tokio::test(flavor = "multi_thread")]
async fn three_default_containers_run_at_once_on_a_two_core_host() -> Result<()> {
    let c = Cluster::start().await?;
    let ops = c.user_with_scope("ops", "compute.admin:*")?;
    let hosts = ops.expect(200, "GET", "/compute/hosts", None).await?;
    let h = &hosts["hosts"][0];
    let (cap, placeable) = (&h["capacity"], &h["placeable"]);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    assert_eq!(cap["cpu_millis"].as_u64(), Some(cpus * 1000), "{h}");
    assert_eq!(
        placeable["cpu_millis"].as_u64(),
        Some(cpus * 4000),
        "4.0 × CPU: {h}"
    );
    assert_eq!(
        placeable["memory_mb"], cap["memory_mb"],
        "memory is not overcommitted: {h}"
    );

    let alice = c.user("alice")?;
    let key = alice.add_key("k").await?;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (id, _) = alice
            .create_container(json!({"name": format!("app{n}"), "ssh_key_ids": [key]}))
            .await?;
        ids.push(id);
    }
    for id in &ids {
        c.wait_running(&alice, id, "each of the three runs").await?;
    }
    let list = alice
        .expect(200, "GET", "/compute/containers", None)
        .await?;
    let running = list["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "running" && c["cpu_millis"] == 1000)
        .count();
    assert_eq!(running, 3, "{list}");
    Ok(())
}
