//! Doors a hostile client tried (issue 15), each closed with a test: cross-site writes with
//! the session cookie, bodies that are not JSON or too large, methods a path does not serve,
//! mount points over system paths, a public key taken from another user, names shaped like
//! container ids. The coordinator runs in-process with its real store, no agents.

mod common;

use anyhow::{ensure, Context, Result};
use common::{coordinator, coordinator_with, public_key, Coordinator};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A request carrying the token only as the browser's session cookie.
async fn with_cookie(
    c: &Coordinator,
    token: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, Value)> {
    let mut req = reqwest::Client::new()
        .request(method.parse()?, format!("{}{path}", c.api))
        .header("cookie", format!("berth_token={token}"))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread")]
async fn cookie_writes_need_a_json_body_and_the_same_origin() -> Result<()> {
    let c = coordinator().await?;
    let alice = c.token("alice", None)?;
    let key = json!({"name": "k", "public_key": public_key(3)}).to_string();
    let own = c.api.replace("http://", "");
    let json = ("content-type", "application/json");
    let foreign = ("origin", "http://evil.example");

    // A cross-site form can send text/plain without a preflight; a cross-site page can set
    // neither Origin nor Sec-Fetch-Site: each is refused before anything happens.
    let cross = ("sec-fetch-site", "cross-site");
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let refused: [Case; 3] = [
        (
            &[("content-type", "text/plain")],
            415,
            "unsupported_media_type",
        ),
        (&[json, foreign], 403, "forbidden"),
        (&[json, cross], 403, "forbidden"),
    ];
    for (headers, status, error) in refused {
        let (s, b) = with_cookie(&c, &alice, "POST", "/compute/ssh-keys", headers, &key).await?;
        ensure!(s == status && b["error"] == error, "{headers:?}: {s} {b}");
    }
    let keys = c.get(&alice, "/compute/ssh-keys").await?;
    ensure!(
        keys["ssh_keys"] == json!([]),
        "a refused write added a key: {keys}"
    );

    let origin = format!("http://{own}");
    let same = ("origin", origin.as_str());
    let (s, b) = with_cookie(&c, &alice, "POST", "/compute/ssh-keys", &[json, same], &key).await?;
    ensure!(s == 201, "same origin: {s} {b}");
    let id = b["id"].as_u64().context("key id")?;
    let path = format!("/compute/ssh-keys/{id}");
    let (s, _) = with_cookie(&c, &alice, "DELETE", &path, &[foreign], "").await?;
    ensure!(s == 403, "a cross-site DELETE answered {s}");
    let keys = c.get(&alice, "/compute/ssh-keys").await?;
    ensure!(
        keys["ssh_keys"].as_array().map(Vec::len) == Some(1),
        "the key went: {keys}"
    );
    // Reads need no origin; a bearer token is not sent by browsers on their own.
    let (s, _) = with_cookie(&c, &alice, "GET", "/compute/ssh-keys", &[foreign], "").await?;
    ensure!(s == 200, "a cookie read answered {s}");

    // A WebSocket handshake from a foreign page with the cookie is a cross-site request too.
    let mut ws =
        format!("{}/compute/ws", c.api.replace("http://", "ws://")).into_client_request()?;
    ws.headers_mut()
        .insert("cookie", format!("berth_token={alice}").parse()?);
    ws.headers_mut()
        .insert("origin", "http://evil.example".parse()?);
    match tokio_tungstenite::connect_async(ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            ensure!(
                r.status() == 403,
                "cross-site upgrade answered {}",
                r.status()
            )
        }
        other => anyhow::bail!(
            "cross-site upgrade was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn large_bodies_and_unserved_methods_get_their_statuses() -> Result<()> {
    let c = coordinator().await?;
    let alice = c.token("alice", None)?;
    let big = json!({"name": "x".repeat(70 * 1024), "ssh_key_ids": [1]});
    let (s, b) = c.call(&alice, "POST", "/compute/containers", &big).await?;
    ensure!(
        s == 413 && b["error"] == "payload_too_large",
        "a 70 KiB body: {s} {b}"
    );
    let resp = reqwest::Client::new()
        .put(format!("{}/compute/containers", c.api))
        .bearer_auth(&alice)
        .send()
        .await?;
    let allow = resp
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap_or("").to_string());
    ensure!(
        resp.status() == 405,
        "PUT on the list answered {}",
        resp.status()
    );
    ensure!(allow.as_deref() == Some("GET, POST"), "Allow: {allow:?}");
    let head = reqwest::Client::new()
        .head(format!("{}/compute/containers", c.api))
        .bearer_auth(&alice)
        .send()
        .await?;
    ensure!(head.status() == 200, "HEAD answered {}", head.status());
    // A declared length over the limit is refused at once, without waiting for the bytes.
    use tokio::io::AsyncWriteExt;
    let mut raw = tokio::net::TcpStream::connect(c.api.replace("http://", "")).await?;
    let req = format!(
        "POST /compute/containers HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {alice}\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n"
    );
    raw.write_all(req.as_bytes()).await?;
    let mut head = vec![0u8; 64];
    let limit = std::time::Duration::from_secs(10);
    let n = tokio::time::timeout(limit, tokio::io::AsyncReadExt::read(&mut raw, &mut head))
        .await
        .context("no answer to a 100 MB Content-Length")??;
    let line = String::from_utf8_lossy(&head[..n]);
    ensure!(line.starts_with("HTTP/1.1 413"), "{line}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn mounts_keys_and_names_that_would_open_doors_are_refused() -> Result<()> {
    let c = coordinator().await?;
    let (alice, bob) = (c.token("alice", None)?, c.token("bob", None)?);
    let key = json!({"name": "k", "public_key": public_key(5)});
    let (s, b) = c.call(&alice, "POST", "/compute/ssh-keys", &key).await?;
    ensure!(s == 201, "{s} {b}");
    let key_id = b["id"].as_u64().context("id")?;
    // Public keys are public: bob must not claim alice's.
    let (s, b) = c.call(&bob, "POST", "/compute/ssh-keys", &key).await?;
    ensure!(s == 409, "another user's key answered {s} {b}");
    let bobs = c
        .call(&bob, "GET", "/compute/ssh-keys", &Value::Null)
        .await?
        .1;
    ensure!(bobs["ssh_keys"] == json!([]), "{bobs}");

    for path in [
        "/bin/sh",
        "/.berth",
        "/.berth/init",
        "/etc",
        "/usr",
        "/usr/local/bin",
    ] {
        let body = json!({"name": "web", "ssh_key_ids": [key_id], "mount_paths": [path]});
        let (s, b) = c.call(&alice, "POST", "/compute/containers", &body).await?;
        ensure!(
            s == 422 && b["details"]["mount_paths"].is_array(),
            "{path}: {s} {b}"
        );
    }
    let body = json!({"name": "abcd1234", "ssh_key_ids": [key_id]});
    let (s, b) = c.call(&alice, "POST", "/compute/containers", &body).await?;
    ensure!(
        s == 422 && b["details"]["name"].is_array(),
        "an id-shaped name: {s} {b}"
    );

    let body = json!({"name": "web", "ssh_key_ids": [key_id]});
    let (s, b) = c.call(&alice, "POST", "/compute/containers", &body).await?;
    ensure!(s == 201, "{s} {b}");
    let id = b["id"].as_str().context("id")?;
    let one = format!("/compute/containers/{id}");
    let (s, b) = c
        .call(
            &alice,
            "PUT",
            &format!("{one}/mounts"),
            &json!({"mount_paths": ["/etc"]}),
        )
        .await?;
    ensure!(s == 422, "PUT mounts /etc: {s} {b}");
    let (s, b) = c
        .call(&alice, "PATCH", &one, &json!({"name": "zzzz9999"}))
        .await?;
    ensure!(s == 422, "rename to an id-shaped name: {s} {b}");
    let now = c.call(&alice, "GET", &one, &Value::Null).await?.1;
    ensure!(
        now["name"] == "web" && now["mount_paths"] == json!(["/root"]),
        "{now}"
    );
    Ok(())
}

/// Whether the server closes the connection within `limit`.
async fn closed_within(s: &mut tokio::net::TcpStream, limit: std::time::Duration) -> bool {
    let mut sink = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(s, &mut sink);
    tokio::time::timeout(limit, read).await.is_ok()
}

async fn connect_from(ip: [u8; 4], to: &str) -> Result<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind((std::net::Ipv4Addr::from(ip), 0).into())?;
    Ok(s.connect(to.parse()?).await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_connections_are_closed_and_one_address_has_a_cap() -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let c = coordinator_with("header_timeout = \"1s\"\nmax_connections_per_ip = 4").await?;
    let addr = c.api.replace("http://", "");
    let limit = std::time::Duration::from_secs(10);
    let mut idle = connect_from([127, 0, 0, 2], &addr).await?;
    let mut slow = connect_from([127, 0, 0, 2], &addr).await?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await?;
    ensure!(
        closed_within(&mut idle, limit).await,
        "a silent connection stayed open"
    );
    ensure!(
        closed_within(&mut slow, limit).await,
        "a half-sent header stayed open"
    );

    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from([127, 0, 0, 3], &addr).await?);
    }
    let mut over = connect_from([127, 0, 0, 3], &addr).await?;
    ensure!(
        closed_within(&mut over, std::time::Duration::from_millis(900)).await,
        "a fifth connection from one address was kept"
    );
    let health = reqwest::get(format!("{}/healthz", c.api)).await?;
    ensure!(
        health.status() == 200,
        "another address was not served: {}",
        health.status()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_idle_connections_and_websockets_does_not_starve_a_normal_request() -> Result<()>
{
    let c = coordinator().await?;
    let alice = c.token("alice", None)?;
    let addr = c.api.replace("http://", "");
    // 2,000 idle TCP connections from eight addresses (each under its per-address cap).
    let mut idle = Vec::new();
    for i in 0..2000u32 {
        idle.push(connect_from([127, 0, 1, 1 + (i % 8) as u8], &addr).await?);
    }
    // 200 open status streams of a real user.
    let mut streams = Vec::new();
    for _ in 0..200 {
        let url = format!("ws://{addr}/compute/ws?token={alice}");
        streams.push(tokio_tungstenite::connect_async(url).await?.0);
    }
    let began = std::time::Instant::now();
    let (s, b) = c
        .call(&alice, "GET", "/compute/containers", &Value::Null)
        .await?;
    let took = began.elapsed();
    ensure!(s == 200 && b["containers"] == json!([]), "{s} {b}");
    println!("a normal request beside 2,000 idle connections and 200 WebSockets: {took:?}");
    drop((idle, streams));
    Ok(())
}
