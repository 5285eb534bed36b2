//! `POST /compute/containers`: the create body and its rules.

use super::{Check, CreateBody, Validate, BOOL, STRING, STRINGS, STRING_MAP, UINT, UINTS};
use crate::api::CreateContainer;
use crate::images::PullPolicy;
use crate::protocol::Runtime;
use crate::validation;

/// Limits that bound container sizes; they come from configuration.
#[derive(Debug, Clone)]
pub struct SizeLimits<'a> {
    pub instance_types: Vec<&'a str>,
    pub default_instance_type: &'a str,
    pub default_memory_mb: u64,
    pub default_storage_gb: u64,
    pub memory_mb: (u64, u64),
    pub storage_gb: (u64, u64),
}

impl Validate for CreateBody {
    type Valid = CreateContainer;
    type Context<'a> = SizeLimits<'a>;

    fn check(self, l: &SizeLimits<'_>, c: &mut Check) -> Option<CreateContainer> {
        let name = c.name(self.name, true);
        let instance_type = c
            .optional("instance_type", self.instance_type, STRING)
            .unwrap_or_else(|| l.default_instance_type.to_string());
        if !l.instance_types.contains(&instance_type.as_str()) {
            let msg = format!("must be one of: {}", l.instance_types.join(", "));
            c.errors.add("instance_type", msg);
        }
        let memory_mb = c.optional("memory_mb", self.memory_mb, UINT);
        let storage_gb = c.optional("storage_gb", self.storage_gb, UINT);
        let memory_mb = memory_mb.unwrap_or(l.default_memory_mb);
        let storage_gb = storage_gb.unwrap_or(l.default_storage_gb);
        c.range("memory_mb", Some(memory_mb), l.memory_mb);
        c.range("storage_gb", Some(storage_gb), l.storage_gb);
        let ssh_key_ids = c.required("ssh_key_ids", self.ssh_key_ids, UINTS);
        match &ssh_key_ids {
            Some(ids) if ids.is_empty() => {
                c.errors.add("ssh_key_ids", "must list at least one key")
            }
            Some(ids) if ids.len() > 10 => c.errors.add("ssh_key_ids", "at most 10 keys"),
            _ => {}
        }
        let ssh_enabled = c.optional("ssh_enabled", self.ssh_enabled, BOOL);
        let mount_paths = c
            .optional("mount_paths", self.mount_paths, STRINGS)
            .unwrap_or_else(|| vec!["/root".to_string()]);
        c.mount_paths(&mount_paths);
        let image = c.optional("image", self.image, STRING);
        if image.as_deref().is_some_and(|i| {
            i.is_empty() || i.len() > 255 || i.chars().any(|c| c.is_whitespace() || c.is_control())
        }) {
            c.errors.add(
                "image",
                "must be an image reference from GET /compute/images",
            );
        }
        let env = c.optional("env", self.env, STRING_MAP).unwrap_or_default();
        if let Err(m) = validation::check_env(&env) {
            c.errors.add("env", m);
        }
        let ports = match c
            .optional("ports", self.ports, "")
            .map(|v| validation::ports(&v))
        {
            Some(Ok(p)) => p,
            Some(Err(m)) => {
                c.errors.add("ports", m);
                Vec::new()
            }
            None => Vec::new(),
        };
        let (region, host_key) = c.placement(self.region, self.host_key);
        let runtime = match c.optional("runtime", self.runtime, STRING).as_deref() {
            None | Some("runc") => Runtime::Runc,
            Some("gvisor") => Runtime::Gvisor,
            Some(_) => {
                c.errors.add("runtime", "must be runc or gvisor");
                Runtime::Runc
            }
        };
        let restart_policy = c
            .optional("restart_policy", self.restart_policy, "")
            .map(|v| super::upkeep::restart_policy(c, &v));
        let health_check = match c.optional("health_check", self.health_check, "") {
            Some(v) => match super::upkeep::health_check(c, &v) {
                Some(Some(h)) => Some(h),
                Some(None) => {
                    c.errors
                        .add("health_check.type", "must be http, tcp or exec");
                    None
                }
                None => None,
            },
            None => None,
        };
        let volumes = c
            .optional("volumes", self.volumes, "")
            .map(|v| super::volumes::volumes(c, v, &mount_paths))
            .unwrap_or_default();
        let volume_ids = c
            .optional("volume_ids", self.volume_ids, STRINGS)
            .map(|ids| super::volumes::volume_ids(c, ids))
            .unwrap_or_default();
        let pull_policy = match c
            .optional("pull_policy", self.pull_policy, STRING)
            .as_deref()
        {
            None | Some("if-not-present") => PullPolicy::IfNotPresent,
            Some("always") => PullPolicy::Always,
            Some("never") => PullPolicy::Never,
            Some(_) => {
                c.errors
                    .add("pull_policy", "must be if-not-present, always or never");
                PullPolicy::IfNotPresent
            }
        };
        let mut ssh_key_ids = ssh_key_ids.unwrap_or_default();
        ssh_key_ids.dedup();
        Some(CreateContainer {
            name: name.unwrap_or_default(),
            instance_type,
            memory_mb,
            storage_gb,
            ssh_key_ids,
            ssh_enabled: ssh_enabled.unwrap_or(false),
            mount_paths,
            image,
            env,
            ports,
            region,
            host_key,
            runtime,
            restart_policy: restart_policy.flatten().unwrap_or_default(),
            health_check,
            volumes,
            volume_ids,
            pull_policy,
        })
    }
}
