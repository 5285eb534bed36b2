//! Ports and networks of the test clusters: free loopback ports, a bridge and a /24 of its own
//! for each test agent, and the cleanup of what CNI left behind for a killed agent.

use anyhow::{bail, Result};
use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::sync::Mutex;

/// Test ports come from below the kernel's ephemeral range (32768 and up), so no outgoing
/// connection (a client, a database pool) can be given one between the pick and the bind.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Lock files of the ports this process picked, held for its life: parallel test processes
/// never pick the same port, and a killed one's locks go with it.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

fn reserve(bindable: impl Fn(u16) -> bool) -> Result<u16> {
    use rand::Rng;
    let dir = std::env::temp_dir().join("berth-test-ports");
    std::fs::create_dir_all(&dir)?;
    let span = PORTS.end - PORTS.start;
    let first = rand::rng().random_range(0..span);
    for i in 0..span {
        let port = PORTS.start + (first + i) % span;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))?;
        if lock.try_lock().is_err() || !bindable(port) {
            continue;
        }
        HELD.lock().unwrap_or_else(|p| p.into_inner()).push(lock);
        return Ok(port);
    }
    bail!("no free test port in {PORTS:?}")
}

pub fn free_tcp_port() -> Result<u16> {
    reserve(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
}

pub(crate) fn free_udp_port() -> Result<u16> {
    reserve(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok())
}

/// A bridge and a /24 of its own for each test agent, so parallel tests never share one.
pub fn test_network(id: &str) -> (String, String) {
    use rand::Rng;
    let mut r = rand::rng();
    (
        format!("bt-{}", &id[..id.len().min(6)]),
        format!(
            "10.{}.{}.0/24",
            r.random_range(200..250),
            r.random_range(0..255)
        ),
    )
}

/// Removes a killed test agent's bridge and the NAT rules CNI made for its containers (their
/// `CNI DEL` never ran): each is `-A POSTROUTING -s <ip>/32 -m comment --comment "…" -j CNI-…`
/// plus the chain it jumps to. Only addresses of this test's own /24 are touched.
pub(crate) fn forget_network((bridge, subnet): &(String, String)) {
    let _ = Command::new("ip")
        .args(["link", "del", bridge])
        .stderr(std::process::Stdio::null())
        .status();
    let Some(prefix) = subnet.strip_suffix("0/24") else {
        return;
    };
    let Ok(out) = Command::new("iptables")
        .args(["-t", "nat", "-S", "POSTROUTING"])
        .output()
    else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix("-A POSTROUTING -s ") else {
            continue;
        };
        let Some((source, rest)) = rest.split_once(' ') else {
            continue;
        };
        let comment = rest
            .strip_prefix("-m comment --comment \"")
            .and_then(|r| r.split_once("\" -j "));
        let Some((comment, chain)) = comment else {
            continue;
        };
        if !source.starts_with(prefix) || !chain.starts_with("CNI-") {
            continue;
        }
        let comment = comment.replace("\\\"", "\"");
        let nat = |args: &[&str]| {
            let _ = Command::new("iptables")
                .args(["-t", "nat"])
                .args(args)
                .status();
        };
        nat(&[
            "-D",
            "POSTROUTING",
            "-s",
            source,
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            chain,
        ]);
        nat(&["-F", chain]);
        nat(&["-X", chain]);
    }
}
