//! Per-user caps: container count (checked at create), and totals of CPU, memory and storage
//! over the user's containers; `GET /compute/quota` reports usage against every cap.

use crate::app::{App, Error};
use crate::store::ContainerRecord;
use berth_shared::api::{Quota, QuotaDetail, QuotaUsage};

impl App {
    /// Fails with `over_quota` if adding (or resizing `except` to) the given sizes would pass
    /// a total cap.
    pub(crate) fn check_totals(
        &self,
        mine: &[ContainerRecord],
        except: Option<&str>,
        cpu_millis: u32,
        memory_mb: u64,
        storage_gb: u64,
    ) -> Result<(), Error> {
        let l = &self.config.limits;
        let others = mine.iter().filter(|c| Some(c.id.as_str()) != except);
        let (mut cpu, mut mem, mut disk) = (u64::from(cpu_millis), memory_mb, storage_gb);
        for c in others {
            cpu += u64::from(c.cpu_millis);
            mem += c.memory_mb;
            disk += c.storage_gb;
        }
        let over = |dimension: &str, requested: u64, max: u64| {
            (requested > max).then(|| {
                Error::OverQuota(QuotaDetail {
                    dimension: dimension.into(),
                    requested,
                    max,
                })
            })
        };
        match over("cpu_millis", cpu, l.max_total_cpu_millis)
            .or_else(|| over("memory_mb", mem, l.max_total_memory_mb))
            .or_else(|| over("storage_gb", disk, l.max_total_storage_gb))
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Usage against caps; `region` `*` (or none) counts every region.
    pub fn quota(&self, user: &str, region: Option<&str>) -> Result<Quota, Error> {
        let region = region.unwrap_or("*");
        let mine: Vec<ContainerRecord> = self
            .store
            .user_containers(user)?
            .into_iter()
            .filter(|c| region == "*" || c.region.as_deref() == Some(region))
            .collect();
        let l = &self.config.limits;
        let keys = self.store.user_keys(user)?.len();
        let sum = |f: &dyn Fn(&ContainerRecord) -> u64| mine.iter().map(f).sum::<u64>() as f64;
        let q = |dimension: &str, used: f64, max: u64| QuotaUsage {
            dimension: dimension.into(),
            used,
            max: max as f64,
        };
        Ok(Quota {
            region: region.to_string(),
            quotas: vec![
                q("containers", mine.len() as f64, l.max_containers),
                q(
                    "cpu_millis",
                    sum(&|c| u64::from(c.cpu_millis)),
                    l.max_total_cpu_millis,
                ),
                q("memory_mb", sum(&|c| c.memory_mb), l.max_total_memory_mb),
                q("storage_gb", sum(&|c| c.storage_gb), l.max_total_storage_gb),
                q("ssh_keys", keys as f64, l.max_ssh_keys),
            ],
        })
    }
}
