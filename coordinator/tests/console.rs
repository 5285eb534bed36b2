//! The browser's side of the API, in-process: signing in turns a token into an `HttpOnly`,
//! `SameSite=Strict` session cookie (`Secure` behind HTTPS) that the API accepts, signing out
//! clears it, a cross-site page can do neither, and the console's assets are served at
//! `/console/` with a closed Content-Security-Policy — and nothing outside their directory.

mod common;

use anyhow::{ensure, Context, Result};
use common::start_with;
use serde_json::{json, Value};

const SECRET: &str = "secret = \"a-test-secret-of-at-least-32-bytes!!\"";

/// A built console stand-in: an index page and a hashed asset.
fn assets() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("berth-console-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("assets"))?;
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>Berth console</title>",
    )?;
    std::fs::write(dir.join("assets/index-abc123.js"), "console.log(1)")?;
    std::fs::write(
        dir.parent()
            .context("tmp")?
            .join("berth-console-secret.txt"),
        "TOPSECRET",
    )?;
    Ok(dir)
}

fn cookie_of(r: &reqwest::Response) -> String {
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_becomes_a_strict_http_only_cookie_and_the_console_is_served_closed() -> Result<()>
{
    let dir = assets()?;
    let tail = format!("[console]\ndir = \"{}\"", dir.display());
    let c = start_with("", "", &tail, |_| Ok(SECRET.into())).await?;
    let alice = c.token("alice", None)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let url = |p: &str| format!("{}{p}", c.api);
    let sign_in = |token: &str, extra: Option<(&'static str, &'static str)>| {
        let mut r = http
            .post(url("/compute/session"))
            .header("content-type", "application/json")
            .body(json!({"token": token}).to_string());
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        r.send()
    };

    // Signed in: the token comes back as the cookie, bounded by the token's life.
    let r = sign_in(&alice, None).await?;
    let cookie = cookie_of(&r);
    ensure!(r.status() == 200, "sign in: {}", r.status());
    let body: Value = r.json().await?;
    ensure!(body["user"] == "alice" && body["admin"] == false, "{body}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        ensure!(cookie.contains(part), "{part} missing: {cookie}");
    }
    ensure!(
        !cookie.contains("Secure"),
        "plain HTTP, no Secure: {cookie}"
    );
    let max_age: u64 = cookie
        .split("Max-Age=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .context("Max-Age")?
        .parse()?;
    ensure!(max_age > 0 && max_age <= 3600, "Max-Age {max_age}");
    let pair = cookie.split(';').next().context("cookie pair")?.to_string();
    ensure!(pair == format!("berth_token={alice}"), "{pair}");

    // The cookie is a session: who am I, and the caller's own list.
    let me: Value = http
        .get(url("/compute/session"))
        .header("cookie", &pair)
        .send()
        .await?
        .json()
        .await?;
    ensure!(me["user"] == "alice", "{me}");
    let list = http
        .get(url("/compute/containers"))
        .header("cookie", &pair)
        .send()
        .await?;
    ensure!(
        list.status() == 200,
        "list with the cookie: {}",
        list.status()
    );

    // Behind an HTTPS proxy the cookie is Secure.
    let r = sign_in(&alice, Some(("x-forwarded-proto", "https"))).await?;
    ensure!(cookie_of(&r).contains("; Secure"), "{}", cookie_of(&r));

    // Not our token: 401 and no cookie; no token at all: 422.
    let forged = format!("{}x", &alice[..alice.len() - 1]);
    for bad in [forged.as_str(), "not a token\u{7}"] {
        let r = sign_in(bad, None).await?;
        ensure!(
            r.status() == 401 && cookie_of(&r).is_empty(),
            "{bad:?}: {}",
            r.status()
        );
    }
    let r = sign_in("", None).await?;
    ensure!(r.status() == 422, "empty: {}", r.status());

    // A cross-site page can neither sign a browser in as someone else nor out.
    let r = sign_in(&alice, Some(("origin", "http://evil.example"))).await?;
    ensure!(
        r.status() == 403 && cookie_of(&r).is_empty(),
        "cross-site sign-in: {}",
        r.status()
    );
    let r = sign_in(&alice, Some(("sec-fetch-site", "cross-site"))).await?;
    ensure!(r.status() == 403, "cross-site sign-in: {}", r.status());
    let r = http
        .delete(url("/compute/session"))
        .header("origin", "http://evil.example")
        .send()
        .await?;
    ensure!(r.status() == 403, "cross-site sign-out: {}", r.status());

    // Signing out clears the cookie.
    let r = http.delete(url("/compute/session")).send().await?;
    let cleared = cookie_of(&r);
    ensure!(r.status() == 200, "sign out: {}", r.status());
    ensure!(
        cleared.starts_with("berth_token=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let r = http.get(url("/compute/session")).send().await?;
    ensure!(r.status() == 401, "no token: {}", r.status());

    // The console: / and /console go to /console/, which is the index with a closed CSP.
    for p in ["/", "/console"] {
        let r = http.get(url(p)).send().await?;
        ensure!(r.status() == 303, "{p}: {}", r.status());
        ensure!(
            r.headers()["location"] == "/console/",
            "{p}: {:?}",
            r.headers()
        );
    }
    let r = http.get(url("/console/")).send().await?;
    ensure!(r.status() == 200, "index: {}", r.status());
    let csp = r.headers()["content-security-policy"].to_str()?.to_string();
    ensure!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    ensure!(r.headers()["x-frame-options"] == "DENY");
    ensure!(r.headers()["cache-control"] == "no-cache");
    ensure!(r.text().await?.contains("Berth console"));
    let r = http
        .get(url("/console/assets/index-abc123.js"))
        .send()
        .await?;
    ensure!(r.status() == 200, "asset: {}", r.status());
    ensure!(
        r.headers()["cache-control"].to_str()?.contains("immutable"),
        "{:?}",
        r.headers()
    );
    // Nothing outside the directory; a missing file is the API's 404 JSON.
    for p in [
        "/console/../berth-console-secret.txt",
        "/console/%2e%2e/berth-console-secret.txt",
        "/console/nothing.js",
    ] {
        let r = http.get(url(p)).send().await?;
        let s = r.status();
        let text = r.text().await?;
        ensure!(s == 404 && !text.contains("TOPSECRET"), "{p}: {s} {text}");
    }
    // CORS stays closed: no cross-origin read is allowed.
    let r = http
        .get(url("/compute/containers"))
        .header("origin", "http://evil.example")
        .bearer_auth(&alice)
        .send()
        .await?;
    ensure!(
        r.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A status stream opened with a token ends (1008 "token expired") when that token stops
/// verifying, and the same token cannot open another: a page left open does not outlive it.
#[tokio::test(flavor = "multi_thread")]
async fn the_status_stream_ends_when_its_token_expires() -> Result<()> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let c = start_with("", "", "", |_| Ok(format!("{SECRET}\nleeway_secs = 0"))).await?;
    let short = c
        .svc
        .auth
        .issue("alice", std::time::Duration::from_secs(2), None)?;
    let url = format!(
        "{}/compute/ws?token={short}",
        c.api.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
    let first = ws.next().await.context("the list")??;
    ensure!(first.to_text()?.contains("\"containers\""), "{first:?}");
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .context("the stream outlived its token")?;
    match end {
        Some(Ok(Message::Close(Some(f)))) => {
            ensure!(
                u16::from(f.code) == 1008 && f.reason == "token expired",
                "{f:?}"
            )
        }
        other => anyhow::bail!("not a close: {other:?}"),
    }
    let s = c.upgrade_status("/compute/ws", &short).await?;
    ensure!(s == 401, "reconnect with the expired token: {s}");
    Ok(())
}
