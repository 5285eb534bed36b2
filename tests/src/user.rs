//! A user of the public API as the suites drive it: plain calls that return the status and
//! the JSON body, calls that must answer one status, container creation, SSH keys and the
//! WebSocket endpoints, all with the user's own token.

use crate::ws::Ws;
use crate::{run, suffix};
use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio_tungstenite::connect_async;

/// A user of the public API, with a token of their own.
#[derive(Clone)]
pub struct User {
    pub api: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl User {
    pub fn with_token(&self, token: &str) -> User {
        User {
            token: token.to_string(),
            ..self.clone()
        }
    }

    /// Sends a request; returns the status and the JSON body (`Null` when there is none).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self.http.request(m, format!("{}{path}", self.api));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("body: {text}"))?
        };
        Ok((status, json))
    }

    /// Like [`User::call`] with request headers, answering the response's headers too.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<(u16, reqwest::header::HeaderMap, Value)> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.api))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let (status, h) = (resp.status().as_u16(), resp.headers().clone());
        Ok((status, h, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Like [`User::call`], failing unless the answer has status `want`; returns the body.
    pub async fn expect(
        &self,
        want: u16,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let (s, body) = self.call(method, path, body).await?;
        ensure!(s == want, "{method} {path}: {s}, not {want}: {body}");
        Ok(body)
    }

    pub async fn raw(&self, method: &str, path: &str, body: &'static str) -> Result<(u16, Value)> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let resp = self
            .http
            .request(m, format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// `POST /compute/containers` with `body`: the status and the answer, whatever they are.
    pub async fn post_container(&self, body: Value) -> Result<(u16, Value)> {
        self.call("POST", "/compute/containers", Some(body)).await
    }

    /// `POST /compute/containers` with `body`, which must answer 201; returns the new
    /// container's id and the answer.
    pub async fn create_container(&self, body: Value) -> Result<(String, Value)> {
        let created = self
            .expect(201, "POST", "/compute/containers", Some(body))
            .await?;
        let id = created["id"].as_str().context("id")?.to_string();
        Ok((id, created))
    }

    /// `POST /compute/ssh-keys` of `public_key` as `name`: the status and the answer.
    pub async fn post_key(&self, name: &str, public_key: &str) -> Result<(u16, Value)> {
        let key = json!({"name": name, "public_key": public_key});
        self.call("POST", "/compute/ssh-keys", Some(key)).await
    }

    /// Registers a fresh ed25519 key made by ssh-keygen; returns its id.
    pub async fn add_key(&self, name: &str) -> Result<u64> {
        let dir = std::env::temp_dir().join(format!("berth-key-{}", suffix()));
        let r = self.add_key_in(name, &dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(r?.0)
    }

    /// Like [`User::add_key`], keeping the private key: returns the id and its path in `dir`.
    pub async fn add_key_in(&self, name: &str, dir: &Path) -> Result<(u64, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("id_{name}_{}", suffix()));
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path))?;
        let public = std::fs::read_to_string(path.with_extension("pub"))?;
        let (s, body) = self.post_key(name, public.trim()).await?;
        if s != 201 {
            bail!("adding a key: {s} {body}");
        }
        Ok((body["id"].as_u64().context("key id")?, path))
    }

    pub async fn container(&self, id: &str) -> Result<Value> {
        let (s, body) = self
            .call("GET", &format!("/compute/containers/{id}"), None)
            .await?;
        if s != 200 {
            bail!("GET container {id}: {s} {body}");
        }
        Ok(body)
    }

    /// The `ws://` URL of `path` (which may have a query already) with this user's token.
    pub fn ws_url(&self, path: &str) -> String {
        let join = if path.contains('?') { '&' } else { '?' };
        format!(
            "{}{path}{join}token={}",
            self.api.replace("http://", "ws://"),
            self.token
        )
    }

    /// Opens the WebSocket at `path` with this user's token ([`User::ws_url`]).
    pub async fn websocket(&self, path: &str) -> Result<Ws> {
        let url = self.ws_url(path);
        let (ws, _) = connect_async(&url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        Ok(ws)
    }
}
