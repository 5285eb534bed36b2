//! Placement: which host runs a new container. Pure: it sees a snapshot of the hosts and what
//! is already placed on them, and answers a host key or the reason none fits.

use berth_shared::catalog::Arch;
use berth_shared::protocol::{Resources, Runtime};

/// A host as placement sees it, borrowed from the fleet's table: a placement over a
/// thousand hosts copies none of them.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub host_key: &'a str,
    pub region: &'a str,
    pub arch: Arch,
    pub capacity: Resources,
    pub connected: bool,
    pub cordoned: bool,
    pub runtimes: &'a [Runtime],
}

#[derive(Debug, Clone)]
pub struct Demand {
    /// `None`: any (a volume).
    pub arch: Option<Arch>,
    pub need: Resources,
    pub region: Option<String>,
    pub host_key: Option<String>,
    pub runtime: Runtime,
}

/// Fraction of the host left free after placing `need`: the emptiest host wins, which spreads
/// load across the fleet.
fn headroom(cap: &Resources, used: &Resources, need: &Resources) -> f64 {
    let frac = |c: u64, u: u64, n: u64| {
        if c == 0 {
            0.0
        } else {
            c.saturating_sub(u).saturating_sub(n) as f64 / c as f64
        }
    };
    frac(cap.cpu_millis, used.cpu_millis, need.cpu_millis)
        .min(frac(cap.memory_mb, used.memory_mb, need.memory_mb))
        .min(frac(cap.disk_gb, used.disk_gb, need.disk_gb))
}

/// Picks a host for `d` (`used`: what is promised on a host already), or explains why none
/// fits.
pub fn place<'h, 'a>(
    hosts: &'h [Candidate<'a>],
    used: &dyn Fn(&str) -> Resources,
    d: &Demand,
) -> Result<&'h Candidate<'a>, String> {
    let mut eligible: Vec<&Candidate> = hosts
        .iter()
        .filter(|h| h.connected && !h.cordoned)
        .collect();
    if let Some(k) = &d.host_key {
        eligible.retain(|h| h.host_key == k);
        if eligible.is_empty() {
            return Err(format!("host {k:?} is not connected or is cordoned"));
        }
    }
    if let Some(r) = &d.region {
        eligible.retain(|h| h.region == r);
        if eligible.is_empty() {
            return Err(format!("no connected host in region {r:?}"));
        }
    }
    eligible.retain(|h| h.runtimes.contains(&d.runtime));
    if eligible.is_empty() {
        return Err(format!(
            "no connected host offers the {} runtime",
            d.runtime.as_str()
        ));
    }
    if let Some(arch) = d.arch {
        eligible.retain(|h| h.arch == arch);
        if eligible.is_empty() {
            return Err(format!(
                "no connected host with arch {arch} for this instance type"
            ));
        }
    }
    eligible
        .into_iter()
        .filter_map(|h| {
            let u = used(h.host_key);
            u.plus(d.need)
                .fits_in(&h.capacity)
                .then(|| (h, headroom(&h.capacity, &u, &d.need)))
        })
        .max_by(|(a, ha), (b, hb)| ha.total_cmp(hb).then_with(|| b.host_key.cmp(a.host_key)))
        .map(|(h, _)| h)
        .ok_or_else(|| {
            format!(
                "no {} host has room for {} mCPU, {} MB memory and {} GB disk",
                d.arch.map_or("connected".to_string(), |a| a.to_string()),
                d.need.cpu_millis,
                d.need.memory_mb,
                d.need.disk_gb
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashMap;

    fn host(key: &'static str, arch: Arch, region: &'static str) -> Candidate<'static> {
        Candidate {
            host_key: key,
            region,
            arch,
            capacity: Resources {
                cpu_millis: 4000,
                memory_mb: 4096,
                disk_gb: 100,
            },
            connected: true,
            cordoned: false,
            runtimes: &[Runtime::Runc],
        }
    }

    fn none(_: &str) -> Resources {
        Resources::default()
    }

    fn key<'a>(r: Result<&Candidate<'a>, String>) -> Result<&'a str, String> {
        r.map(|c| c.host_key)
    }

    fn demand(arch: Arch) -> Demand {
        Demand {
            arch: Some(arch),
            need: Resources {
                cpu_millis: 1000,
                memory_mb: 512,
                disk_gb: 5,
            },
            region: None,
            host_key: None,
            runtime: Runtime::Runc,
        }
    }

    #[test]
    fn matches_arch_and_spreads() {
        let hosts = vec![
            host("a", Arch::Amd64, "r1"),
            host("b", Arch::Amd64, "r1"),
            host("c", Arch::Arm64, "r1"),
        ];
        let mut used = HashMap::new();
        used.insert(
            "a".to_string(),
            Resources {
                cpu_millis: 2000,
                memory_mb: 2048,
                disk_gb: 10,
            },
        );
        let used = |k: &str| used.get(k).copied().unwrap_or_default();
        assert_eq!(key(place(&hosts, &used, &demand(Arch::Amd64))), Ok("b"));
        assert_eq!(key(place(&hosts, &used, &demand(Arch::Arm64))), Ok("c"));
    }

    #[test]
    fn explains_why_nothing_fits() {
        let mut hosts = vec![host("a", Arch::Amd64, "r1")];
        let e = place(&hosts, &none, &demand(Arch::Arm64)).expect_err("no arm");
        assert!(e.contains("arm64"), "{e}");
        let mut big = demand(Arch::Amd64);
        big.need.memory_mb = 8192;
        assert!(place(&hosts, &none, &big)
            .expect_err("too big")
            .contains("room"));
        hosts[0].cordoned = true;
        assert!(place(&hosts, &none, &demand(Arch::Amd64)).is_err());
    }

    #[test]
    fn gvisor_goes_only_where_it_is_offered() {
        let mut hosts = vec![host("a", Arch::Amd64, "r1"), host("b", Arch::Amd64, "r1")];
        hosts[1].runtimes = &[Runtime::Runc, Runtime::Gvisor];
        let mut d = demand(Arch::Amd64);
        d.runtime = Runtime::Gvisor;
        assert_eq!(key(place(&hosts, &none, &d)), Ok("b"));
        hosts[1].connected = false;
        assert!(place(&hosts, &none, &d)
            .expect_err("none")
            .contains("gvisor"));
    }

    #[test]
    fn honours_region_and_host_key() {
        let hosts = vec![host("a", Arch::Amd64, "r1"), host("b", Arch::Amd64, "r2")];
        let mut d = demand(Arch::Amd64);
        d.region = Some("r2".into());
        assert_eq!(key(place(&hosts, &none, &d)), Ok("b"));
        d.region = None;
        d.host_key = Some("a".into());
        assert_eq!(key(place(&hosts, &none, &d)), Ok("a"));
        d.host_key = Some("zz".into());
        assert!(place(&hosts, &none, &d).is_err());
    }
}
