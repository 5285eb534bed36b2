//! gVisor containers: made like runc ones, with containerd's runc shim told (its `Options`,
//! `binary_name`) to run a wrapper of gVisor's `runsc` instead of `runc`, as Docker runs
//! runsc. The wrapper, one per container under `<data_dir>/gvisor/`, is there because of three things runsc does:
//!
//! - runsc builds the sandbox's network (its own netstack) from the interfaces of the
//!   container's network namespace, and refuses one where `/proc/sys/net/core/rmem_default`
//!   exists ("cannot run with network enabled in root network namespace"): the test older
//!   runsc releases (Debian's 20221219) use for "this is the host's namespace". Newer kernels
//!   (6.18 here) show that file in every namespace, so the wrapper hides it — an empty read-only tmpfs
//!   on `/proc/sys/net/core` of the container's namespace, in a private mount namespace of
//!   runsc's own — when, and only when, it is there.
//! - runsc moves the address and routes of `eth0` from the namespace into the sandbox it
//!   starts (so that the host's kernel does not answer for it too); the namespace is kept
//!   across stop and start, so before every start the wrapper gives them back.
//! - Without a prepared network namespace it would refuse the new one just the same: such a
//!   container runs with `--network=none`.
//!
//! Every call passes `--oci-seccomp`, so that the spec's seccomp profile (Docker's, as runc
//! containers have it) is enforced by gVisor's kernel on the container's init and what it
//! starts; runsc ignores it otherwise. That runsc puts no filter on processes started by exec
//! (SSH sessions, the terminal), which only gVisor's kernel itself confines.
//! Everything else runsc takes from the same OCI spec and the same shim as runc: it leaves out
//! what it does not implement (the read-only cgroupfs and mqueue mounts; the masked /proc and
//! /sys paths are absent or empty in its own) and puts its sandbox — sentry, gofer and the
//! container's processes — in the spec's cgroup, so the limits and `usage` cover all of it.

use super::RuntimeError;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The type of the runc shim's options (containerd's `api/types/runc/options/oci.proto`).
pub const RUNC_OPTIONS_TYPE: &str = "containerd.runc.v1.Options";
/// `string binary_name = 6;` of that message.
const BINARY_NAME_FIELD: u32 = 6;

/// The runc shim's `Options` with only `binary_name` set, protobuf-encoded: containerd-client
/// ships no Rust type for it, and one length-delimited field needs none.
pub fn runc_options(binary_name: &Path) -> prost_types::Any {
    let name = binary_name.as_os_str().as_encoded_bytes();
    let mut value = Vec::with_capacity(name.len() + 6);
    varint(&mut value, u64::from(BINARY_NAME_FIELD << 3 | 2));
    varint(&mut value, name.len() as u64);
    value.extend_from_slice(name);
    prost_types::Any {
        type_url: RUNC_OPTIONS_TYPE.into(),
        value,
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `s` as one word of a POSIX shell script.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A container's network as CNI made it: its namespace, `eth0`'s address and the gateway.
pub struct Net<'a> {
    pub netns: &'a Path,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

/// The wrapper script of a container on `net` (`None`: no network).
fn script(id: &str, runsc: &Path, net: Option<&Net>) -> String {
    // The spec's seccomp profile (Docker's, as runc containers get) applies inside too.
    let runsc = format!("{} --oci-seccomp", quote(&runsc.display().to_string()));
    let head = format!(
        "#!/bin/sh\n# berth-agent: gVisor's runsc for container {id}, run by containerd's runc shim.\n\
         # See agent/src/runtime/gvisor.rs for why it is wrapped.\n\
         PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nexport PATH\n"
    );
    let Some(net) = net else {
        return format!("{head}exec {runsc} --network=none \"$@\"\n");
    };
    let netns = quote(&net.netns.display().to_string());
    let (address, prefix, gateway) = (net.address, net.prefix, net.gateway);
    format!(
        r#"{head}netns={netns}
# Only `runsc start` (of the sandbox's first process) takes the namespace's network.
start=
for a in "$@"; do [ "$a" = start ] && start=1; done
[ -n "$start" ] && [ -e "$netns" ] || exec {runsc} "$@"
in_ns() {{ nsenter --net="$netns" "$@"; }}
# runsc moves eth0's address and routes into the sandbox, leaving the namespace without them
# once it stops: a start after a stop puts them back first.
in_ns ip -4 -o addr show dev eth0 | grep -q ' inet ' || in_ns ip addr add {address}/{prefix} dev eth0 || exit 1
in_ns ip route replace default via {gateway} dev eth0 || exit 1
# runsc's "is this the host's namespace" probe; hidden from it where every namespace has it.
if in_ns test -e /proc/sys/net/core/rmem_default; then
  exec unshare --mount --propagation private /bin/sh -c 'nsenter --net="$1" mount -t tmpfs -o ro,size=4k berth-runsc /proc/sys/net/core && shift && exec "$@"' sh "$netns" {runsc} "$@"
fi
exec {runsc} "$@"
"#
    )
}

/// Where container `id`'s wrapper is, under `dir` (`<data_dir>/gvisor`).
pub fn wrapper_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(id)
}

/// Writes (atomically, mode 0700) the wrapper the shim runs as container `id`'s "runc".
pub fn write_wrapper(
    dir: &Path,
    id: &str,
    runsc: &Path,
    net: Option<&Net>,
) -> Result<PathBuf, RuntimeError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| RuntimeError::Io { what, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("create gvisor wrapper dir", dir))?;
    let path = wrapper_path(dir, id);
    let tmp = dir.join(format!(".{id}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o700)
        .open(&tmp)
        .map_err(io("write gvisor wrapper", &tmp))?;
    f.write_all(script(id, runsc, net).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io("write gvisor wrapper", &tmp))?;
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))
        .map_err(io("chmod gvisor wrapper", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("install gvisor wrapper", &path))?;
    Ok(path)
}

/// Removes container `id`'s wrapper, if there is one.
pub fn remove_wrapper(dir: &Path, id: &str) -> Result<(), RuntimeError> {
    if !berth_shared::ids::is_container_id(id) {
        return Ok(()); // not one of ours: never a path built from it
    }
    let path = wrapper_path(dir, id);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RuntimeError::Io {
            what: "remove gvisor wrapper",
            path,
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_field_six_as_containerd_encodes_them() {
        let any = runc_options(Path::new("/var/lib/berth-agent/gvisor/abc12345"));
        assert_eq!(any.type_url, "containerd.runc.v1.Options");
        // Key 0x32 (field 6, length-delimited), length 36, the bytes.
        assert_eq!(any.value[..2], [0x32, 36]);
        assert_eq!(&any.value[2..], b"/var/lib/berth-agent/gvisor/abc12345");
        let long = "/x".repeat(100);
        let any = runc_options(Path::new(&long));
        assert_eq!(any.value[..3], [0x32, 0xc8, 0x01]); // 200 as a varint
    }

    #[test]
    fn the_script_mends_the_namespace_only_for_start() {
        let net = Net {
            netns: Path::new("/run/berth/netns/abc12345"),
            address: Ipv4Addr::new(10, 89, 0, 7),
            prefix: 24,
            gateway: Ipv4Addr::new(10, 89, 0, 1),
        };
        let s = script("abc12345", Path::new("/usr/bin/runsc"), Some(&net));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("netns='/run/berth/netns/abc12345'\n"));
        assert!(s.contains("|| exec '/usr/bin/runsc' --oci-seccomp \"$@\"\n"));
        assert!(s.contains("ip addr add 10.89.0.7/24 dev eth0"));
        assert!(s.contains("ip route replace default via 10.89.0.1 dev eth0"));
        assert!(s.contains("nsenter --net=\"$1\" mount -t tmpfs"));
        assert!(s.ends_with("exec '/usr/bin/runsc' --oci-seccomp \"$@\"\n"));
        let none = script("abc12345", Path::new("/opt/it's/runsc"), None);
        assert!(none.ends_with("exec '/opt/it'\\''s/runsc' --oci-seccomp --network=none \"$@\"\n"));
    }

    #[test]
    fn wrappers_are_written_executable_and_removed() {
        let dir = std::env::temp_dir().join(format!("berth-gvisor-{}", std::process::id()));
        let p = write_wrapper(&dir, "abc12345", Path::new("/usr/bin/runsc"), None).expect("write");
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        remove_wrapper(&dir, "abc12345").expect("remove");
        assert!(!p.exists());
        remove_wrapper(&dir, "abc12345").expect("removing twice is fine");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
