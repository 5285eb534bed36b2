//! Per-user caps: container and volume counts (checked at create), and totals of CPU, memory
//! and storage over the user's containers (and volumes, for storage); `GET /compute/quota` reports usage against every cap.

use super::Containers;
use crate::error::Error;
use crate::store::ContainerRecord;
use berth_shared::api::{Quota, QuotaUsage};
use berth_shared::protocol::Resources;

impl Containers {
    fn total_caps(&self) -> Resources {
        let l = &self.limits;
        Resources {
            cpu_millis: l.max_total_cpu_millis,
            memory_mb: l.max_total_memory_mb,
            disk_gb: l.max_total_storage_gb,
        }
    }

    /// Fails with `over_quota` if adding `new` (or resizing `except` to it) would pass a
    /// total cap.
    pub(super) fn check_totals(
        &self,
        mine: &[ContainerRecord],
        except: Option<&str>,
        new: Resources,
    ) -> Result<(), Error> {
        let total: Resources = mine
            .iter()
            .filter(|c| Some(c.id.as_str()) != except)
            .map(ContainerRecord::resources)
            .sum::<Resources>()
            .plus(new);
        match total.exceeds(&self.total_caps()) {
            Some((dimension, requested, max)) => Err(Error::over_quota(dimension, requested, max)),
            None => Ok(()),
        }
    }

    /// Usage against caps; `region` `*` (or none) counts every region.
    pub async fn quota(&self, user: &str, region: Option<&str>) -> Result<Quota, Error> {
        let region = region.unwrap_or("*");
        let mine: Vec<ContainerRecord> = self
            .store
            .owner_containers(user)
            .await?
            .into_iter()
            .filter(|c| region == "*" || c.region.as_deref() == Some(region))
            .collect();
        let l = &self.limits;
        let keys = self.store.owner_keys(user).await?.len();
        let volumes: Vec<_> = self
            .store
            .owner_volumes(user)
            .await?
            .into_iter()
            .filter(|v| region == "*" || v.region.as_deref() == Some(region))
            .collect();
        let mut used: Resources = mine.iter().map(ContainerRecord::resources).sum();
        used.disk_gb += volumes.iter().map(|v| v.size_gb).sum::<u64>();
        let q = |dimension: &str, used: u64, max: u64| QuotaUsage {
            dimension: dimension.into(),
            used: used as f64,
            max: max as f64,
        };
        Ok(Quota {
            region: region.to_string(),
            quotas: vec![
                q("containers", mine.len() as u64, l.max_containers),
                q("cpu_millis", used.cpu_millis, l.max_total_cpu_millis),
                q("memory_mb", used.memory_mb, l.max_total_memory_mb),
                q("storage_gb", used.disk_gb, l.max_total_storage_gb),
                q("ssh_keys", keys as u64, l.max_ssh_keys),
                q("volumes", volumes.len() as u64, l.max_volumes),
            ],
        })
    }
}
