//! containerd, over its gRPC socket, in the agent's own namespace. The only module of Berth
//! that talks to containerd. gRPC status codes are mapped to `RuntimeError` here, once. Image
//! pulls (`pull`) fetch through `berth_registry` from the registries `registries` knows.

pub mod exec;
pub mod gvisor;
mod image;
pub mod oci;
mod pull;
pub mod registries;
mod seccomp;

pub use image::ImageInfo;

use containerd_client::services::v1::container::Runtime as RuntimeSpec;
use containerd_client::services::v1::snapshots::{
    MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, GetContainerRequest, GetRequest, KillRequest, ListContainersRequest,
    StartRequest, WaitRequest,
};
use containerd_client::tonic::{self, Code};
use containerd_client::types::v1::Status as ProcStatus;
use containerd_client::types::Mount;
use containerd_client::Client;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot reach containerd at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("{op}: not found")]
    NotFound { op: &'static str },
    #[error("{op}: already exists")]
    AlreadyExists { op: &'static str },
    #[error("{op}: {message} ({code:?})")]
    Call {
        op: &'static str,
        code: Code,
        message: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("image {image}: {reason}")]
    Image { image: String, reason: String },
    #[error("image {image}: {source}")]
    Registry {
        image: String,
        source: berth_registry::RegistryError,
    },
    #[error("runtime {runtime} is not offered by this host (its agent configuration has no [runtimes] {runtime})")]
    NotOffered { runtime: &'static str },
}

impl RuntimeError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuntimeError::NotFound { .. })
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, RuntimeError::AlreadyExists { .. })
    }
}

/// The one place gRPC codes become errors.
fn grpc(op: &'static str) -> impl FnOnce(tonic::Status) -> RuntimeError {
    move |s| match s.code() {
        Code::NotFound => RuntimeError::NotFound { op },
        Code::AlreadyExists => RuntimeError::AlreadyExists { op },
        code => RuntimeError::Call {
            op,
            code,
            message: s.message().to_string(),
        },
    }
}

/// The state of a container's task, as far as the agent cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Missing,
    Created,
    Running,
    Paused,
    Stopped { exit_status: u32 },
}

#[derive(Clone)]
pub struct Runtime {
    client: std::sync::Arc<Client>,
    namespace: String,
    pub snapshotter: String,
    runtime: String,
}

impl Runtime {
    pub async fn connect(cfg: &crate::config::ContainerdConfig) -> Result<Runtime, RuntimeError> {
        let client =
            Client::from_path(&cfg.socket)
                .await
                .map_err(|source| RuntimeError::Connect {
                    path: cfg.socket.clone(),
                    source,
                })?;
        Ok(Runtime {
            client: std::sync::Arc::new(client),
            namespace: cfg.namespace.clone(),
            snapshotter: cfg.snapshotter.clone(),
            runtime: cfg.runtime.clone(),
        })
    }

    /// A request in the agent's namespace.
    fn req<T>(&self, t: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(t);
        if let Ok(v) = self.namespace.parse() {
            r.metadata_mut().insert("containerd-namespace", v);
        }
        r
    }

    pub async fn container(&self, id: &str) -> Result<Option<Container>, RuntimeError> {
        let _t = crate::telemetry::containerd_call("get_container");
        let r = self
            .client
            .containers()
            .get(self.req(GetContainerRequest { id: id.into() }))
            .await
            .map_err(grpc("get container"));
        match r {
            Ok(resp) => Ok(resp.into_inner().container),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ids of the containers in the namespace that carry `label`.
    pub async fn containers_with_label(&self, label: &str) -> Result<Vec<Container>, RuntimeError> {
        let resp = self
            .client
            .containers()
            .list(self.req(ListContainersRequest {
                filters: vec![format!("labels.\"{label}\"")],
            }))
            .await
            .map_err(grpc("list containers"))?;
        Ok(resp.into_inner().containers)
    }

    /// Ensures the writable snapshot `key` on top of `parent` exists; returns its mounts.
    pub async fn ensure_snapshot(
        &self,
        key: &str,
        parent: &str,
    ) -> Result<Vec<Mount>, RuntimeError> {
        let stat = self
            .client
            .snapshots()
            .stat(self.req(StatSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.into(),
            }))
            .await
            .map_err(grpc("stat snapshot"));
        match stat {
            Ok(_) => self.snapshot_mounts(key).await,
            Err(e) if e.is_not_found() => {
                let mut labels = HashMap::new();
                labels.insert("berth.container".to_string(), key.to_string());
                // A GC root: the container's writable layer must survive the moments between
                // deleting and re-creating its containerd container; teardown removes it.
                labels.insert(
                    "containerd.io/gc.root".to_string(),
                    berth_shared::time::rfc3339(berth_shared::time::now_unix().0),
                );
                let resp = self
                    .client
                    .snapshots()
                    .prepare(self.req(PrepareSnapshotRequest {
                        snapshotter: self.snapshotter.clone(),
                        key: key.into(),
                        parent: parent.into(),
                        labels,
                    }))
                    .await
                    .map_err(grpc("prepare snapshot"))?;
                Ok(resp.into_inner().mounts)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn snapshot_mounts(&self, key: &str) -> Result<Vec<Mount>, RuntimeError> {
        let resp = self
            .client
            .snapshots()
            .mounts(self.req(MountsRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.into(),
            }))
            .await
            .map_err(grpc("snapshot mounts"))?;
        Ok(resp.into_inner().mounts)
    }

    pub async fn remove_snapshot(&self, key: &str) -> Result<(), RuntimeError> {
        let r = self
            .client
            .snapshots()
            .remove(self.req(RemoveSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.into(),
            }))
            .await
            .map_err(grpc("remove snapshot"));
        match r {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// `runc_binary`: what the runc shim runs instead of `runc` (gVisor's wrapper), if anything.
    pub async fn create_container(
        &self,
        id: &str,
        image: &str,
        spec_json: Vec<u8>,
        labels: HashMap<String, String>,
        runc_binary: Option<&std::path::Path>,
    ) -> Result<(), RuntimeError> {
        let _t = crate::telemetry::containerd_call("create_container");
        let container = Container {
            id: id.into(),
            labels,
            image: image.into(),
            runtime: Some(RuntimeSpec {
                name: self.runtime.clone(),
                options: runc_binary.map(gvisor::runc_options),
            }),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: spec_json,
            }),
            snapshotter: self.snapshotter.clone(),
            snapshot_key: id.into(),
            ..Default::default()
        };
        self.client
            .containers()
            .create(self.req(CreateContainerRequest {
                container: Some(container),
            }))
            .await
            .map_err(grpc("create container"))?;
        Ok(())
    }

    pub async fn delete_container(&self, id: &str) -> Result<(), RuntimeError> {
        let _t = crate::telemetry::containerd_call("delete_container");
        let r = self
            .client
            .containers()
            .delete(self.req(DeleteContainerRequest { id: id.into() }))
            .await
            .map_err(grpc("delete container"));
        match r {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    pub async fn task_state(&self, id: &str) -> Result<TaskState, RuntimeError> {
        let _t = crate::telemetry::containerd_call("task_state");
        let r = self
            .client
            .tasks()
            .get(self.req(GetRequest {
                container_id: id.into(),
                exec_id: String::new(),
            }))
            .await
            .map_err(grpc("get task"));
        let p = match r {
            Ok(resp) => resp.into_inner().process,
            Err(e) if e.is_not_found() => return Ok(TaskState::Missing),
            Err(e) => return Err(e),
        };
        let Some(p) = p else {
            return Ok(TaskState::Missing);
        };
        Ok(
            match ProcStatus::try_from(p.status).unwrap_or(ProcStatus::Unknown) {
                ProcStatus::Created => TaskState::Created,
                ProcStatus::Running => TaskState::Running,
                ProcStatus::Paused | ProcStatus::Pausing => TaskState::Paused,
                ProcStatus::Stopped | ProcStatus::Unknown => TaskState::Stopped {
                    exit_status: p.exit_status,
                },
            },
        )
    }

    /// Creates the task with `stdout`/`stderr` going to `stdio_uri` (a `binary://` log driver
    /// or a `file://` path, both handled by the shim, which outlives the agent).
    pub async fn create_task(
        &self,
        id: &str,
        rootfs: Vec<Mount>,
        stdio_uri: &str,
    ) -> Result<(), RuntimeError> {
        let _t = crate::telemetry::containerd_call("create_task");
        let uri = stdio_uri.to_string();
        self.client
            .tasks()
            .create(self.req(CreateTaskRequest {
                container_id: id.into(),
                rootfs,
                stdout: uri.clone(),
                stderr: uri,
                ..Default::default()
            }))
            .await
            .map_err(grpc("create task"))?;
        Ok(())
    }

    pub async fn start_task(&self, id: &str) -> Result<(), RuntimeError> {
        let _t = crate::telemetry::containerd_call("start_task");
        self.client
            .tasks()
            .start(self.req(StartRequest {
                container_id: id.into(),
                exec_id: String::new(),
            }))
            .await
            .map_err(grpc("start task"))?;
        Ok(())
    }

    /// Signals the task. A task that was created but never started (a failed start) is
    /// deleted instead when the runtime cannot signal it (runsc refuses to: "cannot signal
    /// container in state created"; runc can), which is what killing it means.
    pub async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError> {
        let _t = crate::telemetry::containerd_call("kill");
        let r = self
            .client
            .tasks()
            .kill(self.req(KillRequest {
                container_id: id.into(),
                exec_id: String::new(),
                signal,
                all,
            }))
            .await
            .map_err(grpc("kill task"));
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => {
                if self.task_state(id).await? != TaskState::Created {
                    return Err(e);
                }
                tracing::info!(id, error = %e, "cannot signal a task never started: deleting it");
                self.delete_task(id).await
            }
        }
    }

    /// Waits for the task's init to exit; returns its exit status.
    pub async fn wait(&self, id: &str) -> Result<u32, RuntimeError> {
        let resp = self
            .client
            .tasks()
            .wait(self.req(WaitRequest {
                container_id: id.into(),
                exec_id: String::new(),
            }))
            .await
            .map_err(grpc("wait task"))?;
        Ok(resp.into_inner().exit_status)
    }

    pub async fn delete_task(&self, id: &str) -> Result<(), RuntimeError> {
        let _t = crate::telemetry::containerd_call("delete_task");
        let r = self
            .client
            .tasks()
            .delete(self.req(DeleteTaskRequest {
                container_id: id.into(),
            }))
            .await
            .map_err(grpc("delete task"));
        match r {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }
}
