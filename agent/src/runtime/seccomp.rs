//! The seccomp filter of every Berth container: the OCI `linux.seccomp` object, built from
//! typed rules. It mirrors Docker's default profile (moby `profiles/seccomp/default.json`):
//! every syscall not allowed fails with EPERM; namespaces, mounts, kernel modules, keyrings,
//! BPF, userfaultfd and the like are refused unless the container holds the capability Docker
//! ties them to, `clone` is allowed only without namespace flags and `clone3` answers ENOSYS
//! so glibc falls back to `clone`. Rules that depend on a capability follow the capabilities
//! the spec grants (`oci`); the arch- and kernel-dependent ones follow the host.
//!
//! The rules themselves are data, in `table`.

mod table;

use berth_shared::catalog::Arch;
use serde::Serialize;
use table::{When, DEFAULT_ERRNO, RULES};

/// The OCI runtime spec's `linux.seccomp`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    pub default_action: Action,
    pub default_errno_ret: u32,
    /// The native architecture and the compat ones its kernel also runs; all filtered.
    pub architectures: Vec<&'static str>,
    pub syscalls: Vec<Syscall>,
}

/// One rule: `names` get `action` when every one of `args` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    pub names: Vec<&'static str>,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgRule>,
}

/// A comparison of one syscall argument: `args[index] op value` (`MaskedEqual`:
/// `args[index] & value == value_two`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgRule {
    pub index: u32,
    pub value: u64,
    pub value_two: u64,
    pub op: Op,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    /// Fail with `errnoRet` (the default errno when absent).
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_EQ")]
    Equal,
    #[serde(rename = "SCMP_CMP_LT")]
    LessThan,
    #[serde(rename = "SCMP_CMP_GT")]
    GreaterThan,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

/// What of the host the profile depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// `None`: an architecture without a map; only its native syscalls are filtered.
    pub arch: Option<Arch>,
    /// (major, minor); `None` when unknown, which keeps kernel-dependent rules out.
    pub kernel: Option<(u32, u32)>,
}

impl Host {
    /// This host: the agent's own architecture and the running kernel.
    pub fn current() -> Host {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Host {
            arch: Arch::native(),
            kernel: kernel_version(&release),
        }
    }
}

/// `(major, minor)` of a kernel release such as `6.1.0-18-amd64`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

fn architectures(arch: Option<Arch>) -> Vec<&'static str> {
    match arch {
        Some(Arch::Amd64) => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        Some(Arch::Arm64) => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        None => vec![],
    }
}

/// Docker's default profile for a container granted `caps` (its bounding set) on `host`.
pub fn profile(host: &Host, caps: &[&str]) -> Seccomp {
    let applies = |w: When| match w {
        When::Always => true,
        When::Arch(arches) => host.arch.is_some_and(|a| arches.contains(&a)),
        When::Cap(c) => caps.contains(&c),
        When::NoCap(c) => !caps.contains(&c),
        When::Kernel(major, minor) => host.kernel.is_some_and(|k| k >= (major, minor)),
    };
    let syscalls = RULES
        .iter()
        .filter(|r| applies(r.when))
        .map(|r| Syscall {
            names: r.names.split_whitespace().collect(),
            action: r.action,
            errno_ret: r.errno,
            args: r.arg.into_iter().collect(),
        })
        .collect();
    Seccomp {
        default_action: Action::Errno,
        default_errno_ret: DEFAULT_ERRNO,
        architectures: architectures(host.arch),
        syscalls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: Host = Host {
        arch: Some(Arch::Amd64),
        kernel: Some((6, 1)),
    };

    /// The rules naming `name`.
    fn rules<'a>(p: &'a Seccomp, name: &str) -> Vec<&'a Syscall> {
        p.syscalls
            .iter()
            .filter(|s| s.names.contains(&name))
            .collect()
    }

    #[test]
    fn kernel_releases_parse() {
        assert_eq!(kernel_version("6.1.0-18-amd64\n"), Some((6, 1)));
        assert_eq!(kernel_version("6.18.44-fc-v1045"), Some((6, 18)));
        assert_eq!(kernel_version("4.8"), Some((4, 8)));
        assert_eq!(kernel_version("5.10rc1"), Some((5, 10)));
        assert_eq!(kernel_version(""), None);
    }

    #[test]
    fn capability_rules_follow_the_granted_caps() {
        let without = profile(&X86, &["CAP_CHOWN"]);
        assert!(rules(&without, "chroot").is_empty());
        assert!(rules(&without, "mount").is_empty());
        let clone = rules(&without, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].args[0].op, Op::MaskedEqual);
        let admin = profile(&X86, &["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"]);
        assert_eq!(rules(&admin, "chroot").len(), 1);
        assert_eq!(rules(&admin, "mount")[0].action, Action::Allow);
        // With CAP_SYS_ADMIN clone is unrestricted and clone3 is simply allowed.
        assert!(rules(&admin, "clone").iter().all(|r| r.args.is_empty()));
        assert!(rules(&admin, "clone3")
            .iter()
            .all(|r| r.action == Action::Allow));
    }

    #[test]
    fn arch_and_kernel_rules_follow_the_host() {
        let x86 = profile(&X86, &[]);
        assert_eq!(x86.architectures[0], "SCMP_ARCH_X86_64");
        assert_eq!(rules(&x86, "arch_prctl").len(), 1);
        assert!(rules(&x86, "set_tls").is_empty());
        assert_eq!(rules(&x86, "ptrace").len(), 1);
        let arm = Host {
            arch: Some(Arch::Arm64),
            kernel: Some((4, 4)),
        };
        let arm = profile(&arm, &[]);
        assert_eq!(arm.architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
        assert!(rules(&arm, "arch_prctl").is_empty());
        assert_eq!(rules(&arm, "set_tls").len(), 1);
        // Before 4.8 ptrace could get around seccomp: not allowed there, as in Docker.
        assert!(rules(&arm, "ptrace").is_empty());
    }

    #[test]
    fn serialises_as_the_oci_object() {
        let v = serde_json::to_value(profile(&X86, &[])).expect("json");
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        let clone = v["syscalls"]
            .as_array()
            .expect("syscalls")
            .iter()
            .find(|s| s["names"] == serde_json::json!(["clone"]))
            .expect("clone");
        assert_eq!(
            clone["args"],
            serde_json::json!([{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}])
        );
        assert!(clone.get("errnoRet").is_none());
    }
}
