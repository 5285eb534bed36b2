//! Prometheus `/metrics` of the coordinator (requests, latency, connected agents, containers
//! by status) and of the agent (containers, reconciles, containerd call latency, link state),
//! scraped as Prometheus would after a container was created.

use anyhow::Result;
use berth_tests::Setup;
use serde_json::json;

/// How a sample must read once a container was created and has run.
enum Want {
    One,
    AtLeastOne,
}
use Want::{AtLeastOne, One};

/// The coordinator's series: agents, containers by status, requests and their latency.
const COORDINATOR: &[(&str, Want)] = &[
    ("berth_agents_connected", One),
    ("berth_containers{status=\"running\"}", One),
    (
        "berth_api_requests_total{method=\"POST\",route=\"/compute/containers\",status=\"201\"}",
        One,
    ),
    (
        "berth_api_request_duration_seconds_count{route=\"/compute/containers/:id\"}",
        AtLeastOne,
    ),
];

/// The agent's series: containers, link state, reconciles and containerd call latency.
const AGENT: &[(&str, Want)] = &[
    ("berth_agent_containers{state=\"running\"}", One),
    ("berth_agent_link_connected", One),
    ("berth_agent_reconciles_total{result=\"ok\"}", AtLeastOne),
    (
        "berth_agent_containerd_call_duration_seconds_count{op=\"create_task\"}",
        AtLeastOne,
    ),
];

/// The value of the sample line that starts with `series` (name and labels, exactly).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn both_programs_expose_prometheus_metrics() -> Result<()> {
    let Setup { c, .. } = Setup::running("k", json!({"name": "m"})).await?;
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

    for (port, wants) in [
        (c.coordinator_metrics, COORDINATOR),
        (c.agent_metrics, AGENT),
    ] {
        let text = scrape(port).await?;
        for (series, want) in wants {
            let v = value(&text, series);
            match want {
                One => assert_eq!(v, Some(1.0), "{series} in {text}"),
                AtLeastOne => assert!(v.unwrap_or(0.0) >= 1.0, "{series}: {v:?} in {text}"),
            }
        }
    }
    let missing = http
        .get(format!("http://127.0.0.1:{}/other", c.agent_metrics))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    Ok(())
}
