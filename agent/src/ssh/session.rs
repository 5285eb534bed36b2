//! One SSH session channel bridged to one exec process in the container: client data to the
//! process's stdin (with backpressure), its stdout/stderr back as channel data, window changes
//! to the terminal, the exit status (or, for a process a signal ended, the signal as sshd
//! sends it) at the end, and a kill when the client goes away.

use super::Shared;
use crate::runtime::exec::{new_exec_id, ExecIo, ExecRequest};
use russh::server::Msg;
use russh::{Channel, ChannelMsg, Sig};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

const SIGKILL: u32 = 9;
/// Client input held for a process that has not read it yet.
const STDIN_BUFFER: usize = 64 * 1024 * 1024;
const SIGHUP: u32 = 1;

async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.flush().await;
}

/// The signal a process ended by, from its status: containerd reports a signalled process as
/// 128 + the signal's number, the way shells do (a process that itself exits with such a
/// status reads the same).
fn signal_of(status: u32) -> Option<Sig> {
    Some(match status.checked_sub(128)? {
        1 => Sig::HUP,
        2 => Sig::INT,
        3 => Sig::QUIT,
        4 => Sig::ILL,
        6 => Sig::ABRT,
        8 => Sig::FPE,
        9 => Sig::KILL,
        10 => Sig::USR1,
        11 => Sig::SEGV,
        13 => Sig::PIPE,
        14 => Sig::ALRM,
        15 => Sig::TERM,
        _ => return None,
    })
}

pub(super) async fn run(
    shared: Arc<Shared>,
    container: String,
    channel: Channel<Msg>,
    req: ExecRequest,
    session: russh::server::Handle,
) {
    let channel_id = channel.id();
    let (mut rd, wr) = channel.split();
    let id = new_exec_id("ssh");
    let (mut proc, io) = match shared.rt.exec(&container, &id, &req, &shared.run_dir).await {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(container = %container, error = %e, "SSH session could not start");
            let msg = if e.is_not_found() {
                "berth: the container is not running\r\n".to_string()
            } else {
                "berth: could not start a process in the container\r\n".to_string()
            };
            let _ = wr.extended_data_bytes(1, msg.into_bytes()).await;
            let _ = wr.exit_status(255).await;
            let _ = wr.eof().await;
            let _ = wr.close().await;
            return;
        }
    };
    let ExecIo {
        stdin,
        stdout,
        stderr,
    } = io;
    let sessions = &crate::telemetry::METRICS.ssh_sessions;
    sessions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = tokio::spawn(pump(stdout, wr.make_writer()));
    let err = stderr.map(|e| tokio::spawn(pump(e, wr.make_writer_ext(Some(1)))));

    // Client → process, in two tasks. russh delivers channel data from its connection loop
    // and stalls that loop (output included) while we do not take it, so the reader takes
    // data at once into a buffer of up to STDIN_BUFFER bytes, and the writer feeds the FIFO
    // at the process's pace. The reader ends only when the client closes the channel.
    let ctl = proc.control();
    let budget = Arc::new(Semaphore::new(STDIN_BUFFER));
    let (tx, mut rx) = mpsc::unbounded_channel::<bytes::Bytes>();
    let writer = {
        let budget = budget.clone();
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let mut stdin = Some(stdin);
            while let Some(chunk) = rx.recv().await {
                if let Some(s) = stdin.as_mut() {
                    if s.write_all(&chunk).await.is_err() {
                        stdin = None; // the process closed its stdin; discard the rest
                    }
                }
                budget.add_permits(chunk.len());
            }
            drop(stdin);
            if let Err(e) = ctl.close_stdin().await {
                tracing::debug!(error = %e, "closing exec stdin");
            }
        })
    };
    let tty = req.tty.is_some();
    let mut input = tokio::spawn(async move {
        let mut tx = Some(tx);
        while let Some(msg) = rd.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    let Some(t) = tx.as_ref() else { continue };
                    let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
                    if let Ok(p) = budget.acquire_many(n).await {
                        p.forget();
                    }
                    let _ = t.send(data);
                }
                // A terminal has no half-close: its input ends with the session, as in sshd.
                ChannelMsg::Eof if !tty => tx = None,
                ChannelMsg::WindowChange {
                    col_width,
                    row_height,
                    ..
                } => {
                    let _ = ctl.resize(col_width.max(1), row_height.max(1)).await;
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    });

    let outputs = async {
        let _ = out.await;
        if let Some(e) = err {
            let _ = e.await;
        }
    };
    tokio::select! {
        _ = outputs => {
            let status = proc.wait().await.unwrap_or(255);
            match signal_of(status) {
                // As sshd: a signal instead of a status (the client then exits 255).
                Some(sig) => {
                    let (msg, lang) = (String::new(), String::new());
                    let _ = session
                        .exit_signal_request(channel_id, sig, false, msg, lang)
                        .await;
                }
                None => {
                    let _ = wr.exit_status(status).await;
                }
            }
            let _ = wr.eof().await;
            let _ = wr.close().await;
            input.abort();
            writer.abort();
        }
        _ = &mut input => {
            // The client left: the process goes too.
            let _ = proc.kill(if req.tty.is_some() { SIGHUP } else { SIGKILL }).await;
            writer.abort();
        }
    }
    proc.finish().await;
    sessions.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}
