//! Which image a container is made from, and fetching it as its `pull_policy` says. A
//! container is pinned to a manifest digest — the one its reference names, or the one its
//! host first made it from (the coordinator hands that back as `image_digest`) — so a tag
//! that moves later does not change what an existing container runs when it is made again.
//! A pulled image is kept by containerd as `repo@<digest>`; that name is what containers use.

use super::{ReconcileError, Reconciler};
use crate::runtime::RuntimeError;
use berth_shared::images::{PullPolicy, Reference};
use berth_shared::protocol::ContainerSpec;

impl Reconciler {
    /// The containerd image name `spec`'s container is made from, pulled first when its
    /// policy says so; the digest is recorded for the container's reports.
    pub(super) async fn ensure_image(
        &self,
        spec: &ContainerSpec,
        arch: &str,
    ) -> Result<String, ReconcileError> {
        let parsed = Reference::parse(&spec.image);
        let pin = spec
            .image_digest
            .as_deref()
            .or(parsed.as_ref().and_then(|p| p.digest));
        let pinned = parsed.as_ref().zip(pin).map(|(p, d)| p.pinned(d));
        let mut name = pinned.clone().unwrap_or_else(|| spec.image.clone());
        let mut present = self.rt.has_image(&name).await?;
        if !present && pinned.is_some() {
            // An image that came with the host (not pulled) is kept under its reference only.
            let by_ref = self.rt.get_image(&spec.image).await?;
            if by_ref
                .and_then(|i| i.target)
                .is_some_and(|t| Some(t.digest.as_str()) == pin)
            {
                (name, present) = (spec.image.clone(), true);
            }
        }
        let want_pull = match spec.pull_policy {
            PullPolicy::Never => false,
            PullPolicy::IfNotPresent => !present,
            // A pin is a digest: what it names cannot have moved.
            PullPolicy::Always => pinned.is_none() || !present,
        };
        let registry = match &parsed {
            Some(p) if want_pull => {
                self.registries
                    .client(p.registry)
                    .map_err(|source| RuntimeError::Registry {
                        image: spec.image.clone(),
                        source,
                    })?
            }
            _ => None,
        };
        let name = match (registry, parsed.as_ref()) {
            (Some(registry), Some(p)) => {
                let what = pinned.as_deref().unwrap_or(&spec.image);
                tracing::info!(id = %spec.id, image = %what, policy = spec.pull_policy.as_str(), "pulling the image");
                let digest = self.rt.pull(&registry, what, arch).await?;
                p.pinned(&digest)
            }
            _ if present => name,
            _ => {
                let reason = match spec.pull_policy {
                    PullPolicy::Never => "is not present on this host and pull_policy is never",
                    _ if parsed.is_some() => {
                        "is not present on this host and its registry is not configured"
                    }
                    _ => "is not present on this host",
                };
                return Err(RuntimeError::Image {
                    image: name,
                    reason: reason.into(),
                }
                .into());
            }
        };
        let digest = match name.rsplit_once('@') {
            Some((_, d)) => Some(d.to_string()),
            None => self
                .rt
                .get_image(&name)
                .await?
                .and_then(|i| i.target)
                .map(|t| t.digest),
        };
        if let Some(d) = digest {
            self.reporter.made_from(&spec.id, d);
        }
        Ok(name)
    }
}
