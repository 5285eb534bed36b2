//! Doors a hostile client tried against the running system (issue 15), closed: a start sent
//! beside a stop no longer answers with the other's half-done state, and SSH connections that
//! never send a banner, or never log in, are closed instead of held for ever.

use anyhow::{ensure, Result};
use berth_tests::Setup;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_start_and_stop_each_answer_with_what_they_did() -> Result<()> {
    let Setup {
        c: _c, alice, id, ..
    } = Setup::running("k", json!({"name": "web"})).await?;
    let (stop_path, start_path) = (
        format!("/compute/containers/{id}/stop"),
        format!("/compute/containers/{id}/start"),
    );
    for round in 0..3 {
        let (stop, start) = tokio::join!(
            alice.call("POST", &stop_path, None),
            alice.call("POST", &start_path, None),
        );
        let ((s1, stopped), (s2, started)) = (stop?, start?);
        ensure!(
            s1 == 200 && s2 == 200,
            "round {round}: {s1} {stopped} / {s2} {started}"
        );
        ensure!(
            stopped["status"] == "stopped",
            "round {round}: stop answered {stopped}"
        );
        ensure!(
            started["status"] == "running",
            "round {round}: start answered {started}"
        );
        // Whichever came second is what holds now.
        let now = alice.container(&id).await?;
        ensure!(
            now["status"] == "running" || now["status"] == "stopped",
            "round {round}: {now}"
        );
    }
    Ok(())
}

/// Whether the agent closes the connection within `limit` (whatever it sent first).
async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(limit, s.read_to_end(&mut sink))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_connections_without_a_banner_or_a_login_are_closed() -> Result<()> {
    let Setup { c, .. } = Setup::running("k", json!({"name": "web"})).await?;
    let addr = format!("127.0.0.1:{}", c.ssh_port);
    // The harness's agent has banner_timeout = 3s and login_grace = 15s.
    let mut silent = tokio::net::TcpStream::connect(&addr).await?;
    ensure!(
        closed_within(&mut silent, Duration::from_secs(20)).await,
        "a connection that never sent a banner stayed open"
    );
    let mut lingering = tokio::net::TcpStream::connect(&addr).await?;
    lingering.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await?;
    ensure!(
        closed_within(&mut lingering, Duration::from_secs(40)).await,
        "a connection that never logged in stayed open"
    );
    Ok(())
}
