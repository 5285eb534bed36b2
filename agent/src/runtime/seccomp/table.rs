//! The rules of Docker's default seccomp profile (moby `profiles/seccomp/default.json`, the
//! current one: io_uring is off, AF_ALG and AF_VSOCK sockets too) as data: the plain
//! allow-list, then the rules that depend on an argument, the architecture, the capabilities
//! the container is granted or the kernel. Only the architectures Berth runs on (x86_64 and
//! aarch64) keep their arch-specific rules; the s390, MIPS, PowerPC and RISC-V ones are left
//! out. Names the host's libseccomp does not know are skipped by runc.

use super::{Action, ArgRule, Op};
use berth_shared::catalog::Arch;

/// When a rule is part of the profile (Docker's `includes` / `excludes`).
#[derive(Debug, Clone, Copy)]
pub(super) enum When {
    Always,
    /// The host's architecture is one of these.
    Arch(&'static [Arch]),
    /// The container is granted this capability.
    Cap(&'static str),
    /// The container is not granted this capability.
    NoCap(&'static str),
    /// The host's kernel is at least this (major, minor).
    Kernel(u32, u32),
}

/// One rule: `names` are whitespace-separated.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rule {
    pub names: &'static str,
    pub action: Action,
    pub errno: Option<u32>,
    pub arg: Option<ArgRule>,
    pub when: When,
}

const fn allow(names: &'static str, when: When) -> Rule {
    Rule {
        names,
        action: Action::Allow,
        errno: None,
        arg: None,
        when,
    }
}

/// Allowed when argument `index` compared by `op` with `value` holds.
const fn allow_arg(names: &'static str, index: u32, op: Op, value: u64) -> Rule {
    Rule {
        arg: Some(ArgRule {
            index,
            value,
            value_two: 0,
            op,
        }),
        ..allow(names, When::Always)
    }
}

/// The namespace flags of clone(2): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET. `clone` is allowed only when `flags & CLONE_NS_MASK == 0`.
pub(super) const CLONE_NS_MASK: u64 = 0x7E02_0000;
/// `socket(2)` of any family but AF_ALG (38: the kernel's crypto API) and AF_VSOCK (40: host
/// services over virtio).
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
pub(super) const DEFAULT_ERRNO: u32 = EPERM;

/// Allowed for every container, whatever its capabilities.
const ALLOWED: &str = "
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday
getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64
ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount listxattr
listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock
mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect
open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free
pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease
pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv
recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename
renameat renameat2 restart_syscall riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg
sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer
setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setuid32 setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount statx
symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat utimensat_time64
utimes vfork vmsplice wait4 waitid waitpid write writev
";

/// Docker's profile, in its order.
#[rustfmt::skip]
pub(super) const RULES: &[Rule] = &[
    allow(ALLOWED, When::Always),
    // Before 4.8 ptrace could bypass seccomp.
    allow(
        "process_vm_readv process_vm_writev ptrace",
        When::Kernel(4, 8),
    ),
    allow_arg("socket", 0, Op::LessThan, AF_ALG),
    allow_arg("socket", 0, Op::Equal, AF_ALG + 1),
    allow_arg("socket", 0, Op::GreaterThan, AF_VSOCK),
    // personality(2): Linux, Linux32, UNAME26 (and with Linux32), and the query.
    allow_arg("personality", 0, Op::Equal, 0x0),
    allow_arg("personality", 0, Op::Equal, 0x8),
    allow_arg("personality", 0, Op::Equal, 0x2_0000),
    allow_arg("personality", 0, Op::Equal, 0x2_0008),
    allow_arg("personality", 0, Op::Equal, 0xffff_ffff),
    allow(
        "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
        When::Arch(&[Arch::Arm64]),
    ),
    allow("arch_prctl modify_ldt", When::Arch(&[Arch::Amd64])),
    allow("open_by_handle_at", When::Cap("CAP_DAC_READ_SEARCH")),
    allow("bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
         lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount
         open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog
         umount umount2 unshare", When::Cap("CAP_SYS_ADMIN")),
    Rule {
        when: When::NoCap("CAP_SYS_ADMIN"),
        ..allow_arg("clone", 0, Op::MaskedEqual, CLONE_NS_MASK)
    },
    // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes glibc use clone.
    Rule {
        names: "clone3",
        action: Action::Errno,
        errno: Some(ENOSYS),
        arg: None,
        when: When::NoCap("CAP_SYS_ADMIN"),
    },
    allow("reboot", When::Cap("CAP_SYS_BOOT")),
    allow("chroot", When::Cap("CAP_SYS_CHROOT")),
    allow("delete_module init_module finit_module", When::Cap("CAP_SYS_MODULE")),
    allow("acct", When::Cap("CAP_SYS_PACCT")),
    allow("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace", When::Cap("CAP_SYS_PTRACE")),
    allow("iopl ioperm", When::Cap("CAP_SYS_RAWIO")),
    allow("settimeofday stime clock_settime clock_settime64", When::Cap("CAP_SYS_TIME")),
    allow("vhangup", When::Cap("CAP_SYS_TTY_CONFIG")),
    allow("get_mempolicy mbind set_mempolicy set_mempolicy_home_node", When::Cap("CAP_SYS_NICE")),
    allow("syslog", When::Cap("CAP_SYSLOG")),
    allow("bpf", When::Cap("CAP_BPF")),
    allow("perf_event_open", When::Cap("CAP_PERFMON")),
];
