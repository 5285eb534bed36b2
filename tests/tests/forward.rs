//! Port forwarding through the agent's SSH server with the real OpenSSH client: `ssh -L` and
//! `ssh -W` reach a server that listens only on the container's own loopback (so the
//! connection is made inside the container's network namespace); forwards to the host, to
//! another container and to anywhere else are refused, and so is `ssh -R`.

use anyhow::Result;
use berth_tests::{free_tcp_port, Cluster};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const PAGE: &str = "hello-from-inside";
const REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn local_forwards_reach_the_container_and_nothing_else() -> Result<()> {
    let c = Cluster::start().await?;
    let keys = c.dir.join("keys");
    let alice = c.user("alice")?;
    let (key, path) = alice.add_key_in("laptop", &keys).await?;
    let id = c
        .running_container(
            &alice,
            json!({"name": "web", "ssh_key_ids": [key], "ssh_enabled": true}),
        )
        .await?;
    let other = c
        .running_container(
            &alice,
            json!({"name": "other", "ssh_key_ids": [key], "ssh_enabled": true}),
        )
        .await?;
    let ssh = c.ssh();
    // A server on the container's loopback only, and one on all its addresses in the other.
    let serve = |addr: &str| {
        format!("mkdir -p /www && echo {PAGE} > /www/index.html && httpd -p {addr} -h /www")
    };
    for (container, addr) in [(&id, "127.0.0.1:8080"), (&other, "0.0.0.0:8080")] {
        let out = ssh.run(&path, container, &[&serve(addr)], b"")?;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let address = |container: &str| -> Result<String> {
        let out = ssh.run(&path, container, &["ip -4 -o addr show eth0"], b"")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let cidr = text.split_whitespace().nth(3).unwrap_or_default();
        Ok(cidr.split('/').next().unwrap_or_default().to_string())
    };
    let (own, theirs) = (address(&id)?, address(&other)?);
    assert!(!own.is_empty() && !theirs.is_empty(), "{own} {theirs}");

    // `ssh -W`: stdin and stdout are the forwarded connection.
    let with = |extra: &[&str], stdin: &[u8]| {
        let mut cmd = ssh.cmd(&path, &id, false);
        cmd.args(extra);
        ssh.run_with(cmd, &[], stdin)
    };
    let through = |to: &str| with(&["-W", to], REQUEST);
    for to in ["127.0.0.1:8080", "localhost:8080"] {
        let out = through(to)?;
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(body.contains(PAGE), "-W {to}: {body} {out:?}");
    }
    // The container's own address is the container too (nothing listens there on 8080:
    // the connection is refused inside, not prohibited).
    through(&format!("{own}:8080"))?;
    let log = c.read_log("berth-agent");
    assert!(
        log.lines()
            .any(|l| l.contains("the container does not answer")
                && l.contains(&format!("addr={own}:8080"))),
        "a connection to the container's own address is tried inside it"
    );
    assert!(!log.contains("port forward refused"), "{log}");

    // Not this container: the host (the bridge's gateway and the host's loopback is the
    // container's own, so name the gateway), another container, anywhere else.
    let gateway = format!("{}.1", own.rsplit_once('.').map_or("", |(n, _)| n));
    for to in [
        format!("{gateway}:{}", c.ssh_port),
        format!("{theirs}:8080"),
        "192.0.2.1:80".to_string(),
        "example.com:80".to_string(),
    ] {
        let out = through(&to)?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("forwarding failed"), "-W {to} refused: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(PAGE));
        let (host, port) = to.rsplit_once(':').unwrap_or_default();
        let said = format!("to={host} port={port}");
        let log = c.read_log("berth-agent");
        assert!(
            log.lines()
                .any(|l| l.contains("port forward refused") && l.contains(&said)),
            "the agent says it refused {to}"
        );
    }

    // `ssh -L` as a user runs it: a local port to the container's 8080.
    let local = free_tcp_port()?;
    let mut tunnel = ssh.cmd(&path, &id, false);
    let mut tunnel = tunnel
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
        .arg(format!("127.0.0.1:{local}:127.0.0.1:8080"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{local}/");
    let got = c
        .eventually(WAIT, "the forwarded port answers", || async {
            Ok(http.get(&url).send().await?.text().await?.contains(PAGE))
        })
        .await;
    // Several connections through one tunnel.
    for _ in 0..3 {
        assert!(http.get(&url).send().await?.text().await?.contains(PAGE));
    }
    let _ = tunnel.kill();
    let _ = tunnel.wait();
    got?;

    // `ssh -R` is refused: nothing on the host listens for the container.
    let out = with(
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "0:127.0.0.1:8080",
        ],
        b"",
    )?;
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("remote port forwarding failed"), "{err}");
    Ok(())
}
