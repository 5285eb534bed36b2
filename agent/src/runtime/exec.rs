//! Processes started inside a running container through containerd's exec API: shells and
//! commands for SSH sessions and the WebSocket terminal.
//!
//! Stdio goes through FIFOs the agent creates under `<data>/run/exec/<exec id>/`. The order
//! matters: the agent opens its ends before `Tasks.Start` (the shim blocks opening its write
//! end until a reader exists), and reads only after `Start` returned, so end-of-file on
//! stdout means the shim has copied everything. The shim keeps a write end of stdin open
//! itself: end-of-file for the process takes `CloseIO` ([`ExecControl::close_stdin`]).

use super::{grpc, Runtime, RuntimeError};
use containerd_client::services::v1::{
    CloseIoRequest, DeleteProcessRequest, ExecProcessRequest, KillRequest, ResizePtyRequest,
    StartRequest, WaitRequest,
};
use containerd_client::tonic;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::net::unix::pipe;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// `None`: a login shell.
    pub command: Option<Command>,
    /// Set in the process's environment over the container's own.
    pub env: Vec<(String, String)>,
    /// `Some((cols, rows))` allocates a terminal of that size.
    pub tty: Option<(u32, u32)>,
    /// `TERM` for a terminal session.
    pub term: String,
}

/// What an exec runs.
#[derive(Debug, Clone)]
pub enum Command {
    /// A command line for `/bin/sh -c` (SSH's `exec`).
    Shell(String),
    /// An argv run as is (the API's `exec`).
    Argv(Vec<String>),
}

/// The agent's ends of a started process's stdio. `stderr` is `None` for a terminal, whose
/// output is all on `stdout`.
pub struct ExecIo {
    pub stdin: pipe::Sender,
    pub stdout: pipe::Receiver,
    pub stderr: Option<pipe::Receiver>,
}

/// A started exec process. [`ExecProcess::finish`] removes it.
pub struct ExecProcess {
    ctl: ExecControl,
    dir: PathBuf,
    exit: Option<tokio::task::JoinHandle<Result<u32, RuntimeError>>>,
}

/// Signals and resizes for an exec process; cheap to clone into the task reading the client.
#[derive(Clone)]
pub struct ExecControl {
    rt: Runtime,
    container_id: String,
    exec_id: String,
}

/// A fresh exec id: `<prefix>-<16 hex digits>`.
pub fn new_exec_id(prefix: &str) -> String {
    let mut b = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut b);
    format!("{prefix}-{}", berth_shared::ids::hex(&b))
}

fn fifo(path: &Path) -> Result<(), RuntimeError> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(|e| {
        RuntimeError::Io {
            what: "create exec fifo",
            path: path.to_path_buf(),
            source: std::io::Error::from(e),
        }
    })
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> RuntimeError + 'a {
    move |source| RuntimeError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The container's own process spec (capabilities, user, env) with the command, terminal and
/// environment of this session.
fn process_spec(container_spec: &Value, req: &ExecRequest) -> Value {
    let mut p = container_spec
        .get("process")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({"user": {"uid": 0, "gid": 0}}));
    let args: Vec<String> = match &req.command {
        Some(Command::Shell(cmd)) => vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
        Some(Command::Argv(argv)) => argv.clone(),
        None => vec!["/bin/sh".into(), "-l".into()],
    };
    let mut env: Vec<String> = p["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .filter(|e| !e.starts_with("TERM=") && !e.starts_with("HOME="))
                .collect()
        })
        .unwrap_or_default();
    env.push("HOME=/root".into());
    for (k, v) in &req.env {
        let prefix = format!("{k}=");
        env.retain(|e| !e.starts_with(&prefix));
        env.push(format!("{k}={v}"));
    }
    if req.tty.is_some() {
        env.push(format!("TERM={}", req.term));
    }
    p["args"] = serde_json::json!(args);
    p["env"] = serde_json::json!(env);
    p["terminal"] = Value::Bool(req.tty.is_some());
    p["cwd"] = Value::String("/".into());
    match req.tty {
        Some((cols, rows)) => p["consoleSize"] = serde_json::json!({"height": rows, "width": cols}),
        None => {
            if let Some(o) = p.as_object_mut() {
                o.remove("consoleSize");
            }
        }
    }
    p
}

impl Runtime {
    /// Starts `req` in the running container `container_id`; `run_dir` holds the FIFOs.
    pub async fn exec(
        &self,
        container_id: &str,
        exec_id: &str,
        req: &ExecRequest,
        run_dir: &Path,
    ) -> Result<(ExecProcess, ExecIo), RuntimeError> {
        let _t = crate::telemetry::containerd_call("exec");
        let container = self
            .container(container_id)
            .await?
            .ok_or(RuntimeError::NotFound { op: "exec" })?;
        let spec: Value = container
            .spec
            .as_ref()
            .and_then(|a| serde_json::from_slice(&a.value).ok())
            .unwrap_or(Value::Null);
        let dir = run_dir.join(exec_id);
        std::fs::create_dir_all(&dir).map_err(io_err("create exec dir", &dir))?;
        let mut proc = ExecProcess {
            ctl: ExecControl {
                rt: self.clone(),
                container_id: container_id.into(),
                exec_id: exec_id.into(),
            },
            dir: dir.clone(),
            exit: None,
        };
        let (stdin_p, stdout_p, stderr_p) =
            (dir.join("stdin"), dir.join("stdout"), dir.join("stderr"));
        fifo(&stdin_p)?;
        fifo(&stdout_p)?;
        let terminal = req.tty.is_some();
        if !terminal {
            fifo(&stderr_p)?;
        }
        // Our ends first: see the module doc.
        let stdin = pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(&stdin_p)
            .map_err(io_err("open stdin fifo", &stdin_p))?;
        let stdout = pipe::OpenOptions::new()
            .open_receiver(&stdout_p)
            .map_err(io_err("open stdout fifo", &stdout_p))?;
        let stderr = if terminal {
            None
        } else {
            Some(
                pipe::OpenOptions::new()
                    .open_receiver(&stderr_p)
                    .map_err(io_err("open stderr fifo", &stderr_p))?,
            )
        };
        let process = process_spec(&spec, req);
        self.client
            .tasks()
            .exec(self.req(ExecProcessRequest {
                container_id: container_id.into(),
                stdin: stdin_p.display().to_string(),
                stdout: stdout_p.display().to_string(),
                stderr: if terminal {
                    String::new()
                } else {
                    stderr_p.display().to_string()
                },
                terminal,
                spec: Some(prost_types::Any {
                    type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                    value: process.to_string().into_bytes(),
                }),
                exec_id: exec_id.into(),
            }))
            .await
            .map_err(grpc("exec"))?;
        // Wait is registered before Start so a fast exit is never missed.
        let waiter = {
            let rt = self.clone();
            let (c, e) = (container_id.to_string(), exec_id.to_string());
            tokio::spawn(async move {
                let resp = rt
                    .client
                    .tasks()
                    .wait(rt.req(WaitRequest {
                        container_id: c,
                        exec_id: e,
                    }))
                    .await
                    .map_err(grpc("wait exec"))?;
                Ok(resp.into_inner().exit_status)
            })
        };
        proc.exit = Some(waiter);
        self.client
            .tasks()
            .start(self.req(StartRequest {
                container_id: container_id.into(),
                exec_id: exec_id.into(),
            }))
            .await
            .map_err(grpc("start exec"))?;
        Ok((
            proc,
            ExecIo {
                stdin,
                stdout,
                stderr,
            },
        ))
    }
}

impl ExecControl {
    /// End-of-file on the process's stdin once it has read what is in the FIFO. Call after
    /// dropping our end: the shim holds a write end of its own, so closing ours is not enough.
    pub async fn close_stdin(&self) -> Result<(), RuntimeError> {
        self.rt
            .client
            .tasks()
            .close_io(self.rt.req(CloseIoRequest {
                container_id: self.container_id.clone(),
                exec_id: self.exec_id.clone(),
                stdin: true,
            }))
            .await
            .map_err(grpc("close exec stdin"))?;
        Ok(())
    }

    pub async fn resize(&self, cols: u32, rows: u32) -> Result<(), RuntimeError> {
        self.rt
            .client
            .tasks()
            .resize_pty(self.rt.req(ResizePtyRequest {
                container_id: self.container_id.clone(),
                exec_id: self.exec_id.clone(),
                width: cols,
                height: rows,
            }))
            .await
            .map_err(grpc("resize pty"))?;
        Ok(())
    }

    pub async fn kill(&self, signal: u32) -> Result<(), RuntimeError> {
        let r = self
            .rt
            .client
            .tasks()
            .kill(self.rt.req(KillRequest {
                container_id: self.container_id.clone(),
                exec_id: self.exec_id.clone(),
                signal,
                all: false,
            }))
            .await
            .map_err(grpc("kill exec"));
        match r {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }
}

impl ExecProcess {
    pub fn control(&self) -> ExecControl {
        self.ctl.clone()
    }

    pub async fn kill(&self, signal: u32) -> Result<(), RuntimeError> {
        self.ctl.kill(signal).await
    }

    /// Waits for the process to exit and returns its exit status. Cancel-safe: a wait cut
    /// short (by a timeout) can be waited again.
    pub async fn wait(&mut self) -> Result<u32, RuntimeError> {
        let Some(h) = self.exit.as_mut() else {
            return Err(RuntimeError::NotFound { op: "wait exec" });
        };
        let r = h
            .await
            .unwrap_or(Err(RuntimeError::NotFound { op: "wait exec" }));
        self.exit = None;
        r
    }

    /// Kills the process if it still runs and removes it and its FIFOs.
    pub async fn finish(mut self) {
        if self.exit.as_ref().is_some_and(|h| !h.is_finished()) {
            let _ = self.kill(9).await;
            let _ = self.wait().await;
        }
        let c = &self.ctl;
        let r =
            c.rt.client
                .tasks()
                .delete_process(c.rt.req(DeleteProcessRequest {
                    container_id: c.container_id.clone(),
                    exec_id: c.exec_id.clone(),
                }))
                .await;
        if let Err(s) = r {
            if s.code() != tonic::Code::NotFound {
                tracing::debug!(exec = %c.exec_id, error = %s.message(), "delete exec process");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
