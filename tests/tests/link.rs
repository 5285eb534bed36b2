//! The agent link is mutual TLS against the cluster CA: an agent whose certificate comes
//! from another CA, or names another host key, never joins. SIGTERM stops the coordinator
//! cleanly.

use anyhow::Result;
use berth_tests::Cluster;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn only_agents_certified_by_the_cluster_ca_join() -> Result<()> {
    let mut c = Cluster::start().await?;

    let foreign = c.foreign_certificate("rogue")?;
    let _rogue = c.spawn_extra_agent("rogue", "rogue", &foreign)?;
    // A certificate naming one host key cannot claim another.
    let other = c.certificate("honest")?;
    let _liar = c.spawn_extra_agent("liar", "impostor", &other)?;

    c.eventually(
        Duration::from_secs(30),
        "both agents report their refusal",
        || async {
            Ok(c.read_log("rogue").contains("cluster CA")
                && c.read_log("liar").contains("does not name host key"))
        },
    )
    .await?;
    let health = c.health().await?;
    assert_eq!(health["agents_connected"], 1, "{health}");
    assert_eq!(health["agents_known"], 1, "{health}");

    // A properly certified second host joins.
    let good = c.certificate("second")?;
    let _second = c.spawn_extra_agent("second", "second", &good)?;
    c.wait_agents(2).await?;

    let status = c.terminate_coordinator()?;
    assert!(status.success(), "coordinator exit after SIGTERM: {status}");
    assert!(c.read_log("berth-coordinator").contains("SIGTERM"));
    Ok(())
}
