//! Prometheus `/metrics` of the coordinator (requests, latency, connected agents, containers
//! by status) and of the agent (containers, reconciles, containerd call latency, link state),
//! scraped as Prometheus would after a container was created.

use anyhow::Result;
use berth_tests::Cluster;
use serde_json::json;

/// The value of the sample line that starts with `series` (name and labels, exactly).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn both_programs_expose_prometheus_metrics() -> Result<()> {
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let key = alice.add_key("k").await?;
    c.running_container(&alice, json!({"name": "m", "ssh_key_ids": [key]}))
        .await?;
    let http = reqwest::Client::new();
    let scrape = |port: u16| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await?;
            anyhow::ensure!(r.status() == 200, "status {}", r.status());
            Ok::<_, anyhow::Error>(r.text().await?)
        }
    };

    let coord = scrape(c.coordinator_metrics).await?;
    assert_eq!(
        value(&coord, "berth_agents_connected"),
        Some(1.0),
        "{coord}"
    );
    assert_eq!(
        value(&coord, "berth_containers{status=\"running\"}"),
        Some(1.0),
        "{coord}"
    );
    assert_eq!(
        value(&coord, "berth_api_requests_total{method=\"POST\",route=\"/compute/containers\",status=\"201\"}"),
        Some(1.0),
        "{coord}"
    );
    let gets = value(
        &coord,
        "berth_api_request_duration_seconds_count{route=\"/compute/containers/:id\"}",
    );
    assert!(gets.unwrap_or(0.0) >= 1.0, "{coord}");

    let agent = scrape(c.agent_metrics).await?;
    assert_eq!(
        value(&agent, "berth_agent_containers{state=\"running\"}"),
        Some(1.0),
        "{agent}"
    );
    assert_eq!(
        value(&agent, "berth_agent_link_connected"),
        Some(1.0),
        "{agent}"
    );
    assert!(
        value(&agent, "berth_agent_reconciles_total{result=\"ok\"}").unwrap_or(0.0) >= 1.0,
        "{agent}"
    );
    assert!(
        value(
            &agent,
            "berth_agent_containerd_call_duration_seconds_count{op=\"create_task\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{agent}"
    );
    let missing = http
        .get(format!("http://127.0.0.1:{}/other", c.agent_metrics))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    Ok(())
}
