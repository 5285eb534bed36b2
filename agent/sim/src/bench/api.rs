//! The bench's client of the public API: JSON calls with a user's token, the users it sets up
//! (a token from the coordinator's own `token` command and an SSH key each), and the fleet's
//! state as `GET /compute/hosts` and `/healthz` show it.

use crate::coordinator::Coordinator;
use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

pub struct User {
    pub token: String,
    pub key_id: u64,
}

impl Api {
    pub fn new(c: &Coordinator) -> Result<Api> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Api {
            base: format!("http://{}", c.api),
            http,
        })
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, v))
    }

    /// `agents_connected` of `/healthz`.
    pub async fn connected(&self) -> Result<u64> {
        let v: Value = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await?
            .json()
            .await?;
        v["agents_connected"]
            .as_u64()
            .context("healthz without agents_connected")
    }

    /// Every host of `GET /compute/hosts`, page after page.
    pub async fn hosts(&self, admin: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut path = "/compute/hosts?limit=1000".to_string();
        loop {
            let (code, v) = self.call(reqwest::Method::GET, admin, &path, None).await?;
            if code != 200 {
                bail!("GET {path}: {code} {v}");
            }
            out.extend(v["hosts"].as_array().context("hosts list")?.iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => path = format!("/compute/hosts?limit=1000&cursor={c}"),
                None => return Ok(out),
            }
        }
    }

    /// Host key → status (`connected` / `unreachable`) from `GET /compute/hosts`.
    pub async fn host_status(&self, admin: &str) -> Result<HashMap<String, String>> {
        Ok(self
            .hosts(admin)
            .await?
            .iter()
            .filter_map(|h| {
                Some((
                    h["host_key"].as_str()?.to_string(),
                    h["status"].as_str()?.to_string(),
                ))
            })
            .collect())
    }

    /// A container `name` of `user`'s, with their key: its id (`201` or an error).
    pub async fn create(&self, user: &User, name: &str) -> Result<String> {
        let body = json!({"name": name, "ssh_key_ids": [user.key_id]});
        let (code, v) = self
            .call(
                reqwest::Method::POST,
                &user.token,
                "/compute/containers",
                Some(&body),
            )
            .await?;
        if code != 201 {
            bail!("create {name}: {code} {v}");
        }
        Ok(v["id"].as_str().context("container id")?.to_string())
    }

    /// `n` users `u0`…: a token each and one SSH key registered.
    pub async fn users(&self, c: &Coordinator, n: usize) -> Result<Vec<User>> {
        let mut users = Vec::with_capacity(n);
        for i in 0..n {
            users.push(self.user(c, &format!("u{i}")).await?);
        }
        Ok(users)
    }

    /// The user `name` with a token and one SSH key registered.
    pub async fn user(&self, c: &Coordinator, name: &str) -> Result<User> {
        let token = c.token(name, &[])?;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        let mut blob = Vec::new();
        for part in [b"ssh-ed25519".as_slice(), key.public_key_raw()] {
            blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
            blob.extend_from_slice(part);
        }
        let public_key = format!(
            "ssh-ed25519 {} {name}@bench",
            base64::engine::general_purpose::STANDARD.encode(blob)
        );
        let body = json!({"name": "bench", "public_key": public_key});
        let (code, v) = self
            .call(
                reqwest::Method::POST,
                &token,
                "/compute/ssh-keys",
                Some(&body),
            )
            .await?;
        if code != 201 {
            bail!("POST /compute/ssh-keys for {name}: {code} {v}");
        }
        let key_id = v["id"].as_u64().context("key id")?;
        Ok(User { token, key_id })
    }
}
