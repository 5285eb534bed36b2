//! The coordinator's Prometheus metrics: API requests by route and status with latency
//! (recorded by the API's dispatcher, one series per route of the table), and the gauges it
//! is handed at each scrape (connected agents, containers by status). Served on
//! `[metrics] listen`.

use berth_shared::prom::{header, sample, single, Histograms};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Telemetry {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Histograms,
    in_flight: AtomicI64,
}

/// One request being answered; counted until dropped (with its request, when a client goes
/// away mid-answer).
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the fleet and the store say now, read by the caller at each scrape.
#[derive(Debug, Default)]
pub struct Gauges {
    pub agents_connected: usize,
    pub agents_known: usize,
    /// `None` when the store could not be read: the series is left out, not shown as zero.
    pub containers_by_status: Option<BTreeMap<&'static str, u64>>,
}

impl Telemetry {
    /// Counts a request in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// One answered request; `route` is the route table's pattern (`:id` style).
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let route = route.to_string();
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method.to_string(), route.clone(), status))
            .or_default() += 1;
        self.latency.observe(&route, took);
    }

    pub fn render(&self, gauges: &Gauges) -> String {
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
        let help = "API request latency by route.";
        self.latency.render(
            &mut out,
            "berth_api_request_duration_seconds",
            help,
            "route",
        );
        let help = "API requests being answered now (waits and execs included).";
        let n = self.in_flight.load(Ordering::Relaxed) as f64;
        single(&mut out, "berth_api_requests_in_flight", "gauge", help, n);
        let (connected, known) = (gauges.agents_connected, gauges.agents_known);
        let help = "Agents with a live QUIC connection.";
        single(
            &mut out,
            "berth_agents_connected",
            "gauge",
            help,
            connected as f64,
        );
        let help = "Agents seen since start.";
        single(&mut out, "berth_agents_known", "gauge", help, known as f64);
        if let Some(by_status) = &gauges.containers_by_status {
            header(
                &mut out,
                "berth_containers",
                "gauge",
                "Containers by status.",
            );
            for (s, n) in by_status {
                sample(&mut out, "berth_containers", &[("status", s)], *n as f64);
            }
        }
        out
    }
}
