//! Operators (`compute.admin`): the fleet's hosts, cordon and uncordon.

use super::Ctx;
use crate::args::HostsCmd;
use crate::error::CliError;
use crate::output;
use serde_json::Value;

fn resources(v: &Value) -> String {
    if v.is_null() {
        return "-".into();
    }
    format!(
        "{}m/{}MB/{}GB",
        output::cell(&v["cpu_millis"]),
        output::cell(&v["memory_mb"]),
        output::cell(&v["disk_gb"])
    )
}

pub async fn run(ctx: &Ctx, cmd: HostsCmd) -> Result<(), CliError> {
    let c = &ctx.client;
    let (verb, key) = match cmd {
        HostsCmd::Ls => {
            let all = c.all("/compute/hosts", "hosts").await?;
            let header = [
                "host",
                "status",
                "region",
                "capacity",
                "used",
                "containers",
                "cordoned",
            ];
            ctx.list("hosts", all, &header, |h| {
                vec![
                    output::cell(&h["host_key"]),
                    output::cell(&h["status"]),
                    output::cell(&h["region"]),
                    resources(&h["capacity"]),
                    resources(&h["used"]),
                    output::cell(&h["containers"]),
                    output::cell(&h["cordoned"]),
                ]
            });
            return Ok(());
        }
        HostsCmd::Cordon { host_key } => ("cordon", host_key),
        HostsCmd::Uncordon { host_key } => ("uncordon", host_key),
    };
    let v = c
        .post(&format!("/compute/hosts/{key}/{verb}"), None)
        .await?;
    if ctx.json() {
        output::json(&v);
    } else {
        println!("{key}: {verb}ed");
    }
    Ok(())
}
