//! Each command, grouped as the API is: `account` (login, whoami, images, quota),
//! `containers` (list, create, show, lifecycle, resize), `inside` (exec, ssh, console, logs,
//! events, metrics), `settings` (keys, ingress, mounts, SSH access), `volumes`, `hosts`
//! (operators).

mod account;
mod console;
mod containers;
mod hosts;
mod inside;
mod settings;
mod volumes;

use crate::args::{Cli, Cmd, Output};
use crate::client::Client;
use crate::config;
use crate::error::CliError;

/// What a command needs: the API client and how to print.
pub struct Ctx {
    pub client: Client,
    pub output: Output,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.output == Output::Json
    }

    /// A whole list: `{field: items}` as JSON, or a table of `row` of each item.
    pub fn list(
        &self,
        field: &str,
        items: Vec<serde_json::Value>,
        header: &[&str],
        row: impl Fn(&serde_json::Value) -> Vec<String>,
    ) {
        if self.json() {
            crate::output::json(&serde_json::json!({ field: items }));
        } else {
            crate::output::table(header, items.iter().map(row).collect());
        }
    }
}

/// Runs the command; the exit status on success (a command run inside may choose it).
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Cmd::Login {
            api,
            token,
            token_stdin,
        } => return account::login(api, token, token_stdin).await.map(|_| 0),
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "berth", &mut std::io::stdout());
            return Ok(0);
        }
        _ => {}
    }
    let ctx = Ctx {
        client: Client::new(&config::load()?),
        output: cli.output,
    };
    match cli.command {
        Cmd::Login { .. } | Cmd::Completions { .. } => Ok(0),
        Cmd::Whoami => account::whoami(&ctx).await.map(|_| 0),
        Cmd::Images => account::images(&ctx).await.map(|_| 0),
        Cmd::Quota => account::quota(&ctx).await.map(|_| 0),
        Cmd::Ls { watch } => containers::ls(&ctx, watch).await.map(|_| 0),
        Cmd::Create(a) => containers::create(&ctx, a).await,
        Cmd::Show { name } => containers::show(&ctx, &name).await.map(|_| 0),
        Cmd::Start { name } => containers::lifecycle(&ctx, &name, "start").await.map(|_| 0),
        Cmd::Stop { name } => containers::lifecycle(&ctx, &name, "stop").await.map(|_| 0),
        Cmd::Restart { name } => containers::lifecycle(&ctx, &name, "restart")
            .await
            .map(|_| 0),
        Cmd::Rm { name, force } => containers::rm(&ctx, &name, force).await.map(|_| 0),
        Cmd::Resize {
            name,
            memory,
            cpu,
            storage,
        } => containers::resize(&ctx, &name, memory, cpu, storage)
            .await
            .map(|_| 0),
        Cmd::Rename { name, new_name } => {
            containers::rename(&ctx, &name, &new_name).await.map(|_| 0)
        }
        Cmd::Exec {
            name,
            timeout,
            command,
        } => inside::exec(&ctx, &name, &timeout, command).await,
        Cmd::Ssh {
            name,
            identity,
            options,
            command,
        } => inside::ssh(&ctx, &name, identity, options, command).await,
        Cmd::Console { name } => console::run(&ctx, &name).await.map(|_| 0),
        Cmd::Logs { name, follow, tail } => {
            inside::logs(&ctx, &name, follow, tail).await.map(|_| 0)
        }
        Cmd::Events { name } => inside::events(&ctx, &name).await.map(|_| 0),
        Cmd::Metrics { name } => inside::metrics(&ctx, &name).await.map(|_| 0),
        Cmd::Keys(k) => settings::keys(&ctx, k).await.map(|_| 0),
        Cmd::Ingress(i) => settings::ingress(&ctx, i).await.map(|_| 0),
        Cmd::Mounts { name, set } => settings::mounts(&ctx, &name, set).await.map(|_| 0),
        Cmd::SshAccess { state, name } => settings::ssh_access(&ctx, state, &name).await.map(|_| 0),
        Cmd::Volumes(v) => volumes::run(&ctx, v).await.map(|_| 0),
        Cmd::Hosts(h) => hosts::run(&ctx, h).await.map(|_| 0),
    }
}
