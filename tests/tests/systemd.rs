//! The systemd units pass `systemd-analyze verify` (pointed at the built binaries), and the
//! programs tell systemd they are ready (`Type=notify`) through `$NOTIFY_SOCKET`, and log one
//! JSON object per line when asked (`BERTH_LOG_FORMAT=json`).

use anyhow::{bail, Context, Result};
use berth_tests::Cluster;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn bin(name: &str) -> std::path::PathBuf {
    std::env::var_os("BERTH_BIN_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug"))
        .join(name)
}

#[test]
fn units_verify() -> Result<()> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    let dir = std::env::temp_dir().join(format!("berth-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for unit in ["berth-agent.service", "berth-coordinator.service"] {
        let text = std::fs::read_to_string(src.join(unit))?;
        let name = unit.trim_end_matches(".service");
        let text = text.replace(
            &format!("/usr/local/bin/{name}"),
            &bin(name).display().to_string(),
        );
        assert!(text.contains("Type=notify"), "{unit}");
        assert!(text.contains("RestartPreventExitStatus=78"), "{unit}");
        std::fs::write(dir.join(unit), text)?;
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.join(unit))
            .output()
            .context("systemd-analyze (apt package systemd)")?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Warnings about the unit itself (not about this machine's other units) fail.
        let about_ours: Vec<&str> = said.lines().filter(|l| l.contains("berth-")).collect();
        assert!(
            out.status.success() && about_ours.is_empty(),
            "{unit}: {said}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_coordinator_notifies_systemd_when_ready() -> Result<()> {
    let mut c = Cluster::start().await?;
    c.kill_coordinator()?;
    let sock_path = c.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path)?;
    sock.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut child = Command::new(bin("berth-coordinator"))
        .arg("--config")
        .arg(c.dir.join("coordinator.toml"))
        .arg("serve")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("BERTH_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(c.dir.join("json.log"))?)
        .spawn()?;
    let mut buf = [0u8; 256];
    let got = sock.recv(&mut buf);
    let ready_then_healthy = match got {
        Ok(n) if &buf[..n] == b"READY=1" => c.health().await.is_ok(),
        Ok(n) => bail!(
            "unexpected notification {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => bail!("no READY=1 within 30s: {e}"),
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready_then_healthy, "READY=1 came before the API answered");
    // BERTH_LOG_FORMAT=json: one JSON object per line, for journald and log shippers.
    let log = std::fs::read_to_string(c.dir.join("json.log"))?;
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).with_context(|| format!("not JSON: {l}"))?;
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
    assert!(log.contains("coordinator started"), "{log}");
    Ok(())
}
