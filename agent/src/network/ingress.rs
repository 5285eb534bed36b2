//! The host's ingress, kept in step with the specs: the 8000–8999 rules of every container
//! that should run become [`Forwards`], its 80/443 rules become the [`Gateway`]'s routes for
//! `<id>.<domain>`. An unhealthy container's names answer 503 and its forwards are closed (the
//! port refuses) until it is healthy again. Also starts the gateway's listeners the config
//! asks for. A failed read of the specs or addresses changes nothing: the routes in force stay.

use super::forward::{self, Forwards};
use super::gateway::{self, Gateway};
use super::routes::Routes;
use crate::config::IngressConfig;
use crate::state::{State, StateError};
use berth_service::listener::Listener;
use berth_service::tls::{self, TlsError};
use berth_shared::protocol::{ContainerSpec, DesiredState};
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("listen {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

pub struct Ingress {
    /// The API's domain: containers' sites are `<id>.<domain>`.
    domain: String,
    forwards: Forwards,
    gateway: Gateway,
}

/// What the specs ask of this host's ingress: forwards (host port → destination) and the
/// gateway's routes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub forwards: HashMap<u16, SocketAddrV4>,
    pub routes: Routes,
}

/// The ingress rules of the containers that should run and hold an address; `unhealthy`
/// ones are routed to a 503 and get no forwards.
pub fn plan(
    specs: &[ContainerSpec],
    addresses: &HashMap<String, Ipv4Addr>,
    unhealthy: &HashSet<String>,
    domain: &str,
) -> Plan {
    let mut plan = Plan::default();
    for s in specs {
        if s.desired != DesiredState::Running {
            continue;
        }
        let Some(&ip) = addresses.get(&s.id) else {
            continue;
        };
        let down = unhealthy.contains(&s.id);
        for r in &s.ingress {
            let dest = SocketAddrV4::new(ip, r.target_port);
            let name = format!("{}.{domain}", s.id);
            if down {
                if matches!(r.port, 80 | 443) {
                    plan.routes.down.insert(name);
                }
                continue;
            }
            match r.port {
                80 => drop(plan.routes.http.insert(name, dest)),
                443 => drop(plan.routes.https.insert(name, dest)),
                p if forward::RANGE.contains(&p) => drop(plan.forwards.insert(p, dest)),
                _ => {}
            }
        }
    }
    plan
}

impl Ingress {
    pub fn new(cfg: &IngressConfig) -> Ingress {
        Ingress {
            domain: cfg.domain.clone().unwrap_or_default(),
            forwards: Forwards::default(),
            gateway: Gateway::default(),
        }
    }

    /// The gateway's routes in force.
    pub fn routes(&self) -> Routes {
        self.gateway.routes()
    }

    /// Serves exactly the ingress rules of the containers that should run. When the specs or
    /// addresses cannot be read, nothing changes and the error is returned.
    pub async fn sync(&self, state: &State, unhealthy: &HashSet<String>) -> Result<(), StateError> {
        let addresses = state.addresses()?;
        let specs = state.specs()?;
        let Plan { forwards, routes } = plan(&specs, &addresses, unhealthy, &self.domain);
        self.gateway.set(routes);
        self.forwards.sync(forwards).await;
        Ok(())
    }

    /// Starts the 80/443 gateway listeners `cfg` asks for (none without a domain).
    pub async fn start(&self, cfg: &IngressConfig) -> Result<Vec<JoinHandle<()>>, IngressError> {
        let mut tasks = Vec::new();
        if cfg.domain.is_none() {
            return Ok(tasks);
        }
        let bind = |addr| async move {
            Listener::bind(addr, gateway::MAX_CONNECTIONS)
                .await
                .map_err(|source| IngressError::Listen { addr, source })
        };
        if let Some(addr) = cfg.http_listen {
            let l = bind(addr).await?;
            tasks.push(tokio::spawn(self.gateway.clone().serve_http(l)));
            tracing::info!(%addr, "HTTP ingress gateway listening");
        }
        if let (Some(addr), Some(cert), Some(key)) = (cfg.https_listen, &cfg.tls_cert, &cfg.tls_key)
        {
            let tls = Arc::new(tls::https_server_config(cert, key)?);
            let l = bind(addr).await?;
            tasks.push(tokio::spawn(self.gateway.clone().serve_https(l, tls)));
            tracing::info!(%addr, "HTTPS ingress gateway listening");
        }
        Ok(tasks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::spec;

    #[test]
    fn only_running_containers_with_an_address_are_routed() {
        let ip = Ipv4Addr::new(10, 89, 0, 2);
        let addresses = HashMap::from([("aaaa1111".to_string(), ip)]);
        let specs = [
            spec(
                "aaaa1111",
                DesiredState::Running,
                &[(80, 8080), (443, 8443), (8001, 22), (25, 25)],
            ),
            spec("bbbb2222", DesiredState::Running, &[(80, 80)]),
            spec("cccc3333", DesiredState::Stopped, &[(80, 80)]),
        ];
        let p = plan(&specs, &addresses, &HashSet::new(), "berth.test");
        assert_eq!(
            p.routes.http,
            HashMap::from([("aaaa1111.berth.test".into(), SocketAddrV4::new(ip, 8080))])
        );
        assert_eq!(
            p.routes.https,
            HashMap::from([("aaaa1111.berth.test".into(), SocketAddrV4::new(ip, 8443))])
        );
        assert_eq!(
            p.forwards,
            HashMap::from([(8001, SocketAddrV4::new(ip, 22))])
        );
    }

    #[tokio::test]
    async fn a_failed_state_read_keeps_the_routes_in_force() {
        let ingress = Ingress::new(&IngressConfig {
            domain: Some("berth.test".into()),
            ..Default::default()
        });
        let mut held = Routes::default();
        held.http.insert(
            "aaaa1111.berth.test".into(),
            SocketAddrV4::new(Ipv4Addr::new(10, 89, 0, 2), 80),
        );
        ingress.gateway.set(held.clone());
        let state = State::temporary().expect("state");
        state.corrupt_spec_for_test("aaaa1111").expect("corrupt");
        assert!(ingress.sync(&state, &HashSet::new()).await.is_err());
        assert_eq!(ingress.routes(), held, "a read error emptied the routes");
    }
}
