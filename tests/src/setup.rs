//! The opening most suites share: a started cluster, the user `alice` with one SSH key of hers
//! registered, and a running container of hers made with that key.

use crate::{Cluster, User};
use anyhow::{Context, Result};
use serde_json::{json, Value};

/// What [`Setup::running`] made; the field names are the ones the suites use for them.
pub struct Setup {
    /// The cluster, started.
    pub c: Cluster,
    /// The user `alice`.
    pub alice: User,
    /// The id of alice's SSH key.
    pub key: u64,
    /// The id of alice's running container.
    pub id: String,
}

impl Setup {
    /// Starts a cluster, registers a fresh key named `key_name` for `alice` and creates a
    /// container from `body` (an object; `ssh_key_ids` is set to that key) that is running.
    pub async fn running(key_name: &str, mut body: Value) -> Result<Setup> {
        let c = Cluster::start().await?;
        let alice = c.user("alice")?;
        let key = alice.add_key(key_name).await?;
        body.as_object_mut()
            .context("a container body is a JSON object")?
            .insert("ssh_key_ids".into(), json!([key]));
        let id = c.running_container(&alice, body).await?;
        Ok(Setup { c, alice, key, id })
    }
}
