//! Reaching into a running container through its agent: recent and followed logs, terminal
//! streams and resource metrics. Each is a QUIC stream the coordinator opens on the agent's
//! connection. Callers pass the caller's own record: the API layer has checked ownership.

use crate::error::Error;
use crate::hub::{Hub, HubError};
use crate::store::ContainerRecord;
use berth_shared::api::ContainerStatus;
use berth_shared::protocol::{
    read_frame, ContainerMetrics, ExecCommand, ExecResult, LogLine, Request, Response,
};
use berth_shared::requests::Exec;
use std::time::Duration;

/// Bytes of stdout and of stderr an `exec` answer carries; the rest is dropped (`truncated`).
pub const MAX_EXEC_OUTPUT: usize = 1024 * 1024;
/// How much longer than the command's own timeout the host may take to answer.
const EXEC_SLACK: Duration = Duration::from_secs(15);

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

/// Streams into containers, over the hub.
pub struct Inside {
    hub: std::sync::Arc<Hub>,
}

impl Inside {
    pub fn new(hub: std::sync::Arc<Hub>) -> Inside {
        Inside { hub }
    }

    /// Opens `req` on the host of `r`; `running` requires the container to be running as far
    /// as the coordinator knows.
    async fn open_on_host(
        &self,
        r: &ContainerRecord,
        running: bool,
        req: Request,
    ) -> Result<(Response, AgentStream), Error> {
        if running && r.status != ContainerStatus::Running {
            return Err(not_running());
        }
        let host = r.host_key.as_deref().ok_or_else(not_running)?;
        let (resp, send, recv) = self.hub.open(host, &req).await.map_err(hub_error)?;
        match resp {
            Response::NotRunning { .. } => Err(not_running()),
            Response::Error { message } => Err(Error::Unavailable(message)),
            resp => Ok((resp, AgentStream { send, recv })),
        }
    }

    /// Up to `limit` recent lines, oldest first.
    pub async fn recent_logs(
        &self,
        r: &ContainerRecord,
        limit: usize,
    ) -> Result<Vec<LogLine>, Error> {
        let req = Request::Logs {
            id: r.id.clone(),
            tail: limit,
            follow: false,
        };
        let (_, mut s) = self.open_on_host(r, false, req).await?;
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
        r: &ContainerRecord,
        tail: usize,
    ) -> Result<AgentStream, Error> {
        let req = Request::Logs {
            id: r.id.clone(),
            tail,
            follow: true,
        };
        Ok(self.open_on_host(r, true, req).await?.1)
    }

    /// A shell on a terminal in the container: send `TerminalInput` frames, read raw output.
    pub async fn terminal(
        &self,
        r: &ContainerRecord,
        cols: u16,
        rows: u16,
    ) -> Result<AgentStream, Error> {
        let req = Request::Terminal {
            id: r.id.clone(),
            cols,
            rows,
        };
        Ok(self.open_on_host(r, true, req).await?.1)
    }

    /// Runs a command in the container to its end (the host kills it at its timeout).
    pub async fn exec(&self, r: &ContainerRecord, exec: &Exec) -> Result<ExecResult, Error> {
        let cmd = ExecCommand {
            id: r.id.clone(),
            command: exec.command.clone(),
            env: exec.env.clone(),
            stdin: exec.stdin.clone(),
            timeout_ms: exec.timeout.as_millis() as u64,
            max_output: MAX_EXEC_OUTPUT,
        };
        let (_, mut s) = self.open_on_host(r, true, Request::Exec(cmd)).await?;
        let _ = s.send.finish();
        let ended = tokio::time::timeout(exec.timeout + EXEC_SLACK, read_frame(&mut s.recv));
        match ended.await {
            Ok(Ok(Some(Response::Exited(res)))) => Ok(res),
            Ok(Ok(Some(Response::NotRunning { .. }))) => Err(not_running()),
            Ok(Ok(Some(Response::Error { message }))) => Err(Error::Unavailable(message)),
            Ok(Ok(_)) => Err(Error::Unavailable(
                "the host did not say how the command ended".into(),
            )),
            Ok(Err(e)) => Err(Error::Unavailable(format!(
                "reading the command's end: {e}"
            ))),
            Err(_) => Err(Error::Unavailable(
                "the host did not answer within the command's timeout".into(),
            )),
        }
    }

    pub async fn metrics(&self, r: &ContainerRecord) -> Result<ContainerMetrics, Error> {
        let req = Request::Metrics { id: r.id.clone() };
        match self.open_on_host(r, true, req).await? {
            (Response::Metrics(m), _) => Ok(m),
            _ => Err(Error::Unavailable("the host sent no metrics".into())),
        }
    }
}
