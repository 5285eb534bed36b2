//! A user's volumes: list, create, grow or rename, remove; attach to and detach from a
//! container. A volume is named on the command line by its id or its name.

use super::Ctx;
use crate::args::VolumesCmd;
use crate::client::Client;
use crate::error::CliError;
use crate::{output, resolve, time};
use serde_json::{json, Map, Value};

/// The caller's volume `name_or_id`: by id first, else by name.
pub async fn volume(c: &Client, name_or_id: &str) -> Result<Value, CliError> {
    let all = c.all("/compute/volumes", "volumes").await?;
    let by_id = all.iter().position(|v| v["id"] == name_or_id);
    let at = by_id.or_else(|| all.iter().position(|v| v["name"] == name_or_id));
    at.map(|i| all[i].clone())
        .ok_or_else(|| CliError::Other(format!("no volume named or numbered {name_or_id:?} (404)")))
}

/// Its id.
pub async fn volume_id(c: &Client, name_or_id: &str) -> Result<String, CliError> {
    Ok(output::cell(&volume(c, name_or_id).await?["id"]))
}

fn attached(v: &Value) -> String {
    let a = &v["attached_to"];
    if a.is_null() {
        return "-".into();
    }
    format!(
        "{}:{}",
        output::cell(&a["container_id"]),
        output::cell(&a["mount_path"])
    )
}

fn done(ctx: &Ctx, v: &Value, line: String) {
    super::settings::print(ctx, v, &line);
}

pub async fn run(ctx: &Ctx, cmd: VolumesCmd) -> Result<(), CliError> {
    let c = &ctx.client;
    match cmd {
        VolumesCmd::Ls => {
            let all = c.all("/compute/volumes", "volumes").await?;
            let header = [
                "id", "name", "status", "size_gb", "used_gb", "host", "attached", "age",
            ];
            ctx.list("volumes", all, &header, |v| {
                vec![
                    output::cell(&v["id"]),
                    output::cell(&v["name"]),
                    output::cell(&v["status"]),
                    output::cell(&v["size_gb"]),
                    output::cell(&v["used_gb"]),
                    output::cell(&v["host_key"]),
                    attached(v),
                    time::age(v["created_at"].as_str().unwrap_or("")),
                ]
            });
        }
        VolumesCmd::Create {
            name,
            size,
            region,
            host,
        } => {
            let mut b = Map::new();
            b.insert("name".into(), json!(name));
            b.insert("size_gb".into(), json!(size));
            if let Some(r) = region {
                b.insert("region".into(), json!(r));
            }
            if let Some(h) = host {
                b.insert("host_key".into(), json!(h));
            }
            let v = c.post("/compute/volumes", Some(&Value::Object(b))).await?;
            let line = format!(
                "created volume {} ({name}, {size} GB on {})",
                output::cell(&v["id"]),
                output::cell(&v["host_key"])
            );
            done(ctx, &v, line);
        }
        VolumesCmd::Set { volume, size, name } => {
            if size.is_none() && name.is_none() {
                return Err(CliError::Usage(
                    "say --size GB to grow it, or --name NEW".into(),
                ));
            }
            let id = volume_id(c, &volume).await?;
            let mut b = Map::new();
            if let Some(s) = size {
                b.insert("size_gb".into(), json!(s));
            }
            if let Some(n) = name {
                b.insert("name".into(), json!(n));
            }
            let v = c
                .send(
                    reqwest::Method::PATCH,
                    &format!("/compute/volumes/{id}"),
                    Some(&Value::Object(b)),
                    &[],
                )
                .await?;
            let line = format!(
                "{id}: {}, {} GB",
                output::cell(&v["name"]),
                output::cell(&v["size_gb"])
            );
            done(ctx, &v, line);
        }
        VolumesCmd::Rm { volume } => {
            let id = volume_id(c, &volume).await?;
            let path = format!("/compute/volumes/{id}");
            let v = c.send(reqwest::Method::DELETE, &path, None, &[]).await?;
            done(ctx, &v, format!("removed volume {id} and its data"));
        }
        VolumesCmd::Attach {
            container,
            volume,
            at,
        } => {
            let (cid, vid) = (
                resolve::id(c, &container).await?,
                volume_id(c, &volume).await?,
            );
            let body = json!({"volume_id": vid, "mount_path": at});
            let v = c
                .post(&format!("/compute/containers/{cid}/volumes"), Some(&body))
                .await?;
            let again = if v["restarted"] == true {
                " (restarted)"
            } else {
                ""
            };
            done(ctx, &v, format!("{container}: {vid} at {at}{again}"));
        }
        VolumesCmd::Detach { container, volume } => {
            let (cid, vid) = (
                resolve::id(c, &container).await?,
                volume_id(c, &volume).await?,
            );
            let path = format!("/compute/containers/{cid}/volumes/{vid}");
            let v = c.send(reqwest::Method::DELETE, &path, None, &[]).await?;
            let again = if v["restarted"] == true {
                " (restarted)"
            } else {
                ""
            };
            done(ctx, &v, format!("{container}: {vid} detached{again}, kept"));
        }
    }
    Ok(())
}

/// `--volume VOL[:PATH]` of `create`: `volumes` entries where a path is given, else
/// `volume_ids` (mounted at `/mnt/<volume name>`).
pub async fn for_create(
    c: &Client,
    specs: &[String],
    body: &mut Map<String, Value>,
) -> Result<(), CliError> {
    let (mut mounts, mut ids) = (Vec::new(), Vec::new());
    for s in specs {
        match s.split_once(':') {
            Some((v, path)) => {
                mounts.push(json!({"volume_id": volume_id(c, v).await?, "mount_path": path}))
            }
            None => ids.push(json!(volume_id(c, s).await?)),
        }
    }
    if !mounts.is_empty() {
        body.insert("volumes".into(), json!(mounts));
    }
    if !ids.is_empty() {
        body.insert("volume_ids".into(), json!(ids));
    }
    Ok(())
}
