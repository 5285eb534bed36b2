//! Coordinator configuration: `--config /etc/berth/coordinator.toml`, then
//! `BERTH_COORDINATOR__SECTION__KEY` environment overrides, validated at load.
//! `coordinator.example.toml` at the repository root documents every key.

use berth_service::config::ConfigFile;
use berth_shared::catalog::Catalog;
use berth_shared::time::serde_duration;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const ENV_PREFIX: &str = "BERTH_COORDINATOR";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub api: ApiConfig,
    pub link: LinkConfig,
    pub store: StoreConfig,
    pub auth: AuthConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default = "Catalog::seed")]
    pub catalog: Catalog,
    #[serde(default)]
    pub images: ImagesConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub console: crate::console::ConsoleConfig,
}

/// Prometheus `/metrics`, on its own address (off when `listen` is not set).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Where the REST API listens, e.g. `127.0.0.1:8080` (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Containers are `<id>.<domain>`.
    pub domain: String,
    /// How long `POST …/stop` waits for the agent to report `stopped` before answering.
    #[serde(default = "default_stop_wait", with = "serde_duration")]
    pub stop_wait: Duration,
    /// Each request's headers must arrive within this long (idle connections close after it).
    #[serde(default = "default_header_timeout", with = "serde_duration")]
    pub header_timeout: Duration,
    /// Connections served at once, in all.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections served at once from one client address.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Requests per second each user may make, on average (0: no limit). Operators
    /// (`compute.admin`) are not limited.
    #[serde(default = "default_rate_limit")]
    pub rate_limit: f64,
    /// Requests a user may make at once above the average.
    #[serde(default = "default_rate_burst")]
    pub rate_burst: u32,
    /// How long `Idempotency-Key` answers are kept.
    #[serde(default = "default_idempotency_ttl", with = "serde_duration")]
    pub idempotency_ttl: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// UDP address of the QUIC endpoint agents dial.
    pub listen: SocketAddr,
    pub ca_cert: PathBuf,
    /// Signs agent certificates: `tls issue-agent`, enrollment and renewal over the link.
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Names written into the coordinator certificate by `tls init`.
    #[serde(default = "default_server_names")]
    pub server_names: Vec<String>,
    /// A host is unreachable after this long without a heartbeat.
    #[serde(default = "default_grace", with = "serde_duration")]
    pub heartbeat_grace: Duration,
    #[serde(default = "default_heartbeat", with = "serde_duration")]
    pub heartbeat_interval: Duration,
    /// Lifetime of the agent certificates this coordinator signs. Agents renew theirs over the
    /// link when a third of it is left.
    #[serde(default = "default_agent_cert_validity", with = "serde_duration")]
    pub agent_cert_validity: Duration,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sled` (embedded, the default) or `postgres` (several coordinators on one database).
    #[serde(default)]
    pub backend: StoreBackend,
    /// sled: directory of the database.
    pub path: Option<PathBuf>,
    /// postgres: `postgres://user:password@host:port/database` (or key=value pairs).
    pub url: Option<String>,
    /// postgres: connections this coordinator keeps open at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// postgres: how long a store call may wait for a connection or an answer before the
    /// API answers 503.
    #[serde(default = "default_store_timeout", with = "serde_duration")]
    pub timeout: Duration,
}

/// The URL may carry a password: it is never printed.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("backend", &self.backend)
            .field("path", &self.path)
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    #[default]
    Sled,
    Postgres,
}

impl StoreConfig {
    fn validate(&self) -> Result<(), String> {
        match self.backend {
            StoreBackend::Sled if self.path.is_none() => {
                Err("[store] backend \"sled\" needs `path`, the database directory".into())
            }
            StoreBackend::Postgres => {
                let Some(url) = &self.url else {
                    return Err("[store] backend \"postgres\" needs `url`".into());
                };
                url.parse::<tokio_postgres::Config>()
                    .map_err(|e| format!("[store] url is not a PostgreSQL address: {e}"))?;
                if self.pool_size == 0 || self.pool_size > 1024 {
                    return Err("[store] pool_size must be from 1 to 1024".into());
                }
                if self.timeout < Duration::from_millis(100) {
                    return Err("[store] timeout must be at least 100ms".into());
                }
                Ok(())
            }
            StoreBackend::Sled => Ok(()),
        }
    }
}

fn default_pool_size() -> usize {
    16
}

fn default_store_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    EdDSA,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default = "default_alg")]
    pub algorithm: JwtAlgorithm,
    /// HS256 shared secret (at least 32 bytes), inline or in a file.
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// RS256/EdDSA: PEM public key that verifies tokens.
    pub public_key_file: Option<PathBuf>,
    /// RS256/EdDSA: PEM private key, only for `berth-coordinator token`.
    pub private_key_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Cookie that may carry the token instead of the Authorization header.
    #[serde(default = "default_cookie")]
    pub cookie_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_containers: u64,
    pub max_ssh_keys: u64,
    /// Volumes per user; each volume's size counts against `max_total_storage_gb`.
    pub max_volumes: u64,
    pub default_memory_mb: u64,
    pub default_storage_gb: u64,
    pub min_memory_mb: u64,
    pub max_memory_mb: u64,
    pub min_storage_gb: u64,
    pub max_storage_gb: u64,
    /// Totals over all of a user's containers.
    pub max_total_cpu_millis: u64,
    pub max_total_memory_mb: u64,
    pub max_total_storage_gb: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_containers: 3,
            max_ssh_keys: 10,
            max_volumes: 5,
            default_memory_mb: 512,
            default_storage_gb: 5,
            min_memory_mb: 64,
            max_memory_mb: 16384,
            min_storage_gb: 1,
            max_storage_gb: 100,
            max_total_cpu_millis: 12_000,
            max_total_memory_mb: 49_152,
            max_total_storage_gb: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinImage {
    pub name: String,
    pub image: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    /// The image a container gets when `image` is omitted.
    pub default: String,
    #[serde(default)]
    pub builtin: Vec<BuiltinImage>,
    /// A registry (distribution v2, `http://host:port`) whose images users may run as
    /// `host:port/<repo>:<tag>`: the short form of one insecure `[[images.registries]]`.
    #[serde(default)]
    pub registry: Option<String>,
    /// Registries whose images users may run as `host[:port]/<repo>[:<tag>|@<digest>]`.
    #[serde(default)]
    pub registries: Vec<RegistryConfig>,
}

/// One registry: where, how it is trusted, who Berth is to it, what it lists.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `https://host[:port]`; `http://host:port` only with `insecure = true`.
    pub url: String,
    #[serde(default)]
    pub insecure: bool,
    /// PEM CA certificates its TLS certificate is checked against, besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    /// The password (or token); `password_file` keeps it out of the config file.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Repositories to list when the registry offers no catalog (or to list only these).
    #[serde(default)]
    pub repositories: Vec<String>,
}

impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("url", &self.url)
            .field("insecure", &self.insecure)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("password_file", &self.password_file)
            .field("repositories", &self.repositories)
            .finish()
    }
}

/// A configured registry, its files read: how agents reach it, and what to list.
#[derive(Debug, Clone)]
pub struct RegistrySetup {
    pub access: berth_shared::images::RegistryAccess,
    pub repositories: Vec<String>,
}

impl ImagesConfig {
    /// Every configured registry with its CA and password files read; an error names the
    /// registry and what is wrong.
    pub fn registry_setups(&self) -> Result<Vec<RegistrySetup>, String> {
        let short = self.registry.iter().map(|url| RegistryConfig {
            url: url.clone(),
            insecure: url.starts_with("http://"),
            ca_file: None,
            username: None,
            password: None,
            password_file: None,
            repositories: Vec::new(),
        });
        let mut out: Vec<RegistrySetup> = Vec::new();
        for r in short.chain(self.registries.iter().cloned()) {
            let what = format!("[[images.registries]] {}", r.url);
            let Some(authority) = berth_shared::images::registry_authority(&r.url) else {
                return Err(format!("{what}: url must look like https://host[:port]"));
            };
            if r.url.starts_with("http://") && !r.insecure {
                return Err(format!("{what}: plain HTTP needs insecure = true"));
            }
            if out.iter().any(|o| o.access.authority() == Some(authority)) {
                return Err(format!("{what}: listed twice"));
            }
            let ca_pem = match &r.ca_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| format!("{what}: ca_file {}: {e}", p.display()))?,
                ),
                None => None,
            };
            let password = match (&r.password, &r.password_file) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{what}: password and password_file exclude each other"
                    ))
                }
                (Some(p), None) => Some(p.clone()),
                (None, Some(f)) => Some(
                    std::fs::read_to_string(f)
                        .map_err(|e| format!("{what}: password_file {}: {e}", f.display()))?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                ),
                (None, None) => None,
            };
            let credentials = match (r.username, password) {
                (Some(username), Some(password)) => {
                    Some(berth_shared::images::Credentials { username, password })
                }
                (None, None) => None,
                _ => return Err(format!("{what}: username and a password go together")),
            };
            out.push(RegistrySetup {
                access: berth_shared::images::RegistryAccess {
                    url: r.url.trim_end_matches('/').to_string(),
                    insecure: r.insecure,
                    ca_pem,
                    credentials,
                },
                repositories: r.repositories,
            });
        }
        Ok(out)
    }
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            default: "berth.local/base:latest".into(),
            builtin: vec![BuiltinImage {
                name: "Berth base (busybox)".into(),
                image: "berth.local/base:latest".into(),
            }],
            registry: None,
            registries: Vec::new(),
        }
    }
}

fn default_stop_wait() -> Duration {
    Duration::from_secs(20)
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_connections() -> usize {
    4096
}
fn default_max_connections_per_ip() -> usize {
    256
}
fn default_rate_limit() -> f64 {
    20.0
}
fn default_rate_burst() -> u32 {
    100
}
fn default_idempotency_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_server_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}
fn default_grace() -> Duration {
    Duration::from_secs(15)
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(5)
}
fn default_agent_cert_validity() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn default_alg() -> JwtAlgorithm {
    JwtAlgorithm::HS256
}
fn default_leeway() -> u64 {
    30
}
fn default_cookie() -> String {
    "berth_token".into()
}

impl ConfigFile for Config {
    const ENV_PREFIX: &'static str = ENV_PREFIX;

    fn validate(&self) -> Result<(), String> {
        self.catalog.validate().map_err(|e| e.to_string())?;
        self.console.validate()?;
        let api = &self.api;
        if api.max_connections == 0 || api.max_connections_per_ip == 0 {
            return Err(
                "[api] max_connections and max_connections_per_ip must be at least 1".into(),
            );
        }
        if !api.rate_limit.is_finite() || api.rate_limit < 0.0 {
            return Err(
                "[api] rate_limit must be a number of requests per second, 0 or more".into(),
            );
        }
        if api.rate_limit > 0.0 && api.rate_burst == 0 {
            return Err("[api] rate_burst must be at least 1 when rate_limit is on".into());
        }
        if api.idempotency_ttl.is_zero() {
            return Err("[api] idempotency_ttl must be more than 0".into());
        }
        if api.header_timeout.is_zero() {
            return Err("[api] header_timeout must be longer than 0s".into());
        }
        self.store.validate()?;
        let a = &self.auth;
        match a.algorithm {
            JwtAlgorithm::HS256 => {
                if a.secret.is_none() == a.secret_file.is_none() {
                    return Err(
                        "[auth] HS256 needs exactly one of `secret` or `secret_file`".into(),
                    );
                }
                if a.secret.as_ref().is_some_and(|s| s.len() < 32) {
                    return Err("[auth] secret must be at least 32 bytes".into());
                }
            }
            JwtAlgorithm::RS256 | JwtAlgorithm::EdDSA => {
                if a.public_key_file.is_none() {
                    return Err("[auth] RS256/EdDSA need `public_key_file`".into());
                }
            }
        }
        let l = &self.limits;
        if l.min_memory_mb > l.default_memory_mb || l.default_memory_mb > l.max_memory_mb {
            return Err("[limits] need min_memory_mb <= default_memory_mb <= max_memory_mb".into());
        }
        if l.min_storage_gb > l.default_storage_gb || l.default_storage_gb > l.max_storage_gb {
            return Err(
                "[limits] need min_storage_gb <= default_storage_gb <= max_storage_gb".into(),
            );
        }
        if self.api.domain.is_empty() || self.api.domain.contains('/') {
            return Err("[api] domain must be a DNS name".into());
        }
        if self.link.heartbeat_grace <= self.link.heartbeat_interval {
            return Err("[link] heartbeat_grace must exceed heartbeat_interval".into());
        }
        if self.link.agent_cert_validity < Duration::from_secs(10) {
            return Err("[link] agent_cert_validity must be at least 10s".into());
        }
        if !self
            .images
            .builtin
            .iter()
            .any(|b| b.image == self.images.default)
        {
            return Err("[images] default must be one of the builtin images".into());
        }
        if let Some(r) = &self.images.registry {
            if !r.starts_with("http://") || berth_shared::images::registry_authority(r).is_none() {
                return Err("[images] registry must look like http://host:port".into());
            }
        }
        self.images.registry_setups()?;
        Ok(())
    }
}
