//! `berth`: the command-line client of Berth's public API (containers, what runs inside them,
//! their settings, SSH keys, operators' hosts). It talks to the API over HTTP and WebSockets
//! only, with the API types of `berth-shared`. Exit status: 0, 1 for an API or network error,
//! 2 for a usage error, or the status of the command `exec`/`ssh` ran.

mod args;
mod client;
mod commands;
mod config;
mod error;
mod output;
mod resolve;
mod time;
mod upkeep;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
