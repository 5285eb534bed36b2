//! Container networking and 8000–8999 ingress, with real clients: each container has its own
//! address on the agent's bridge (`external_ip`), reaches the host, cannot reach another
//! container; an ingress rule forwards a host port to busybox `httpd` in the container (large
//! bodies byte-exact, many connections at once), survives an agent restart and stops at once
//! when removed; delete leaves no namespace behind.

use anyhow::{Context, Result};
use berth_tests::{containerd, Cluster, User};
use serde_json::json;
use std::io::{Read, Write};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

async fn running(c: &Cluster, u: &User, name: &str) -> Result<String> {
    let key = u.add_key(name).await?;
    let (id, _) = u
        .create_container(json!({"name": name, "ssh_key_ids": [key]}))
        .await?;
    c.eventually(WAIT, "running with an address", || async {
        let v = u.container(&id).await?;
        Ok(v["status"] == "running" && v["external_ip"].is_string())
    })
    .await?;
    Ok(id)
}

/// The body of a GET of `url`, whatever its status.
async fn body(http: &reqwest::Client, url: &str) -> Result<Vec<u8>> {
    Ok(http.get(url).send().await?.bytes().await?.to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_get_addresses_and_ingress() -> Result<()> {
    let mut c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let bob = c.user("bob")?;
    let a = running(&c, &alice, "web").await?;
    let b = running(&c, &bob, "other").await?;
    let ns = c.namespace.clone();
    let a_ip = alice.container(&a).await?["external_ip"]
        .as_str()
        .context("ip")?
        .to_string();
    let b_ip = bob.container(&b).await?["external_ip"]
        .as_str()
        .context("ip")?
        .to_string();
    assert_ne!(a_ip, b_ip);
    assert!(containerd::exec(&ns, &a, "ifconfig eth0")?.contains(&a_ip));

    // The container reaches the host through its gateway.
    let host = std::net::TcpListener::bind("0.0.0.0:0")?;
    let port = host.local_addr()?.port();
    let serve = std::thread::spawn(move || {
        if let Ok((mut s, _)) = host.accept() {
            let _ = s.write_all(b"from-host\n");
        }
    });
    let gw = {
        let mut o: Vec<u8> = a_ip.split('.').map(|x| x.parse().unwrap_or(0)).collect();
        o[3] = 1;
        format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])
    };
    let got = containerd::exec(&ns, &a, &format!("nc -w 5 {gw} {port} </dev/null"))?;
    assert_eq!(got, "from-host\n");
    let _ = serve.join();

    // busybox httpd in the container, with a 5 MB file.
    containerd::exec(&ns, &a, "mkdir -p /root/www && echo hello > /root/www/index.html && head -c 5000000 /dev/urandom > /root/www/big.bin && httpd -p 8080 -h /root/www")?;
    let http = reqwest::Client::new();
    let direct = body(&http, &format!("http://{a_ip}:8080/big.bin")).await?;
    assert_eq!(direct.len(), 5_000_000);

    // Another user's container cannot reach it (while the same request works from inside).
    let get = format!(
        "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {a_ip} 8080 2>&1; echo rc=$?"
    );
    let own = containerd::exec(&ns, &a, &get)?;
    assert!(own.contains("hello"), "{own}");
    let probe = containerd::exec(&ns, &b, &get)?;
    assert!(
        !probe.contains("hello") && !probe.contains("rc=0"),
        "bob's container reached alice's: {probe}"
    );
    println!("bob's probe: {}", probe.trim());

    // Ingress on a host port in 8000–8999.
    let port: u16 = 8000 + (std::process::id() % 1000) as u16;
    let p = format!("/compute/containers/{a}/ingress");
    let rule = json!({"port": port, "target_port": 8080});
    alice.expect(201, "POST", &p, Some(rule)).await?;
    let url = format!("http://127.0.0.1:{port}");
    let answers = || async {
        Ok(http
            .get(format!("{url}/"))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false))
    };
    c.eventually(WAIT, "ingress answers", answers).await?;
    assert_eq!(
        http.get(format!("{url}/")).send().await?.text().await?,
        "hello\n"
    );
    let via = body(&http, &format!("{url}/big.bin")).await?;
    assert!(
        via == direct,
        "the 5 MB body changed on its way through ingress"
    );
    let many = futures_util::future::join_all((0..100).map(|_| {
        let http = http.clone();
        let url = url.clone();
        async move { http.get(format!("{url}/")).send().await?.text().await }
    }))
    .await;
    assert!(
        many.iter().all(|r| r.as_deref().ok() == Some("hello\n")),
        "a concurrent request failed"
    );

    // An agent restart keeps the container's network and its ingress.
    c.kill_agent()?;
    c.start_agent().await?;
    c.eventually(WAIT, "ingress after agent restart", answers)
        .await?;

    // Removed: the port refuses connections.
    alice
        .expect(200, "DELETE", &format!("{p}/{port}"), None)
        .await?;
    c.eventually(WAIT, "ingress refused", || async {
        Ok(std::net::TcpStream::connect(("127.0.0.1", port)).is_err())
    })
    .await?;

    // Delete: namespace and address go.
    alice
        .expect(200, "DELETE", &format!("/compute/containers/{a}"), None)
        .await?;
    let netns = c.dir.join("netns").join(&a);
    c.eventually(WAIT, "namespace removed", || async { Ok(!netns.exists()) })
        .await?;
    let mut buf = String::new();
    std::fs::File::open("/proc/self/mountinfo")?.read_to_string(&mut buf)?;
    assert!(!buf.contains(&format!("netns/{a}")));
    Ok(())
}
