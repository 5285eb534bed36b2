//! A user's SSH keys, and a container's ingress rules, mounts and SSH access.

use super::Ctx;
use crate::args::{IngressCmd, KeysCmd, OnOff};
use crate::error::CliError;
use crate::{output, resolve, time};
use serde_json::{json, Value};

/// The answer as JSON with `--output json`, else the one line `done`.
pub(super) fn print(ctx: &Ctx, v: &Value, done: &str) {
    if ctx.json() {
        output::json(v);
    } else {
        println!("{done}");
    }
}

pub async fn keys(ctx: &Ctx, cmd: KeysCmd) -> Result<(), CliError> {
    let c = &ctx.client;
    match cmd {
        KeysCmd::Ls => {
            let all = c.all("/compute/ssh-keys", "ssh_keys").await?;
            ctx.list(
                "ssh_keys",
                all,
                &["id", "name", "fingerprint", "age"],
                |k| {
                    let age = time::age(k["created_at"].as_str().unwrap_or(""));
                    vec![
                        output::cell(&k["id"]),
                        output::cell(&k["name"]),
                        output::cell(&k["fingerprint"]),
                        age,
                    ]
                },
            );
        }
        KeysCmd::Add { file, name } => {
            let text = std::fs::read_to_string(&file).map_err(|source| CliError::File {
                what: "reading",
                path: file.clone(),
                source,
            })?;
            let line = text.trim();
            let name = name
                .or_else(|| line.split_whitespace().nth(2).map(str::to_string))
                .unwrap_or_else(|| {
                    let stem = std::path::Path::new(&file).file_stem();
                    stem.map_or("key".into(), |s| s.to_string_lossy().into_owned())
                });
            let v = c
                .post(
                    "/compute/ssh-keys",
                    Some(&json!({"name": name, "public_key": line})),
                )
                .await?;
            print(
                ctx,
                &v,
                &format!(
                    "added key {} ({})",
                    output::cell(&v["id"]),
                    output::cell(&v["fingerprint"])
                ),
            );
        }
        KeysCmd::Rm { key } => {
            let all = c.all("/compute/ssh-keys", "ssh_keys").await?;
            let k = resolve::key(&all, &key)?;
            let id = output::cell(&k["id"]);
            let v = c
                .send(
                    reqwest::Method::DELETE,
                    &format!("/compute/ssh-keys/{id}"),
                    None,
                    &[],
                )
                .await?;
            print(
                ctx,
                &v,
                &format!("removed key {id}; it is revoked from every container"),
            );
        }
    }
    Ok(())
}

pub async fn ingress(ctx: &Ctx, cmd: IngressCmd) -> Result<(), CliError> {
    let c = &ctx.client;
    match cmd {
        IngressCmd::Ls { name } => {
            let id = resolve::id(c, &name).await?;
            let all = c
                .all(&format!("/compute/containers/{id}/ingress"), "rules")
                .await?;
            ctx.list("rules", all, &["port", "target", "id"], |r| {
                vec![
                    output::cell(&r["port"]),
                    output::cell(&r["target_port"]),
                    output::cell(&r["id"]),
                ]
            });
        }
        IngressCmd::Add { name, port } => {
            let (p, t) = match port.split_once(':') {
                Some((p, t)) => (p, t),
                None => (port.as_str(), port.as_str()),
            };
            let num = |s: &str| {
                s.parse::<u16>().map_err(|_| {
                    CliError::Usage(format!("{port:?}: write it as PORT or PORT:TARGET"))
                })
            };
            let (p, t) = (num(p)?, num(t)?);
            let id = resolve::id(c, &name).await?;
            let body = json!({"port": p, "target_port": t});
            let v = c
                .post(&format!("/compute/containers/{id}/ingress"), Some(&body))
                .await?;
            print(ctx, &v, &format!("{name}: port {p} → {t}"));
        }
        IngressCmd::Rm { name, port } => {
            let id = resolve::id(c, &name).await?;
            let path = format!("/compute/containers/{id}/ingress/{port}");
            let v = c.send(reqwest::Method::DELETE, &path, None, &[]).await?;
            print(ctx, &v, &format!("{name}: port {port} removed"));
        }
    }
    Ok(())
}

pub async fn mounts(ctx: &Ctx, name: &str, set: Option<Vec<String>>) -> Result<(), CliError> {
    let id = resolve::id(&ctx.client, name).await?;
    let path = format!("/compute/containers/{id}/mounts");
    let v = match set {
        None => ctx.client.get(&path).await?,
        Some(paths) => {
            let body = json!({ "mount_paths": paths });
            ctx.client
                .send(reqwest::Method::PUT, &path, Some(&body), &[])
                .await?
        }
    };
    if ctx.json() {
        output::json(&v);
        return Ok(());
    }
    for p in v["mount_paths"].as_array().into_iter().flatten() {
        println!("{}", output::cell(p));
    }
    if v["restarted"] == true {
        eprintln!("{name} was re-created to take the new mounts (data kept)");
    }
    Ok(())
}

pub async fn ssh_access(ctx: &Ctx, state: OnOff, name: &str) -> Result<(), CliError> {
    let id = resolve::id(&ctx.client, name).await?;
    let on = state == OnOff::On;
    let body = json!({ "ssh_enabled": on });
    let v = ctx
        .client
        .send(
            reqwest::Method::PUT,
            &format!("/compute/containers/{id}/ssh"),
            Some(&body),
            &[],
        )
        .await?;
    print(
        ctx,
        &v,
        &format!("SSH access to {name} is {}", if on { "on" } else { "off" }),
    );
    Ok(())
}
