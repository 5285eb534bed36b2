//! The short forms `berth create` takes for a restart policy and a health check, turned into
//! the API's JSON: `--restart on-failure:5`, `--health http:8080/healthz`, `--health tcp:5432`,
//! `--health 'exec:pg_isready -q'`. The API validates the rest (ranges, durations).

use serde_json::{json, Map, Value};

/// `MODE[:MAX_RETRIES]` → `restart_policy`.
pub fn restart(s: &str) -> Result<Value, String> {
    let (mode, max) = match s.split_once(':') {
        Some((m, n)) => {
            let n: u64 = n
                .parse()
                .map_err(|_| format!("--restart {s:?}: the retries after ':' must be a number"))?;
            (m, Some(n))
        }
        None => (s, None),
    };
    if !["no", "on-failure", "always"].contains(&mode) {
        return Err(format!(
            "--restart {s:?}: the mode is no, on-failure or always (e.g. on-failure:5)"
        ));
    }
    let mut p = Map::new();
    p.insert("mode".into(), json!(mode));
    if let Some(n) = max {
        p.insert("max_retries".into(), json!(n));
    }
    Ok(Value::Object(p))
}

/// `http:PORT[/PATH]`, `tcp:PORT` or `exec:COMMAND ARGS…` → `health_check`, with the
/// interval and grace when given (`10s`, `500ms`).
pub fn health(s: &str, interval: Option<&str>, grace: Option<&str>) -> Result<Value, String> {
    let usage = || format!("--health {s:?}: write http:PORT[/PATH], tcp:PORT or exec:COMMAND");
    let (kind, rest) = s.split_once(':').ok_or_else(usage)?;
    let port = |p: &str| p.parse::<u64>().map_err(|_| usage());
    let mut c = Map::new();
    c.insert("type".into(), json!(kind));
    match kind {
        "http" => {
            let (p, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            c.insert("port".into(), json!(port(p)?));
            c.insert("path".into(), json!(path));
        }
        "tcp" => drop(c.insert("port".into(), json!(port(rest)?))),
        "exec" => {
            let argv: Vec<&str> = rest.split_whitespace().collect();
            if argv.is_empty() {
                return Err(usage());
            }
            c.insert("command".into(), json!(argv));
        }
        _ => return Err(usage()),
    }
    for (k, v) in [("interval", interval), ("grace", grace)] {
        if let Some(v) = v {
            c.insert(k.into(), json!(v));
        }
    }
    Ok(Value::Object(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_become_the_api_shapes() {
        assert_eq!(restart("always"), Ok(json!({"mode": "always"})));
        assert_eq!(
            restart("on-failure:5"),
            Ok(json!({"mode": "on-failure", "max_retries": 5}))
        );
        assert!(restart("sometimes").is_err() && restart("no:x").is_err());
        assert_eq!(
            health("http:8080/healthz?full=1", Some("5s"), None),
            Ok(json!({"type": "http", "port": 8080, "path": "/healthz?full=1", "interval": "5s"}))
        );
        assert_eq!(
            health("tcp:5432", None, Some("1m")),
            Ok(json!({"type": "tcp", "port": 5432, "grace": "1m"}))
        );
        assert_eq!(
            health("exec:pg_isready -q", None, None),
            Ok(json!({"type": "exec", "command": ["pg_isready", "-q"]}))
        );
        assert!(health("udp:53", None, None).is_err() && health("exec:", None, None).is_err());
    }
}
