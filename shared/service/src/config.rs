//! Config-file loading shared by both programs: TOML, then environment overrides, then
//! deserialisation into the program's typed config, then the program's own checks; and the
//! one way a `main` gives up on a bad config (exit 78, `EX_CONFIG`).
//!
//! Environment overrides address a key by its path, upper-cased, joined by `__`, after the
//! program's prefix: `BERTH_COORDINATOR__API__LISTEN=0.0.0.0:8080` sets `[api] listen`.
//! A value is read as a TOML literal when it parses as one (numbers, booleans, arrays) and as
//! a string otherwise.

use serde::de::DeserializeOwned;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("config {path}: {message}")]
    Invalid { path: String, message: String },
}

/// Reads `path`, applies `PREFIX__…` environment overrides and deserialises.
pub fn load<T: DeserializeOwned>(path: &Path, env_prefix: &str) -> Result<T, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let mut value: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: shown.clone(),
        source: Box::new(source),
    })?;
    apply_env(&mut value, env_prefix, std::env::vars());
    toml::Value::Table(value)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid {
            path: shown,
            message: e.message().to_string(),
        })
}

/// [`load`], then `check` (the program's rules serde cannot say); its message becomes
/// [`ConfigError::Invalid`].
pub fn load_checked<T: DeserializeOwned>(
    path: &Path,
    env_prefix: &str,
    check: impl FnOnce(&T) -> Result<(), String>,
) -> Result<T, ConfigError> {
    let cfg: T = load(path, env_prefix)?;
    match check(&cfg) {
        Ok(()) => Ok(cfg),
        Err(message) => Err(ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        }),
    }
}

/// A program's typed config file: where its environment overrides live and the rules serde
/// cannot say.
pub trait ConfigFile: DeserializeOwned {
    /// The prefix of its environment overrides, e.g. `BERTH_AGENT`.
    const ENV_PREFIX: &'static str;

    /// Checks what deserialising cannot; the message names the key (`[section] key …`).
    fn validate(&self) -> Result<(), String>;

    /// Reads `path`, applies the environment overrides, deserialises and validates.
    fn load(path: &Path) -> Result<Self, ConfigError> {
        load_checked(path, Self::ENV_PREFIX, Self::validate)
    }
}

/// `EX_CONFIG` from sysexits.h: systemd's `RestartPreventExitStatus=78` stops a restart loop
/// on a config that will not get better by itself.
pub const EX_CONFIG: i32 = 78;

/// The config at `path`, or, when it cannot be loaded, `error: …` on stderr and exit 78.
pub fn load_or_exit<T: ConfigFile>(path: &Path) -> T {
    match T::load(path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(EX_CONFIG);
        }
    }
}

fn parse_literal(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

pub fn apply_env(
    table: &mut toml::Table,
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) {
    let start = format!("{prefix}__");
    for (k, v) in vars {
        let Some(path) = k.strip_prefix(&start) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let Some((last, parents)) = keys.split_last() else {
            continue;
        };
        let mut t = &mut *table;
        for p in parents {
            let entry = t
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            let toml::Value::Table(next) = entry else {
                unreachable!("made a table above")
            };
            t = next;
        }
        t.insert(last.clone(), parse_literal(&v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_nested_keys_with_typed_literals() {
        let mut t: toml::Table = toml::from_str("[api]\nlisten = \"a\"\n").expect("toml");
        apply_env(
            &mut t,
            "BERTH_X",
            vec![
                ("BERTH_X__API__LISTEN".into(), "0.0.0.0:1".into()),
                ("BERTH_X__LIMITS__MAX_CONTAINERS".into(), "7".into()),
                ("OTHER__API__LISTEN".into(), "no".into()),
            ],
        );
        assert_eq!(t["api"]["listen"].as_str(), Some("0.0.0.0:1"));
        assert_eq!(t["limits"]["max_containers"].as_integer(), Some(7));
    }

    #[derive(Debug, serde::Deserialize)]
    struct Small {
        port: u16,
    }

    fn written(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-service-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write config");
        path
    }

    #[test]
    fn checks_run_after_deserialising_and_name_the_file() {
        let path = written("small.toml", "port = 80\n");
        let ok: Small = load_checked(&path, "BERTH_TEST_UNSET", |_: &Small| Ok(())).expect("ok");
        assert_eq!(ok.port, 80);
        let refused = load_checked(&path, "BERTH_TEST_UNSET", |s: &Small| {
            if s.port < 1024 {
                Err("port must be at least 1024".to_string())
            } else {
                Ok(())
            }
        });
        match refused {
            Err(ConfigError::Invalid { path: p, message }) => {
                assert_eq!(p, path.display().to_string());
                assert_eq!(message, "port must be at least 1024");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let missing = load_checked(
            &path.with_file_name("missing.toml"),
            "BERTH_TEST_UNSET",
            |_: &Small| Ok(()),
        );
        assert!(
            matches!(missing, Err(ConfigError::Read { .. })),
            "{missing:?}"
        );
    }
}
