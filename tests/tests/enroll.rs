//! Agent enrollment with a one-time join token: a host with no certificate joins with
//! `enroll_token` (its key made locally, 0600; certificate and CA written where the config
//! says); the same token is refused the second time (409), an expired, garbage or user token
//! at once (403), a malformed public key with 422.

use anyhow::{Context, Result};
use berth_tests::Cluster;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn agents_join_with_a_one_time_token() -> Result<()> {
    let c = Cluster::start().await?;
    c.wait_agents(1).await?;
    let token = c.coordinator_cmd(&["enroll", "--host-key", "joiner", "--ttl", "10m"])?;
    let token = token.trim().to_string();
    let tls = c.dir.join("joiner-tls");
    let extra = |t: &str| format!("enroll_token = \"{t}\"\nenroll_url = \"{}\"", c.api);
    // ca_cert of the extra agent is the cluster's; point cert/key at an empty dir.
    let _joiner = c.spawn_agent_with("joiner", "joiner", &tls, &extra(&token))?;
    c.eventually(WAIT, "the enrolled agent connects", || async {
        Ok(c.health().await?["agents_connected"] == 2)
    })
    .await?;
    let key = std::fs::metadata(tls.join("agent.key")).context("agent.key written")?;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(tls.join("agent.pem"))?.contains("BEGIN CERTIFICATE"));

    // The same token again: refused (409), nothing issued.
    let http = reqwest::Client::new();
    let again = http
        .post(format!("{}/compute/hosts/enroll", c.api))
        .json(&serde_json::json!({"token": token, "public_key": "BA=="}))
        .send()
        .await?;
    assert_eq!(again.status(), 422, "a bad key is checked first");
    let mut point = vec![4u8];
    point.extend([1u8; 64]);
    use base64::Engine;
    let pk = base64::engine::general_purpose::STANDARD.encode(&point);
    let again = http
        .post(format!("{}/compute/hosts/enroll", c.api))
        .json(&serde_json::json!({"token": token, "public_key": pk}))
        .send()
        .await?;
    assert_eq!(again.status(), 409);

    // Expired and forged tokens: 403.
    let expired = c.coordinator_cmd(&["enroll", "--host-key", "late", "--ttl", "0s"])?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let user_token = c.token("alice")?;
    for t in [expired.trim(), user_token.as_str(), "garbage"] {
        let r = http
            .post(format!("{}/compute/hosts/enroll", c.api))
            .json(&serde_json::json!({"token": t, "public_key": pk}))
            .send()
            .await?;
        assert_eq!(r.status(), 403, "token {t:?}");
    }
    Ok(())
}
