//! One command run to its end inside a running container, for the API's `exec`: the same
//! containerd exec path as SSH, with all of stdin written then closed, stdout and stderr
//! read apart into bounded buffers (the rest read and dropped, so a chatty command never
//! blocks on a full pipe), and a deadline after which the command is killed.

use crate::runtime::exec::{new_exec_id, Command, ExecIo, ExecRequest};
use crate::runtime::{Runtime, RuntimeError};
use berth_shared::protocol::{ExecCommand, ExecResult};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const SIGKILL: u32 = 9;
/// After the process exits or is killed, how long its output may still take to drain (a
/// child it left behind may hold the pipes open).
const DRAIN: Duration = Duration::from_secs(2);

/// What one output stream gave: the first bytes, and whether more came.
type Kept = std::sync::Arc<std::sync::Mutex<(Vec<u8>, bool)>>;

/// Reads `r` to its end into `kept`, keeping the first `max` bytes.
async fn bounded(mut r: impl AsyncRead + Unpin, max: usize, kept: Kept) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut k = kept.lock().unwrap_or_else(|p| p.into_inner());
                let room = max.saturating_sub(k.0.len());
                k.0.extend_from_slice(&buf[..n.min(room)]);
                k.1 |= n > room;
            }
        }
    }
}

/// Waits (up to `DRAIN`) for a stream's end, then takes what it kept.
async fn collect(task: tokio::task::JoinHandle<()>, kept: Kept) -> (Vec<u8>, bool) {
    let ended = tokio::time::timeout(DRAIN, task).await.is_ok();
    let mut k = kept.lock().unwrap_or_else(|p| p.into_inner());
    // Still held open by something the command left running: say the output was cut.
    (std::mem::take(&mut k.0), k.1 || !ended)
}

/// Runs `cmd` in container `cmd.id`; FIFOs under `run_dir`. When `abandoned` resolves first
/// (the coordinator went away) the command is killed and removed and `None` returned.
pub async fn run(
    rt: &Runtime,
    cmd: &ExecCommand,
    run_dir: &Path,
    abandoned: impl std::future::Future<Output = ()>,
) -> Result<Option<ExecResult>, RuntimeError> {
    let req = ExecRequest {
        command: Some(Command::Argv(cmd.command.clone())),
        env: cmd.env.clone().into_iter().collect(),
        tty: None,
        term: String::new(),
    };
    let (mut proc, io) = rt
        .exec(&cmd.id, &new_exec_id("exec"), &req, run_dir)
        .await?;
    let ExecIo {
        mut stdin,
        stdout,
        stderr,
    } = io;
    let ctl = proc.control();
    let input = cmd.stdin.clone();
    let feed = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
        drop(stdin);
        if let Err(e) = ctl.close_stdin().await {
            tracing::debug!(error = %e, "closing exec stdin");
        }
    });
    let max = cmd.max_output;
    let (kept_out, kept_err) = (Kept::default(), Kept::default());
    let out = tokio::spawn(bounded(stdout, max, kept_out.clone()));
    let err = stderr.map(|e| tokio::spawn(bounded(e, max, kept_err.clone())));
    let deadline = tokio::time::sleep(Duration::from_millis(cmd.timeout_ms));
    let exited = tokio::select! {
        r = proc.wait() => Some(r),
        () = deadline => None,
        () = abandoned => {
            feed.abort();
            proc.finish().await;
            return Ok(None);
        }
    };
    let timed_out = exited.is_none();
    let exit_code = match exited {
        Some(Ok(code)) => code,
        Some(Err(e)) => {
            feed.abort();
            proc.finish().await;
            return Err(e);
        }
        None => {
            let _ = proc.kill(SIGKILL).await;
            tokio::time::timeout(DRAIN, proc.wait())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(128 + SIGKILL)
        }
    };
    feed.abort();
    let (stdout, cut_out) = collect(out, kept_out).await;
    let (stderr, cut_err) = match err {
        Some(e) => collect(e, kept_err).await,
        None => (Vec::new(), false),
    };
    proc.finish().await;
    Ok(Some(ExecResult {
        exit_code,
        stdout,
        stderr,
        truncated: cut_out || cut_err,
        timed_out,
    }))
}
