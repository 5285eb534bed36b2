//! `berth-coordinator`: serve the API, or the `token` / `tls` helper commands.

use anyhow::Context;
use berth_coordinator::config::Config;
use berth_service::config::load_or_exit;
use berth_service::process;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "berth-coordinator",
    version,
    about = "Berth coordinator: REST API, auth, placement, agent hub"
)]
struct Cli {
    /// Config file (TOML); `BERTH_COORDINATOR__SECTION__KEY` variables override it.
    #[arg(
        long,
        global = true,
        default_value = "/etc/berth/coordinator.toml",
        env = "BERTH_COORDINATOR_CONFIG"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the agent endpoint (the default).
    Serve,
    /// Load and validate the configuration, then exit (78 when it is invalid).
    Check,
    /// Print a token for a user, signed with the configured key.
    Token {
        #[arg(long)]
        user: String,
        /// Lifetime, e.g. 30m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Restrict the token to these scopes, RESOURCE:ACTION[,ACTION]
        /// (e.g. compute.alice.containers:read,create). Without any: a full session.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Print a one-time join token for a new agent host (`[coordinator] enroll_token`).
    Enroll {
        #[arg(long)]
        host_key: String,
        /// How long the token is valid, e.g. 1h.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// The store: move an installation to another backend.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Cluster TLS material for the agent link.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy a sled store into an empty PostgreSQL database (stop the coordinator first), e.g.
    /// `store migrate --from sled:/var/lib/berth-coordinator/db --to postgres://berth@db/berth`.
    /// Then set `[store] backend = "postgres"` and `url`, and start the coordinator again.
    Migrate {
        /// `sled:PATH` of the store to read.
        #[arg(long)]
        from: String,
        /// PostgreSQL address (`postgres://…` or `host=… dbname=…`) of an empty database.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum TlsCommand {
    /// Create the cluster CA (if missing) and the coordinator's certificate.
    Init {
        /// Replace an existing CA (every agent certificate must then be reissued).
        #[arg(long)]
        force: bool,
    },
    /// Issue an agent certificate naming its host key.
    IssueAgent {
        #[arg(long)]
        host_key: String,
        /// Directory for agent.pem, agent.key and ca.pem.
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue the wildcard certificate (`*.<domain>`) of the agents' HTTPS ingress gateway.
    IssueIngress {
        /// Defaults to the API's `domain`.
        #[arg(long)]
        domain: Option<String>,
        /// Directory for ingress.pem and ingress.key.
        #[arg(long)]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_tracing();
    let cli = Cli::parse();
    let config: Config = load_or_exit(&cli.config);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => berth_coordinator::run(config, process::shutdown_signal()).await?,
        Command::Check => println!("{}: ok", cli.config.display()),
        Command::Enroll { host_key, ttl } => {
            let ttl = berth_shared::time::parse_duration(&ttl)?;
            let token = berth_coordinator::enroll::mint(&config.link, &host_key, ttl)
                .map_err(anyhow::Error::msg)?;
            println!("{token}");
        }
        Command::Token { user, ttl, scopes } => {
            let ttl = berth_shared::time::parse_duration(&ttl)?;
            let auth = berth_coordinator::auth::Authenticator::from_config(&config.auth)?;
            let scopes = if scopes.is_empty() {
                None
            } else {
                Some(berth_coordinator::auth::parse_scopes(&scopes).map_err(anyhow::Error::msg)?)
            };
            println!("{}", auth.issue(&user, ttl, scopes)?);
        }
        Command::Store {
            command: StoreCommand::Migrate { from, to },
        } => {
            let path = from
                .strip_prefix("sled:")
                .context("--from must be sled:PATH")?;
            let mut target = config.store.clone();
            target.backend = berth_coordinator::config::StoreBackend::Postgres;
            target.url = Some(to);
            let counts =
                berth_coordinator::store::migrate::sled_to_postgres(path.as_ref(), &target)
                    .await
                    .context("store migrate")?;
            println!("copied {counts}");
        }
        Command::Tls {
            command: TlsCommand::Init { force },
        } => {
            let new_ca = berth_coordinator::pki::init(&config.link, force)?;
            eprintln!(
                "{} CA {}; coordinator certificate {}",
                if new_ca { "created" } else { "kept" },
                config.link.ca_cert.display(),
                config.link.cert.display()
            );
        }
        Command::Tls {
            command: TlsCommand::IssueIngress { domain, out },
        } => {
            let domain = domain.unwrap_or_else(|| config.api.domain.clone());
            berth_coordinator::pki::issue_ingress(&config.link, &domain, &out)
                .with_context(|| format!("issuing the ingress certificate for *.{domain}"))?;
            eprintln!(
                "ingress certificate for *.{domain} written to {}",
                out.display()
            );
        }
        Command::Tls {
            command: TlsCommand::IssueAgent { host_key, out },
        } => {
            berth_coordinator::pki::issue_agent(&config.link, &host_key, &out)
                .with_context(|| format!("issuing a certificate for {host_key}"))?;
            eprintln!(
                "agent certificate for {host_key} written to {}",
                out.display()
            );
        }
    }
    Ok(())
}
