//! Bodies that change an existing container: PATCH (rename, resize), SSH access, mounts,
//! ingress rules and power actions.

use super::{
    ActionBody, Check, IngressBody, MountsBody, PatchBody, SshBody, Validate, BOOL, STRING,
    STRINGS, UINT,
};
use crate::validation;

/// What a PATCH may change, for the container it changes.
#[derive(Debug, Clone)]
pub struct PatchLimits<'a> {
    pub memory_mb: (u64, u64),
    pub storage_gb: (u64, u64),
    /// The instance type's CPU, the most a resize may give.
    pub max_cpu_millis: u64,
    pub instance_type: &'a str,
    /// The volume's size now: it can grow with the data in it, not shrink.
    pub storage_now: u64,
}

/// A validated PATCH: only what was given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    pub name: Option<String>,
    pub memory_mb: Option<u64>,
    pub cpu_millis: Option<u64>,
    pub storage_gb: Option<u64>,
    pub restart_policy: Option<crate::upkeep::RestartPolicy>,
    /// `Some(None)` removes the check.
    pub health_check: Option<Option<crate::upkeep::HealthCheck>>,
}

impl Validate for PatchBody {
    type Valid = Patch;
    type Context<'a> = PatchLimits<'a>;

    fn check(self, l: &PatchLimits<'_>, c: &mut Check) -> Option<Patch> {
        let name = c.name(self.name, false);
        let memory_mb = c.optional("memory_mb", self.memory_mb, UINT);
        let cpu_millis = c.optional("cpu_millis", self.cpu_millis, UINT);
        let storage_gb = c.optional("storage_gb", self.storage_gb, UINT);
        let restart_policy = c
            .optional("restart_policy", self.restart_policy, "")
            .map(|v| super::upkeep::restart_policy(c, &v));
        let health_check = c
            .optional("health_check", self.health_check, "")
            .map(|v| super::upkeep::health_check(c, &v));
        let nothing = name.is_none()
            && memory_mb.is_none()
            && cpu_millis.is_none()
            && storage_gb.is_none()
            && restart_policy.is_none()
            && health_check.is_none();
        if nothing && c.errors.is_empty() {
            let msg = "nothing to change: give name, memory_mb, cpu_millis, storage_gb, restart_policy or health_check";
            c.errors.add("body", msg);
        }
        c.range("memory_mb", memory_mb, l.memory_mb);
        c.range("storage_gb", storage_gb, l.storage_gb);
        if storage_gb.is_some_and(|s| s < l.storage_now && s >= l.storage_gb.0) {
            let msg = format!("can grow but not shrink (now {})", l.storage_now);
            c.errors.add("storage_gb", msg);
        }
        if cpu_millis.is_some_and(|v| !(100..=l.max_cpu_millis).contains(&v)) {
            let msg = format!(
                "must be between 100 and {} for instance type {}",
                l.max_cpu_millis, l.instance_type
            );
            c.errors.add("cpu_millis", msg);
        }
        Some(Patch {
            name,
            memory_mb,
            cpu_millis,
            storage_gb,
            restart_policy: restart_policy.flatten(),
            health_check: health_check.flatten(),
        })
    }
}

impl Validate for SshBody {
    type Valid = bool;
    type Context<'a> = ();

    fn check(self, _: &(), c: &mut Check) -> Option<bool> {
        c.required("ssh_enabled", self.ssh_enabled, BOOL)
    }
}

impl Validate for MountsBody {
    type Valid = Vec<String>;
    type Context<'a> = ();

    fn check(self, _: &(), c: &mut Check) -> Option<Vec<String>> {
        let paths = c.required("mount_paths", self.mount_paths, STRINGS);
        if let Some(p) = &paths {
            c.mount_paths(p);
        }
        paths
    }
}

impl Validate for IngressBody {
    /// `(port, target_port)`; the target defaults to the port.
    type Valid = (u16, u16);
    type Context<'a> = ();

    fn check(self, _: &(), c: &mut Check) -> Option<(u16, u16)> {
        let port = match c
            .required("port", self.port, UINT)
            .map(validation::check_ingress_port)
        {
            Some(Ok(p)) => Some(p),
            Some(Err(m)) => {
                c.errors.add("port", m);
                None
            }
            None => None,
        };
        let target = c.optional("target_port", self.target_port, UINT);
        if target.is_some_and(|t| !(1..=65535).contains(&t)) {
            c.errors.add("target_port", "must be 1-65535");
        }
        let port = port?;
        Some((port, target.map_or(port, |t| t as u16)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reboot,
    PowerOff,
    PowerOn,
}

impl Validate for ActionBody {
    type Valid = Action;
    type Context<'a> = ();

    fn check(self, _: &(), c: &mut Check) -> Option<Action> {
        let action = match c.required("type", self.kind, STRING).as_deref() {
            Some("reboot") => Some(Action::Reboot),
            Some("power_off") => Some(Action::PowerOff),
            Some("power_on") => Some(Action::PowerOn),
            Some(_) => {
                c.errors
                    .add("type", "must be reboot, power_off or power_on");
                None
            }
            None => None,
        };
        action
    }
}
