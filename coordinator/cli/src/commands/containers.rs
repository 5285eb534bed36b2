//! `ls` (and `--watch`), `create` (waits for `running`), `show`, `start`/`stop`/`restart`,
//! `rm`, `resize`, `rename`.

use super::Ctx;
use crate::args::CreateArgs;
use crate::client::{next_text, Socket};
use crate::error::CliError;
use crate::{output, resolve, time, upkeep};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

/// How long `create` waits for `running`.
const CREATE_WAIT: Duration = Duration::from_secs(600);

fn row(c: &Value) -> Vec<String> {
    vec![
        output::cell(&c["id"]),
        output::cell(&c["name"]),
        output::cell(&c["status"]),
        c.get("health").map_or("-".into(), output::cell),
        output::cell(&c["instance_type"]),
        output::cell(&c["external_ip"]),
        time::age(c["created_at"].as_str().unwrap_or("")),
    ]
}

const HEADER: [&str; 7] = ["id", "name", "status", "health", "type", "address", "age"];

fn print_list(list: &[Value]) {
    output::table(&HEADER, list.iter().map(row).collect());
}

pub async fn ls(ctx: &Ctx, watch: bool) -> Result<(), CliError> {
    let all = ctx.client.all("/compute/containers", "containers").await?;
    if !watch {
        ctx.list("containers", all, &HEADER, row);
        return Ok(());
    }
    let mut ws = ctx.client.websocket("/compute/ws").await?;
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    let tty = std::io::stdout().is_terminal();
    while let Some(text) = next_text(&mut ws).await? {
        let msg: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if ctx.json() {
            println!("{msg}");
            continue;
        }
        let kind = msg["type"].as_str().unwrap_or("");
        let id = msg["data"]["container_id"]
            .as_str()
            .unwrap_or("")
            .to_string();
        match kind {
            "containers" => {
                by_id = msg["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| (output::cell(&c["id"]), c.clone()))
                    .collect();
            }
            "container_deleted" => {
                by_id.remove(&id);
            }
            _ if !by_id.contains_key(&id) => {
                // Someone else's create (another terminal): its full record from the API.
                if let Ok(c) = ctx.client.get(&format!("/compute/containers/{id}")).await {
                    by_id.insert(id.clone(), c);
                }
            }
            _ => {
                if let Some(c) = by_id.get_mut(&id) {
                    c["status"] = msg["data"]["status"].clone();
                    if !msg["data"]["external_ip"].is_null() {
                        c["external_ip"] = msg["data"]["external_ip"].clone();
                    }
                }
            }
        }
        if tty {
            // Redraw in place: home, clear, the table.
            print!("\x1b[H\x1b[2J");
            print_list(&by_id.values().cloned().collect::<Vec<_>>());
        } else if kind != "containers" {
            println!("{id} {}", msg["data"]["status"].as_str().unwrap_or(kind));
        } else {
            print_list(&by_id.values().cloned().collect::<Vec<_>>());
        }
    }
    Ok(())
}

/// A fresh `Idempotency-Key` for one invocation.
fn invocation_key() -> String {
    format!("berth-cli-{:016x}", rand::random::<u64>())
}

async fn key_ids(ctx: &Ctx, wanted: &[String]) -> Result<Vec<Value>, CliError> {
    let keys = ctx.client.all("/compute/ssh-keys", "ssh_keys").await?;
    if wanted.is_empty() {
        if keys.is_empty() {
            return Err(CliError::Usage(
                "you have no SSH key yet: `berth keys add ~/.ssh/id_ed25519.pub` first".into(),
            ));
        }
        return Ok(keys.iter().map(|k| k["id"].clone()).collect());
    }
    wanted
        .iter()
        .map(|w| resolve::key(&keys, w).map(|k| k["id"].clone()))
        .collect()
}

fn create_body(a: &CreateArgs, keys: Vec<Value>) -> Result<Value, CliError> {
    let mut b = Map::new();
    b.insert("name".into(), json!(a.name));
    b.insert("ssh_key_ids".into(), Value::Array(keys));
    if a.ssh {
        b.insert("ssh_enabled".into(), json!(true));
    }
    let mut opt = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            b.insert(k.into(), v);
        }
    };
    opt("instance_type", a.instance_type.as_ref().map(|v| json!(v)));
    opt("image", a.image.as_ref().map(|v| json!(v)));
    opt("memory_mb", a.memory.map(|v| json!(v)));
    opt("storage_gb", a.storage.map(|v| json!(v)));
    opt("region", a.region.as_ref().map(|v| json!(v)));
    opt("runtime", a.runtime.as_ref().map(|v| json!(v)));
    opt("ports", (!a.ports.is_empty()).then(|| json!(a.ports)));
    opt(
        "mount_paths",
        (!a.mounts.is_empty()).then(|| json!(a.mounts)),
    );
    if let Some(r) = &a.restart {
        b.insert(
            "restart_policy".into(),
            upkeep::restart(r).map_err(CliError::Usage)?,
        );
    }
    if let Some(h) = &a.health {
        let (i, g) = (a.health_interval.as_deref(), a.health_grace.as_deref());
        let check = upkeep::health(h, i, g).map_err(CliError::Usage)?;
        b.insert("health_check".into(), check);
    }
    if !a.env.is_empty() {
        let mut env = Map::new();
        for kv in &a.env {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| CliError::Usage(format!("--env {kv:?}: write it as KEY=VALUE")))?;
            env.insert(k.to_string(), json!(v));
        }
        b.insert("env".into(), Value::Object(env));
    }
    Ok(Value::Object(b))
}

pub async fn create(ctx: &Ctx, a: CreateArgs) -> Result<u8, CliError> {
    let mut body = create_body(&a, key_ids(ctx, &a.keys).await?)?;
    if let Some(b) = body.as_object_mut() {
        super::volumes::for_create(&ctx.client, &a.volumes, b).await?;
    }
    let key = invocation_key();
    // Subscribed before the create, so no status change is missed.
    let mut ws = match a.detach {
        true => None,
        false => ctx.client.websocket("/compute/ws").await.ok(),
    };
    let headers = [("idempotency-key", key.as_str())];
    let post = || {
        ctx.client.send(
            reqwest::Method::POST,
            "/compute/containers",
            Some(&body),
            &headers,
        )
    };
    let created = match post().await {
        // The answer was lost on the way: the same key makes no second container.
        Err(CliError::Http { .. }) => post().await?,
        r => r?,
    };
    let id = output::cell(&created["id"]);
    if a.detach {
        if ctx.json() {
            output::json(&created);
        } else {
            println!("{id}");
        }
        return Ok(0);
    }
    let progress = super::inside::spinner(&format!(
        "{} ({id}): {}",
        a.name,
        output::cell(&created["status"])
    ));
    let waited = tokio::select! {
        r = until_running(ctx, &id, ws.as_mut(), &progress) => r,
        _ = tokio::signal::ctrl_c() => {
            progress.finish_and_clear();
            eprintln!("stopped waiting; {id} is still being created (`berth show {id}`)");
            return Ok(130);
        }
        _ = tokio::time::sleep(CREATE_WAIT) => Err(CliError::Other(format!("{id} did not start within {CREATE_WAIT:?}"))),
    };
    progress.finish_and_clear();
    let now = waited?;
    if ctx.json() {
        output::json(&now);
    } else {
        print_list(&[now]);
    }
    Ok(0)
}

/// Follows the status stream (or, without one, `wait`) until `id` runs; `failed` (or `stopped`
/// by its restart policy) is an error.
async fn until_running(
    ctx: &Ctx,
    id: &str,
    ws: Option<&mut Socket>,
    progress: &indicatif::ProgressBar,
) -> Result<Value, CliError> {
    let path = format!("/compute/containers/{id}");
    if let Some(ws) = ws {
        // Already there by the time the stream is read?
        let c = ctx.client.get(&path).await?;
        if c["status"] == "running" {
            return Ok(c);
        }
        while let Some(text) = next_text(ws).await? {
            let msg: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if msg["data"]["container_id"] != id {
                continue;
            }
            let status = output::cell(&msg["data"]["status"]);
            progress.set_message(format!("{id}: {status}"));
            progress.println(format!("{id}: {status}"));
            match status.as_str() {
                "running" => return ctx.client.get(&path).await,
                // Failed, or left stopped by its restart policy (it exited at once).
                "failed" | "stopped" => {
                    let c = ctx.client.get(&path).await?;
                    let why = output::cell(&c["status_reason"]);
                    return Err(CliError::Other(format!("{id} {status}: {why}")));
                }
                _ => {}
            }
        }
    }
    let w = ctx
        .client
        .get(&format!("{path}/wait?status=running&timeout=10m"))
        .await?;
    Ok(w["container"].clone())
}

pub async fn show(ctx: &Ctx, name: &str) -> Result<(), CliError> {
    let c = resolve::container(&ctx.client, name).await?;
    if ctx.json() {
        output::json(&c);
    } else {
        output::fields(&c);
    }
    Ok(())
}

/// `start` (waits for running), `stop` (waits for the host), `restart` (reboot).
pub async fn lifecycle(ctx: &Ctx, name: &str, what: &str) -> Result<(), CliError> {
    let id = resolve::id(&ctx.client, name).await?;
    let progress = super::inside::spinner(&format!("{what} {name} ({id})"));
    let r = match what {
        "restart" => {
            let body = json!({"type": "reboot"});
            ctx.client
                .post(&format!("/compute/containers/{id}/actions"), Some(&body))
                .await
        }
        _ => {
            ctx.client
                .post(&format!("/compute/containers/{id}/{what}"), None)
                .await
        }
    };
    progress.finish_and_clear();
    let c = r?;
    if ctx.json() {
        output::json(&c);
    } else {
        print_list(&[c]);
    }
    Ok(())
}

pub async fn rm(ctx: &Ctx, name: &str, force: bool) -> Result<(), CliError> {
    let c = resolve::container(&ctx.client, name).await?;
    let id = output::cell(&c["id"]);
    if c["status"] == "running" && !force {
        return Err(CliError::Usage(format!(
            "{name} ({id}) is running: `berth stop {name}` first, or `berth rm --force {name}`"
        )));
    }
    let v = ctx
        .client
        .send(
            reqwest::Method::DELETE,
            &format!("/compute/containers/{id}"),
            None,
            &[],
        )
        .await?;
    if ctx.json() {
        output::json(&v);
    } else {
        println!("deleted {name} ({id})");
    }
    Ok(())
}

async fn patch(ctx: &Ctx, name: &str, body: Value) -> Result<(), CliError> {
    let id = resolve::id(&ctx.client, name).await?;
    let c = ctx
        .client
        .send(
            reqwest::Method::PATCH,
            &format!("/compute/containers/{id}"),
            Some(&body),
            &[],
        )
        .await?;
    if ctx.json() {
        output::json(&c);
    } else {
        print_list(&[c]);
    }
    Ok(())
}

pub async fn resize(
    ctx: &Ctx,
    name: &str,
    memory: Option<u64>,
    cpu: Option<u64>,
    storage: Option<u64>,
) -> Result<(), CliError> {
    let mut b = Map::new();
    for (k, v) in [
        ("memory_mb", memory),
        ("cpu_millis", cpu),
        ("storage_gb", storage),
    ] {
        if let Some(v) = v {
            b.insert(k.into(), json!(v));
        }
    }
    if b.is_empty() {
        return Err(CliError::Usage(
            "say what to change: --memory, --cpu or --storage".into(),
        ));
    }
    patch(ctx, name, Value::Object(b)).await
}

pub async fn rename(ctx: &Ctx, name: &str, new_name: &str) -> Result<(), CliError> {
    patch(ctx, name, json!({ "name": new_name })).await
}
