//! Ingress rules (seed `001`): an allowed external port on the container's host → a
//! container port. 8000–8999 have one owner per host; 80 and 443 are shared and routed by
//! name; 443 turns on `https_enabled`. The agent does the forwarding.

use super::settings::Change;
use super::Containers;
use crate::error::Error;
use crate::store::{ContainerRecord, IngressRecord};
use berth_shared::api::IngressRule;

pub fn view(i: &IngressRecord) -> IngressRule {
    IngressRule {
        id: i.id,
        port: i.port,
        target_port: i.target_port,
        created_at: i.created_at,
    }
}

fn taken_here(port: u16) -> Error {
    Error::Conflict(format!("port {port} already has a rule on this container"))
}

impl Containers {
    pub async fn add_ingress(
        &self,
        rec: &ContainerRecord,
        (port, target_port): (u16, u16),
    ) -> Result<IngressRule, Error> {
        // Ports are unique per host: one decision at a time, as for placement.
        let _guard = self.placement_turn().await?;
        if rec.ingress.iter().any(|i| i.port == port) {
            return Err(taken_here(port));
        }
        if let Some(host) = rec
            .host_key
            .as_deref()
            .filter(|_| (8000..=8999).contains(&port))
        {
            let taken = self
                .store
                .host_containers(host)
                .await?
                .into_iter()
                .any(|c| c.id != rec.id && c.ingress.iter().any(|i| i.port == port));
            if taken {
                return Err(Error::Conflict(format!(
                    "port {port} is already used on this container's host"
                )));
            }
        }
        let rule = IngressRecord {
            id: self.store.next_id().await?,
            port,
            target_port,
            created_at: berth_shared::time::now_unix().0,
        };
        self.modify(&rec.id, "ingress_added", |r| {
            if r.ingress.iter().any(|i| i.port == port) {
                return Err(taken_here(port));
            }
            r.ingress.push(rule.clone());
            Ok(Change::Spec)
        })
        .await?;
        Ok(view(&rule))
    }

    pub async fn delete_ingress(&self, rec: &ContainerRecord, port: &str) -> Result<(), Error> {
        let port: u16 = port.parse().map_err(|_| Error::NotFound)?;
        self.modify(&rec.id, "ingress_removed", |r| {
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
