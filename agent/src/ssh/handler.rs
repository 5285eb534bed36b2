//! One russh handler per TCP connection: authenticates the login against the container's
//! keys, keeps the session channels it accepted, and hands each one to [`super::session`]
//! when the client asks for a shell or a command; `direct-tcpip` channels (`ssh -L`) go to
//! [`super::forward`].

use super::{auth, forward, session, Shared};
use crate::runtime::exec::{Command, ExecRequest};
use russh::server::{Auth, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(super) struct Factory {
    pub shared: Arc<Shared>,
}

impl russh::server::Server for Factory {
    type Handler = Connection;
    fn new_client(&mut self, peer: Option<SocketAddr>) -> Connection {
        Connection {
            shared: self.shared.clone(),
            peer,
            container: None,
            channels: HashMap::new(),
            authenticated: Arc::default(),
            forwards: Arc::new(tokio::sync::Semaphore::new(forward::MAX_FORWARDS)),
        }
    }
}

/// A connection that failed to set up or ended with an error: clients do that all the time.
pub(super) fn session_ended(error: russh::Error) {
    tracing::debug!(%error, "SSH connection ended with an error");
}

/// A channel between open and its shell/exec request.
struct Pending {
    channel: Channel<Msg>,
    /// (cols, rows, TERM) once the client asked for a terminal.
    pty: Option<(u32, u32, String)>,
    /// Variables the client sent (`SendEnv`/`SetEnv`) that sshd's default `AcceptEnv` takes.
    env: Vec<(String, String)>,
}

/// Most variables one channel may set.
const MAX_ENV: usize = 32;

/// Whether the client may set `name`: what Debian's sshd accepts (`AcceptEnv LANG LC_*`),
/// plus `TERM` and `COLORTERM` — never `PATH`, `LD_*` or anything the image relies on.
fn accepted_env(name: &str) -> bool {
    name == "LANG" || name.starts_with("LC_") || name == "TERM" || name == "COLORTERM"
}

pub(super) struct Connection {
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    /// The container this connection authenticated for.
    container: Option<String>,
    channels: HashMap<ChannelId, Pending>,
    /// Set once a login succeeded, for the server's login grace.
    pub(super) authenticated: Arc<AtomicBool>,
    /// Room for forwarded connections (`ssh -L`).
    forwards: Arc<tokio::sync::Semaphore>,
}

impl Connection {
    fn lookup(&self, login: &str, key: &russh::keys::PublicKey) -> Option<String> {
        match self.shared.state.specs() {
            Ok(specs) => auth::authorize(&specs, login, key),
            Err(e) => {
                tracing::warn!(error = %e, "SSH login: cannot read container specs");
                None
            }
        }
    }

    fn start(&mut self, channel: ChannelId, command: Option<Command>, session: &mut Session) {
        let (Some(container), Some(p)) = (self.container.clone(), self.channels.remove(&channel))
        else {
            let _ = session.channel_failure(channel);
            return;
        };
        let _ = session.channel_success(channel);
        let (tty, term) = match p.pty {
            // A client without a real terminal says 0x0: give it the classic 80x24.
            Some((c, r, t)) => {
                let (c, r) = if c == 0 || r == 0 { (80, 24) } else { (c, r) };
                (Some((c, r)), t)
            }
            None => (None, String::new()),
        };
        let req = ExecRequest {
            command,
            env: p.env,
            tty,
            term,
        };
        tracing::info!(container = %container, peer = ?self.peer, tty = req.tty.is_some(),
            command = req.command.is_some(), "SSH session");
        let handle = session.handle();
        tokio::spawn(session::run(
            self.shared.clone(),
            container,
            p.channel,
            req,
            handle,
        ));
    }
}

impl Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.lookup(user, offer.public_key) {
            Some(_) => Auth::Accept,
            None => Auth::reject(),
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        match self.lookup(user, key.public_key) {
            Some(id) => {
                tracing::info!(container = %id, peer = ?self.peer, "SSH login accepted");
                self.container = Some(id);
                self.authenticated.store(true, Ordering::Relaxed);
                Ok(Auth::Accept)
            }
            None => {
                tracing::info!(login = %user, peer = ?self.peer, "SSH login refused");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.container.is_none() || self.channels.len() >= 16 {
            return Ok(()); // dropping `reply` rejects the channel
        }
        self.channels.insert(
            channel.id(),
            Pending {
                channel,
                pty: None,
                env: Vec::new(),
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(p) => {
                let term = if term.is_empty() {
                    "xterm-256color"
                } else {
                    term
                };
                p.pty = Some((col_width, row_height, term.to_string()));
                session.channel_success(channel)?;
            }
            None => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(p) if accepted_env(variable_name) && p.env.len() < MAX_ENV => {
                p.env
                    .push((variable_name.to_string(), variable_value.to_string()));
                session.channel_success(channel)?;
            }
            _ => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, None, session);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(channel, Some(Command::Shell(command)), session);
        Ok(())
    }

    /// `ssh -L`: a connection to a port of the container, made inside its network namespace.
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(container) = self.container.clone() else {
            return Ok(()); // dropping `reply` rejects the channel
        };
        let own = match self.shared.state.address_of(&container) {
            Ok(own) => own,
            Err(e) => {
                tracing::warn!(container = %container, error = %e, "port forward: cannot read the container's address");
                return Ok(());
            }
        };
        let target = match &self.shared.netns_dir {
            None => Err(forward::Refused::NoNetwork),
            Some(dir) => forward::target(host_to_connect, port_to_connect, own)
                .map(|addr| (addr, dir.join(&container))),
        };
        let (addr, netns) = match target {
            Ok(t) => t,
            Err(why) => {
                tracing::info!(container = %container, peer = ?self.peer, to = %host_to_connect,
                    port = port_to_connect, %why, "port forward refused");
                reply
                    .reject(ChannelOpenFailure::AdministrativelyProhibited)
                    .await;
                return Ok(());
            }
        };
        let Ok(permit) = self.forwards.clone().try_acquire_owned() else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        let peer = self.peer;
        tokio::spawn(async move {
            let _permit = permit;
            match forward::connect_in(netns, addr).await {
                Ok(stream) => {
                    tracing::info!(container = %container, ?peer, %addr, "port forward");
                    reply.accept().await;
                    forward::bridge(channel, stream).await;
                }
                Err(e) => {
                    tracing::info!(container = %container, ?peer, %addr, error = %e, "port forward: the container does not answer");
                    reply.reject(ChannelOpenFailure::ConnectFailed).await;
                }
            }
        });
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name != "sftp" {
            session.channel_failure(channel)?;
            return Ok(());
        }
        // The container's own SFTP server (scp and sftp), as an exec process of its own.
        let argv = vec![crate::runtime::oci::SFTP_PATH.to_string()];
        self.start(channel, Some(Command::Argv(argv)), session);
        Ok(())
    }
}
