//! Agent configuration: `--config /etc/berth/agent.toml`, then `BERTH_AGENT__SECTION__KEY`
//! environment overrides, validated at load. `agent.example.toml` documents every key.

use berth_service::config::ConfigFile;
use berth_shared::catalog::Arch;
use berth_shared::protocol::Runtime;
use berth_shared::time::serde_duration;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

pub const ENV_PREFIX: &str = "BERTH_AGENT";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This host's key: a DNS label, and the name in its certificate.
    pub host_key: String,
    pub region: String,
    /// Defaults to the architecture the agent was built for.
    pub arch: Option<Arch>,
    /// Where the agent keeps its sled database, volumes and logs.
    pub data_dir: PathBuf,
    #[serde(default)]
    pub capacity: CapacityConfig,
    #[serde(default)]
    pub containerd: ContainerdConfig,
    pub coordinator: CoordinatorConfig,
    /// SIGTERM, then SIGKILL after this long.
    #[serde(default = "default_stop_grace", with = "serde_duration")]
    pub stop_grace: Duration,
    /// How often every container is checked against its desired state.
    #[serde(default = "default_reconcile", with = "serde_duration")]
    pub reconcile_interval: Duration,
    /// A container the coordinator disowned (it holds no record of it on this host) is torn
    /// down, volume and log included, this long after the first disown, unless claimed again.
    #[serde(default = "default_orphan_grace", with = "serde_duration")]
    pub orphan_grace: Duration,
    /// A static init (tini) bind-mounted read-only into every container as PID 1.
    #[serde(default = "default_init")]
    pub init_binary: PathBuf,
    #[serde(default)]
    pub ssh: SshConfig,
    #[serde(default)]
    pub logs: LogsConfig,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub ingress: IngressConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub images: ImagesConfig,
    #[serde(default)]
    pub runtimes: RuntimesConfig,
}

/// OCI runtimes beside runc that containers may ask for (`"runtime"` on create); a host
/// offers in its heartbeat only those set here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimesConfig {
    /// gVisor's `runsc` (Debian package `runsc`: `/usr/bin/runsc`), run by containerd's runc
    /// shim in place of runc for `"runtime": "gvisor"` containers.
    pub gvisor: Option<PathBuf>,
}

impl RuntimesConfig {
    /// What this host offers: runc always, and gVisor when configured.
    pub fn offered(&self) -> Vec<Runtime> {
        let mut r = vec![Runtime::Runc];
        if self.gvisor.is_some() {
            r.push(Runtime::Gvisor);
        }
        r
    }

    fn validate(&self) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let Some(p) = &self.gvisor else {
            return Ok(());
        };
        let hint = "(Debian package `runsc` installs /usr/bin/runsc)";
        if !p.is_absolute() {
            return Err(format!(
                "[runtimes] gvisor {p:?} must be an absolute path {hint}"
            ));
        }
        let meta = std::fs::metadata(p)
            .map_err(|e| format!("[runtimes] gvisor {}: {e} {hint}", p.display()))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "[runtimes] gvisor {} is not an executable file {hint}",
                p.display()
            ));
        }
        Ok(())
    }
}

/// Prometheus `/metrics`, on its own address (off when `listen` is not set).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Registries (base URLs, `http://host:port`) this agent pulls images from when a
    /// container's image is not in containerd yet; references name them by `host:port`.
    pub registries: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub listen: Option<std::net::SocketAddr>,
}

/// The shared 80/443 ingress of this host: `<id>.<domain>` → the container's rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressConfig {
    /// The coordinator's API `domain`; without it the gateway is off.
    pub domain: Option<String>,
    /// e.g. `0.0.0.0:80`; omitted: no HTTP gateway.
    pub http_listen: Option<std::net::SocketAddr>,
    /// e.g. `0.0.0.0:443`; needs `tls_cert` and `tls_key` (a `*.<domain>` certificate:
    /// `berth-coordinator tls issue-ingress --out DIR` makes one signed by the cluster CA).
    pub https_listen: Option<std::net::SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// Containers' networking: a namespace each, on `bridge`, addressed from `subnet`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    pub enabled: bool,
    /// Linux bridge name (at most 15 characters).
    pub bridge: String,
    pub subnet: String,
    /// Where the CNI plugins are (Debian's `containernetworking-plugins`).
    pub cni_bin_dir: PathBuf,
    /// Where the containers' named network namespaces are mounted.
    pub netns_dir: PathBuf,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            enabled: true,
            bridge: "berth0".into(),
            subnet: "10.89.0.0/24".into(),
            cni_bin_dir: "/usr/lib/cni".into(),
            netns_dir: "/run/berth/netns".into(),
        }
    }
}

/// Containers' stdout/stderr, stamped line by line by the log driver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Disk kept per container (the current file plus one rotated file).
    pub max_bytes: u64,
    /// The log driver binary containerd's shim starts per task; defaults to this agent binary.
    pub driver: Option<PathBuf>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            max_bytes: 10 * 1024 * 1024,
            driver: None,
        }
    }
}

/// The agent's SSH server: `ssh -p <port> <container id or name>@<public_address>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    /// A client must send its SSH banner within this long of connecting…
    #[serde(with = "serde_duration")]
    pub banner_timeout: Duration,
    /// …and log in within this long (sshd's `LoginGraceTime`).
    #[serde(with = "serde_duration")]
    pub login_grace: Duration,
    pub enabled: bool,
    pub listen: std::net::SocketAddr,
    /// The host name or address users reach this host at; shown in `ssh_command`.
    pub public_address: Option<String>,
    /// The port users reach the SSH server at, if a NAT changes it. Defaults to the listen port.
    pub public_port: Option<u16>,
    /// The static `berth-sftp-server` bind-mounted read-only into containers (at
    /// `/.berth/sftp-server`) for the `sftp` subsystem (scp, sftp); containers created while
    /// it is missing have no SFTP.
    pub sftp_server: std::path::PathBuf,
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            enabled: true,
            listen: ([0, 0, 0, 0], 2222).into(),
            public_address: None,
            public_port: None,
            banner_timeout: Duration::from_secs(10),
            login_grace: Duration::from_secs(60),
            sftp_server: "/usr/lib/berth/berth-sftp-server".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityConfig {
    /// Defaults: all CPUs, all memory less 512 MB, 100 GB disk.
    pub cpu_millis: Option<u64>,
    pub memory_mb: Option<u64>,
    pub disk_gb: Option<u64>,
    /// CPU placement may promise per physical CPU (a container's CPU is a cgroup limit, not a
    /// reservation): default 4.0.
    pub cpu_overcommit: Option<f64>,
    /// Memory placement may promise per MB there is: default 1.0 (memory is not overcommitted).
    pub memory_overcommit: Option<f64>,
}

impl CapacityConfig {
    pub const DEFAULT_CPU_OVERCOMMIT: f64 = 4.0;

    pub fn cpu_factor(&self) -> f64 {
        self.cpu_overcommit.unwrap_or(Self::DEFAULT_CPU_OVERCOMMIT)
    }

    pub fn memory_factor(&self) -> f64 {
        self.memory_overcommit.unwrap_or(1.0)
    }

    fn validate(&self) -> Result<(), String> {
        for (name, f) in [
            ("cpu_overcommit", self.cpu_factor()),
            ("memory_overcommit", self.memory_factor()),
        ] {
            if !f.is_finite() || !(1.0..=64.0).contains(&f) {
                return Err(format!(
                    "[capacity] {name} must be a number from 1.0 to 64.0, not {f}"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerdConfig {
    pub socket: PathBuf,
    pub namespace: String,
    pub snapshotter: String,
    pub runtime: String,
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        ContainerdConfig {
            socket: "/run/containerd/containerd.sock".into(),
            namespace: "berth".into(),
            snapshotter: "overlayfs".into(),
            runtime: "io.containerd.runc.v2".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// `host:port` of the coordinator's QUIC endpoint (one coordinator).
    #[serde(default)]
    pub address: Option<String>,
    /// Every coordinator's `host:port` (several coordinators on one PostgreSQL): the agent
    /// keeps a link to each, so any of them reaches it and losing one loses nothing.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Name the coordinator's certificate must carry.
    pub server_name: String,
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A one-time join token (`berth-coordinator enroll --host-key KEY`): when `cert` does not
    /// exist yet, the agent makes its key, trades the token for its certificate at
    /// `enroll_url` and writes `key` (0600), `cert` and `ca_cert`.
    #[serde(default)]
    pub enroll_token: Option<String>,
    /// The coordinator's API, e.g. `http://coordinator.example.com:8080`.
    #[serde(default)]
    pub enroll_url: Option<String>,
}

impl CoordinatorConfig {
    /// The coordinators to keep a link to (`addresses`, or the one `address`).
    pub fn endpoints(&self) -> Vec<String> {
        match &self.address {
            Some(a) if self.addresses.is_empty() => vec![a.clone()],
            _ => self.addresses.clone(),
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.address.is_some() != self.addresses.is_empty() {
            return Err(
                "[coordinator] needs exactly one of `address` or `addresses` (a list)".into(),
            );
        }
        let all = self.endpoints();
        if all.iter().any(|a| a.trim().is_empty()) {
            return Err("[coordinator] addresses must not be empty".into());
        }
        let unique: std::collections::BTreeSet<&String> = all.iter().collect();
        if unique.len() != all.len() {
            return Err("[coordinator] addresses lists a coordinator twice".into());
        }
        Ok(())
    }
}

fn default_stop_grace() -> Duration {
    Duration::from_secs(10)
}
fn default_reconcile() -> Duration {
    Duration::from_secs(15)
}
fn default_orphan_grace() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_init() -> PathBuf {
    "/usr/bin/tini-static".into()
}

impl ConfigFile for Config {
    const ENV_PREFIX: &'static str = ENV_PREFIX;

    fn validate(&self) -> Result<(), String> {
        self.capacity.validate()?;
        self.coordinator.validate()?;
        if !berth_shared::ids::is_host_key(&self.host_key) {
            return Err(format!(
                "host_key {:?} must be a DNS label (a-z, 0-9, '-')",
                self.host_key
            ));
        }
        if self.region.is_empty() {
            return Err("region must not be empty".into());
        }
        if self.arch.or_else(Arch::native).is_none() {
            return Err("arch is not set and cannot be detected".into());
        }
        if !self.data_dir.is_absolute() {
            return Err("data_dir must be an absolute path".into());
        }
        if self.network.enabled {
            crate::subnet::Subnet::parse(&self.network.subnet)
                .map_err(|e| format!("[network] subnet: {e}"))?;
            let b = &self.network.bridge;
            if b.is_empty()
                || b.len() > 15
                || !b.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err("[network] bridge must be 1-15 characters of a-z, 0-9, '-'".into());
            }
        }
        if self.ingress.https_listen.is_some()
            && (self.ingress.tls_cert.is_none() || self.ingress.tls_key.is_none())
        {
            return Err("[ingress] https_listen needs tls_cert and tls_key".into());
        }
        if self.logs.max_bytes < 64 * 1024 {
            return Err("[logs] max_bytes must be at least 65536".into());
        }
        if self.containerd.namespace.is_empty() {
            return Err("[containerd] namespace must not be empty".into());
        }
        self.runtimes.validate()
    }
}

impl Config {
    pub fn arch(&self) -> Arch {
        self.arch.or_else(Arch::native).unwrap_or(Arch::Amd64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gvisor(path: &str) -> RuntimesConfig {
        RuntimesConfig {
            gvisor: Some(path.into()),
        }
    }

    fn coordinator(toml_text: &str) -> Result<CoordinatorConfig, String> {
        let base = "server_name = \"c\"\nca_cert = \"/ca\"\ncert = \"/c\"\nkey = \"/k\"\n";
        let c: CoordinatorConfig =
            toml::from_str(&format!("{base}{toml_text}")).map_err(|e| e.to_string())?;
        c.validate().map(|()| c)
    }

    #[test]
    fn one_address_or_a_list_of_distinct_ones() {
        let one = coordinator("address = \"a:7443\"").expect("one");
        assert_eq!(one.endpoints(), ["a:7443"]);
        let two = coordinator("addresses = [\"a:7443\", \"b:7443\"]").expect("two");
        assert_eq!(two.endpoints(), ["a:7443", "b:7443"]);
        for bad in [
            "",
            "addresses = []",
            "address = \"a:1\"\naddresses = [\"b:1\"]",
            "addresses = [\"a:1\", \"a:1\"]",
            "addresses = [\" \"]",
        ] {
            assert!(coordinator(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn overcommit_defaults_to_four_for_cpu_and_is_bounded() {
        let c = CapacityConfig::default();
        assert_eq!((c.cpu_factor(), c.memory_factor()), (4.0, 1.0));
        assert_eq!(c.validate(), Ok(()));
        for bad in [0.5, 65.0, f64::NAN] {
            let c = CapacityConfig {
                cpu_overcommit: Some(bad),
                ..CapacityConfig::default()
            };
            assert!(c.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn gvisor_is_offered_only_when_its_runsc_is_an_executable() {
        assert_eq!(RuntimesConfig::default().offered(), [Runtime::Runc]);
        assert_eq!(RuntimesConfig::default().validate(), Ok(()));
        let dir = std::env::temp_dir().join(format!("berth-runtimes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let exe = dir.join("runsc");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        let set = |mode| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };
        set(0o644);
        let cfg = gvisor(&exe.display().to_string());
        let err = cfg.validate().expect_err("not executable");
        assert!(err.contains("is not an executable file"), "{err}");
        set(0o755);
        assert_eq!(cfg.validate(), Ok(()));
        assert_eq!(cfg.offered(), [Runtime::Runc, Runtime::Gvisor]);
        let missing = gvisor(&dir.join("nope").display().to_string());
        let err = missing.validate().expect_err("missing");
        assert!(
            err.starts_with("[runtimes] gvisor ") && err.contains("/usr/bin/runsc"),
            "{err}"
        );
        let dir_itself = gvisor(&dir.display().to_string());
        assert!(dir_itself.validate().is_err());
        assert!(gvisor("runsc").validate().is_err(), "relative");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
