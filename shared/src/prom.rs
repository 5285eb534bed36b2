//! The Prometheus text exposition format (version 0.0.4), written by hand: both programs
//! serve `/metrics` with these helpers. Counters and histograms are lock-free atomics.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    let _ = writeln!(out, "{name}{} {value}", label_set(labels));
}

/// A metric of one unlabelled sample: its `# HELP`/`# TYPE` lines and its value.
pub fn single(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    header(out, name, kind, help);
    sample(out, name, &[], value);
}

#[derive(Debug)]
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: LATENCY_BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        for (b, bound) in self.buckets.iter().zip(LATENCY_BUCKETS) {
            if secs <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            d.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// `_bucket`, `_sum` and `_count` samples (the caller writes the header once).
    pub fn render(&self, out: &mut String, name: &str, labels: &[(&str, &str)]) {
        for (b, bound) in self.buckets.iter().zip(LATENCY_BUCKETS) {
            let le = bound.to_string();
            let mut l = labels.to_vec();
            l.push(("le", &le));
            sample(
                out,
                &format!("{name}_bucket"),
                &l,
                b.load(Ordering::Relaxed) as f64,
            );
        }
        let count = self.count.load(Ordering::Relaxed) as f64;
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        sample(out, &format!("{name}_bucket"), &l, count);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        sample(out, &format!("{name}_sum"), labels, sum);
        sample(out, &format!("{name}_count"), labels, count);
    }
}

/// Latency histograms of one metric, one per value of one label (route, operation).
#[derive(Debug, Default)]
pub struct Histograms(
    std::sync::Mutex<std::collections::BTreeMap<String, std::sync::Arc<Histogram>>>,
);

impl Histograms {
    pub fn observe(&self, label: &str, d: std::time::Duration) {
        let h = {
            let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
            match m.get(label) {
                Some(h) => h.clone(),
                None => m.entry(label.to_string()).or_default().clone(),
            }
        };
        h.observe(d);
    }

    /// The header and every histogram, labelled `label_name`.
    pub fn render(&self, out: &mut String, name: &str, help: &str, label_name: &str) {
        header(out, name, "histogram", help);
        for (v, h) in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            h.render(out, name, &[(label_name, v)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let h = Histogram::default();
        h.observe(std::time::Duration::from_millis(3));
        h.observe(std::time::Duration::from_secs(20));
        let mut out = String::new();
        header(&mut out, "x_seconds", "histogram", "test");
        h.render(&mut out, "x_seconds", &[("route", "a\"b")]);
        assert!(out.contains("x_seconds_bucket{route=\"a\\\"b\",le=\"0.0025\"} 0"));
        assert!(out.contains("x_seconds_bucket{route=\"a\\\"b\",le=\"0.005\"} 1"));
        assert!(out.contains("x_seconds_bucket{route=\"a\\\"b\",le=\"+Inf\"} 2"));
        assert!(out.contains("x_seconds_count{route=\"a\\\"b\"} 2"));
    }
}
