//! Handlers of `/compute/containers` and `/compute/containers/{id}` (and its start, stop,
//! actions, events).

use super::call::{created, json, Call, Reply};
use super::error::ApiError;
use super::page::{newest_first, with_cursor, Page};
use crate::containers::WaitFor;
use crate::error::Error;
use berth_shared::api::{ContainerList, EventList, StatusOk, WaitOutcome};
use berth_shared::validation::FieldErrors;
use std::time::Duration;

/// The longest one `wait` may take.
pub const MAX_WAIT: Duration = Duration::from_secs(600);
const DEFAULT_WAIT: Duration = Duration::from_secs(60);
use berth_shared::requests::{ActionBody, CreateBody, PatchBody, Validate};

pub async fn list(c: Call) -> Result<Reply, ApiError> {
    let page = Page::from_query(&c.query)?;
    let mine = c.svc.containers.mine(&c.user.id).await?;
    let (mine, next_cursor) = page.take(mine, |r| newest_first(r.created_at, &r.id));
    let containers = mine.iter().map(|r| c.svc.containers.view(r)).collect();
    let reply = json(&ContainerList {
        containers,
        next_cursor: next_cursor.clone(),
    })?;
    Ok(with_cursor(reply, next_cursor.as_deref()))
}

pub async fn create(c: Call, body: CreateBody) -> Result<Reply, ApiError> {
    created(&c.svc.containers.create(&c.user.id, body).await?)
}

pub async fn get(c: Call) -> Result<Reply, ApiError> {
    json(&c.svc.containers.view(c.container()?))
}

pub async fn patch(c: Call, body: PatchBody) -> Result<Reply, ApiError> {
    json(&c.svc.containers.patch(c.container()?, body).await?)
}

pub async fn delete(c: Call) -> Result<Reply, ApiError> {
    c.svc.containers.delete(c.container()?).await?;
    json(&StatusOk::ok())
}

pub async fn start(c: Call) -> Result<Reply, ApiError> {
    json(&c.svc.containers.start(c.container()?).await?)
}

pub async fn stop(c: Call) -> Result<Reply, ApiError> {
    json(&c.svc.containers.stop(c.container()?).await?)
}

pub async fn action(c: Call, body: ActionBody) -> Result<Reply, ApiError> {
    let action = body.validate(&()).map_err(crate::error::Error::Invalid)?;
    json(&c.svc.containers.action(c.container()?, action).await?)
}

pub async fn events(c: Call) -> Result<Reply, ApiError> {
    let page = Page::from_query(&c.query)?;
    let history = c.svc.containers.history(c.container()?).await?;
    let (history, next_cursor) =
        page.take(history, |(seq, _)| super::page::ascending(u64::MAX - seq));
    let events = history.into_iter().map(|(_, e)| e).collect();
    let reply = json(&EventList {
        events,
        next_cursor: next_cursor.clone(),
    })?;
    Ok(with_cursor(reply, next_cursor.as_deref()))
}

/// `?status=running|stopped|deleted` (default `running`) and `?timeout=` (default `60s`, at
/// most `10m`): answers when the container gets there, `408` when the time is up.
pub async fn wait(c: Call) -> Result<Reply, ApiError> {
    let mut errors = FieldErrors::default();
    let want = match c.query.get("status") {
        None => Some(WaitFor::Running),
        Some(s) => WaitFor::parse(s),
    };
    if want.is_none() {
        errors.add("status", "must be running, stopped or deleted");
    }
    let timeout = match c.query.get("timeout") {
        None => Some(DEFAULT_WAIT),
        Some(t) => berth_shared::time::parse_duration(t)
            .ok()
            .filter(|d| !d.is_zero() && *d <= MAX_WAIT),
    };
    if timeout.is_none() {
        errors.add(
            "timeout",
            "must be a duration from 1ms to 10m, such as 30s or 5m",
        );
    }
    let (Some(want), Some(timeout)) = (want, timeout) else {
        return Err(Error::Invalid(errors).into());
    };
    let rec = c.container()?;
    let now = c.svc.containers.wait_for(rec, want, timeout).await?;
    json(&WaitOutcome {
        id: rec.id.clone(),
        status: want.as_str().to_string(),
        container: now.as_ref().map(|r| c.svc.containers.view(r)),
    })
}
