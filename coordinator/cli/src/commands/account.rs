//! `login`, `whoami`, `images`, `quota`.

use super::Ctx;
use crate::client::Client;
use crate::config::{self, Login};
use crate::error::CliError;
use crate::output;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use std::io::Read;

/// Checks the token against the API, then stores the login.
pub async fn login(api: String, token: Option<String>, stdin: bool) -> Result<(), CliError> {
    let token = match (token, stdin) {
        (Some(t), _) => t,
        (None, true) => {
            let mut t = String::new();
            std::io::stdin()
                .read_to_string(&mut t)
                .map_err(|source| CliError::File {
                    what: "reading",
                    path: "standard input".into(),
                    source,
                })?;
            t
        }
        (None, false) => {
            return Err(CliError::Usage(
                "give the token with --token T or --token-stdin".into(),
            ))
        }
    };
    let login = Login {
        api: api.trim_end_matches('/').to_string(),
        token: token.trim().to_string(),
    };
    if !login.api.starts_with("http://") {
        return Err(CliError::Usage(format!(
            "--api must be an http:// URL, not {:?} (the CLI does not speak HTTPS yet)",
            login.api
        )));
    }
    Client::new(&login).get("/compute/quota").await?;
    let path = config::save(&login)?;
    println!(
        "logged in to {} as {} (saved in {})",
        login.api,
        subject(&login.token),
        path.display()
    );
    Ok(())
}

/// The token's claims, unverified (the API verifies; this only says what it carries).
fn claims(token: &str) -> Value {
    token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn subject(token: &str) -> String {
    claims(token)["sub"].as_str().unwrap_or("?").to_string()
}

pub async fn whoami(ctx: &Ctx) -> Result<(), CliError> {
    let login = config::load()?;
    ctx.client.get("/compute/quota").await?;
    let c = claims(&login.token);
    let expires = c["exp"]
        .as_u64()
        .map_or("-".to_string(), berth_shared::time::rfc3339);
    let scopes = match c.get("scopes") {
        Some(Value::Object(s)) => s
            .iter()
            .map(|(r, a)| format!("{r}:{}", output::cell(a)))
            .collect::<Vec<_>>()
            .join(" "),
        _ => "all of the user's".into(),
    };
    let v = serde_json::json!({"user": c["sub"], "api": login.api, "expires": expires, "scopes": scopes});
    if ctx.json() {
        output::json(&v);
    } else {
        output::fields(&v);
    }
    Ok(())
}

pub async fn images(ctx: &Ctx) -> Result<(), CliError> {
    let v = ctx.client.get("/compute/images").await?;
    if ctx.json() {
        output::json(&v);
        return Ok(());
    }
    let rows = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            vec![
                output::cell(&i["name"]),
                output::cell(&i["image"]),
                output::cell(&i["source"]),
            ]
        })
        .collect();
    output::table(&["name", "image", "source"], rows);
    Ok(())
}

pub async fn quota(ctx: &Ctx) -> Result<(), CliError> {
    let v = ctx.client.get("/compute/quota").await?;
    if ctx.json() {
        output::json(&v);
        return Ok(());
    }
    let q: berth_shared::api::Quota =
        serde_json::from_value(v).map_err(|e| CliError::Other(format!("the quota: {e}")))?;
    let rows = q
        .quotas
        .iter()
        .map(|d| vec![d.dimension.clone(), d.used.to_string(), d.max.to_string()])
        .collect();
    println!("region {}", q.region);
    output::table(&["quota", "used", "max"], rows);
    Ok(())
}
