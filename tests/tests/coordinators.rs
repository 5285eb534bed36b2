//! Two coordinators on one PostgreSQL database, as an operator runs them behind a load
//! balancer, with the agents linked to both (`[coordinator] addresses`): creates raced
//! through both keep a user's quota, a name and the host's capacity; a container made through
//! one is stopped, started, renamed, exec'd and watched through the other; after a kill -9
//! of one, the other serves everything and the agent and its containers carry on; the killed
//! one rejoins.

use anyhow::{ensure, Context, Result};
use berth_tests::postgres::Postgres;
use berth_tests::ws::next_json;
use berth_tests::{Cluster, User};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `n` concurrent creates for `user`, alternating between the two APIs: the statuses.
async fn race(via: [&User; 2], bodies: Vec<Value>) -> Result<Vec<(u16, Value)>> {
    let calls = bodies.into_iter().enumerate().map(|(i, b)| {
        let u = via[i % 2].clone();
        async move { u.post_container(b).await }
    });
    futures_util::future::try_join_all(calls).await
}

fn count(answers: &[(u16, Value)], status: u16) -> usize {
    answers.iter().filter(|a| a.0 == status).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_creates_through_two_coordinators_keep_quota_names_and_capacity() -> Result<()> {
    let mut c = Cluster::start_on_postgres().await?;
    let b = c.start_peer("coordinator-2").await?;
    // Two cores, no overcommit: room for two 1-core containers.
    c.link_agent_to(&[&b], "[capacity]\ncpu_overcommit = 1.0\n")
        .await?;

    let (alice, bob) = (c.user("alice")?, c.user("bob")?);
    let (ka, kb) = (alice.add_key("a").await?, bob.add_key("b").await?);
    let bodies = |p: &str, k: u64| {
        (0..5)
            .map(|i| json!({"name": format!("{p}{i}"), "ssh_key_ids": [k]}))
            .collect()
    };
    let (alice_b, bob_b) = (b.user(&alice), b.user(&bob));
    let (a, z) = tokio::join!(
        race([&alice, &alice_b], bodies("a", ka)),
        race([&bob, &bob_b], bodies("b", kb))
    );
    for (who, answers) in [("alice", a?), ("bob", z?)] {
        ensure!(
            count(&answers, 201) == 3 && count(&answers, 403) == 2,
            "{who}: a quota of 3 across both coordinators: {answers:?}"
        );
    }
    // Both coordinators list the same three, and the host took exactly two.
    let mut placed = 0;
    for u in [&alice, &bob] {
        let here = u.expect(200, "GET", "/compute/containers", None).await?;
        let there = b
            .user(u)
            .expect(200, "GET", "/compute/containers", None)
            .await?;
        let ids = |v: &Value| -> Vec<String> {
            v["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["id"].as_str().map(String::from))
                .collect()
        };
        ensure!(
            ids(&here).len() == 3 && ids(&here) == ids(&there),
            "{here} vs {there}"
        );
        placed += here["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| !c["host_key"].is_null())
            .count();
    }
    ensure!(
        placed == 2,
        "a 2-core host without overcommit holds two 1-core containers, not {placed}"
    );

    // One name, raced through both: one container.
    let carol = c.user("carol")?;
    let kc = carol.add_key("c").await?;
    let same = (0..4)
        .map(|_| json!({"name": "same", "ssh_key_ids": [kc]}))
        .collect();
    let carol_b = b.user(&carol);
    let answers = race([&carol, &carol_b], same).await?;
    ensure!(
        count(&answers, 201) == 1 && count(&answers, 409) == 3,
        "one name, one container: {answers:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn either_coordinator_serves_and_survives_the_other() -> Result<()> {
    let mut c = Cluster::start_on_postgres().await?;
    let b = c.start_peer("coordinator-2").await?;
    c.link_agent_to(&[&b], "").await?;
    // A second host, linked to both as well.
    let cert = c.certificate("edge-2")?;
    let _edge2 = c.spawn_agent_linked("edge-2", "edge-2", &cert, &[&b])?;
    c.wait_agents(2).await?;
    b.wait_agents(&c, 2).await?;
    let alice = c.user("alice")?;
    let alice_b = b.user(&alice);
    let key = alice_b.add_key("laptop").await?;

    let id = c
        .running_container(
            &alice,
            json!({"name": "web", "ssh_key_ids": [key], "host_key": "e2e-host"}),
        )
        .await?;
    let p = |s: &str| format!("/compute/containers/{id}{s}");
    let there = alice_b.container(&id).await?;
    ensure!(there["status"] == "running", "B sees what A made: {there}");

    // A watcher on A sees what is done through B.
    let mut ws = alice.websocket("/compute/ws").await?;
    let first = next_json(&mut ws, Duration::from_secs(10)).await?;
    ensure!(first["type"] == "containers", "the list first: {first}");
    let stopped = alice_b.expect(200, "POST", &p("/stop"), None).await?;
    ensure!(stopped["status"] == "stopped", "stop through B: {stopped}");
    let renamed_at = Instant::now();
    alice_b
        .expect(200, "PATCH", &p(""), Some(json!({"name": "www"})))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut delay = None;
    while Instant::now() < deadline {
        let m = next_json(&mut ws, Duration::from_secs(20)).await?;
        // Only the feed brings it: A applied no rename itself.
        if m["type"] == "container_updated" && m["data"]["container_id"] == id.as_str() {
            delay = Some(renamed_at.elapsed());
            break;
        }
    }
    let delay = delay.context("A's watcher never saw the rename made through B")?;
    println!("a change through B reached a watcher on A in {delay:?}");

    alice_b.expect(200, "POST", &p("/start"), None).await?;
    let out = alice_b
        .expect(
            200,
            "POST",
            &p("/exec"),
            Some(json!({"command": ["echo", "hi"]})),
        )
        .await?;
    ensure!(out["stdout"] == "hi\n", "exec through B: {out}");

    // One leader for the once-only work: the first to start.
    let leads = |h: Value| h["leader"] == true;
    ensure!(
        leads(c.health().await?) && !leads(b.health().await?),
        "A leads, B not"
    );

    // A dies: B serves everything, the container runs on, and B takes the lead.
    c.kill_coordinator()?;
    let died = Instant::now();
    let seen = alice_b.container(&id).await?;
    ensure!(seen["status"] == "running", "{seen}");
    ensure!(
        b.health().await?["agents_connected"] == 2,
        "B still has both hosts"
    );
    let out = alice_b
        .expect(
            200,
            "POST",
            &p("/exec"),
            Some(json!({"command": ["echo", "still"]})),
        )
        .await?;
    ensure!(
        out["stdout"] == "still\n",
        "exec through B with A dead: {out}"
    );
    alice_b.expect(200, "GET", &p("/logs"), None).await?;
    let (api, _) = alice_b
        .create_container(json!({"name": "api", "ssh_key_ids": [key], "host_key": "e2e-host"}))
        .await?;
    c.eventually(Duration::from_secs(60), "api runs (through B)", || async {
        Ok(alice_b.container(&api).await?["status"] == "running")
    })
    .await?;

    c.eventually(Duration::from_secs(5), "B takes the lead", || async {
        Ok(leads(b.health().await?))
    })
    .await?;
    let led = died.elapsed();
    ensure!(
        led < Duration::from_secs(5),
        "B took the lead only {led:?} after A died"
    );
    println!("B led {led:?} after A died");

    // A comes back and the agent links to it again; B keeps the lead.
    c.start_coordinator().await?;
    c.wait_agents(2).await?;
    ensure!(
        !leads(c.health().await?) && leads(b.health().await?),
        "one leader"
    );
    let back = alice.container(&api).await?;
    ensure!(
        back["status"] == "running",
        "A sees what B made while it was away: {back}"
    );
    alice
        .expect(
            200,
            "POST",
            &format!("/compute/containers/{api}/stop"),
            None,
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_goes_away_is_503_and_nothing_acknowledged_is_lost() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("berth-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pg = Postgres::start(&dir)?;
    let c = Cluster::start_on_postgres_at(&pg.admin).await?;
    let alice = c.user("alice")?;
    let key = alice.add_key("k0").await?;
    let (id, _) = alice
        .create_container(json!({"name": "r0", "ssh_key_ids": [key]}))
        .await?;
    let rename = |i: usize| {
        let (u, id) = (alice.clone(), id.clone());
        async move {
            let t = Instant::now();
            let (s, body) = u
                .call(
                    "PATCH",
                    &format!("/compute/containers/{id}"),
                    Some(json!({"name": format!("r{i}")})),
                )
                .await?;
            anyhow::Ok((s, body, t.elapsed()))
        }
    };
    let mut keys = vec![key];
    for i in 1..=5 {
        ensure!(rename(i).await?.0 == 200, "rename {i}");
        keys.push(alice.add_key(&format!("k{i}")).await?);
    }

    pg.crash()?;
    for i in 6..=10 {
        let (s, body, took) = rename(i).await?;
        ensure!(
            s == 503 && body["error"] == "unavailable",
            "database down: {s} {body}"
        );
        ensure!(
            took < Duration::from_secs(6),
            "answered in {took:?}, not at once"
        );
    }
    let (s, body) = alice.call("GET", "/compute/containers", None).await?;
    ensure!(
        s == 503,
        "a read with the database down is 503, never an empty list: {s} {body}"
    );

    pg.restart()?;
    let back = Instant::now();
    let mut i = 11;
    loop {
        let (s, body, _) = rename(i).await?;
        if s == 200 {
            break;
        }
        ensure!(s == 503, "while it comes back: {s} {body}");
        ensure!(
            back.elapsed() < Duration::from_secs(30),
            "the coordinator never recovered"
        );
        i += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "answering again {:?} after the database restarted",
        back.elapsed()
    );
    let seen = alice.container(&id).await?;
    ensure!(
        seen["name"] == format!("r{i}").as_str(),
        "the last acknowledged rename: {seen}"
    );
    let listed = alice.expect(200, "GET", "/compute/ssh-keys", None).await?;
    let have: Vec<u64> = listed["ssh_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["id"].as_u64())
        .collect();
    ensure!(
        keys.iter().all(|k| have.contains(k)),
        "acknowledged keys {keys:?}, found {have:?}"
    );
    drop(c);
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
