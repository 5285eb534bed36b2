//! The coordinator's Prometheus metrics: API requests by route and status with latency,
//! connected agents, containers by status. Served on `[metrics] listen`.

use crate::app::App;
use berth_shared::prom::{header, sample, Histogram};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Telemetry {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
}

/// `/compute/containers/ab12cd34/logs` → `/compute/containers/:id/logs`: one series per route,
/// not per container.
pub fn route_of(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').collect();
    let mut out = Vec::with_capacity(segs.len());
    for (i, s) in segs.iter().enumerate() {
        let prev = if i > 0 { segs[i - 1] } else { "" };
        let prev2 = if i > 1 { segs[i - 2] } else { "" };
        out.push(match prev {
            "containers" if !s.is_empty() => ":id",
            "ssh-keys" if !s.is_empty() => ":key_id",
            "hosts" if !s.is_empty() => ":host_key",
            "ingress" if prev2 != "compute" && !s.is_empty() => ":port",
            _ => s,
        });
    }
    out.join("/")
}

impl Telemetry {
    pub fn record(&self, method: &str, path: &str, status: u16, took: Duration) {
        let route = route_of(path);
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method.to_string(), route.clone(), status))
            .or_default() += 1;
        let h = self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(route)
            .or_default()
            .clone();
        h.observe(took);
    }

    pub fn render(&self, app: &App) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "berth_api_requests_total",
            "counter",
            "API requests by route and status.",
        );
        for ((m, r, s), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let s = s.to_string();
            sample(
                &mut out,
                "berth_api_requests_total",
                &[("method", m), ("route", r), ("status", &s)],
                *n as f64,
            );
        }
        header(
            &mut out,
            "berth_api_request_duration_seconds",
            "histogram",
            "API request latency by route.",
        );
        for (r, h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            h.render(
                &mut out,
                "berth_api_request_duration_seconds",
                &[("route", r)],
            );
        }
        let hosts = app.hub.hosts();
        let connected = hosts.iter().filter(|h| h.connected()).count();
        header(
            &mut out,
            "berth_agents_connected",
            "gauge",
            "Agents with a live QUIC connection.",
        );
        sample(&mut out, "berth_agents_connected", &[], connected as f64);
        header(
            &mut out,
            "berth_agents_known",
            "gauge",
            "Agents seen since start.",
        );
        sample(&mut out, "berth_agents_known", &[], hosts.len() as f64);
        let mut by_status: BTreeMap<&'static str, u64> = BTreeMap::new();
        for s in ["pending", "initializing", "running", "stopped", "failed"] {
            by_status.insert(s, 0);
        }
        for r in app
            .store
            .all_containers()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.is_visible())
        {
            *by_status.entry(r.status.as_str()).or_default() += 1;
        }
        header(
            &mut out,
            "berth_containers",
            "gauge",
            "Containers by status.",
        );
        for (s, n) in by_status {
            sample(&mut out, "berth_containers", &[("status", s)], n as f64);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn ids_become_route_parameters() {
        assert_eq!(
            route_of("/compute/containers/ab12cd34/logs"),
            "/compute/containers/:id/logs"
        );
        assert_eq!(
            route_of("/compute/containers/ab12cd34/ingress/8080"),
            "/compute/containers/:id/ingress/:port"
        );
        assert_eq!(route_of("/compute/containers"), "/compute/containers");
        assert_eq!(route_of("/compute/ssh-keys/3"), "/compute/ssh-keys/:key_id");
    }
}
