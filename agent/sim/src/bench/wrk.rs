//! Read-path load with `wrk` (the same client, threads and connections for every target), and
//! the bare warp hello-world it is compared with, served by this binary in its own process.

use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub req_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| c.is_alphabetic())?);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn parse(out: &str) -> Option<Run> {
    let mut run = Run {
        req_s: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
    };
    for l in out.lines() {
        let l = l.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            run.req_s = v.trim().parse().ok()?;
        } else if let Some(v) = l.strip_prefix("50%") {
            run.p50_ms = ms(v)?;
        } else if let Some(v) = l.strip_prefix("99%") {
            run.p99_ms = ms(v)?;
        }
    }
    (run.req_s > 0.0).then_some(run)
}

/// `wrk -t2 -c<conns> -d<secs> --latency` against `url` with an optional bearer token.
pub fn wrk(url: &str, token: Option<&str>, conns: usize, secs: u64) -> Result<Run> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd
        .arg(url)
        .output()
        .context("running wrk (apt install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("Non-2xx") {
        bail!("wrk {url}: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse(&text).with_context(|| format!("cannot read wrk's output: {text}"))
}

/// Serves `hello` on `addr` until killed: the yardstick for the read path.
pub async fn hello(addr: SocketAddr) {
    use warp::Filter;
    let route = warp::any().map(|| "hello");
    warp::serve(route).run(addr).await;
}

/// This binary's `hello` in its own process, killed when dropped (and on SIGINT/SIGTERM, with
/// the coordinator).
pub struct Hello(std::process::Child);

impl Drop for Hello {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the hello-world on `addr` and waits until it accepts connections.
pub async fn spawn_hello(addr: SocketAddr) -> Result<Hello> {
    let child = Command::new(std::env::current_exe()?)
        .args(["hello", &addr.to_string()])
        .spawn()?;
    crate::coordinator::also_kill(child.id());
    let hello = Hello(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(hello);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the hello-world did not come up on {addr}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_wrk_output() {
        let out = "Running 1s test @ http://x/\n  Latency Distribution\n     50%  254.00us\n     75%    1.02ms\n     90%    2.00ms\n     99%    4.10ms\n  1000 requests in 1.00s\nRequests/sec:   9988.26\n";
        let r = super::parse(out).expect("parsed");
        assert_eq!(r.req_s, 9988.26);
        assert_eq!(r.p50_ms, 0.254);
        assert_eq!(r.p99_ms, 4.1);
    }
}
