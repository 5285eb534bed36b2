//! Ingress rules (seed `001`): an allowed external port on the container's host → a
//! container port. 8000–8999 have one owner per host; 80 and 443 are shared and routed by
//! name; 443 turns on `https_enabled`. The agent does the forwarding.

use crate::app::{App, Error};
use crate::settings::Change;
use crate::store::IngressRecord;
use berth_shared::api::IngressRule;
use berth_shared::validation::{self, Fields};
use std::sync::Arc;

fn view(i: &IngressRecord) -> IngressRule {
    IngressRule {
        id: i.id,
        port: i.port,
        target_port: i.target_port,
        created_at: i.created_at,
    }
}

impl App {
    pub fn ingress(&self, user: &str, id: &str) -> Result<Vec<IngressRule>, Error> {
        Ok(self.owned(user, id)?.ingress.iter().map(view).collect())
    }

    pub async fn add_ingress(
        self: &Arc<Self>,
        user: &str,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<IngressRule, Error> {
        let mut f = Fields::new(body).map_err(Error::Invalid)?;
        let port = f.uint("port");
        let target = f.uint("target_port");
        let mut e = f.errors;
        let port = match port.map(validation::check_ingress_port) {
            Some(Ok(p)) => Some(p),
            Some(Err(m)) => {
                e.add("port", m);
                None
            }
            None => {
                if !e.0.contains_key("port") {
                    e.add("port", "is required");
                }
                None
            }
        };
        if target.is_some_and(|t| !(1..=65535).contains(&t)) {
            e.add("target_port", "must be 1-65535");
        }
        let Some(port) = port.filter(|_| e.is_empty()) else {
            return Err(Error::Invalid(e));
        };
        let target_port = target.map(|t| t as u16).unwrap_or(port);

        let _guard = self.quota_lock.lock().await;
        let rec = self.owned(user, id)?;
        if rec.ingress.iter().any(|i| i.port == port) {
            return Err(Error::Conflict(format!(
                "port {port} already has a rule on this container"
            )));
        }
        if (8000..=8999).contains(&port) {
            if let Some(host) = &rec.host_key {
                let taken = self.store.all_containers()?.into_iter().any(|c| {
                    c.id != rec.id
                        && c.host_key.as_ref() == Some(host)
                        && c.ingress.iter().any(|i| i.port == port)
                });
                if taken {
                    return Err(Error::Conflict(format!(
                        "port {port} is already used on this container's host"
                    )));
                }
            }
        }
        let rule = IngressRecord {
            id: self.store.next_key_id()?,
            port,
            target_port,
            created_at: berth_shared::time::now_unix().0,
        };
        let added = rule.clone();
        self.modify(user, id, "ingress_added", |r| {
            if r.ingress.iter().any(|i| i.port == port) {
                return Err(Error::Conflict(format!(
                    "port {port} already has a rule on this container"
                )));
            }
            r.ingress.push(added.clone());
            Ok(Change::Spec)
        })
        .await?;
        Ok(view(&rule))
    }

    pub async fn delete_ingress(
        self: &Arc<Self>,
        user: &str,
        id: &str,
        port: &str,
    ) -> Result<(), Error> {
        let port: u16 = port.parse().map_err(|_| Error::NotFound)?;
        self.modify(user, id, "ingress_removed", |r| {
            let before = r.ingress.len();
            r.ingress.retain(|i| i.port != port);
            if r.ingress.len() == before {
                return Err(Error::NotFound);
            }
            Ok(Change::Spec)
        })
        .await?;
        Ok(())
    }
}
