//! The OCI runtime spec of a Berth container, hardened as Docker's default is: Docker's
//! capability set, no-new-privileges, Docker's seccomp profile (`seccomp`, following the
//! capabilities granted here), masked and read-only /proc and /sys paths, a pids limit; with
//! memory and CPU limits from the spec, the agent's init as PID 1 and one bind mount per volume.

use super::seccomp;
use super::ImageInfo;
use berth_shared::protocol::ContainerSpec;
use serde_json::{json, Value};
use std::path::Path;

/// Docker's default capability set: bounding, effective and permitted, and what the seccomp
/// profile's capability-dependent rules are decided by.
const CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub const INIT_PATH: &str = "/.berth/init";
/// Where the SFTP server is inside a container (`[ssh] sftp_server` on the host).
pub const SFTP_PATH: &str = "/.berth/sftp-server";
pub const PIDS_LIMIT: u64 = 4096;
const CPU_PERIOD: u64 = 100_000;
/// What a container runs when its image names no command: a long-lived machine.
const IDLE: [&str; 2] = ["/bin/sleep", "2147483647"];

pub struct Volume<'a> {
    pub host: &'a Path,
    pub target: &'a str,
}

fn args(img: &ImageInfo) -> Vec<String> {
    let mut cmd: Vec<String> = img
        .entrypoint
        .iter()
        .chain(img.cmd.iter())
        .cloned()
        .collect();
    if cmd.is_empty() {
        cmd = IDLE.iter().map(|s| s.to_string()).collect();
    }
    let mut a = vec![INIT_PATH.to_string(), "--".to_string()];
    a.extend(cmd);
    a
}

fn env(spec: &ContainerSpec, img: &ImageInfo) -> Vec<String> {
    let mut out: Vec<String> = img
        .env
        .iter()
        .filter(|e| {
            let k = e.split('=').next().unwrap_or_default();
            !spec.env.contains_key(k)
        })
        .cloned()
        .collect();
    if !out.iter().any(|e| e.starts_with("PATH=")) && !spec.env.contains_key("PATH") {
        out.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    out.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    out.push(format!("HOSTNAME={}", spec.id));
    out
}

/// `netns`: the container's prepared network namespace; `None` gives it a new, empty one.
pub fn spec(
    spec: &ContainerSpec,
    img: &ImageInfo,
    init: &Path,
    sftp_server: Option<&Path>,
    volumes: &[Volume],
    netns: Option<&Path>,
) -> Value {
    let network = match netns {
        Some(p) => json!({"type": "network", "path": p}),
        None => json!({"type": "network"}),
    };
    let memory = spec.memory_mb * 1024 * 1024;
    let cpu_quota = u64::from(spec.cpu_millis) * CPU_PERIOD / 1000;
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "ro", "nosuid", "nodev"]}),
    ];
    if let Some(sftp) = sftp_server {
        mounts.push(json!({"destination": SFTP_PATH, "type": "bind", "source": sftp, "options": ["rbind", "ro", "nosuid", "nodev"]}));
    }
    for v in volumes {
        mounts.push(json!({"destination": v.target, "type": "bind", "source": v.host, "options": ["rbind", "rw", "nosuid", "nodev"]}));
    }
    let seccomp = seccomp::profile(&seccomp::Host::current(), &CAPS);
    let dev = |t: &str, major: i64, minor: i64| json!({"allow": true, "type": t, "major": major, "minor": minor, "access": "rwm"});
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args(img),
            "env": env(spec, img),
            "cwd": if img.working_dir.is_empty() { "/" } else { img.working_dir.as_str() },
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": spec.id,
        "mounts": mounts,
        "linux": {
            "cgroupsPath": format!("/berth/{}", spec.id),
            "resources": {
                "devices": [
                    {"allow": false, "access": "rwm"},
                    dev("c", 1, 3), dev("c", 1, 5), dev("c", 1, 7), dev("c", 1, 8), dev("c", 1, 9),
                    dev("c", 5, 0), dev("c", 5, 2), dev("c", 136, -1)
                ],
                "memory": {"limit": memory},
                "cpu": {"quota": cpu_quota, "period": CPU_PERIOD, "shares": (u64::from(spec.cpu_millis) * 1024 / 1000).max(2)},
                "pids": {"limit": PIDS_LIMIT}
            },
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, network
            ],
            "seccomp": seccomp,
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_shared::protocol::DesiredState;

    fn container() -> ContainerSpec {
        ContainerSpec {
            id: "abc12345".into(),
            name: "web".into(),
            generation: 1,
            desired: DesiredState::Running,
            image: "img".into(),
            cpu_millis: 500,
            memory_mb: 256,
            storage_gb: 5,
            mount_paths: vec!["/root".into()],
            env: [("FOO".to_string(), "bar".to_string())].into(),
            ssh_enabled: false,
            ssh_authorized_keys: vec![],
            ports: vec![],
            ingress: vec![],
            boot: 0,
            runtime: Default::default(),
            restart_policy: Default::default(),
            health_check: None,
            volumes: vec![],
            pull_policy: Default::default(),
            image_digest: None,
        }
    }

    fn image() -> ImageInfo {
        ImageInfo {
            chain_id: "sha256:x".into(),
            env: vec!["FOO=old".into(), "PATH=/bin".into()],
            entrypoint: vec![],
            cmd: vec![],
            working_dir: String::new(),
        }
    }

    #[test]
    fn limits_and_mounts_come_from_the_spec() {
        let (s, img) = (container(), image());
        let host = Path::new("/data/volumes/abc12345/root");
        let v = spec(
            &s,
            &img,
            Path::new("/usr/bin/tini-static"),
            Some(Path::new("/usr/lib/berth/berth-sftp-server")),
            &[Volume {
                host,
                target: "/root",
            }],
            None,
        );
        assert_eq!(
            v["linux"]["resources"]["memory"]["limit"],
            256 * 1024 * 1024
        );
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(v["process"]["args"][0], INIT_PATH);
        assert_eq!(v["process"]["args"][2], "/bin/sleep");
        let env = v["process"]["env"].as_array().expect("env");
        assert!(env.contains(&json!("FOO=bar")) && !env.contains(&json!("FOO=old")));
        let mounts = v["mounts"].as_array().expect("mounts");
        assert!(mounts
            .iter()
            .any(|m| m["destination"] == "/root" && m["source"] == "/data/volumes/abc12345/root"));
        let sftp = mounts
            .iter()
            .find(|m| m["destination"] == SFTP_PATH)
            .expect("the SFTP server is mounted");
        assert!(sftp["options"]
            .as_array()
            .is_some_and(|o| o.contains(&json!("ro"))));
        assert_eq!(v["process"]["noNewPrivileges"], true);
    }

    #[test]
    fn hardened_like_docker() {
        let v = spec(&container(), &image(), Path::new("/init"), None, &[], None);
        let sc = &v["linux"]["seccomp"];
        assert_eq!(sc["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(sc["defaultErrnoRet"], 1);
        let rules = sc["syscalls"].as_array().expect("syscalls");
        // The allow rules naming `name`.
        let allowing = |name: &str| -> Vec<&Value> {
            rules
                .iter()
                .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
                .filter(|r| {
                    r["names"]
                        .as_array()
                        .is_some_and(|n| n.contains(&json!(name)))
                })
                .collect()
        };
        for denied in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "pivot_root",
            "kexec_load",
            "bpf",
            "keyctl",
            "add_key",
            "request_key",
            "userfaultfd",
            "init_module",
            "finit_module",
            "delete_module",
            "open_by_handle_at",
            "perf_event_open",
            "swapon",
            "reboot",
            "clone3",
            "io_uring_setup",
        ] {
            assert!(allowing(denied).is_empty(), "{denied} is allowed");
        }
        for allowed in ["read", "write", "execve", "wait4", "ptrace", "chroot"] {
            let r = allowing(allowed);
            assert!(
                r.len() == 1 && r[0].get("args").is_none(),
                "{allowed}: {r:?}"
            );
        }
        // clone only without namespace flags; clone3 answers ENOSYS; personality safe values.
        let clone = allowing("clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(
            clone[0]["args"],
            json!([{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}])
        );
        let clone3 = rules.iter().find(|r| r["names"] == json!(["clone3"]));
        assert_eq!(clone3.map(|r| r["errnoRet"].clone()), Some(json!(38)));
        let persona: Vec<&Value> = allowing("personality")
            .iter()
            .map(|r| &r["args"][0]["value"])
            .collect();
        assert_eq!(persona, [0, 8, 0x2_0000, 0x2_0008, 0xffff_ffffu64]);
        let masked = v["linux"]["maskedPaths"].as_array().expect("masked");
        assert!(masked.contains(&json!("/proc/kcore")) && masked.contains(&json!("/proc/keys")));
        let ro = v["linux"]["readonlyPaths"].as_array().expect("readonly");
        for p in [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ] {
            assert!(ro.contains(&json!(p)), "{p} not read-only");
        }
    }
}
