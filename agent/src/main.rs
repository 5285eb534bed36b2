//! `berth-agent`: run the agent for this host.

use berth_agent::config::Config;
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

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt"),
    }
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal (journald shows escape codes as they are); one JSON object
    // per line with BERTH_LOG_FORMAT=json.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("BERTH_LOG_FORMAT").is_ok_and(|v| v == "json") {
        b.json().flatten_event(true).init();
    } else {
        b.init();
    }
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            // EX_CONFIG: systemd's RestartPreventExitStatus=78 stops a restart loop on it.
            eprintln!("error: {e}");
            std::process::exit(78);
        }
    };
    if cli.check {
        println!("{}: ok", cli.config.display());
        return Ok(());
    }
    berth_agent::run(config, shutdown_signal()).await?;
    Ok(())
}
