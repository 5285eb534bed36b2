//! The command line: every command, its arguments and an example, declared with clap.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Containers on a fleet of edge hosts, from the command line",
    after_help = "Examples:\n  berth login --api http://127.0.0.1:8080 --token-stdin < token\n  \
                  berth create web --type tiny --port 8080\n  berth ls\n  \
                  berth exec web -- uname -a\n  berth ssh web\n\n\
                  BERTH_API and BERTH_TOKEN override the stored login."
)]
pub struct Cli {
    /// How to print answers: tables, or the API's JSON.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum Cmd {
    /// Store the API address and a token (in $XDG_CONFIG_HOME/berth/config.toml, mode 0600).
    #[command(
        after_help = "Example:\n  berth login --api https://compute.example.com --token-stdin < token"
    )]
    Login {
        #[arg(long)]
        api: String,
        #[arg(long, conflicts_with = "token_stdin")]
        token: Option<String>,
        /// Read the token from standard input.
        #[arg(long)]
        token_stdin: bool,
    },
    /// Who the token says you are, and whether the API takes it.
    #[command(after_help = "Example:\n  berth whoami")]
    Whoami,
    /// Your containers.
    #[command(after_help = "Example:\n  berth ls --watch")]
    Ls {
        /// Follow changes live (the status stream), redrawing the table.
        #[arg(long)]
        watch: bool,
    },
    /// Create a container and wait until it runs.
    #[command(
        after_help = "Example:\n  berth create web --type small --env MODE=prod --port 8080 --mount /data\n  \
                      berth create api --restart on-failure:5 --health http:8080/healthz"
    )]
    Create(CreateArgs),
    /// One container, all its fields.
    #[command(after_help = "Example:\n  berth show web --output json")]
    Show { name: String },
    /// Start a container and wait until it runs.
    #[command(after_help = "Example:\n  berth start web")]
    Start { name: String },
    /// Stop a container (answers once its host confirms).
    #[command(after_help = "Example:\n  berth stop web")]
    Stop { name: String },
    /// Reboot a running container.
    #[command(after_help = "Example:\n  berth restart web")]
    Restart { name: String },
    /// Delete a container (asks nothing; `--force` also deletes a running one).
    #[command(after_help = "Example:\n  berth rm --force web")]
    Rm {
        name: String,
        /// Delete it even if it is running.
        #[arg(long)]
        force: bool,
    },
    /// Change a container's memory, CPU or disk.
    #[command(after_help = "Example:\n  berth resize web --memory 1024 --cpu 2000")]
    Resize {
        name: String,
        /// Memory in MB.
        #[arg(long)]
        memory: Option<u64>,
        /// CPU in millicores.
        #[arg(long)]
        cpu: Option<u64>,
        /// Disk in GB.
        #[arg(long)]
        storage: Option<u64>,
    },
    /// Give a container a new name.
    #[command(after_help = "Example:\n  berth rename web www")]
    Rename { name: String, new_name: String },
    /// SSH into a container with the system's OpenSSH client.
    #[command(after_help = "Example:\n  berth ssh web -i ~/.ssh/id_ed25519 -- uptime")]
    Ssh {
        name: String,
        /// Identity file, passed to ssh.
        #[arg(short = 'i')]
        identity: Option<String>,
        /// Options passed to ssh (`-o StrictHostKeyChecking=accept-new`).
        #[arg(short = 'o')]
        options: Vec<String>,
        /// The command to run instead of a shell.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Run a command in a container; exits with its status. Standard input is passed.
    #[command(after_help = "Example:\n  echo hi | berth exec web -- sh -c 'cat; exit 3'")]
    Exec {
        name: String,
        /// Kill it after this long (1s to 10m).
        #[arg(long, default_value = "30s")]
        timeout: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// An interactive terminal in a container (detach with Ctrl-]).
    #[command(after_help = "Example:\n  berth console web")]
    Console { name: String },
    /// A container's output.
    #[command(after_help = "Example:\n  berth logs web -f --tail 20")]
    Logs {
        name: String,
        /// Keep following new lines.
        #[arg(short, long)]
        follow: bool,
        /// Lines of history (default 50; following: 100).
        #[arg(long)]
        tail: Option<usize>,
    },
    /// A container's lifecycle history.
    #[command(after_help = "Example:\n  berth events web")]
    Events { name: String },
    /// A container's CPU, memory and disk use now.
    #[command(after_help = "Example:\n  berth metrics web")]
    Metrics { name: String },
    /// Your SSH keys.
    #[command(
        subcommand,
        after_help = "Example:\n  berth keys add ~/.ssh/id_ed25519.pub"
    )]
    Keys(KeysCmd),
    /// A container's ingress rules (80/443 by name, 8000–8999 forwards).
    #[command(subcommand, after_help = "Example:\n  berth ingress add web 8080:80")]
    Ingress(IngressCmd),
    /// A container's persistent mount paths (`--set` replaces them).
    #[command(after_help = "Example:\n  berth mounts web --set /data /srv")]
    Mounts {
        name: String,
        #[arg(long = "set", num_args = 0..)]
        set: Option<Vec<String>>,
    },
    /// Turn SSH access to a container on or off.
    #[command(after_help = "Example:\n  berth ssh-access on web")]
    SshAccess { state: OnOff, name: String },
    /// Images a container may use.
    #[command(after_help = "Example:\n  berth images")]
    Images,
    /// What you use of your quota.
    #[command(after_help = "Example:\n  berth quota")]
    Quota,
    /// Your volumes: data that outlives its container (one host, one container at a time).
    #[command(
        subcommand,
        after_help = "Example:\n  berth volumes create pgdata --size 10\n  berth create db --volume pgdata:/data"
    )]
    Volumes(VolumesCmd),
    /// Operators: the fleet's hosts.
    #[command(subcommand, after_help = "Example:\n  berth hosts cordon edge-7")]
    Hosts(HostsCmd),
    /// Shell completions.
    #[command(after_help = "Example:\n  berth completions bash > /etc/bash_completion.d/berth")]
    Completions { shell: clap_complete::Shell },
}

#[derive(Args)]
pub struct CreateArgs {
    pub name: String,
    /// Instance type (see the catalog; default: the coordinator's).
    #[arg(long = "type")]
    pub instance_type: Option<String>,
    #[arg(long)]
    pub image: Option<String>,
    /// SSH keys by name or id (default: all yours).
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// Environment, `K=V`.
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// Ports the container listens on.
    #[arg(long = "port")]
    pub ports: Vec<u16>,
    /// Memory in MB.
    #[arg(long)]
    pub memory: Option<u64>,
    /// Disk in GB.
    #[arg(long)]
    pub storage: Option<u64>,
    /// Persistent mount paths.
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// A volume (name or id) at PATH; without `:PATH`, at `/mnt/<volume name>`.
    #[arg(long = "volume", value_name = "VOL[:PATH]")]
    pub volumes: Vec<String>,
    #[arg(long)]
    pub region: Option<String>,
    /// `runc` or `gvisor`.
    #[arg(long)]
    pub runtime: Option<String>,
    /// Turn SSH access on (`berth ssh NAME`).
    #[arg(long)]
    pub ssh: bool,
    /// Restart policy `MODE[:MAX_RETRIES]`: no, on-failure or always (the default, no limit).
    #[arg(long, value_name = "MODE[:N]")]
    pub restart: Option<String>,
    /// Health check: `http:PORT[/PATH]`, `tcp:PORT` or `exec:COMMAND ARGS…`.
    #[arg(long, value_name = "CHECK")]
    pub health: Option<String>,
    /// Between health checks (default 10s).
    #[arg(long, requires = "health")]
    pub health_interval: Option<String>,
    /// After a start, health-check failures do not count for this long (default 30s).
    #[arg(long, requires = "health")]
    pub health_grace: Option<String>,
    /// Answer once it is created, without waiting for it to run.
    #[arg(long, short)]
    pub detach: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Subcommand)]
pub enum KeysCmd {
    Ls,
    /// Add a public key from a file (`~/.ssh/id_ed25519.pub`).
    Add {
        file: String,
        /// Its name (default: the key's comment, else the file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a key (by name or id): it is revoked from every container.
    Rm {
        key: String,
    },
}

#[derive(Subcommand)]
pub enum IngressCmd {
    Ls {
        name: String,
    },
    /// `PORT[:TARGET]`: 80 or 443 by the container's hostname, 8000–8999 forwarded.
    Add {
        name: String,
        port: String,
    },
    Rm {
        name: String,
        port: u16,
    },
}

#[derive(Subcommand)]
pub enum VolumesCmd {
    Ls,
    /// A new volume of SIZE GB, on a host of REGION (or HOST).
    Create {
        name: String,
        #[arg(long, value_name = "GB")]
        size: u64,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        host: Option<String>,
    },
    /// Grow a volume (never shrinks; its container is re-created, data kept) or rename it.
    Set {
        volume: String,
        #[arg(long, value_name = "GB")]
        size: Option<u64>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a volume with its data (refused while a container has it).
    Rm {
        volume: String,
    },
    /// Attach a volume to a container at PATH (a running one is re-created).
    Attach {
        container: String,
        volume: String,
        #[arg(long, value_name = "PATH")]
        at: String,
    },
    /// Detach a volume from a container; the volume and its data are kept.
    Detach {
        container: String,
        volume: String,
    },
}

#[derive(Subcommand)]
pub enum HostsCmd {
    Ls,
    Cordon { host_key: String },
    Uncordon { host_key: String },
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
