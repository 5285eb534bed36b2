//! Containers are hardened by default: inside a live container, reached the way its owner
//! reaches it (OpenSSH through the agent), seccomp is in filter mode with Docker's default
//! profile, no new privileges can be gained, the capabilities are Docker's default set and
//! the pids cgroup is limited. Busybox tools that need a denied syscall fail with EPERM, and a
//! small static probe (compiled here with gcc) calls the denied syscalls no tool reaches.

use anyhow::{ensure, Context, Result};
use berth_tests::{containerd, run, Cluster};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Docker's default capability set as a `CapEff` mask (CHOWN DAC_OVERRIDE FOWNER FSETID KILL
/// SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP).
const DOCKER_CAPS: u64 = 0xa804_25fb;
/// How busybox reports EPERM (`mount` says the latter).
const EPERM: [&str; 2] = ["Operation not permitted", "permission denied"];

/// Each line `name=<rc> <output>`: busybox tools and what they must not be able to do.
const SCRIPT: &str = r#"
for p in self 1; do
  for f in Seccomp NoNewPrivs CapEff CapBnd; do
    echo "$f.$p=$(sed -n "s/^$f:[[:space:]]*//p" /proc/$p/status)"
  done
done
t() { n=$1; shift; out=$("$@" 2>&1); rc=$?; echo "$n=$rc $(echo $out)"; }
t unshare_urm unshare -Urm sh -c 'grep CapEff /proc/self/status; mount -t tmpfs none /tmp && echo mounted'
t unshare_u unshare -U true
t unshare_n unshare -n true
t mount mount -t tmpfs none /tmp
t nsenter nsenter -t 1 -u true
t swapon swapon /dev/null
t hostname hostname hacked
t dmesg dmesg
t rmmod rmmod berth_nosuch
t pivot_root pivot_root /tmp /tmp
t umount umount /dev/shm
t date date -s 2001-01-01
t chroot chroot / true
t linux32 linux32 uname -m
echo "tmpfs_on_tmp=$(grep -c ' /tmp tmpfs ' /proc/mounts)"
echo "hostname_now=$(hostname)"
/tmp/probe
"#;

/// Raw syscalls no busybox tool makes; prints `sys.<name>=<errno>` (0: it succeeded).
const PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static void report(const char *n, long r) { printf("sys.%s=%d\n", n, r < 0 ? errno : 0); }
#define TRY(n, ...) do { errno = 0; report(n, syscall(__VA_ARGS__)); } while (0)
static void clone_probe(const char *n, long flags) {
  long pid = syscall(SYS_clone, flags | SIGCHLD, 0L, 0L, 0L, 0L);
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid(pid, 0, 0);
  report(n, pid);
}
int main(void) {
  clone_probe("clone", 0);
  clone_probe("clone_newuser", CLONE_NEWUSER);
  clone_probe("clone_newns", CLONE_NEWNS);
  TRY("clone3", SYS_clone3, 0L, 0L);
  TRY("unshare", SYS_unshare, (long)CLONE_NEWUSER);
  TRY("setns", SYS_setns, -1L, 0L);
  TRY("mount", SYS_mount, "none", "/tmp", "tmpfs", 0L, 0L);
  TRY("keyctl", SYS_keyctl, 0L, -3L, 1L);
  TRY("add_key", SYS_add_key, "user", "berth", "x", 1L, -2L);
  TRY("request_key", SYS_request_key, "user", "berth", 0L, 0L);
  TRY("bpf", SYS_bpf, 0L, 0L, 0L);
  TRY("userfaultfd", SYS_userfaultfd, 1L);
  TRY("kexec_load", SYS_kexec_load, 0L, 0L, 0L, 0L);
  TRY("open_by_handle_at", SYS_open_by_handle_at, -100L, 0L, 0L);
  TRY("init_module", SYS_init_module, 0L, 0L, "");
  TRY("finit_module", SYS_finit_module, -1L, "", 0L);
  TRY("perf_event_open", SYS_perf_event_open, 0L, 0L, -1L, -1L, 0L);
  TRY("socket_alg", SYS_socket, 38L, (long)SOCK_SEQPACKET, 0L);
  TRY("socket_vsock", SYS_socket, 40L, (long)SOCK_STREAM, 0L);
  TRY("socket_unix", SYS_socket, (long)AF_UNIX, (long)SOCK_STREAM, 0L);
  TRY("personality_query", SYS_personality, 0xffffffffL);
  TRY("personality_no_aslr", SYS_personality, 0x0040000L);
  TRY("ptrace_peek_pid1", SYS_ptrace, 2L, 1L, 0L, 0L);
  return 0;
}
"#;

/// Each denied tool, with why it must fail: the syscall it needs and the rule denying it.
const DENIED_TOOLS: [(&str, &str); 12] = [
    (
        "unshare_urm",
        "unshare(CLONE_NEWUSER|CLONE_NEWNS): no namespaces without CAP_SYS_ADMIN",
    ),
    (
        "unshare_u",
        "unshare(CLONE_NEWUSER) needs no capability: only seccomp stops it",
    ),
    (
        "unshare_n",
        "unshare(CLONE_NEWNET): unshare is CAP_SYS_ADMIN-only in the profile",
    ),
    ("mount", "mount(2) is CAP_SYS_ADMIN-only in the profile"),
    ("nsenter", "setns(2) is CAP_SYS_ADMIN-only in the profile"),
    ("swapon", "swapon(2) is not on the allow-list"),
    (
        "hostname",
        "sethostname(2) is CAP_SYS_ADMIN-only in the profile",
    ),
    ("dmesg", "syslog(2) needs CAP_SYSLOG"),
    ("rmmod", "delete_module(2) needs CAP_SYS_MODULE"),
    ("pivot_root", "pivot_root(2) is not on the allow-list"),
    ("umount", "umount2(2) is CAP_SYS_ADMIN-only in the profile"),
    ("date", "settimeofday/clock_settime need CAP_SYS_TIME"),
];

/// The probe's syscalls and the errno each must give: 1 EPERM (denied), 38 ENOSYS (clone3, so
/// glibc falls back to clone), 3 ESRCH (ptrace is allowed: the kernel answers, not the filter).
const PROBE_WANT: [(&str, u32); 23] = [
    ("clone", 0),
    ("clone_newuser", 1),
    ("clone_newns", 1),
    ("clone3", 38),
    ("unshare", 1),
    ("setns", 1),
    ("mount", 1),
    ("keyctl", 1),
    ("add_key", 1),
    ("request_key", 1),
    ("bpf", 1),
    ("userfaultfd", 1),
    ("kexec_load", 1),
    ("open_by_handle_at", 1),
    ("init_module", 1),
    ("finit_module", 1),
    ("perf_event_open", 1),
    ("socket_alg", 1),
    ("socket_vsock", 1),
    ("socket_unix", 0),
    ("personality_query", 0),
    ("personality_no_aslr", 1),
    ("ptrace_peek_pid1", 3),
];

fn ssh(port: u16, key: &Path, login: &str, script: &str) -> Result<String> {
    run(Command::new("timeout")
        .args(["60", "ssh", "-p", &port.to_string(), "-i"])
        .arg(key)
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
        .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .arg(format!("{login}@127.0.0.1"))
        .arg(script))
}

fn hex(s: &str) -> Result<u64> {
    u64::from_str_radix(s, 16).with_context(|| format!("not a capability mask: {s:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_are_hardened_by_default() -> Result<()> {
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let (key, key_path) = alice.add_key_in("laptop", &c.dir.join("keys")).await?;
    let body = json!({"name": "hard", "ssh_key_ids": [key], "ssh_enabled": true});
    let id = c.running_container(&alice, body).await?;

    // The probe, compiled static, dropped into the container's root from the host.
    let src = c.dir.join("probe.c");
    std::fs::write(&src, PROBE)?;
    let bin = c.dir.join("probe");
    run(Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src))?;
    let (pid, _) = containerd::task(&c.namespace, &id)?.context("no task")?;
    std::fs::copy(&bin, format!("/proc/{pid}/root/tmp/probe"))?;

    c.eventually(Duration::from_secs(60), "ssh lets alice in", || async {
        Ok(ssh(c.ssh_port, &key_path, &id, "true").is_ok())
    })
    .await?;
    let out = ssh(c.ssh_port, &key_path, &id, SCRIPT)?;
    println!("inside the container, over SSH:\n{out}");
    let got: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
    let field = |k: &str| got.get(k).copied().unwrap_or_default();

    for p in ["self", "1"] {
        assert_eq!(
            field(&format!("Seccomp.{p}")),
            "2",
            "seccomp mode of {p}\n{out}"
        );
        assert_eq!(
            field(&format!("NoNewPrivs.{p}")),
            "1",
            "NoNewPrivs of {p}\n{out}"
        );
        for caps in ["CapEff", "CapBnd"] {
            let mask = hex(field(&format!("{caps}.{p}")))?;
            assert_eq!(mask & !DOCKER_CAPS, 0, "{caps} of {p}: {mask:016x}\n{out}");
        }
    }
    assert_eq!(containerd::cgroup("pids", &id, "pids.max")?, "4096");

    for (tool, why) in DENIED_TOOLS {
        let line = field(tool);
        let (rc, msg) = line.split_once(' ').unwrap_or((line, ""));
        // busybox `date -s` reports the refusal but exits 0.
        assert!(
            tool == "date" || rc != "0",
            "{tool} succeeded ({why}): {line}"
        );
        assert!(
            EPERM.iter().any(|e| msg.contains(e)),
            "{tool} not refused with EPERM ({why}): {line}"
        );
    }
    // The shell in a user namespace (full capabilities there) never ran, nor its mount.
    let userns = field("unshare_urm");
    assert!(
        !userns.contains("CapEff") && !userns.contains("mounted"),
        "{userns}"
    );
    assert_eq!(field("tmpfs_on_tmp"), "0", "a tmpfs got mounted\n{out}");
    assert_eq!(field("hostname_now"), id, "the hostname changed\n{out}");
    // Allowed by the capability-conditional and the arg-filtered rules.
    assert_eq!(
        field("chroot"),
        "0 ",
        "chroot (CAP_SYS_CHROOT is granted)\n{out}"
    );
    assert!(
        field("linux32").starts_with("0 "),
        "personality(PER_LINUX32)\n{out}"
    );

    for (call, errno) in PROBE_WANT {
        assert_eq!(
            field(&format!("sys.{call}")),
            errno.to_string(),
            "{call}\n{out}"
        );
    }

    // The spec containerd holds carries the profile.
    let spec = containerd::spec(&c.namespace, &id)?;
    let sc = &spec["linux"]["seccomp"];
    ensure!(sc["defaultAction"] == "SCMP_ACT_ERRNO", "seccomp: {sc}");
    Ok(())
}
