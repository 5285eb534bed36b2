//! One simulated host: the specs it holds and what it last reported for each, kept in memory.
//! An applied spec is answered at once (stored, as an agent answers once the spec is durable)
//! and reported `initializing`, then after the host's delay `running` (with an address),
//! `stopped` or `deleted` — the reports a real agent sends. A silenced host stops answering
//! anything (no heartbeat, no hello, requests left hanging) but keeps its connection: a frozen
//! agent as the coordinator sees one.

use berth_link::HostError;
use berth_shared::protocol::{
    read_frame, write_frame, AgentMessage, ContainerMetrics, ContainerReport, ContainerSpec,
    DesiredState, HostInfo, ObservedState, Request, Response, PROTOCOL_VERSION,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
#[error("host {0} is silenced")]
struct Silenced(String);

struct Held {
    spec: ContainerSpec,
    report: ContainerReport,
}

pub struct SimHost {
    info: HostInfo,
    held: Mutex<BTreeMap<String, Held>>,
    reports: mpsc::Sender<ContainerReport>,
    delay: Duration,
    silent: AtomicBool,
    /// The n-th container on this host gets address 10.x.y.(n+2).
    addresses: AtomicU64,
    index: u64,
}

impl SimHost {
    pub(crate) fn new(
        info: HostInfo,
        index: u64,
        delay: Duration,
    ) -> (Arc<SimHost>, mpsc::Receiver<ContainerReport>) {
        let (tx, rx) = mpsc::channel(1024);
        let host = SimHost {
            info,
            held: Mutex::default(),
            reports: tx,
            delay,
            silent: AtomicBool::new(false),
            addresses: AtomicU64::new(0),
            index,
        };
        (Arc::new(host), rx)
    }

    pub fn host_key(&self) -> &str {
        &self.info.host_key
    }

    /// Stops (`true`) or resumes answering.
    pub fn silence(&self, on: bool) {
        self.silent.store(on, Ordering::Relaxed);
    }

    pub fn is_silent(&self) -> bool {
        self.silent.load(Ordering::Relaxed)
    }

    /// The ids this host holds.
    pub fn held(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn inventory(&self) -> Result<Vec<ContainerReport>, HostError> {
        if self.is_silent() {
            return Err(Box::new(Silenced(self.info.host_key.clone())));
        }
        Ok(self.lock().values().map(|h| h.report.clone()).collect())
    }

    fn address(&self) -> String {
        let n = self.addresses.fetch_add(1, Ordering::Relaxed);
        format!(
            "10.{}.{}.{}",
            (self.index >> 8) & 0xff,
            self.index & 0xff,
            2 + n % 250
        )
    }

    /// Records `state` for the spec's generation and sends the report.
    fn report(&self, spec: &ContainerSpec, state: ObservedState) {
        let mut held = self.lock();
        let Some(h) = held.get_mut(&spec.id) else {
            return;
        };
        if h.spec.generation != spec.generation {
            return; // a newer spec took over
        }
        let address = match state {
            ObservedState::Running => h.report.address.clone().or_else(|| Some(self.address())),
            _ => h.report.address.clone(),
        };
        let report = ContainerReport {
            address,
            ..ContainerReport::new(&spec.id, spec.generation, state)
        };
        if state == ObservedState::Deleted {
            held.remove(&spec.id);
        } else {
            h.report = report.clone();
        }
        drop(held);
        let _ = self.reports.try_send(report);
    }

    /// Holds the spec if it is newer; answers with the generation held. Idempotent.
    fn apply(self: &Arc<Self>, spec: ContainerSpec) -> Response {
        let generation = {
            let mut held = self.lock();
            match held.get_mut(&spec.id) {
                Some(h) if h.spec.generation >= spec.generation => {
                    return Response::Applied {
                        id: spec.id,
                        generation: h.spec.generation,
                    }
                }
                Some(h) => h.spec = spec.clone(),
                None => {
                    let report =
                        ContainerReport::new(&spec.id, spec.generation, ObservedState::Pending);
                    held.insert(
                        spec.id.clone(),
                        Held {
                            spec: spec.clone(),
                            report,
                        },
                    );
                }
            }
            spec.generation
        };
        let me = self.clone();
        let id = spec.id.clone();
        tokio::spawn(async move {
            if spec.desired == DesiredState::Running {
                me.report(&spec, ObservedState::Initializing);
            }
            tokio::time::sleep(me.delay).await;
            let state = match spec.desired {
                DesiredState::Running => ObservedState::Running,
                DesiredState::Stopped => ObservedState::Stopped,
                DesiredState::Deleted => ObservedState::Deleted,
            };
            me.report(&spec, state);
        });
        Response::Applied { id, generation }
    }

    async fn handle(
        self: Arc<Self>,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        conn: quinn::Connection,
    ) {
        let req = read_frame::<_, Request>(&mut recv).await;
        if self.is_silent() {
            // Frozen: the stream stays open and unanswered.
            conn.closed().await;
            return;
        }
        let resp = match req {
            Ok(Some(Request::Apply(spec) | Request::ApplyWithRegistry { spec, .. })) => {
                self.apply(spec)
            }
            Ok(Some(Request::Logs { .. })) => Response::Streaming,
            Ok(Some(Request::Metrics { id })) => match self.lock().get(&id) {
                Some(h) if h.report.state == ObservedState::Running => {
                    Response::Metrics(ContainerMetrics {
                        memory_total_bytes: h.spec.memory_mb << 20,
                        ..ContainerMetrics::default()
                    })
                }
                _ => Response::NotRunning {
                    message: "the container is not running".into(),
                },
            },
            Ok(Some(Request::Terminal { .. })) => Response::NotRunning {
                message: "a simulated host has no terminal".into(),
            },
            Ok(Some(Request::Exec(_))) => Response::NotRunning {
                message: "a simulated host runs no commands".into(),
            },
            // No grace on a simulated host: a disowned container goes at once.
            Ok(Some(Request::Disown { id })) => Response::Disowned {
                removal_at_ms: self
                    .lock()
                    .remove(&id)
                    .map(|_| berth_shared::time::now_unix().0 * 1000),
                id,
            },
            // A simulated host keeps no data: a volume is there (empty) until it is removed.
            Ok(Some(Request::Volume(v))) => Response::Volume {
                used_bytes: (!v.deleted).then_some(0),
                id: v.id,
            },
            Ok(None) => return,
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        };
        if write_frame(&mut send, &resp).await.is_ok() {
            let _ = send.finish();
        }
    }
}

impl berth_link::Host for SimHost {
    fn hello(&self) -> Result<AgentMessage, HostError> {
        Ok(AgentMessage::Hello {
            protocol: PROTOCOL_VERSION,
            host: self.info.clone(),
            inventory: self.inventory()?,
        })
    }

    fn heartbeat(&self) -> Result<AgentMessage, HostError> {
        Ok(AgentMessage::Heartbeat {
            host: self.info.clone(),
            inventory: self.inventory()?,
        })
    }

    async fn welcome(
        self: Arc<Self>,
        specs: Vec<ContainerSpec>,
        _registries: Vec<berth_shared::images::RegistryAccess>,
    ) {
        for s in specs {
            self.apply(s);
        }
    }

    async fn serve(self: Arc<Self>, conn: quinn::Connection) {
        while let Ok((send, recv)) = conn.accept_bi().await {
            tokio::spawn(self.clone().handle(send, recv, conn.clone()));
        }
    }
}
