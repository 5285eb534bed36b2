//! A container's resource use, read from its cgroup (`/berth/<id>`, set in the OCI spec),
//! cgroup v1 or v2.

use berth_shared::protocol::ContainerMetrics;
use std::path::PathBuf;
use std::time::Duration;

const ROOT: &str = "/sys/fs/cgroup";

fn read_u64(path: PathBuf) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn v2(id: &str) -> Option<PathBuf> {
    let p = PathBuf::from(ROOT).join("berth").join(id);
    p.join("cgroup.controllers").exists().then_some(p)
}

fn v1(controller: &str, id: &str) -> PathBuf {
    PathBuf::from(ROOT).join(controller).join("berth").join(id)
}

/// Memory in use, in bytes (page cache that can be dropped is not counted).
pub fn memory_bytes(id: &str) -> Option<u64> {
    let (usage, stat) = match v2(id) {
        Some(p) => (read_u64(p.join("memory.current"))?, p.join("memory.stat")),
        None => {
            let p = v1("memory", id);
            (
                read_u64(p.join("memory.usage_in_bytes"))?,
                p.join("memory.stat"),
            )
        }
    };
    let inactive_file = std::fs::read_to_string(stat).ok().and_then(|s| {
        s.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            matches!(k, "total_inactive_file" | "inactive_file")
                .then(|| v.trim().parse::<u64>().ok())
                .flatten()
        })
    });
    Some(usage.saturating_sub(inactive_file.unwrap_or(0)))
}

fn memory_limit(id: &str) -> Option<u64> {
    match v2(id) {
        Some(p) => read_u64(p.join("memory.max")),
        None => read_u64(v1("memory", id).join("memory.limit_in_bytes")),
    }
}

/// CPU time used so far, in nanoseconds.
fn cpu_ns(id: &str) -> Option<u64> {
    match v2(id) {
        Some(p) => {
            let s = std::fs::read_to_string(p.join("cpu.stat")).ok()?;
            let us: u64 = s
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))?
                .trim()
                .parse()
                .ok()?;
            Some(us * 1000)
        }
        None => read_u64(v1("cpuacct", id).join("cpuacct.usage")),
    }
}

/// Bytes read and written to block devices.
fn disk_bytes(id: &str) -> (u64, u64) {
    let (mut read, mut write) = (0, 0);
    match v2(id) {
        Some(p) => {
            let s = std::fs::read_to_string(p.join("io.stat")).unwrap_or_default();
            for field in s.split_whitespace() {
                if let Some(v) = field.strip_prefix("rbytes=") {
                    read += v.parse::<u64>().unwrap_or(0);
                } else if let Some(v) = field.strip_prefix("wbytes=") {
                    write += v.parse::<u64>().unwrap_or(0);
                }
            }
        }
        None => {
            let f = v1("blkio", id).join("blkio.throttle.io_service_bytes");
            for line in std::fs::read_to_string(f).unwrap_or_default().lines() {
                let parts: Vec<&str> = line.split_whitespace().collect();
                if let [_, op, v] = parts[..] {
                    let v: u64 = v.parse().unwrap_or(0);
                    match op {
                        "Read" => read += v,
                        "Write" => write += v,
                        _ => {}
                    }
                }
            }
        }
    }
    (read, write)
}

/// Samples the cgroup twice, `window` apart, for the CPU rate. `None` when the container
/// has no cgroup (it is not running). 100% is one CPU core.
pub async fn sample(id: &str, window: Duration) -> Option<ContainerMetrics> {
    let t0 = std::time::Instant::now();
    let c0 = cpu_ns(id)?;
    tokio::time::sleep(window).await;
    let c1 = cpu_ns(id)?;
    let elapsed = t0.elapsed().as_nanos().max(1) as f64;
    let (disk_read_bytes, disk_write_bytes) = disk_bytes(id);
    let percent = c1.saturating_sub(c0) as f64 * 100.0 / elapsed;
    Some(ContainerMetrics {
        cpu_usage_percent: (percent * 100.0).round() / 100.0,
        memory_usage_bytes: memory_bytes(id).unwrap_or(0),
        memory_total_bytes: memory_limit(id).unwrap_or(0),
        disk_read_bytes,
        disk_write_bytes,
    })
}
