//! The agent's SSH server (russh): `ssh -p 2222 <container>@<host>` opens a shell or runs a
//! command inside the container through containerd's exec API, so images need no sshd.
//!
//! Authentication is by public key only, against the keys in the container's spec (see
//! [`auth`]). The host key is generated once and kept under the data dir. Connections come
//! from a [`Listener`]: accept errors back off, at most [`MAX_CONNECTIONS`] run at once and
//! [`MAX_CONNECTIONS_PER_IP`] from one address; a client that sends no banner within
//! `[ssh] banner_timeout`, or does not log in within `login_grace`, is disconnected.
//! `ssh -L` reaches ports of the container itself ([`forward`]); `-R` is refused.

pub mod auth;
mod forward;
mod handler;
mod session;

use crate::runtime::Runtime;
use crate::state::State;
use berth_service::listener::{Connection, Listener};
use russh::keys::ssh_key::{private::Ed25519Keypair, LineEnding};
use russh::keys::PrivateKey;
use russh::server::Server as _;
use russh::{Disconnect, MethodKind, MethodSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// SSH connections served at once (each may hold exec processes and FIFOs); further clients
/// wait in the kernel's backlog until one ends.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections at once from one client address: one client cannot take every place.
pub const MAX_CONNECTIONS_PER_IP: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("SSH host key {path}: {source}")]
    HostKeyIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("SSH host key {path}: {message}")]
    HostKey { path: PathBuf, message: String },
    #[error("SSH listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every SSH connection needs.
pub struct Shared {
    pub state: State,
    pub rt: Runtime,
    /// Where exec FIFOs live.
    pub run_dir: PathBuf,
    /// Where containers' network namespaces are; `None` when they have none of their own
    /// (then no port is forwarded).
    pub netns_dir: Option<PathBuf>,
}

/// Loads the persisted ed25519 host key, creating it (mode 0600) on first start.
pub fn host_key(path: &Path) -> Result<PrivateKey, SshError> {
    let bad = |message: String| SshError::HostKey {
        path: path.to_path_buf(),
        message,
    };
    let io = |source| SshError::HostKeyIo {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => PrivateKey::from_openssh(pem).map_err(|e| bad(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            aws_lc_rs::rand::fill(&mut seed).map_err(|_| bad("no randomness".into()))?;
            let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
            let pem = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| bad(e.to_string()))?;
            // Written whole under a temporary name, then renamed: a crash never leaves half a key.
            let tmp = path.with_extension("tmp");
            {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(io)?;
                f.write_all(pem.as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
            }
            std::fs::rename(&tmp, path).map_err(io)?;
            tracing::info!(path = %path.display(), "generated the SSH host key");
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// The stream for the session and a clone of its socket that can shut it down.
fn split_off_closer(
    stream: tokio::net::TcpStream,
) -> std::io::Result<(tokio::net::TcpStream, std::net::TcpStream)> {
    let std = stream.into_std()?;
    let closer = std.try_clone()?;
    Ok((tokio::net::TcpStream::from_std(std)?, closer))
}

/// A bound SSH server, ready to [`SshServer::serve`].
pub struct SshServer {
    listener: Listener,
    banner_timeout: Duration,
    login_grace: Duration,
    config: Arc<russh::server::Config>,
    shared: Arc<Shared>,
}

impl SshServer {
    pub async fn bind(
        cfg: &crate::config::SshConfig,
        key: PrivateKey,
        shared: Shared,
    ) -> Result<SshServer, SshError> {
        let addr = cfg.listen;
        let listener = Listener::bind(addr, MAX_CONNECTIONS)
            .await
            .map_err(|source| SshError::Bind { addr, source })?
            .per_peer(MAX_CONNECTIONS_PER_IP);
        let config = russh::server::Config {
            server_id: russh::SshId::Standard(
                format!("SSH-2.0-berth_{}", env!("CARGO_PKG_VERSION")).into(),
            ),
            methods: MethodSet::from(&[MethodKind::PublicKey][..]),
            auth_rejection_time: Duration::from_millis(300),
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![key],
            inactivity_timeout: Some(Duration::from_secs(3600)),
            keepalive_interval: Some(Duration::from_secs(30)),
            nodelay: true,
            ..Default::default()
        };
        Ok(SshServer {
            listener,
            banner_timeout: cfg.banner_timeout,
            login_grace: cfg.login_grace,
            config: Arc::new(config),
            shared: Arc::new(shared),
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until the task is dropped or aborted; then every session is disconnected.
    pub async fn serve(self) {
        let mut factory = handler::Factory {
            shared: self.shared,
        };
        // Sessions watch this; it closes when the task ends.
        let (_serving, stopped) = tokio::sync::watch::channel(());
        loop {
            let Connection {
                stream,
                peer,
                permit,
            } = self.listener.accept().await;
            let handler = factory.new_client(Some(peer));
            let authenticated = handler.authenticated.clone();
            let config = self.config.clone();
            let mut stopped = stopped.clone();
            let (banner_timeout, login_grace) = (self.banner_timeout, self.login_grace);
            tokio::spawn(async move {
                let _permit = permit;
                let _ = stream.set_nodelay(true);
                // A second handle on the socket: russh runs the session in a task of its own
                // and cannot disconnect before key exchange, so closing is done here.
                let (stream, socket) = match split_off_closer(stream) {
                    Ok(pair) => pair,
                    Err(e) => return tracing::debug!(%peer, error = %e, "SSH connection lost"),
                };
                let started = russh::server::run_stream(config, stream, handler);
                let session = match tokio::time::timeout(banner_timeout, started).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return handler::session_ended(e),
                    Err(_) => {
                        return tracing::debug!(%peer, "SSH connection closed: no banner in time")
                    }
                };
                let handle = session.handle();
                let unauthenticated = async {
                    tokio::time::sleep(login_grace).await;
                    if authenticated.load(std::sync::atomic::Ordering::Relaxed) {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    _ = stopped.changed() => {
                        let _ = handle
                            .disconnect(Disconnect::ByApplication, String::new(), String::new())
                            .await;
                    }
                    () = unauthenticated => {
                        tracing::debug!(%peer, "SSH connection closed: no login within the grace time");
                    }
                    result = session => {
                        if let Err(e) = result {
                            handler::session_ended(e);
                        }
                        return;
                    }
                }
                let _ = socket.shutdown(std::net::Shutdown::Both);
            });
        }
    }
}
