//! A container or an SSH key named on the command line by its id or its name.

use crate::client::Client;
use crate::error::CliError;
use serde_json::Value;

/// The container `name_or_id` of the caller: by id first, else by name.
pub async fn container(client: &Client, name_or_id: &str) -> Result<Value, CliError> {
    if berth_shared::ids::is_container_id(name_or_id) {
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

/// The key named or numbered `name_or_id` among `keys` (a `GET /compute/ssh-keys` list).
pub fn key<'k>(keys: &'k [Value], name_or_id: &str) -> Result<&'k Value, CliError> {
    let id = name_or_id.parse::<u64>().ok();
    keys.iter()
        .find(|k| k["name"] == name_or_id || (id.is_some() && k["id"].as_u64() == id))
        .ok_or_else(|| {
            CliError::Other(format!("no SSH key named or numbered {name_or_id:?} (404)"))
        })
}
