//! How a container is looked after on its host: its restart policy (what an exit nobody asked
//! for leads to, with which backoff) and its health check (how the agent tells that it is
//! sick). One definition for the API's JSON, the store and the protocol; the agent runs them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The first wait before a restart; it doubles with every exit in a row.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait before a restart.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A run at least this long ends a crash loop: the next exit starts the backoff afresh.
pub const STABLE_RUN: Duration = Duration::from_secs(600);
/// What a `status_reason` starts with once a crash loop ended at `max_retries`.
pub const CRASH_LOOP: &str = "crash_loop";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartMode {
    /// Never restarted: an exit leaves it stopped.
    No,
    /// Restarted when it exits with a status other than 0 (or fails its health check).
    OnFailure,
    /// Restarted whatever the status: the seeds' containers are machines that stay up.
    #[default]
    Always,
}

impl RestartMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartMode::No => "no",
            RestartMode::OnFailure => "on-failure",
            RestartMode::Always => "always",
        }
    }
}

/// `restart_policy`: the mode and, optionally, how many restarts in a row a crash loop gets
/// before the container is left `stopped` with reason `crash_loop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RestartPolicy {
    #[serde(default)]
    pub mode: RestartMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// What an exit nobody asked for leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterExit {
    /// Restart after this wait.
    Restart(Duration),
    /// Leave it stopped, for this reason.
    Stay(String),
}

impl RestartPolicy {
    /// What an exit with `status` leads to, when `streak` exits in a row (this one not
    /// counted) came before it without a stable run. `unhealthy`: the agent stopped it for
    /// failing its health check.
    pub fn after_exit(&self, status: u32, streak: u32, unhealthy: bool) -> AfterExit {
        let failed = status != 0 || unhealthy;
        match self.mode {
            RestartMode::No => {
                return AfterExit::Stay(format!("exited with status {status} (restart policy: no)"))
            }
            RestartMode::OnFailure if !failed => {
                return AfterExit::Stay("exited with status 0 (restart policy: on-failure)".into())
            }
            _ => {}
        }
        match self.max_retries {
            Some(max) if streak >= max => AfterExit::Stay(format!(
                "{CRASH_LOOP}: exited {} times in a row, last with status {status}; \
                 max_retries is {max}",
                streak + 1
            )),
            _ => AfterExit::Restart(backoff(streak)),
        }
    }

    /// Whether a container that failed its health check is restarted.
    pub fn restarts_unhealthy(&self) -> bool {
        self.mode != RestartMode::No
    }
}

/// The wait before the restart that follows `streak` earlier exits in a row: 1 s doubling,
/// at most 5 minutes.
pub fn backoff(streak: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(1u32 << streak.min(16))
        .min(BACKOFF_MAX)
}

/// How a health check asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Probe {
    /// `GET path` on the container's address and `port`: healthy on 2xx or 3xx.
    Http { port: u16, path: String },
    /// A TCP connection to the container's address and `port`.
    Tcp { port: u16 },
    /// A command run inside the container: healthy when it exits 0.
    Exec { command: Vec<String> },
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Http { .. } => "http",
            Probe::Tcp { .. } => "tcp",
            Probe::Exec { .. } => "exec",
        }
    }
}

/// `health_check`: a probe, how often, how long each may take, how many failures in a row
/// make the container unhealthy, and the grace after a start before failures count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    #[serde(flatten)]
    pub probe: Probe,
    #[serde(with = "seconds")]
    pub interval: Duration,
    #[serde(with = "seconds")]
    pub timeout: Duration,
    pub failures: u32,
    #[serde(with = "seconds")]
    pub grace: Duration,
}

/// What the agent last saw of a container's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Running, and no verdict yet (within the grace, or no check has finished).
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// Durations as the API writes them: `"10s"`, or `"1500ms"` when not whole seconds; read with
/// [`crate::time::parse_duration`].
mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if v.subsec_millis() == 0 {
            s.serialize_str(&format!("{}s", v.as_secs()))
        } else {
            s.serialize_str(&format!("{}ms", v.as_millis()))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        crate::time::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_five_minutes() {
        let secs: Vec<u64> = (0..11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn exits_follow_the_mode_and_the_retry_limit() {
        let always = RestartPolicy::default();
        assert_eq!(
            always.after_exit(0, 0, false),
            AfterExit::Restart(BACKOFF_FIRST)
        );
        assert_eq!(
            always.after_exit(1, 1000, false),
            AfterExit::Restart(BACKOFF_MAX)
        );
        let no = RestartPolicy {
            mode: RestartMode::No,
            max_retries: None,
        };
        assert!(matches!(no.after_exit(1, 0, false), AfterExit::Stay(_)));
        assert!(!no.restarts_unhealthy());
        let on_failure = RestartPolicy {
            mode: RestartMode::OnFailure,
            max_retries: Some(2),
        };
        assert!(matches!(
            on_failure.after_exit(0, 0, false),
            AfterExit::Stay(_)
        ));
        assert_eq!(
            on_failure.after_exit(0, 0, true),
            AfterExit::Restart(BACKOFF_FIRST)
        );
        assert_eq!(
            on_failure.after_exit(137, 1, false),
            AfterExit::Restart(Duration::from_secs(2))
        );
        match on_failure.after_exit(137, 2, false) {
            AfterExit::Stay(r) => assert!(r.starts_with(CRASH_LOOP), "{r}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_health_check_reads_and_writes_the_api_shape() {
        let v = serde_json::json!({"type":"http","port":8080,"path":"/healthz",
            "interval":"10s","timeout":"1500ms","failures":3,"grace":"30s"});
        let c: HealthCheck = serde_json::from_value(v.clone()).expect("parse");
        assert_eq!(
            c.probe,
            Probe::Http {
                port: 8080,
                path: "/healthz".into()
            }
        );
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(serde_json::to_value(&c).expect("write"), v);
        let p = RestartPolicy {
            mode: RestartMode::OnFailure,
            max_retries: Some(3),
        };
        assert_eq!(
            serde_json::to_value(p).expect("write"),
            serde_json::json!({"mode":"on-failure","max_retries":3})
        );
    }
}
