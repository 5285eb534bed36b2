//! Into a container: `exec` (the API's exec, exiting with the command's status), `ssh` (the
//! system OpenSSH client with the container's `ssh_command`), `logs` (`-f` follows the log
//! WebSocket), `events`, `metrics`; and the progress spinner the waiting commands share.

use super::Ctx;
use crate::client::next_text;
use crate::error::CliError;
use crate::{output, resolve};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use std::io::{IsTerminal, Read, Write};

/// The largest stdin one exec carries (the API takes 64 KiB bodies; base64 is a third more).
const MAX_STDIN: usize = 46 * 1024;

/// A spinner on stderr while a terminal is there to show it; nothing otherwise.
pub fn spinner(msg: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let p = indicatif::ProgressBar::new_spinner();
    p.set_message(msg.to_string());
    p.enable_steady_tick(std::time::Duration::from_millis(100));
    p
}

pub async fn exec(
    ctx: &Ctx,
    name: &str,
    timeout: &str,
    command: Vec<String>,
) -> Result<u8, CliError> {
    let id = resolve::id(&ctx.client, name).await?;
    let mut stdin = Vec::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin()
            .take(MAX_STDIN as u64 + 1)
            .read_to_end(&mut stdin)
            .map_err(|source| CliError::File {
                what: "reading",
                path: "standard input".into(),
                source,
            })?;
        if stdin.len() > MAX_STDIN {
            return Err(CliError::Usage(format!(
                "standard input is larger than one exec takes ({} KiB)",
                MAX_STDIN / 1024
            )));
        }
    }
    let body = json!({
        "command": command,
        "stdin": STANDARD.encode(&stdin),
        "encoding": "base64",
        "timeout": timeout,
    });
    let r = ctx
        .client
        .post(&format!("/compute/containers/{id}/exec"), Some(&body))
        .await?;
    if ctx.json() {
        output::json(&r);
    } else {
        let bytes = |f: &str| {
            STANDARD
                .decode(r[f].as_str().unwrap_or(""))
                .unwrap_or_default()
        };
        let _ = std::io::stdout().write_all(&bytes("stdout"));
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().write_all(&bytes("stderr"));
        if r["truncated"] == true {
            eprintln!("berth: the output was cut at 1 MiB per stream");
        }
        if r["timed_out"] == true {
            eprintln!("berth: the command ran past {timeout} and was killed");
        }
    }
    Ok(r["exit_code"].as_u64().map_or(1, |c| c.min(255) as u8))
}

pub async fn ssh(
    ctx: &Ctx,
    name: &str,
    identity: Option<String>,
    options: Vec<String>,
    command: Vec<String>,
) -> Result<u8, CliError> {
    let c = resolve::container(&ctx.client, name).await?;
    let Some(line) = c["ssh_command"].as_str() else {
        let why = if c["ssh_enabled"] == false {
            format!("SSH access to {name} is off: `berth ssh-access on {name}`")
        } else {
            format!("{name} has no SSH address yet (its host has not reported one)")
        };
        return Err(CliError::Other(why));
    };
    // `ssh [-p PORT] ID@ADDR`, as the API writes it.
    let mut words = line.split_whitespace().skip(1);
    let mut cmd = std::process::Command::new("ssh");
    for w in words.by_ref() {
        cmd.arg(w);
    }
    if let Some(i) = identity {
        cmd.args(["-i", &i]);
    }
    for o in options {
        cmd.args(["-o", &o]);
    }
    if !command.is_empty() {
        cmd.arg("--").args(command);
    }
    let status = cmd.status().map_err(|source| CliError::File {
        what: "running",
        path: "ssh (OpenSSH's client)".into(),
        source,
    })?;
    Ok(status.code().map_or(255, |c| c.clamp(0, 255) as u8))
}

pub async fn logs(
    ctx: &Ctx,
    name: &str,
    follow: bool,
    tail: Option<usize>,
) -> Result<(), CliError> {
    let id = resolve::id(&ctx.client, name).await?;
    if !follow {
        let limit = tail.unwrap_or(50).clamp(1, 500);
        let v = ctx
            .client
            .get(&format!("/compute/containers/{id}/logs?limit={limit}"))
            .await?;
        if ctx.json() {
            output::json(&v);
            return Ok(());
        }
        for l in v["lines"].as_array().into_iter().flatten() {
            println!(
                "{} {}",
                output::cell(&l["timestamp"]),
                output::cell(&l["text"])
            );
        }
        return Ok(());
    }
    let tail = tail.unwrap_or(100).min(10_000);
    let mut ws = ctx
        .client
        .websocket(&format!("/compute/containers/{id}/logs?tail={tail}"))
        .await?;
    let mut out = std::io::stdout();
    while let Some(line) = next_text(&mut ws).await? {
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break; // the reader went away (`| head`)
        }
    }
    Ok(())
}

pub async fn events(ctx: &Ctx, name: &str) -> Result<(), CliError> {
    let id = resolve::id(&ctx.client, name).await?;
    let all = ctx
        .client
        .all(&format!("/compute/containers/{id}/events"), "events")
        .await?;
    ctx.list("events", all, &["at", "type", "message"], |e| {
        vec![
            output::cell(&e["at"]),
            output::cell(&e["type"]),
            output::cell(&e["message"]),
        ]
    });
    Ok(())
}

pub async fn metrics(ctx: &Ctx, name: &str) -> Result<(), CliError> {
    let id = resolve::id(&ctx.client, name).await?;
    let v: Value = ctx
        .client
        .get(&format!("/compute/containers/{id}/metrics"))
        .await?;
    if ctx.json() {
        output::json(&v);
    } else {
        output::fields(&v);
    }
    Ok(())
}
