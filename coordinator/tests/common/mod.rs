//! The in-process coordinator the API tests share: real store on disk, real HTTP on port 0,
//! no agents; tokens minted with its own key.

#![allow(dead_code)]

use anyhow::{Context, Result};
use base64::Engine;
use berth_coordinator::auth::Scopes;
use berth_service::config::ConfigFile;
use serde_json::Value;
use std::time::Duration;

pub struct Coordinator {
    pub api: String,
    /// The QUIC endpoint agents dial.
    pub link: std::net::SocketAddr,
    pub svc: std::sync::Arc<berth_coordinator::services::Services>,
    _stop: tokio::sync::oneshot::Sender<()>,
    pub dir: std::path::PathBuf,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn coordinator() -> Result<Coordinator> {
    coordinator_with("").await
}

/// A coordinator with more `[api]` keys (TOML lines).
pub async fn coordinator_with(api: &str) -> Result<Coordinator> {
    start(api, |_| {
        Ok("secret = \"a-test-secret-of-at-least-32-bytes!!\"".into())
    })
    .await
}

/// A coordinator with more `[api]` keys and the `[auth]` section `auth` writes, given the
/// coordinator's temp dir.
pub async fn start(
    api: &str,
    auth: impl FnOnce(&std::path::Path) -> Result<String>,
) -> Result<Coordinator> {
    start_with(api, "", "", auth).await
}

/// [`start`] with more `[link]` keys and more sections (`tail`, TOML).
pub async fn start_with(
    api: &str,
    link: &str,
    tail: &str,
    auth: impl FnOnce(&std::path::Path) -> Result<String>,
) -> Result<Coordinator> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("berth-routes-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let auth = auth(&dir)?;
    let d = dir.display();
    // Route tests fire requests back to back; the rate-limit test sets its own.
    let api = match api.contains("rate_limit") {
        true => api.to_string(),
        false => format!("rate_limit = 0\n{api}"),
    };
    let toml = format!(
        r#"
[api]
listen = "127.0.0.1:0"
domain = "berth.test"
stop_wait = "1s"
{api}
[link]
listen = "127.0.0.1:0"
ca_cert = "{d}/ca.pem"
ca_key = "{d}/ca.key"
cert = "{d}/coordinator.pem"
key = "{d}/coordinator.key"
{link}
[store]
path = "{d}/db"
[auth]
{auth}
{tail}
"#
    );
    let path = dir.join("coordinator.toml");
    std::fs::write(&path, toml)?;
    let config = berth_coordinator::config::Config::load(&path)?;
    berth_coordinator::pki::init(&config.link, false)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = berth_coordinator::start(config, async {
        let _ = stopped.await;
    })
    .await?;
    Ok(Coordinator {
        api: format!("http://{}", running.api_addr),
        link: running.link_addr,
        svc: running.services.clone(),
        _stop: stop,
        dir,
    })
}

impl Coordinator {
    pub fn token(&self, user: &str, scopes: Option<&[(&str, &str)]>) -> Result<String> {
        let scopes = scopes.map(|s| {
            let mut m = Scopes::new();
            for (res, act) in s {
                m.entry(res.to_string()).or_default().push(act.to_string());
            }
            m
        });
        Ok(self
            .svc
            .auth
            .issue(user, Duration::from_secs(600), scopes)?)
    }

    pub async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: &Value,
    ) -> Result<(u16, Value)> {
        let resp = reqwest::Client::new()
            .request(method.parse()?, format!("{}{path}", self.api))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// A new SSH key (from `seed`) and a container using it, both `201`: their ids.
    pub async fn key_and_container(&self, token: &str, seed: u8) -> Result<(u64, String)> {
        let key = serde_json::json!({"name": "k", "public_key": public_key(seed)});
        let (s, key) = self.call(token, "POST", "/compute/ssh-keys", &key).await?;
        anyhow::ensure!(s == 201, "adding a key: {s} {key}");
        let key = key["id"].as_u64().context("key id")?;
        let body = serde_json::json!({"name": "web", "ssh_key_ids": [key]});
        let (s, created) = self
            .call(token, "POST", "/compute/containers", &body)
            .await?;
        anyhow::ensure!(s == 201, "creating a container: {s} {created}");
        let id = created["id"].as_str().context("container id")?.to_string();
        Ok((key, id))
    }

    /// The HTTP status of a WebSocket handshake to `path` (query allowed) with `?token=`.
    pub async fn upgrade_status(&self, path: &str, token: &str) -> Result<u16> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{path}{sep}token={token}",
            self.api.replace("http://", "ws://")
        );
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => Ok(101),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Ok(r.status().as_u16()),
            Err(e) => Err(e.into()),
        }
    }

    /// The body of a GET that must answer.
    pub async fn get(&self, token: &str, path: &str) -> Result<Value> {
        Ok(self.call(token, "GET", path, &Value::Null).await?.1)
    }

    /// Everything `user` has, as the API shows it.
    pub async fn state(&self, token: &str, id: &str) -> Result<Value> {
        let mut out = Vec::new();
        for p in [
            "/compute/containers".to_string(),
            "/compute/ssh-keys".to_string(),
            format!("/compute/containers/{id}/events"),
            format!("/compute/containers/{id}/ingress"),
        ] {
            out.push(self.call(token, "GET", &p, &Value::Null).await?.1);
        }
        Ok(Value::Array(out))
    }
}

/// A well-formed ed25519 public key line.
pub fn public_key(seed: u8) -> String {
    let mut blob = Vec::new();
    for part in [&b"ssh-ed25519"[..], &[seed; 32][..]] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!(
        "ssh-ed25519 {} t@x",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}
