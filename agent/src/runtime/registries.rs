//! The registries this agent may pull from: those its own `[images] registries` names (plain
//! URLs), and those the coordinator describes along with a spec that pulls from them (CA,
//! credentials) — kept in memory only, never written to the agent's state. One client per
//! registry, kept while its access stays the same, so bearer tokens are reused.

use berth_registry::{Registry, RegistryAccess, RegistryError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Registries {
    configured: Vec<RegistryAccess>,
    clients: Mutex<HashMap<String, (RegistryAccess, Arc<Registry>)>>,
}

impl Registries {
    /// `urls`: the agent's `[images] registries` (`http://` ones are insecure by scheme).
    pub fn new(urls: &[String]) -> Registries {
        Registries {
            configured: urls.iter().map(|u| RegistryAccess::plain(u)).collect(),
            clients: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (RegistryAccess, Arc<Registry>)>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How to reach a registry, as the coordinator describes it; replaces what was known.
    pub fn remember(&self, access: RegistryAccess) {
        let Some(authority) = access.authority().map(str::to_string) else {
            tracing::warn!(url = %access.url, "ignoring a registry that is not http(s)://host[:port]");
            return;
        };
        let mut clients = self.lock();
        if clients.get(&authority).is_some_and(|(a, _)| *a == access) {
            return;
        }
        match Registry::new(&access) {
            Ok(r) => {
                clients.insert(authority, (access, Arc::new(r)));
            }
            Err(e) => {
                tracing::warn!(registry = %authority, error = %e, "cannot use the registry as described");
                clients.remove(&authority);
            }
        }
    }

    /// The client for the registry image references name `authority`; `None` when neither
    /// the coordinator nor this agent's configuration names it.
    pub fn client(&self, authority: &str) -> Result<Option<Arc<Registry>>, RegistryError> {
        if let Some((_, r)) = self.lock().get(authority) {
            return Ok(Some(r.clone()));
        }
        let Some(access) = self
            .configured
            .iter()
            .find(|a| a.authority() == Some(authority))
        else {
            return Ok(None);
        };
        let r = Arc::new(Registry::new(access)?);
        self.lock()
            .insert(authority.to_string(), (access.clone(), r.clone()));
        Ok(Some(r))
    }
}
