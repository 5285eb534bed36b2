//! `berth-agent`: run the agent for this host.

use berth_agent::config::Config;
use berth_service::config::load_or_exit;
use berth_service::process;
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "berth-agent",
    version,
    about = "Berth agent: runs this host's containers on containerd"
)]
struct Cli {
    /// Config file (TOML); `BERTH_AGENT__SECTION__KEY` variables override it.
    #[arg(
        long,
        default_value = "/etc/berth/agent.toml",
        env = "BERTH_AGENT_CONFIG"
    )]
    config: PathBuf,
    /// Load and validate the configuration, then exit (78 when it is invalid).
    #[arg(long)]
    check: bool,
}

fn main() -> anyhow::Result<()> {
    // containerd's shim starts this binary as the containers' log driver, too.
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = berth_agent::logs::driver::run_if_invoked(&args) {
        std::process::exit(code);
    }
    tokio::runtime::Runtime::new()?.block_on(agent())
}

async fn agent() -> anyhow::Result<()> {
    process::init_tracing();
    let cli = Cli::parse();
    let config: Config = load_or_exit(&cli.config);
    if cli.check {
        println!("{}: ok", cli.config.display());
        return Ok(());
    }
    berth_agent::run(config, process::shutdown_signal()).await?;
    Ok(())
}
