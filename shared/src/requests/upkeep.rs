//! The `restart_policy` and `health_check` fields of create and PATCH: read from the JSON a
//! client sent, every problem a message on its own field (`health_check.port`, …).

use super::Check;
use crate::upkeep::{HealthCheck, Probe, RestartMode, RestartPolicy};
use serde_json::{Map, Value};
use std::time::Duration;

/// The most restarts in a row a policy may allow before giving up.
pub const MAX_RETRIES: u64 = 10_000;
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_PERIOD: Duration = Duration::from_secs(3600);
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_FAILURES: u64 = 3;
const MAX_FAILURES: u64 = 100;
const MAX_PATH: usize = 1024;
const MAX_ARGS: usize = 64;
const MAX_ARG: usize = 4096;

/// The object under `field`, or a message.
fn object<'v>(c: &mut Check, field: &str, v: &'v Value) -> Option<&'v Map<String, Value>> {
    let o = v.as_object();
    if o.is_none() {
        c.errors.add(field, "must be a JSON object");
    }
    o
}

/// `o[key]` as a non-negative integer within `lo..=hi`.
fn uint(
    c: &mut Check,
    o: &Map<String, Value>,
    field: &str,
    key: &str,
    (lo, hi): (u64, u64),
) -> Option<u64> {
    let v = o.get(key).filter(|v| !v.is_null())?;
    let name = format!("{field}.{key}");
    match v.as_u64() {
        Some(n) if (lo..=hi).contains(&n) => Some(n),
        Some(_) => {
            c.errors
                .add(&name, format!("must be between {lo} and {hi}"));
            None
        }
        None => {
            c.errors.add(&name, super::UINT);
            None
        }
    }
}

/// `o[key]` as a duration (`"10s"`, `"500ms"`) within `lo..=hi`, else `default`.
fn duration(
    c: &mut Check,
    o: &Map<String, Value>,
    field: &str,
    key: &str,
    (lo, hi): (Duration, Duration),
    default: Duration,
) -> Duration {
    let Some(v) = o.get(key).filter(|v| !v.is_null()) else {
        return default;
    };
    let name = format!("{field}.{key}");
    let parsed = v.as_str().map(crate::time::parse_duration);
    match parsed {
        Some(Ok(d)) if d >= lo && d <= hi => return d,
        Some(Ok(_)) => c.errors.add(
            &name,
            format!("must be between {} and {}", show(lo), show(hi)),
        ),
        _ => c
            .errors
            .add(&name, "must be a duration such as \"10s\" or \"500ms\""),
    }
    default
}

fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Reads `restart_policy`: `{"mode":"no"|"on-failure"|"always","max_retries":N}`; the mode
/// defaults to `always`, no `max_retries` means no limit.
pub fn restart_policy(c: &mut Check, v: &Value) -> Option<RestartPolicy> {
    let field = "restart_policy";
    let o = object(c, field, v)?;
    let mode = match o.get("mode").filter(|v| !v.is_null()) {
        None => Some(RestartMode::Always),
        Some(m) => match m.as_str() {
            Some("no") => Some(RestartMode::No),
            Some("on-failure") => Some(RestartMode::OnFailure),
            Some("always") => Some(RestartMode::Always),
            _ => {
                c.errors
                    .add("restart_policy.mode", "must be no, on-failure or always");
                None
            }
        },
    };
    let max_retries = uint(c, o, field, "max_retries", (0, MAX_RETRIES));
    Some(RestartPolicy {
        mode: mode?,
        max_retries: max_retries.map(|n| n as u32),
    })
}

/// Reads `health_check`; `Some(None)` for `{"type":"none"}`, which removes a check (PATCH).
pub fn health_check(c: &mut Check, v: &Value) -> Option<Option<HealthCheck>> {
    let field = "health_check";
    let o = object(c, field, v)?;
    // Every field given is checked whatever the type, so a value the document refuses is
    // never accepted for being ignored; then each type asks for its own.
    let given = |k: &str| o.get(k).is_some_and(|v| !v.is_null());
    let port = uint(c, o, field, "port", (1, 65535)).map(|p| p as u16);
    let path = match o.get("path").filter(|v| !v.is_null()) {
        None => Some("/".to_string()),
        Some(p) => match p.as_str() {
            Some(p)
                if p.starts_with('/')
                    && p.len() <= MAX_PATH
                    && !p.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Some(p.to_string())
            }
            _ => {
                let msg = format!(
                    "must be a path starting with / (at most {MAX_PATH} characters, no spaces)"
                );
                c.errors.add("health_check.path", msg);
                None
            }
        },
    };
    let command = match o.get("command").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match serde_json::from_value::<Vec<String>>(v.clone()) {
            Ok(cmd)
                if !cmd.is_empty()
                    && !cmd[0].is_empty()
                    && cmd.len() <= MAX_ARGS
                    && cmd.iter().all(|a| a.len() <= MAX_ARG && !a.contains('\0')) =>
            {
                Some(cmd)
            }
            _ => {
                let msg = format!(
                    "must be a non-empty list of at most {MAX_ARGS} strings whose first names a program"
                );
                c.errors.add("health_check.command", msg);
                None
            }
        },
    };
    let kind = o.get("type").and_then(Value::as_str);
    if matches!(kind, Some("http" | "tcp")) && !given("port") {
        c.errors
            .add("health_check.port", "is required for this type");
    }
    if kind == Some("exec") && !given("command") {
        c.errors
            .add("health_check.command", "is required for this type");
    }
    let probe = match kind {
        Some("none") => return Some(None),
        Some("http") => port
            .zip(path)
            .map(|(port, path)| Probe::Http { port, path }),
        Some("tcp") => port.map(|port| Probe::Tcp { port }),
        Some("exec") => command.map(|command| Probe::Exec { command }),
        _ => {
            c.errors
                .add("health_check.type", "must be http, tcp, exec or none");
            None
        }
    };
    let interval = duration(
        c,
        o,
        field,
        "interval",
        (MIN_INTERVAL, MAX_PERIOD),
        DEFAULT_INTERVAL,
    );
    let timeout = duration(
        c,
        o,
        field,
        "timeout",
        (MIN_TIMEOUT, MAX_PERIOD),
        DEFAULT_TIMEOUT.min(interval),
    );
    if timeout > interval {
        c.errors.add(
            "health_check.timeout",
            "must not be longer than the interval",
        );
    }
    let grace = duration(
        c,
        o,
        field,
        "grace",
        (Duration::ZERO, MAX_PERIOD),
        DEFAULT_GRACE,
    );
    let failures = uint(c, o, field, "failures", (1, MAX_FAILURES)).unwrap_or(DEFAULT_FAILURES);
    Some(Some(HealthCheck {
        probe: probe?,
        interval,
        timeout,
        failures: failures as u32,
        grace,
    }))
}
