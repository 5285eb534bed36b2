//! A container named on the command line by its id or its name.

use crate::client::Client;
use crate::error::CliError;
use serde_json::Value;

/// Whether `s` looks like a container id (8 lowercase letters and digits).
fn looks_like_id(s: &str) -> bool {
    s.len() == 8
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The container `name_or_id` of the caller: by id first, else by name.
pub async fn container(client: &Client, name_or_id: &str) -> Result<Value, CliError> {
    if looks_like_id(name_or_id) {
        match client
            .get(&format!("/compute/containers/{name_or_id}"))
            .await
        {
            Ok(c) => return Ok(c),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let all = client.all("/compute/containers", "containers").await?;
    all.into_iter()
        .find(|c| c["name"] == name_or_id)
        .ok_or_else(|| {
            CliError::Other(format!(
                "no container named or numbered {name_or_id:?} (404)"
            ))
        })
}

/// Its id.
pub async fn id(client: &Client, name_or_id: &str) -> Result<String, CliError> {
    let c = container(client, name_or_id).await?;
    Ok(c["id"].as_str().unwrap_or_default().to_string())
}
