//! What a container is made of on this host, made from its spec and removed again: the image
//! (as [`super::images`] picks and pulls it), the volumes (its own and the
//! user's volumes it mounts), the network
//! namespace, the OCI spec, the snapshot, the containerd container with the labels that mark
//! it the agent's, its task with the log driver — and the log. [`spec_hash`] says which spec
//! changes need the container made again. A gVisor container is made the same way, with the
//! runc shim pointed at its runsc wrapper ([`gvisor`]).

use super::{lock, ReconcileError, Reconciler, LABEL_CONTAINER, LABEL_GENERATION, LABEL_SPEC_HASH};
use crate::runtime::{gvisor, oci, RuntimeError};
use aws_lc_rs::digest;
use berth_shared::protocol::{ContainerSpec, Runtime};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What, if changed, needs the containerd container re-created (volumes are kept).
pub(super) fn spec_hash(s: &ContainerSpec) -> String {
    let mut key = serde_json::json!([
        s.image,
        s.cpu_millis,
        s.memory_mb,
        s.mount_paths,
        s.storage_gb,
        s.env,
        s.boot
    ]);
    // Only when not runc, so that runc containers keep the hash they had before runtimes
    // (and containers without volumes the one they had before volumes).
    if let Some(k) = key.as_array_mut() {
        if s.runtime != Runtime::Runc {
            k.push(s.runtime.as_str().into());
        }
        if !s.volumes.is_empty() {
            k.push(serde_json::json!(s.volumes));
        }
    }
    let d = digest::digest(&digest::SHA256, key.to_string().as_bytes());
    berth_shared::ids::hex(&d.as_ref()[..12])
}

impl Reconciler {
    /// Creates the containerd container of `spec` (labelled with `hash`), and what it needs.
    pub(super) async fn create_container(
        &self,
        spec: &ContainerSpec,
        hash: String,
    ) -> Result<(), ReconcileError> {
        let id = spec.id.as_str();
        // Refused before anything is made: the host was not (or is no longer) set up for it.
        let runsc = match spec.runtime {
            Runtime::Runc => None,
            Runtime::Gvisor => Some(self.cfg.runtimes.gvisor.as_deref().ok_or(
                RuntimeError::NotOffered {
                    runtime: Runtime::Gvisor.as_str(),
                },
            )?),
        };
        let arch = self.cfg.arch();
        let image = self.ensure_image(spec, arch.as_str()).await?;
        let img = self.rt.image(&image, arch.as_str()).await?;
        let net = match &self.network {
            Some(n) => {
                // An earlier attempt's CNI ADD, if it is still running, finishes first.
                self.connected(id).await?;
                let (path, ip, ready) = n.prepare(id)?;
                if !ready && runsc.is_some() {
                    n.connect(id, &path, ip)?;
                } else if !ready {
                    // CNI ADD (tens of ms of plugin processes) runs beside the volume, the
                    // snapshot, the container and the task; `start` waits for it.
                    let (n, key, p) = (n.clone(), id.to_string(), path.clone());
                    let pending = tokio::task::spawn_blocking(move || n.connect(&key, &p, ip));
                    lock(&self.connecting).insert(id.to_string(), pending);
                }
                Some((path, ip))
            }
            None => None,
        };
        let mut vols = self
            .volumes
            .ensure(id, &spec.mount_paths, spec.storage_gb)?;
        vols.extend(self.user_volumes(spec).await?);
        let vols: Vec<oci::Volume> = vols
            .iter()
            .map(|(h, t)| oci::Volume { host: h, target: t })
            .collect();
        let netns = net.as_ref().map(|(path, _)| path.as_path());
        let sftp = Some(self.cfg.ssh.sftp_server.as_path()).filter(|p| p.is_file());
        let json = oci::spec(spec, &img, &self.cfg.init_binary, sftp, &vols, netns);
        let wrapper = match runsc {
            Some(runsc) => {
                // Parsed before: `network` exists only with a valid subnet.
                let subnet = crate::subnet::Subnet::parse(&self.cfg.network.subnet).ok();
                let gv_net = net
                    .as_ref()
                    .zip(subnet)
                    .map(|((netns, ip), s)| gvisor::Net {
                        netns,
                        address: *ip,
                        prefix: s.prefix,
                        gateway: s.gateway(),
                    });
                let dir = self.gvisor_dir();
                Some(gvisor::write_wrapper(&dir, id, runsc, gv_net.as_ref())?)
            }
            None => None,
        };
        self.rt.ensure_snapshot(id, &img.chain_id).await?;
        let labels = HashMap::from([
            (LABEL_CONTAINER.to_string(), id.to_string()),
            (LABEL_GENERATION.to_string(), spec.generation.to_string()),
            (LABEL_SPEC_HASH.to_string(), hash),
        ]);
        match self
            .rt
            .create_container(
                id,
                &image,
                json.to_string().into_bytes(),
                labels,
                wrapper.as_deref(),
            )
            .await
        {
            Err(RuntimeError::AlreadyExists { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the container's task (output to the log driver) and starts it.
    pub(super) async fn create_and_start(self: &Arc<Self>, id: &str) -> Result<(), ReconcileError> {
        let log = self.log_path(id);
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(ReconcileError::Logs)?;
        }
        let mounts = self.rt.snapshot_mounts(id).await?;
        self.rt.create_task(id, mounts, &self.log_uri()).await?;
        self.start(id).await
    }

    /// Where gVisor containers' runsc wrappers are.
    fn gvisor_dir(&self) -> PathBuf {
        self.cfg.data_dir.join("gvisor")
    }

    /// The shim starts the log driver (this binary unless configured) from this URI.
    fn log_uri(&self) -> String {
        let driver = self
            .cfg
            .logs
            .driver
            .clone()
            .or_else(installed_exe)
            .unwrap_or_else(|| "/usr/local/bin/berth-agent".into());
        crate::logs::driver::uri(&driver, &self.log_dir(), self.cfg.logs.max_bytes)
    }

    /// Removes the task, container, snapshot and network, and (with `volumes`) the data and log.
    pub(super) async fn teardown(&self, id: &str, volumes: bool) -> Result<(), ReconcileError> {
        // A CNI ADD under way must not race the CNI DEL below; how it ended does not matter.
        let _ = self.connected(id).await;
        self.stop_task(id).await?;
        self.rt.delete_container(id).await?;
        // Only now: the shim runs the wrapper until the container is gone.
        gvisor::remove_wrapper(&self.gvisor_dir(), id)?;
        self.rt.remove_snapshot(id).await?;
        if let Some(n) = &self.network {
            n.remove(id)?;
        }
        if volumes {
            self.volumes.remove(id)?;
            let _ = std::fs::remove_file(self.log_path(id));
            let _ = std::fs::remove_file(crate::logs::driver::rotated(&self.log_path(id)));
        }
        self.supervisor.forget(id);
        Ok(())
    }
}

/// This binary's path as installed. After an upgrade replaced the file under a running agent,
/// Linux names the old one `… (deleted)`; the new file at the same path is the driver to start.
fn installed_exe() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(installed(exe.to_str()?).into())
}

fn installed(exe: &str) -> &str {
    exe.strip_suffix(" (deleted)").unwrap_or(exe)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_upgraded_binary_is_started_from_its_path() {
        let old = "/usr/local/bin/berth-agent (deleted)";
        assert_eq!(super::installed(old), "/usr/local/bin/berth-agent");
        assert_eq!(super::installed("/x/berth-agent"), "/x/berth-agent");
    }
}
