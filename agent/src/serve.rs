//! What the coordinator asks of this agent, one QUIC stream per request: apply a spec, read
//! or follow a container's logs, open a terminal in it, sample its resource use, run a
//! command, disown a container, make or remove a volume.

use crate::logs::reader::Follower;
use crate::reconciler::Reconciler;
use crate::runtime::exec::{new_exec_id, ExecIo, ExecRequest};
use crate::runtime::{Runtime, TaskState};
use crate::state::State;
use berth_shared::protocol::{
    read_frame, write_frame, ContainerSpec, ExecCommand, Request, Response, TerminalInput,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Most log lines one request may ask for.
const MAX_TAIL: usize = 10_000;
const LOG_BATCH: usize = 500;
const FOLLOW_POLL: Duration = Duration::from_millis(100);
const SIGHUP: u32 = 1;

pub struct Services {
    pub state: State,
    pub reconciler: Arc<Reconciler>,
    pub rt: Runtime,
    /// Where exec FIFOs live.
    pub run_dir: PathBuf,
}

fn error(message: impl ToString) -> Response {
    Response::Error {
        message: message.to_string(),
    }
}

impl Services {
    /// Stores a spec durably if it is newer, then reconciles it. Idempotent.
    pub async fn offer(&self, spec: &ContainerSpec) -> Response {
        if !berth_shared::ids::is_container_id(&spec.id) {
            return error(format!("{:?} is not a container id", spec.id));
        }
        match self.state.offer_spec(spec) {
            Ok((generation, changed)) => {
                // The coordinator holds a record of it here: it is not disowned.
                let reclaimed = match self.state.reclaim(&spec.id) {
                    Ok(r) => r,
                    Err(e) => return error(e),
                };
                if reclaimed {
                    tracing::info!(id = %spec.id, "the coordinator claims the container again: no longer disowned");
                }
                if changed || reclaimed {
                    if let Err(e) = self.state.flush().await {
                        return error(e);
                    }
                }
                self.reconciler.trigger(spec.id.clone());
                Response::Applied {
                    id: spec.id.clone(),
                    generation,
                }
            }
            Err(e) => error(e),
        }
    }

    /// Serves the coordinator's streams on `conn` until it closes.
    pub async fn serve(self: Arc<Self>, conn: quinn::Connection) {
        while let Ok((send, recv)) = conn.accept_bi().await {
            tokio::spawn(self.clone().handle(send, recv));
        }
    }

    async fn handle(self: Arc<Self>, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
        let resp = match read_frame::<_, Request>(&mut recv).await {
            Ok(Some(Request::Apply(spec))) => self.offer(&spec).await,
            Ok(Some(Request::ApplyWithRegistry { spec, registry })) => {
                self.reconciler.registries.remember(registry);
                self.offer(&spec).await
            }
            Ok(Some(Request::Logs { id, tail, follow })) => {
                return self.logs(id, tail.min(MAX_TAIL), follow, send).await;
            }
            Ok(Some(Request::Terminal { id, cols, rows })) => {
                return self.terminal(id, cols, rows, send, recv).await;
            }
            Ok(Some(Request::Metrics { id })) => self.metrics(&id).await,
            Ok(Some(Request::Exec(cmd))) => return self.exec(cmd, send).await,
            Ok(Some(Request::Disown { id })) => match self.reconciler.disown(&id).await {
                Ok(removal_at_ms) => Response::Disowned { id, removal_at_ms },
                Err(e) => error(e),
            },
            Ok(Some(Request::Volume(spec))) => match self.reconciler.volume(&spec).await {
                Ok(used_bytes) => Response::Volume {
                    id: spec.id,
                    used_bytes,
                },
                Err(e) => error(e),
            },
            Ok(None) => return,
            Err(e) => error(e),
        };
        if write_frame(&mut send, &resp).await.is_ok() {
            let _ = send.finish();
        }
    }

    async fn is_running(&self, id: &str) -> bool {
        matches!(self.rt.task_state(id).await, Ok(TaskState::Running))
    }

    fn known(&self, id: &str) -> bool {
        berth_shared::ids::is_container_id(id) && matches!(self.state.spec(id), Ok(Some(_)))
    }

    async fn metrics(&self, id: &str) -> Response {
        if !self.known(id) || !self.is_running(id).await {
            return Response::NotRunning {
                message: "the container is not running".into(),
            };
        }
        match crate::usage::sample(id, Duration::from_millis(250)).await {
            Some(m) => Response::Metrics(m),
            None => Response::NotRunning {
                message: "the container is not running".into(),
            },
        }
    }

    async fn logs(&self, id: String, tail: usize, follow: bool, mut send: quinn::SendStream) {
        if !self.known(&id) {
            let _ = write_frame(&mut send, &error("unknown container")).await;
            let _ = send.finish();
            return;
        }
        let dir = self.reconciler.log_dir();
        let opened = {
            let id = id.clone();
            tokio::task::spawn_blocking(move || Follower::open(&dir, &id, tail)).await
        };
        let Ok((mut follower, lines)) = opened else {
            return;
        };
        if write_frame(&mut send, &Response::Streaming).await.is_err() {
            return;
        }
        for batch in lines.chunks(LOG_BATCH) {
            if write_frame(&mut send, &batch).await.is_err() {
                return;
            }
        }
        let mut checked = Instant::now();
        if !follow {
            let _ = send.finish();
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
                _ = send.stopped() => return,
            }
            let new = follower.poll();
            for batch in new.chunks(LOG_BATCH) {
                if write_frame(&mut send, &batch).await.is_err() {
                    return;
                }
            }
            if new.is_empty() && checked.elapsed() > Duration::from_secs(1) {
                checked = Instant::now();
                if !self.is_running(&id).await {
                    // The driver has written everything by the time the task is gone.
                    let last = follower.poll();
                    if !last.is_empty() {
                        let _ = write_frame(&mut send, &last).await;
                    }
                    break;
                }
            }
        }
        let _ = send.finish();
    }

    /// Runs a command to its end (`Request::Exec`); killed if the coordinator goes away.
    async fn exec(&self, cmd: ExecCommand, mut send: quinn::SendStream) {
        if !self.known(&cmd.id) || !self.is_running(&cmd.id).await {
            let r = Response::NotRunning {
                message: "the container is not running".into(),
            };
            let _ = write_frame(&mut send, &r).await;
            let _ = send.finish();
            return;
        }
        if write_frame(&mut send, &Response::Streaming).await.is_err() {
            return;
        }
        tracing::info!(container = %cmd.id, program = %cmd.command[0], "exec");
        let stopped = send.stopped();
        let abandoned = async move {
            let _ = stopped.await;
        };
        let resp = match crate::command::run(&self.rt, &cmd, &self.run_dir, abandoned).await {
            Ok(Some(r)) => Response::Exited(r),
            Ok(None) => return,
            Err(e) => error(e),
        };
        if write_frame(&mut send, &resp).await.is_ok() {
            let _ = send.finish();
        }
    }

    async fn terminal(
        &self,
        id: String,
        cols: u16,
        rows: u16,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) {
        if !self.known(&id) || !self.is_running(&id).await {
            let r = Response::NotRunning {
                message: "the container is not running".into(),
            };
            let _ = write_frame(&mut send, &r).await;
            let _ = send.finish();
            return;
        }
        let req = ExecRequest {
            command: None,
            env: Vec::new(),
            tty: Some((u32::from(cols.max(1)), u32::from(rows.max(1)))),
            term: "xterm-256color".into(),
        };
        let exec_id = new_exec_id("term");
        let (proc, io) = match self.rt.exec(&id, &exec_id, &req, &self.run_dir).await {
            Ok(p) => p,
            Err(e) => {
                let _ = write_frame(&mut send, &error(e)).await;
                let _ = send.finish();
                return;
            }
        };
        let ExecIo {
            mut stdin,
            mut stdout,
            ..
        } = io;
        if write_frame(&mut send, &Response::Streaming).await.is_err() {
            proc.finish().await;
            return;
        }
        let ctl = proc.control();
        let mut input = tokio::spawn(async move {
            while let Ok(Some(msg)) = read_frame::<_, TerminalInput>(&mut recv).await {
                match msg {
                    TerminalInput::Data { data } => {
                        if stdin.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                    TerminalInput::Resize { cols, rows } => {
                        let _ = ctl
                            .resize(u32::from(cols.max(1)), u32::from(rows.max(1)))
                            .await;
                    }
                }
            }
        });
        tracing::debug!(container = %id, exec = %exec_id, "terminal started");
        tokio::select! {
            r = tokio::io::copy(&mut stdout, &mut send) => {
                tracing::debug!(result = ?r, "terminal output ended");
                let _ = send.finish();
                input.abort();
            }
            _ = &mut input => {
                let _ = proc.kill(SIGHUP).await;
            }
        }
        proc.finish().await;
    }
}
