//! Reaching into a running container through its agent: recent and followed logs, terminal
//! streams and resource metrics. Each is a QUIC stream the coordinator opens on the agent's
//! connection; ownership is checked here first, so another user's container is `NotFound`.

use crate::app::{App, Error};
use crate::hub::HubError;
use berth_shared::api::ContainerStatus;
use berth_shared::protocol::{read_frame, ContainerMetrics, LogLine, Request, Response};

/// The two halves of an open agent stream.
pub struct AgentStream {
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
}

fn hub_error(e: HubError) -> Error {
    match e {
        HubError::NotConnected(h) => Error::Unavailable(format!("host {h} is unreachable")),
        other => Error::Unavailable(format!("the container's host did not answer: {other}")),
    }
}

fn not_running() -> Error {
    Error::NotRunning("the container is not running".into())
}

impl App {
    /// Opens `req` on the host of the caller's container `id`; `running` requires the
    /// container to be running as far as the coordinator knows.
    async fn open_on_host(
        &self,
        user: &str,
        id: &str,
        running: bool,
        req: Request,
    ) -> Result<(Response, AgentStream), Error> {
        let r = self.owned(user, id)?;
        if running && r.status != ContainerStatus::Running {
            return Err(not_running());
        }
        let host = r.host_key.ok_or_else(not_running)?;
        let (resp, send, recv) = self.hub.open(&host, &req).await.map_err(hub_error)?;
        match resp {
            Response::NotRunning { .. } => Err(not_running()),
            Response::Error { message } => Err(Error::Unavailable(message)),
            resp => Ok((resp, AgentStream { send, recv })),
        }
    }

    /// Up to `limit` recent lines, oldest first.
    pub async fn recent_logs(
        &self,
        user: &str,
        id: &str,
        limit: usize,
    ) -> Result<Vec<LogLine>, Error> {
        let req = Request::Logs {
            id: id.into(),
            tail: limit,
            follow: false,
        };
        let (_, mut s) = self.open_on_host(user, id, false, req).await?;
        let _ = s.send.finish();
        let mut lines = Vec::new();
        loop {
            match read_frame::<_, Vec<LogLine>>(&mut s.recv).await {
                Ok(Some(batch)) => lines.extend(batch),
                Ok(None) => break,
                Err(e) => return Err(Error::Unavailable(format!("reading logs: {e}"))),
            }
        }
        Ok(lines)
    }

    /// A stream of `Vec<LogLine>` frames: `tail` recent lines, then new ones until the
    /// container stops.
    pub async fn follow_logs(
        &self,
        user: &str,
        id: &str,
        tail: usize,
    ) -> Result<AgentStream, Error> {
        let req = Request::Logs {
            id: id.into(),
            tail,
            follow: true,
        };
        Ok(self.open_on_host(user, id, true, req).await?.1)
    }

    /// A shell on a terminal in the container: send `TerminalInput` frames, read raw output.
    pub async fn terminal(
        &self,
        user: &str,
        id: &str,
        cols: u16,
        rows: u16,
    ) -> Result<AgentStream, Error> {
        let req = Request::Terminal {
            id: id.into(),
            cols,
            rows,
        };
        Ok(self.open_on_host(user, id, true, req).await?.1)
    }

    pub async fn metrics(&self, user: &str, id: &str) -> Result<ContainerMetrics, Error> {
        let req = Request::Metrics { id: id.into() };
        match self.open_on_host(user, id, true, req).await? {
            (Response::Metrics(m), _) => Ok(m),
            _ => Err(Error::Unavailable("the host sent no metrics".into())),
        }
    }
}
