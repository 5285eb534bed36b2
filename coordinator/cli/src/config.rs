//! The stored login: `$XDG_CONFIG_HOME/berth/config.toml` (else `~/.config/berth/`), written
//! with mode 0600 since it holds a token. `BERTH_API` and `BERTH_TOKEN` override it.

use crate::error::CliError;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Login {
    pub api: String,
    pub token: String,
}

/// Where the login is kept.
pub fn path() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".config"),
            None => {
                return Err(CliError::Other(
                    "neither XDG_CONFIG_HOME nor HOME is set".into(),
                ))
            }
        },
    };
    Ok(base.join("berth").join("config.toml"))
}

fn file_err(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.display().to_string();
    move |source| CliError::File { what, path, source }
}

/// The login in effect: the file's, with the environment over it.
pub fn load() -> Result<Login, CliError> {
    let p = path()?;
    let mut login = match std::fs::read_to_string(&p) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| CliError::Other(format!("{} is not a berth login: {e}", p.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Login::default(),
        Err(e) => return Err(file_err("reading", &p)(e)),
    };
    if let Some(api) = std::env::var("BERTH_API").ok().filter(|v| !v.is_empty()) {
        login.api = api;
    }
    if let Some(token) = std::env::var("BERTH_TOKEN").ok().filter(|v| !v.is_empty()) {
        login.token = token;
    }
    if login.api.is_empty() || login.token.is_empty() {
        return Err(CliError::NoLogin);
    }
    login.api = login.api.trim_end_matches('/').to_string();
    Ok(login)
}

/// Writes the login (0600, replaced atomically).
pub fn save(login: &Login) -> Result<PathBuf, CliError> {
    let p = path()?;
    let dir = p.parent().map(PathBuf::from).unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(file_err("creating", &dir))?;
    let tmp = p.with_extension("toml.tmp");
    let text = toml::to_string(login).map_err(|e| CliError::Other(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(file_err("writing", &tmp))?;
    f.write_all(text.as_bytes())
        .map_err(file_err("writing", &tmp))?;
    f.sync_all().map_err(file_err("writing", &tmp))?;
    std::fs::rename(&tmp, &p).map_err(file_err("writing", &p))?;
    Ok(p)
}
