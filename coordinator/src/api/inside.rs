//! Routes into a running container: logs (JSON, or a WebSocket that follows), the terminal
//! WebSocket, and metrics. WebSockets take the token from the header, cookie or `?token=`.
//!
//! Terminal protocol: binary frames carry bytes both ways; a text frame
//! `{"type":"resize","cols":120,"rows":40}` resizes; any other text frame is typed input.

use super::call::{json, Call, Reply};
use super::error::ApiError;
use crate::error::Error;
use crate::inside::AgentStream;
use berth_shared::api::ExecOutput;
use berth_shared::protocol::{read_frame, write_frame, LogLine, TerminalInput};
use berth_shared::requests::{ExecBody, Validate};
use berth_shared::validation::FieldErrors;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use warp::filters::ws::{Message, WebSocket};
use warp::Reply as _;

type Query = HashMap<String, String>;

/// `(default, lowest, highest)` of each integer query parameter; the OpenAPI document states
/// the same (a unit test compares them).
pub(super) const LIMIT: (usize, usize, usize) = (50, 1, 500);
pub(super) const TAIL: (usize, usize, usize) = (100, 0, 10_000);
pub(super) const COLS: (usize, usize, usize) = (80, 1, 1000);
pub(super) const ROWS: (usize, usize, usize) = (24, 1, 1000);

/// The integer query parameters of a route, checked together before the route does
/// anything: each is `default` when absent, else an integer within its bounds; every
/// parameter out of bounds is told at once (`422` on its name).
struct Bounded<'q> {
    query: &'q Query,
    errors: FieldErrors,
}

impl<'q> Bounded<'q> {
    fn new(query: &'q Query) -> Bounded<'q> {
        Bounded {
            query,
            errors: FieldErrors::default(),
        }
    }

    fn int(&mut self, name: &str, (default, lo, hi): (usize, usize, usize)) -> usize {
        let Some(v) = self.query.get(name) else {
            return default;
        };
        match v.parse::<usize>().ok().filter(|n| (lo..=hi).contains(n)) {
            Some(n) => n,
            None => {
                let msg = format!("must be an integer from {lo} to {hi}");
                self.errors.add(name, msg);
                default
            }
        }
    }

    fn done(self) -> Result<(), Error> {
        self.errors.into_result(()).map_err(Error::Invalid)
    }
}

/// `<RFC3339Nano> <text>`: one WebSocket message per line (seed `002`).
fn line_message(l: &LogLine) -> Message {
    Message::text(format!("{} {}", l.timestamp, l.text))
}

/// `GET …/logs`: recent lines as JSON, or as a WebSocket upgrade `tail` lines and then
/// every new one. Both `limit` and `tail` are checked on both paths before anything else.
pub async fn logs(mut c: Call) -> Result<Reply, ApiError> {
    let mut q = Bounded::new(&c.query);
    let limit = q.int("limit", LIMIT);
    let tail = q.int("tail", TAIL);
    q.done()?;
    let rec = c.container()?.clone();
    if c.ws.is_some() {
        let ws = c.upgrade()?;
        let s = c.svc.inside.follow_logs(&rec, tail).await?;
        return Ok(ws
            .on_upgrade(move |socket| follow(socket, s))
            .into_response());
    }
    let lines = c.svc.inside.recent_logs(&rec, limit).await?;
    json(&serde_json::json!({"container_id": rec.id, "lines": lines}))
}

/// `GET …/terminal` (WebSocket): a PTY shell in the container; `cols` and `rows` are checked
/// before the upgrade is.
pub async fn terminal(mut c: Call) -> Result<Reply, ApiError> {
    let mut q = Bounded::new(&c.query);
    let cols = q.int("cols", COLS) as u16;
    let rows = q.int("rows", ROWS) as u16;
    q.done()?;
    let ws = c.upgrade()?;
    let s = c.svc.inside.terminal(c.container()?, cols, rows).await?;
    Ok(ws
        .on_upgrade(move |socket| relay(socket, s))
        .into_response())
}

pub async fn metrics(c: Call) -> Result<Reply, ApiError> {
    json(&c.svc.inside.metrics(c.container()?).await?)
}

/// Agent log frames → one WebSocket message per line, until the container stops or the
/// client leaves (dropping the stream tells the agent to stop).
async fn follow(socket: WebSocket, mut s: AgentStream) {
    let (mut tx, mut rx) = socket.split();
    let _ = s.send.finish();
    loop {
        tokio::select! {
            batch = read_frame::<_, Vec<LogLine>>(&mut s.recv) => match batch {
                Ok(Some(lines)) => {
                    for l in &lines {
                        if tx.feed(line_message(l)).await.is_err() {
                            return;
                        }
                    }
                    if tx.flush().await.is_err() {
                        return;
                    }
                }
                _ => break,
            },
            m = rx.next() => match m {
                Some(Ok(m)) if !m.is_close() => {}
                _ => return,
            },
        }
    }
    let _ = tx.close().await;
}

fn input_of(m: &Message) -> Option<TerminalInput> {
    if m.is_binary() {
        return Some(TerminalInput::Data {
            data: m.as_bytes().to_vec(),
        });
    }
    let text = m.to_str().ok()?;
    if let Ok(TerminalInput::Resize { cols, rows }) = serde_json::from_str::<TerminalInput>(text) {
        return Some(TerminalInput::Resize { cols, rows });
    }
    Some(TerminalInput::Data {
        data: text.as_bytes().to_vec(),
    })
}

/// WebSocket ⇄ agent terminal stream, until either side ends.
async fn relay(socket: WebSocket, s: AgentStream) {
    let (mut tx, mut rx) = socket.split();
    let AgentStream { mut send, mut recv } = s;
    let upstream = async {
        while let Some(Ok(m)) = rx.next().await {
            if m.is_close() {
                break;
            }
            let Some(input) = input_of(&m) else { continue };
            if write_frame(&mut send, &input).await.is_err() {
                break;
            }
        }
        let _ = send.finish();
    };
    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match recv.read(&mut buf).await {
                Ok(None) | Ok(Some(0)) | Err(_) => break,
                Ok(Some(n)) => {
                    if tx.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.close().await;
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// `POST …/exec`: runs a command to its end and answers its exit status and output; `409
/// not_running` when the container is not running.
pub async fn exec(c: Call, body: ExecBody) -> Result<Reply, ApiError> {
    let exec = body.validate(&()).map_err(Error::Invalid)?;
    let res = c
        .svc
        .inside
        .exec(c.container()?, &exec)
        .await
        .map_err(|e| match e {
            Error::NotRunning(m) => ApiError::ExecNotRunning(m),
            e => e.into(),
        })?;
    json(&ExecOutput {
        exit_code: res.exit_code,
        stdout: exec.encoding.encode(&res.stdout),
        stderr: exec.encoding.encode(&res.stderr),
        encoding: exec.encoding.as_str().to_string(),
        truncated: res.truncated,
        timed_out: res.timed_out,
    })
}
