//! The shared 80/443 ingress of a host, with curl: HTTP routed by `Host: <id>.<domain>`,
//! HTTPS terminated by the agent (certificate from `tls issue-ingress`, checked against the
//! cluster CA) and routed by SNI, to busybox httpd in the container; the client's connection
//! is kept across requests though httpd closes its own; a `Host` naming another site on a TLS
//! connection is `421`; an unknown name gets a 404 page at once; a removed rule stops routing.

use anyhow::Result;
use berth_tests::{containerd, run, Setup};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn curl(args: &[&str]) -> Result<String> {
    run(Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args))
}

/// The HTTP status curl gets, the body dropped.
fn status(args: &[&str]) -> Result<String> {
    curl(&[&["-o", "/dev/null", "-w", "%{http_code}"], args].concat())
}

/// `args` after `--cacert <ca> --resolve <resolve>`: HTTPS to the gateway, checked against
/// the cluster CA.
fn tls<'a>(ca: &'a str, resolve: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    [&["--cacert", ca, "--resolve", resolve], args].concat()
}

#[tokio::test(flavor = "multi_thread")]
async fn http_and_https_by_name() -> Result<()> {
    let Setup { c, alice, id, .. } = Setup::running("k", json!({"name": "site"})).await?;
    let ns = c.namespace.clone();
    containerd::exec(&ns, &id, "mkdir -p /root/www && echo hello-$HOSTNAME > /root/www/index.html && head -c 3000000 /dev/urandom > /root/www/big && httpd -p 8080 -h /root/www")?;
    let p = format!("/compute/containers/{id}/ingress");
    for port in [80, 443] {
        let rule = json!({"port": port, "target_port": 8080});
        alice.expect(201, "POST", &p, Some(rule)).await?;
    }
    assert_eq!(alice.container(&id).await?["https_enabled"], true);

    let host = format!("{id}.berth.test");
    let http = format!("http://{host}:{}/", c.http_port);
    let http_resolve = format!("{host}:{}:127.0.0.1", c.http_port);
    let https = format!("https://{host}:{}/", c.https_port);
    let https_resolve = format!("{host}:{}:127.0.0.1", c.https_port);
    let ca = c.dir.join("tls/ca.pem").display().to_string();
    c.eventually(WAIT, "http route", || async {
        Ok(
            curl(&["--resolve", &http_resolve, &http]).unwrap_or_default()
                == format!("hello-{id}\n"),
        )
    })
    .await?;
    assert_eq!(
        curl(&tls(&ca, &https_resolve, &[&https]))?,
        format!("hello-{id}\n")
    );
    // Byte-exact through TLS termination.
    let big_direct = c.dir.join("big-direct");
    let big_tls = c.dir.join("big-tls");
    let ip = alice.container(&id).await?["external_ip"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    curl(&[
        "-o",
        &big_direct.display().to_string(),
        &format!("http://{ip}:8080/big"),
    ])?;
    let big_tls_out = big_tls.display().to_string();
    curl(&tls(
        &ca,
        &https_resolve,
        &["-o", &big_tls_out, &format!("{https}big")],
    ))?;
    assert_eq!(std::fs::read(&big_direct)?.len(), 3_000_000);
    assert!(std::fs::read(&big_direct)? == std::fs::read(&big_tls)?);
    // httpd closes after every response, yet the client's TLS connection carries all three.
    let reused = curl(&tls(
        &ca,
        &https_resolve,
        &[
            "-w",
            "%{num_connects} %{http_code},",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            &https,
            &format!("{https}big"),
            &https,
        ],
    ))?;
    assert_eq!(reused, "1 200,0 200,0 200,");
    // A request for another name on this TLS connection is misdirected.
    let code = status(&tls(
        &ca,
        &https_resolve,
        &["-H", "Host: nosuch00.berth.test", &https],
    ))?;
    assert_eq!(code, "421");

    // Unknown names: a 404 page, not a hang, on both.
    let other = "nosuch00.berth.test";
    let code = status(&[
        "--resolve",
        &format!("{other}:{}:127.0.0.1", c.http_port),
        &format!("http://{other}:{}/", c.http_port),
    ])?;
    assert_eq!(code, "404");
    let other_https = format!("https://{other}:{}/", c.https_port);
    let code = status(&tls(
        &ca,
        &format!("{other}:{}:127.0.0.1", c.https_port),
        &[&other_https],
    ))?;
    assert_eq!(code, "404");

    // Removed: the name is unknown again.
    assert_eq!(alice.call("DELETE", &format!("{p}/80"), None).await?.0, 200);
    c.eventually(WAIT, "http route removed", || async {
        let code = status(&["--resolve", &http_resolve, &http])?;
        Ok(code == "404")
    })
    .await?;
    Ok(())
}
