//! Input validation for the public API. Every failure is collected per field so a 422 can
//! say everything that is wrong at once: `{"error":"invalid","details":{field:[messages]}}`.

use serde_json::Value;
use std::collections::BTreeMap;

/// Field name → messages.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, msg: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_default()
            .push(msg.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result<T>(self, ok: T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(ok)
        } else {
            Err(self)
        }
    }
}

/// Container names: 1–64 characters of letters, digits and hyphens, not starting with a hyphen.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') || name.starts_with('-') {
        return Err(
            "may contain only letters, digits and hyphens, and must not start with a hyphen".into(),
        );
    }
    // `ssh <login>@host` takes an id or a name: a name shaped like an id could stand in for
    // another container's id.
    if crate::ids::is_container_id(name) {
        return Err("must not look like a container id (8 lowercase letters and digits)".into());
    }
    Ok(())
}

/// Where a volume may not be mounted, nor anywhere below: the kernel's file systems, the
/// image's system directories (a mount over them hides the programs the container runs, and a
/// mount over a file there cannot work), and `/.berth`, where the agent puts its own files.
const FORBIDDEN_MOUNTS: [&str; 16] = [
    "/", "/proc", "/sys", "/dev", "/.berth", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
    "/libx32", "/usr", "/etc", "/boot", "/run", "/var/run",
];

/// A mount path: absolute, normalised (no `.`/`..`/empty segments, no trailing slash), not a
/// system path, of printable characters. Returns the path unchanged when it is valid.
pub fn check_mount_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("{p:?} must be an absolute path"));
    }
    if p.len() > 255 || p.chars().any(|c| c.is_control()) {
        return Err(format!("{p:?} must be at most 255 printable characters"));
    }
    let forbidden = FORBIDDEN_MOUNTS
        .iter()
        .any(|f| p == *f || (*f != "/" && p.starts_with(&format!("{f}/"))));
    if forbidden {
        return Err(format!(
            "{p:?} is a system path and cannot be mounted (nor can anything under {})",
            "/bin, /sbin, /lib*, /usr, /etc, /boot, /run, /proc, /sys, /dev or /.berth"
        ));
    }
    if p[1..]
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(format!(
            "{p:?} must be normalised (no '.', '..', '//' or trailing '/')"
        ));
    }
    Ok(())
}

pub fn check_mount_paths(paths: &[String]) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    if paths.is_empty() {
        errs.push("must list at least one path".to_string());
    }
    if paths.len() > 16 {
        errs.push("at most 16 paths".to_string());
    }
    for (i, p) in paths.iter().enumerate() {
        if let Err(e) = check_mount_path(p) {
            errs.push(e);
        } else if paths[..i].contains(p) {
            errs.push(format!("{p:?} is listed twice"));
        } else if let Some(parent) = paths[..i]
            .iter()
            .chain(paths[i + 1..].iter())
            .find(|o| p.starts_with(&format!("{o}/")))
        {
            errs.push(format!(
                "{p:?} is inside {parent:?}, which is already mounted"
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

pub const MAX_ENV: usize = 200;
pub const MAX_PORTS: usize = 50;

/// `env`: at most 200 keys, each a shell-style name, values without NUL.
pub fn check_env(env: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    if env.len() > MAX_ENV {
        return Err(format!("at most {MAX_ENV} keys"));
    }
    for (k, v) in env {
        let ok = !k.is_empty()
            && k.len() <= 256
            && !k.as_bytes()[0].is_ascii_digit()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(format!(
                "{k:?} is not a valid variable name (letters, digits, '_')"
            ));
        }
        if v.contains('\0') || v.len() > 32 * 1024 {
            return Err(format!("the value of {k} must be text of at most 32 KiB"));
        }
    }
    Ok(())
}

/// `ports`: container ports only (1–65535, at most 50); host bindings are rejected.
pub fn ports(v: &Value) -> Result<Vec<u16>, String> {
    let Some(arr) = v.as_array() else {
        return Err("must be a list of container ports".into());
    };
    if arr.len() > MAX_PORTS {
        return Err(format!("at most {MAX_PORTS} ports"));
    }
    let mut out = Vec::new();
    for p in arr {
        match p.as_u64() {
            Some(n) if (1..=65535).contains(&n) => {
                if !out.contains(&(n as u16)) {
                    out.push(n as u16)
                }
            }
            _ if p.is_object() || p.is_string() => {
                return Err("host bindings are not allowed: list container ports as numbers; use ingress rules to expose them".into())
            }
            _ => return Err(format!("{p} is not a port (1-65535)")),
        }
    }
    Ok(out)
}

/// Ingress external ports: 80, 443, 8000–8999 (seed `001`).
pub fn check_ingress_port(port: u64) -> Result<u16, String> {
    if port == 80 || port == 443 || (8000..=8999).contains(&port) {
        Ok(port as u16)
    } else {
        Err("must be 80, 443 or 8000-8999".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_must_be_normalised_and_safe() {
        let bad = "/ /proc /sys/fs /dev /a/../b /a//b /a/ a /./a /bin/sh /.berth /.berth/init /etc /usr /usr/local /run";
        for p in bad.split(' ') {
            assert!(check_mount_path(p).is_err(), "{p}");
        }
        for p in "/root /var/data /devices /process /var/lib/db /data".split(' ') {
            assert!(check_mount_path(p).is_ok(), "{p}");
        }
        assert!(check_mount_paths(&["/data".into(), "/data/x".into()]).is_err());
        assert!(check_mount_paths(&[]).is_err());
    }

    #[test]
    fn names() {
        assert!(check_name("my-app-1").is_ok());
        assert!(check_name("-x").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
        assert!(check_name("abcd1234").is_err(), "an id-shaped name");
        assert!(check_name("abcd-123").is_ok());
    }
}
