//! The agent<->coordinator protocol, version 1.
//!
//! Transport: one QUIC connection per agent, dialled by the agent, mutual TLS, ALPN `berth/1`.
//! - The agent opens one bidirectional *control* stream: it sends [`AgentMessage::Hello`]; the
//!   coordinator answers [`CoordinatorMessage::Welcome`] with the full desired set for the host;
//!   afterwards the agent sends heartbeats and status reports on it.
//! - The coordinator opens one bidirectional stream per [`Request`] and reads one [`Response`].
//!
//! Frames are a 4-byte big-endian length followed by that many bytes of JSON. Both sides are
//! idempotent: a spec carries a generation, and applying an older or equal one is a no-op.

use crate::api::ContainerStatus;
use crate::catalog::Arch;
use crate::images::{PullPolicy, RegistryAccess};
pub use crate::runtimes::Runtime;
use crate::upkeep::{Health, HealthCheck, RestartPolicy};
use crate::volumes::{VolumeMount, VolumeSpec};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const PROTOCOL_VERSION: u32 = 1;
pub const ALPN: &[u8] = b"berth/1";
/// Largest frame either side accepts.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Running,
    Stopped,
    Deleted,
}

/// Everything an agent needs to run one container. The generation grows with every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    /// The owner's name for it; also accepted as the SSH login.
    #[serde(default)]
    pub name: String,
    pub generation: u64,
    pub desired: DesiredState,
    pub image: String,
    pub cpu_millis: u32,
    pub memory_mb: u64,
    pub storage_gb: u64,
    pub mount_paths: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub ssh_enabled: bool,
    /// `authorized_keys` lines allowed into this container.
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    /// Container ports the image serves on.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Ingress rules: external port on this host → container port.
    #[serde(default)]
    pub ingress: Vec<IngressSpec>,
    /// Incremented by a reboot: the same spec, booted afresh.
    #[serde(default)]
    pub boot: u64,
    /// The OCI runtime the container runs under.
    #[serde(default)]
    pub runtime: Runtime,
    /// What an exit nobody asked for leads to (changing it re-creates nothing).
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// The agent's probe of the running container (changing it re-creates nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Volumes of this host it mounts, each made (or grown) before it starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeMount>,
    /// When the image is fetched from its registry (changing it re-creates nothing).
    #[serde(default, skip_serializing_if = "is_default_policy")]
    pub pull_policy: PullPolicy,
    /// The manifest digest the container was first made from, once its host reported it: the
    /// container is made from exactly that again, wherever its tag has moved since
    /// (changing it re-creates nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

fn is_default_policy(p: &PullPolicy) -> bool {
    *p == PullPolicy::IfNotPresent
}

fn runc_only() -> Vec<Runtime> {
    vec![Runtime::Runc]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressSpec {
    pub port: u16,
    pub target_port: u16,
}

/// What an agent observed about one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObservedState {
    Pending,
    Initializing,
    Running,
    Stopped,
    Failed,
    /// Exited; the restart policy restarts it after a backoff.
    Restarting,
    /// Everything of the container is gone from the host.
    Deleted,
}

impl ObservedState {
    /// The user-facing status; `None` for `Deleted`, which users never see.
    pub fn status(self) -> Option<ContainerStatus> {
        Some(match self {
            ObservedState::Pending => ContainerStatus::Pending,
            ObservedState::Initializing => ContainerStatus::Initializing,
            ObservedState::Running => ContainerStatus::Running,
            ObservedState::Stopped => ContainerStatus::Stopped,
            ObservedState::Failed => ContainerStatus::Failed,
            ObservedState::Restarting => ContainerStatus::Restarting,
            ObservedState::Deleted => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerReport {
    pub id: String,
    /// The spec generation this report is about.
    pub generation: u64,
    pub state: ObservedState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_used_gb: Option<f64>,
    /// Set on the `running` report after containerd had lost the container and the agent
    /// re-created it from its spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recreated: Option<bool>,
    /// With `recreated`: whether the container's volume data was still there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_preserved: Option<bool>,
    /// The container's address on its host's bridge, once it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The health check's verdict while it runs with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// What the restart policy has done on this host: restarts, and the last exit nobody
    /// asked for (status, unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<Restarts>,
    /// The digest of the image the container was made from (its registry's manifest digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Unix seconds when the agent observed this.
    pub at: u64,
}

/// A container's restart history on its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Restarts {
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit_at: Option<u64>,
}

impl ContainerReport {
    /// A report of `state` for one generation, observed now, saying nothing else.
    pub fn new(id: &str, generation: u64, state: ObservedState) -> ContainerReport {
        ContainerReport {
            id: id.to_string(),
            generation,
            state,
            reason: None,
            memory_used_mb: None,
            storage_used_gb: None,
            recreated: None,
            volume_preserved: None,
            address: None,
            health: None,
            restarts: None,
            image_digest: None,
            at: crate::time::now_unix().0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

/// The one place CPU, memory and disk are added, taken away and compared: placement, a
/// host's room for a resize and a user's quota totals all use these.
impl Resources {
    pub fn plus(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_mb: self.memory_mb.saturating_add(o.memory_mb),
            disk_gb: self.disk_gb.saturating_add(o.disk_gb),
        }
    }

    pub fn minus(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(o.cpu_millis),
            memory_mb: self.memory_mb.saturating_sub(o.memory_mb),
            disk_gb: self.disk_gb.saturating_sub(o.disk_gb),
        }
    }

    /// Every dimension at most `cap`'s.
    pub fn fits_in(&self, cap: &Resources) -> bool {
        self.exceeds(cap).is_none()
    }

    /// The first dimension above `cap`'s, as `(quota dimension name, amount, cap)`.
    pub fn exceeds(&self, cap: &Resources) -> Option<(&'static str, u64, u64)> {
        [
            ("cpu_millis", self.cpu_millis, cap.cpu_millis),
            ("memory_mb", self.memory_mb, cap.memory_mb),
            ("storage_gb", self.disk_gb, cap.disk_gb),
        ]
        .into_iter()
        .find(|(_, n, max)| n > max)
    }
}

impl std::iter::Sum for Resources {
    fn sum<I: Iterator<Item = Resources>>(iter: I) -> Resources {
        iter.fold(Resources::default(), Resources::plus)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub host_key: String,
    pub region: String,
    pub arch: Arch,
    /// The host's physical CPU, memory and disk (as configured).
    pub capacity: Resources,
    /// What placement may promise here: `capacity` with CPU and memory overcommitted by the
    /// host's factors (CPU is a cgroup limit, not a reservation). Agents before overcommit
    /// send none: then `capacity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeable: Option<Resources>,
    /// Address users reach this host at (for `ssh_command` and ingress), if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_port: Option<u16>,
    pub agent_version: String,
    /// The runtimes containers may ask for on this host (agents before gVisor: runc only).
    #[serde(default = "runc_only")]
    pub runtimes: Vec<Runtime>,
}

impl HostInfo {
    /// What placement may promise on this host.
    pub fn placeable(&self) -> Resources {
        self.placeable.unwrap_or(self.capacity)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    Hello {
        protocol: u32,
        host: HostInfo,
        inventory: Vec<ContainerReport>,
    },
    /// Sent every heartbeat interval: the host's current description and everything it holds.
    Heartbeat {
        host: HostInfo,
        inventory: Vec<ContainerReport>,
    },
    Status(ContainerReport),
    /// The agent's certificate nears its end: sign this new P-256 public key (uncompressed
    /// point) for the same host key. Answered by [`CoordinatorMessage::Renewed`] or
    /// [`CoordinatorMessage::RenewRefused`] on the control stream.
    Renew {
        public_key: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CoordinatorMessage {
    Welcome {
        protocol: u32,
        heartbeat_interval_ms: u64,
        specs: Vec<ContainerSpec>,
        /// How to reach the registries these specs pull from, credentials included: kept in
        /// memory by the agent, never written down.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        registries: Vec<RegistryAccess>,
    },
    Refused {
        reason: String,
    },
    /// The new certificate (PEM) for the key sent with [`AgentMessage::Renew`].
    Renewed {
        certificate: String,
    },
    RenewRefused {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
/// One request per stream, read once: the size of the largest variant costs nothing kept.
#[allow(clippy::large_enum_variant)]
pub enum Request {
    Apply(ContainerSpec),
    /// [`Request::Apply`] of a spec whose image comes from a registry that needs more than
    /// its URL (credentials, a CA): how to reach it, kept in memory only. Answer: as Apply's.
    ApplyWithRegistry {
        spec: ContainerSpec,
        registry: RegistryAccess,
    },
    /// Answer: [`Response::Streaming`], then frames of `Vec<LogLine>`: at most `tail` recent
    /// lines, then (with `follow`) new lines until the container stops or the stream is reset.
    Logs {
        id: String,
        tail: usize,
        follow: bool,
    },
    /// Answer: [`Response::Streaming`]; then the coordinator sends [`TerminalInput`] frames and
    /// the agent sends the terminal's output as raw bytes until the shell exits.
    Terminal {
        id: String,
        cols: u16,
        rows: u16,
    },
    /// Answer: [`Response::Metrics`].
    Metrics {
        id: String,
    },
    /// Runs a command to its end. Answer: [`Response::Streaming`], then one more `Response`
    /// when it is over: [`Response::Exited`] (also when killed at its timeout) or an error.
    /// A stream the coordinator drops kills the command.
    Exec(ExecCommand),
    /// The coordinator read its store and holds no record of container `id` on this host
    /// (deleted while the host never heard, or placed elsewhere). The agent tears it down,
    /// volume and log included, after its `orphan_grace`, unless an `Apply` claims it again.
    /// Answer: [`Response::Disowned`].
    Disown {
        id: String,
    },
    /// Makes the volume (or grows it, when no running container mounts it), or removes it
    /// with its data (`deleted`; refused while a container of this host mounts it). Answer:
    /// [`Response::Volume`].
    Volume(VolumeSpec),
}

/// A command for [`Request::Exec`]: argv, extra environment, all of stdin, and bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecCommand {
    pub id: String,
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, with = "b64")]
    pub stdin: Vec<u8>,
    /// The command is killed (SIGKILL) after this long.
    pub timeout_ms: u64,
    /// Bytes kept of stdout and of stderr each; the rest is read and dropped.
    pub max_output: usize,
}

/// How an [`ExecCommand`] ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    /// The exit status (128 + signal when killed).
    pub exit_code: u32,
    #[serde(with = "b64")]
    pub stdout: Vec<u8>,
    #[serde(with = "b64")]
    pub stderr: Vec<u8>,
    /// Output past `max_output` was dropped.
    pub truncated: bool,
    /// The command was killed at its timeout.
    pub timed_out: bool,
}

/// Bytes as base64 strings in frames (a third larger, where a JSON array is four times).
mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The spec is stored durably on the agent; `generation` is the one it now holds.
    Applied {
        id: String,
        generation: u64,
    },
    /// The request is accepted; what follows on the stream is described by the request.
    Streaming,
    NotRunning {
        message: String,
    },
    Metrics(ContainerMetrics),
    /// How an [`ExecCommand`] ended.
    Exited(ExecResult),
    /// The agent marked the container disowned; it goes at `removal_at_ms` (unix ms), or
    /// `None` when the agent holds no such container.
    Disowned {
        id: String,
        removal_at_ms: Option<u64>,
    },
    /// The volume is as asked: on the host with `used_bytes` in use (`None` once removed).
    Volume {
        id: String,
        used_bytes: Option<u64>,
    },
    Error {
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line a container wrote, stamped when the agent's log driver read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// RFC3339 with nanoseconds, UTC.
    pub timestamp: String,
    pub stream: LogStream,
    pub text: String,
}

/// Input for a terminal stream: keystrokes or a new window size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalInput {
    Data { data: Vec<u8> },
    Resize { cols: u16, rows: u16 },
}

/// A container's resource use, from its cgroup (seed `004`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ContainerMetrics {
    pub cpu_usage_percent: f64,
    pub memory_usage_bytes: u64,
    pub memory_total_bytes: u64,
    pub disk_read_bytes: u64,
    pub disk_write_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("stream I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("frame is not a valid message: {0}")]
    Decode(#[from] serde_json::Error),
}

pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` when the stream ended cleanly between frames.
pub async fn read_frame<R, T>(r: &mut R) -> Result<Option<T>, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(serde_json::from_slice(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let msg = Request::Apply(ContainerSpec {
            id: "abc12345".into(),
            name: "web".into(),
            generation: 3,
            desired: DesiredState::Running,
            image: "berth.local/base:latest".into(),
            cpu_millis: 500,
            memory_mb: 512,
            storage_gb: 5,
            mount_paths: vec!["/root".into()],
            env: BTreeMap::new(),
            ssh_enabled: false,
            ssh_authorized_keys: vec![],
            ports: vec![],
            ingress: vec![],
            boot: 0,
            runtime: Runtime::Gvisor,
            restart_policy: crate::upkeep::RestartPolicy {
                mode: crate::upkeep::RestartMode::OnFailure,
                max_retries: Some(3),
            },
            health_check: Some(crate::upkeep::HealthCheck {
                probe: crate::upkeep::Probe::Exec {
                    command: vec!["true".into()],
                },
                interval: std::time::Duration::from_secs(5),
                timeout: std::time::Duration::from_millis(500),
                failures: 2,
                grace: std::time::Duration::ZERO,
            }),
            volumes: vec![VolumeMount {
                id: "volab12cd34".into(),
                mount_path: "/data".into(),
                size_gb: 2,
            }],
            pull_policy: Default::default(),
            image_digest: None,
        });
        write_frame(&mut a, &msg).await.expect("write");
        drop(a);
        let got: Option<Request> = read_frame(&mut b).await.expect("read");
        assert_eq!(got, Some(msg));
        let end: Option<Request> = read_frame(&mut b).await.expect("eof");
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_allocation() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.expect("write");
        let r: Result<Option<Request>, _> = read_frame(&mut b).await;
        assert!(matches!(r, Err(FrameError::TooLarge(_))));
    }
}
