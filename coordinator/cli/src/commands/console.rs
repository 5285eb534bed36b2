//! `console`: the container's terminal WebSocket on this terminal. Raw mode for as long as it
//! runs and restored on every way out (a guard), the window size sent at start and on every
//! SIGWINCH, and Ctrl-] to detach.

use super::Ctx;
use crate::error::CliError;
use crate::resolve;
use futures_util::{SinkExt, StreamExt};
use std::io::{IsTerminal, Write};
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio_tungstenite::tungstenite::Message;

/// Ctrl-]: leaves the console (as telnet does).
const DETACH: u8 = 0x1d;

/// Raw mode until dropped.
struct Raw;

impl Raw {
    fn on() -> Result<Raw, CliError> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| CliError::Other(format!("cannot put the terminal in raw mode: {e}")))?;
        Ok(Raw)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

fn size() -> (u16, u16) {
    crossterm::terminal::size().unwrap_or((80, 24))
}

fn resize_message((cols, rows): (u16, u16)) -> Message {
    Message::text(format!(
        r#"{{"type":"resize","cols":{cols},"rows":{rows}}}"#
    ))
}

pub async fn run(ctx: &Ctx, name: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "console needs a terminal: use `berth exec` for commands".into(),
        ));
    }
    let id = resolve::id(&ctx.client, name).await?;
    let (cols, rows) = size();
    let ws = ctx
        .client
        .websocket(&format!(
            "/compute/containers/{id}/terminal?cols={cols}&rows={rows}"
        ))
        .await?;
    let (mut tx, mut rx) = ws.split();
    eprintln!("connected to {name} ({id}); detach with Ctrl-]\r");
    let raw = Raw::on()?;
    let mut winch = signal(SignalKind::window_change())
        .map_err(|e| CliError::Other(format!("SIGWINCH: {e}")))?;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 4096];
    let mut out = std::io::stdout();
    let why = loop {
        tokio::select! {
            n = stdin.read(&mut buf) => {
                let n = match n {
                    Ok(0) | Err(_) => break "input closed",
                    Ok(n) => n,
                };
                if let Some(at) = buf[..n].iter().position(|b| *b == DETACH) {
                    if at > 0 {
                        let _ = tx.send(Message::binary(buf[..at].to_vec())).await;
                    }
                    break "detached";
                }
                if tx.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                    break "connection lost";
                }
            }
            _ = winch.recv() => {
                if tx.send(resize_message(size())).await.is_err() {
                    break "connection lost";
                }
            }
            m = rx.next() => match m {
                Some(Ok(Message::Binary(b))) => {
                    let _ = out.write_all(&b);
                    let _ = out.flush();
                }
                Some(Ok(Message::Text(t))) => {
                    let _ = out.write_all(t.as_bytes());
                    let _ = out.flush();
                }
                Some(Ok(Message::Close(_))) | None => break "the shell exited",
                Some(Ok(_)) => {}
                Some(Err(_)) => break "connection lost",
            },
        }
    };
    let _ = tx.send(Message::Close(None)).await;
    drop(raw);
    eprintln!("\n{why}");
    Ok(())
}
