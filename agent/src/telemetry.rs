//! The agent's Prometheus metrics: containers by state and by health, restarts by the
//! restart policy, reconcile passes, containerd call
//! latency, link state, SSH sessions. Served on `[metrics] listen` by a minimal HTTP
//! responder (GET /metrics only). A state that cannot be read leaves the containers series
//! out (and says so in the log) rather than reporting zero containers.

use berth_service::listener::{Connection, Listener};
use berth_shared::prom::{header, sample, single, Histograms};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Scrapes answered at once; a scraper that opens more waits in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;

#[derive(Default)]
pub struct Telemetry {
    pub reconcile_ok: AtomicU64,
    pub reconcile_failed: AtomicU64,
    /// Restarts by containers' restart policies.
    pub restarts: AtomicU64,
    pub link_connected: AtomicBool,
    /// Coordinators this agent has a link to now.
    pub links_connected: AtomicU64,
    pub ssh_sessions: AtomicI64,
    /// Unix time the link certificate expires (0 until read).
    pub cert_not_after: AtomicI64,
    pub cert_renewals: AtomicU64,
    containerd: Histograms,
}

/// One registry per process, like Prometheus clients' default registry.
pub static METRICS: LazyLock<Telemetry> = LazyLock::new(Telemetry::default);

/// Observes the time until it is dropped as one containerd call named `op`.
pub struct CallTimer {
    op: &'static str,
    start: Instant,
}

pub fn containerd_call(op: &'static str) -> CallTimer {
    CallTimer {
        op,
        start: Instant::now(),
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        METRICS.containerd.observe(self.op, self.start.elapsed());
    }
}

impl Telemetry {
    pub fn render(&self, state: &crate::state::State) -> String {
        let mut out = String::new();
        match state.inventory() {
            Ok(inventory) => containers(&mut out, &inventory),
            Err(e) => {
                tracing::error!(error = %e, "metrics: cannot read the inventory; berth_agent_containers left out")
            }
        }
        header(
            &mut out,
            "berth_agent_reconciles_total",
            "counter",
            "Reconcile passes over one container, by result.",
        );
        sample(
            &mut out,
            "berth_agent_reconciles_total",
            &[("result", "ok")],
            self.reconcile_ok.load(Ordering::Relaxed) as f64,
        );
        sample(
            &mut out,
            "berth_agent_reconciles_total",
            &[("result", "failed")],
            self.reconcile_failed.load(Ordering::Relaxed) as f64,
        );
        let help = "containerd gRPC call latency by operation.";
        let name = "berth_agent_containerd_call_duration_seconds";
        self.containerd.render(&mut out, name, help, "op");
        let load = |v: &AtomicI64| v.load(Ordering::Relaxed) as f64;
        let singles = [
            (
                "berth_agent_link_connected",
                "gauge",
                "1 while the QUIC link to at least one coordinator is up.",
                f64::from(u8::from(self.link_connected.load(Ordering::Relaxed))),
            ),
            (
                "berth_agent_links_connected",
                "gauge",
                "Coordinators the agent has a QUIC link to now.",
                self.links_connected.load(Ordering::Relaxed) as f64,
            ),
            (
                "berth_agent_certificate_expiry_seconds",
                "gauge",
                "Unix time at which the agent's link certificate expires.",
                load(&self.cert_not_after),
            ),
            (
                "berth_agent_certificate_renewals_total",
                "counter",
                "Link certificates renewed over the link since start.",
                self.cert_renewals.load(Ordering::Relaxed) as f64,
            ),
            (
                "berth_agent_container_restarts_total",
                "counter",
                "Tasks restarted by their container's restart policy since start.",
                self.restarts.load(Ordering::Relaxed) as f64,
            ),
            (
                "berth_agent_ssh_sessions",
                "gauge",
                "Open SSH sessions into containers.",
                load(&self.ssh_sessions),
            ),
        ];
        for (name, kind, help, value) in singles {
            single(&mut out, name, kind, help, value);
        }
        out
    }
}

/// `berth_agent_containers`: the inventory counted by observed state.
fn containers(out: &mut String, inventory: &[berth_shared::protocol::ContainerReport]) {
    let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
    for r in inventory {
        *by_state
            .entry(format!("{:?}", r.state).to_lowercase())
            .or_default() += 1;
    }
    header(
        out,
        "berth_agent_containers",
        "gauge",
        "Containers held by this agent, by observed state.",
    );
    for (s, n) in &by_state {
        sample(out, "berth_agent_containers", &[("state", s)], *n as f64);
    }
    let mut by_health: BTreeMap<&str, u64> = ["starting", "healthy", "unhealthy"]
        .into_iter()
        .map(|h| (h, 0))
        .collect();
    for h in inventory.iter().filter_map(|r| r.health) {
        *by_health.entry(h.as_str()).or_default() += 1;
    }
    header(
        out,
        "berth_agent_containers_health",
        "gauge",
        "Running containers with a health check, by its verdict.",
    );
    for (h, n) in &by_health {
        sample(
            out,
            "berth_agent_containers_health",
            &[("health", h)],
            *n as f64,
        );
    }
}

/// Answers `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: Listener, state: crate::state::State) {
    loop {
        let Connection {
            stream: mut conn,
            permit,
            ..
        } = listener.accept().await;
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut buf = vec![0u8; 2048];
            let n =
                match tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
            let req = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if req.starts_with("GET /metrics ") {
                ("200 OK", METRICS.render(&state))
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    #[test]
    fn an_unreadable_inventory_is_left_out_not_counted_as_zero() {
        let state = State::temporary().expect("state");
        let ok = Telemetry::default().render(&state);
        assert!(ok.contains("# TYPE berth_agent_containers gauge"), "{ok}");
        state.corrupt_spec_for_test("aaaa1111").expect("corrupt");
        let out = Telemetry::default().render(&state);
        assert!(!out.contains("berth_agent_containers"), "{out}");
        assert!(out.contains("berth_agent_link_connected"), "{out}");
    }
}
