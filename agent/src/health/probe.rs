//! One probe of a health check, bounded by its timeout: an HTTP `GET` (2xx or 3xx is
//! healthy) or a TCP connect to the container's address in its network namespace, or a
//! command run inside it through containerd (exit 0 is healthy). A failure says what failed.

use crate::runtime::Runtime;
use berth_shared::protocol::ExecCommand;
use berth_shared::upkeep::Probe;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes of an HTTP answer read for its status line.
const STATUS_LINE_MAX: usize = 1024;
/// Output an exec probe keeps, for its failure message.
const EXEC_OUTPUT: usize = 4096;

/// Where and how to probe one container.
pub struct Target<'a> {
    pub id: &'a str,
    pub address: Option<IpAddr>,
    pub rt: &'a Runtime,
    pub run_dir: &'a Path,
}

/// Runs `probe` once, within `timeout`.
pub async fn run(probe: &Probe, t: &Target<'_>, timeout: Duration) -> Result<(), String> {
    let attempt = async {
        match probe {
            Probe::Http { port, path } => http(addr(t, *port)?, path).await,
            Probe::Tcp { port } => tcp(addr(t, *port)?).await,
            Probe::Exec { command } => exec(t, command, timeout).await,
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{} check took longer than its timeout ({} ms)",
            probe.kind(),
            timeout.as_millis()
        )),
    }
}

fn addr(t: &Target<'_>, port: u16) -> Result<SocketAddr, String> {
    t.address
        .map(|ip| SocketAddr::new(ip, port))
        .ok_or_else(|| "the container has no address yet".to_string())
}

async fn tcp(to: SocketAddr) -> Result<(), String> {
    TcpStream::connect(to)
        .await
        .map(drop)
        .map_err(|e| format!("TCP port {}: {e}", to.port()))
}

async fn http(to: SocketAddr, path: &str) -> Result<(), String> {
    let mut s = TcpStream::connect(to)
        .await
        .map_err(|e| format!("HTTP port {}: {e}", to.port()))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {to}\r\nUser-Agent: berth-health-check\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("HTTP port {}: {e}", to.port()))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < STATUS_LINE_MAX {
        match s.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("HTTP port {}: {e}", to.port())),
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    match status(line) {
        Some(code) if (200..400).contains(&code) => Ok(()),
        Some(code) => Err(format!("GET {path} answered {code}")),
        None => Err(format!("GET {path}: no HTTP answer")),
    }
}

/// The status code of an HTTP/1.x status line.
fn status(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

async fn exec(t: &Target<'_>, command: &[String], timeout: Duration) -> Result<(), String> {
    let cmd = ExecCommand {
        id: t.id.to_string(),
        command: command.to_vec(),
        env: Default::default(),
        stdin: Vec::new(),
        timeout_ms: timeout.as_millis() as u64,
        max_output: EXEC_OUTPUT,
    };
    let ran = crate::command::run(t.rt, &cmd, t.run_dir, std::future::pending())
        .await
        .map_err(|e| format!("cannot run {:?}: {e}", command[0]))?;
    match ran {
        Some(r) if r.exit_code == 0 => Ok(()),
        Some(r) => {
            let out = if r.stderr.is_empty() {
                r.stdout
            } else {
                r.stderr
            };
            let first = String::from_utf8_lossy(&out);
            let first = first.lines().next().unwrap_or_default();
            let first: String = first.chars().take(200).collect();
            Err(format!(
                "{:?} exited with status {}{}{first}",
                command[0],
                r.exit_code,
                if first.is_empty() { "" } else { ": " }
            ))
        }
        None => Err("the check was abandoned".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read() {
        assert_eq!(status("HTTP/1.1 204 No Content"), Some(204));
        assert_eq!(status("HTTP/1.0 500"), Some(500));
        assert_eq!(status("SSH-2.0-OpenSSH"), None);
        assert_eq!(status(""), None);
    }

    #[tokio::test]
    async fn http_and_tcp_probes_tell_up_from_down() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            for answer in ["HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 503 Busy\r\n\r\n"] {
                let (mut s, _) = l.accept().await.expect("accept");
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        let to = SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(http(to, "/healthz").await, Ok(()));
        let err = http(to, "/healthz").await.expect_err("503 is unhealthy");
        assert!(err.contains("503"), "{err}");
        server.await.expect("server");
        let err = tcp(to).await.expect_err("nothing listens any more");
        assert!(err.contains(&format!("TCP port {port}")), "{err}");
    }
}
