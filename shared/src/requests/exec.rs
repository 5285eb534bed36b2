//! The body of `POST …/exec`: argv, stdin, environment, timeout and the output encoding.

use super::{Check, ExecBody, Validate, STRING, STRINGS, STRING_MAP};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest a command may run.
pub const MAX_EXEC_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ARGS: usize = 1024;

/// How stdin is sent and stdout/stderr come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 text.
    Text,
    /// Base64 of the bytes, for binary data.
    Base64,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Text => "text",
            Encoding::Base64 => "base64",
        }
    }

    /// Output bytes as the answer carries them.
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Text => String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Base64 => STANDARD.encode(bytes),
        }
    }
}

/// A checked exec request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub command: Vec<String>,
    pub stdin: Vec<u8>,
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub encoding: Encoding,
}

impl Validate for ExecBody {
    type Valid = Exec;
    type Context<'a> = ();

    fn check(self, _: &(), c: &mut Check) -> Option<Exec> {
        let command = c.required("command", self.command, STRINGS);
        if let Some(cmd) = &command {
            if cmd.is_empty() || cmd[0].is_empty() {
                c.errors.add(
                    "command",
                    "must name a program: a non-empty list whose first item is not empty",
                );
            } else if cmd.len() > MAX_ARGS || cmd.iter().any(|a| a.contains('\0')) {
                c.errors.add(
                    "command",
                    format!("must be at most {MAX_ARGS} arguments without NUL"),
                );
            }
        }
        let encoding = match c.optional("encoding", self.encoding, STRING).as_deref() {
            None | Some("text") => Some(Encoding::Text),
            Some("base64") => Some(Encoding::Base64),
            Some(_) => {
                c.errors.add("encoding", "must be text or base64");
                None
            }
        };
        let stdin = c.optional("stdin", self.stdin, STRING).unwrap_or_default();
        let stdin = match encoding {
            Some(Encoding::Base64) => match STANDARD.decode(stdin.as_bytes()) {
                Ok(b) => Some(b),
                Err(_) => {
                    c.errors
                        .add("stdin", "must be base64 (the encoding is base64)");
                    None
                }
            },
            _ => Some(stdin.into_bytes()),
        };
        let env = c.optional("env", self.env, STRING_MAP).unwrap_or_default();
        if let Err(m) = crate::validation::check_env(&env) {
            c.errors.add("env", m);
        }
        let timeout = match c.optional("timeout", self.timeout, STRING) {
            None => Some(DEFAULT_TIMEOUT),
            Some(t) => {
                let d = crate::time::parse_duration(&t)
                    .ok()
                    .filter(|d| *d >= Duration::from_secs(1) && *d <= MAX_EXEC_TIMEOUT);
                if d.is_none() {
                    c.errors
                        .add("timeout", "must be a duration from 1s to 10m, such as 30s");
                }
                d
            }
        };
        Some(Exec {
            command: command?,
            stdin: stdin?,
            env,
            timeout: timeout?,
            encoding: encoding?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::from_value;
    use serde_json::json;

    fn check(v: serde_json::Value) -> Result<Exec, Vec<String>> {
        let b: ExecBody = from_value(v).expect("an object");
        b.validate(&()).map_err(|e| e.0.keys().cloned().collect())
    }

    #[test]
    fn a_command_with_defaults_and_bad_fields_each_named() {
        let ok = check(json!({"command": ["sh", "-c", "echo hi"]})).expect("valid");
        assert_eq!(ok.timeout, DEFAULT_TIMEOUT);
        assert_eq!(ok.encoding, Encoding::Text);
        let b = check(json!({"command": ["cat"], "stdin": "AAE=", "encoding": "base64"}))
            .expect("valid");
        assert_eq!(b.stdin, vec![0, 1]);
        let bad =
            check(json!({"command": [], "timeout": "0s", "encoding": "hex", "env": {"1x": "y"}}));
        assert_eq!(
            bad.expect_err("invalid"),
            vec!["command", "encoding", "env", "timeout"]
        );
        assert_eq!(check(json!({})).expect_err("required"), vec!["command"]);
        assert_eq!(
            check(json!({"command": "ls"})).expect_err("a list"),
            vec!["command"]
        );
    }
}
