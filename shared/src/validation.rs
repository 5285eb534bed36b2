//! Input validation for the public API. Every failure is collected per field so a 422 can
//! say everything that is wrong at once: `{"error":"invalid","details":{field:[messages]}}`.

use crate::api::CreateContainer;
use serde_json::{Map, Value};
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

/// Typed reads from a JSON object that record a field error instead of failing.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    pub errors: FieldErrors,
}

impl<'a> Fields<'a> {
    /// The body must be a JSON object; anything else is one error on `body`.
    pub fn new(body: &'a Value) -> Result<Fields<'a>, FieldErrors> {
        match body.as_object() {
            Some(obj) => Ok(Fields {
                obj,
                errors: FieldErrors::default(),
            }),
            None => {
                let mut e = FieldErrors::default();
                e.add("body", "must be a JSON object");
                Err(e)
            }
        }
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    pub fn string(&mut self, field: &str, required: bool) -> Option<String> {
        match self.get(field) {
            None if required => {
                self.errors.add(field, "is required");
                None
            }
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.errors.add(field, "must be a string");
                None
            }
        }
    }

    pub fn uint(&mut self, field: &str) -> Option<u64> {
        match self.get(field) {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => {
                    self.errors.add(field, "must be a non-negative integer");
                    None
                }
            },
        }
    }

    pub fn boolean(&mut self, field: &str) -> Option<bool> {
        match self.get(field) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.errors.add(field, "must be true or false");
                None
            }
        }
    }

    pub fn uint_list(&mut self, field: &str) -> Option<Vec<u64>> {
        let arr = self.array(field)?;
        let out: Option<Vec<u64>> = arr.iter().map(Value::as_u64).collect();
        if out.is_none() {
            self.errors
                .add(field, "must be a list of non-negative integers");
        }
        out
    }

    /// A JSON object of string values (`env`).
    pub fn string_map(
        &mut self,
        field: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        match self.get(field) {
            None => None,
            Some(Value::Object(m)) => {
                let out: Option<std::collections::BTreeMap<String, String>> = m
                    .iter()
                    .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect();
                if out.is_none() {
                    self.errors.add(field, "values must be strings");
                }
                out
            }
            Some(_) => {
                self.errors.add(field, "must be an object of strings");
                None
            }
        }
    }

    /// The raw value, for fields with a shape of their own.
    pub fn value(&self, field: &str) -> Option<&'a Value> {
        self.get(field)
    }

    pub fn string_list(&mut self, field: &str) -> Option<Vec<String>> {
        let arr = self.array(field)?;
        let out: Option<Vec<String>> = arr.iter().map(|v| v.as_str().map(str::to_string)).collect();
        if out.is_none() {
            self.errors.add(field, "must be a list of strings");
        }
        out
    }

    fn array(&mut self, field: &str) -> Option<&'a Vec<Value>> {
        match self.get(field) {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(_) => {
                self.errors.add(field, "must be a list");
                None
            }
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
    Ok(())
}

const FORBIDDEN_MOUNTS: [&str; 4] = ["/", "/proc", "/sys", "/dev"];

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
        return Err(format!("{p:?} is a system path and cannot be mounted"));
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

/// Limits that bound a create request; they come from configuration.
#[derive(Debug, Clone)]
pub struct CreateLimits<'a> {
    pub instance_types: Vec<&'a str>,
    pub default_instance_type: &'a str,
    pub default_memory_mb: u64,
    pub default_storage_gb: u64,
    pub memory_mb: (u64, u64),
    pub storage_gb: (u64, u64),
}

/// Validates a `POST /compute/containers` body. Ownership of `ssh_key_ids` and the image's
/// existence are checked by the caller, which knows the user's keys and the image list.
pub fn create_container(body: &Value, l: &CreateLimits) -> Result<CreateContainer, FieldErrors> {
    let mut f = Fields::new(body)?;
    let name = f.string("name", true);
    let instance_type = f.string("instance_type", false);
    let memory_mb = f.uint("memory_mb").unwrap_or(l.default_memory_mb);
    let storage_gb = f.uint("storage_gb").unwrap_or(l.default_storage_gb);
    let ssh_key_ids = f.uint_list("ssh_key_ids");
    let ssh_enabled = f.boolean("ssh_enabled").unwrap_or(false);
    let mount_paths = f
        .string_list("mount_paths")
        .unwrap_or_else(|| vec!["/root".to_string()]);
    let image = f.string("image", false);
    let env = f.string_map("env").unwrap_or_default();
    let region = f.string("region", false);
    let host_key = f.string("host_key", false);
    let ports_value = f.value("ports");
    let mut e = f.errors;
    if let Err(m) = check_env(&env) {
        e.add("env", m);
    }
    let ports = match ports_value.map(ports) {
        Some(Ok(p)) => p,
        Some(Err(m)) => {
            e.add("ports", m);
            Vec::new()
        }
        None => Vec::new(),
    };
    if let Some(h) = &host_key {
        if !crate::ids::is_host_key(h) {
            e.add("host_key", "is not a host key");
        }
    }
    if region
        .as_ref()
        .is_some_and(|r| r.is_empty() || r.len() > 64)
    {
        e.add("region", "must be 1 to 64 characters");
    }

    if let Some(n) = &name {
        if let Err(m) = check_name(n) {
            e.add("name", m);
        }
    }
    let instance_type = instance_type.unwrap_or_else(|| l.default_instance_type.to_string());
    if !l.instance_types.contains(&instance_type.as_str()) {
        e.add(
            "instance_type",
            format!("must be one of: {}", l.instance_types.join(", ")),
        );
    }
    if !(l.memory_mb.0..=l.memory_mb.1).contains(&memory_mb) {
        e.add(
            "memory_mb",
            format!("must be between {} and {}", l.memory_mb.0, l.memory_mb.1),
        );
    }
    if !(l.storage_gb.0..=l.storage_gb.1).contains(&storage_gb) {
        e.add(
            "storage_gb",
            format!("must be between {} and {}", l.storage_gb.0, l.storage_gb.1),
        );
    }
    match &ssh_key_ids {
        None if !e.0.contains_key("ssh_key_ids") => e.add("ssh_key_ids", "is required"),
        Some(ids) if ids.is_empty() => e.add("ssh_key_ids", "must list at least one key"),
        Some(ids) if ids.len() > 10 => e.add("ssh_key_ids", "at most 10 keys"),
        _ => {}
    }
    if let Err(msgs) = check_mount_paths(&mount_paths) {
        for m in msgs {
            e.add("mount_paths", m);
        }
    }
    if let Some(i) = &image {
        if i.is_empty() || i.len() > 255 || i.chars().any(|c| c.is_whitespace() || c.is_control()) {
            e.add(
                "image",
                "must be an image reference from GET /compute/images",
            );
        }
    }
    let mut ssh_key_ids = ssh_key_ids.unwrap_or_default();
    ssh_key_ids.dedup();
    e.into_result(CreateContainer {
        name: name.unwrap_or_default(),
        instance_type,
        memory_mb,
        storage_gb,
        ssh_key_ids,
        ssh_enabled,
        mount_paths,
        image,
        env,
        ports,
        region,
        host_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> CreateLimits<'static> {
        CreateLimits {
            instance_types: vec!["nano", "tiny"],
            default_instance_type: "nano",
            default_memory_mb: 512,
            default_storage_gb: 5,
            memory_mb: (64, 16384),
            storage_gb: (1, 100),
        }
    }

    #[test]
    fn applies_seed_defaults() {
        let c = create_container(&json!({"name": "my-app", "ssh_key_ids": [1]}), &limits())
            .expect("valid");
        assert_eq!(c.instance_type, "nano");
        assert_eq!((c.memory_mb, c.storage_gb), (512, 5));
        assert_eq!(c.mount_paths, vec!["/root"]);
        assert!(!c.ssh_enabled);
    }

    #[test]
    fn reports_every_bad_field() {
        let e = create_container(
            &json!({"name": "", "memory_mb": "lots", "instance_type": "huge", "mount_paths": ["rel", "/proc/x"]}),
            &limits(),
        )
        .expect_err("invalid");
        for f in [
            "name",
            "memory_mb",
            "instance_type",
            "mount_paths",
            "ssh_key_ids",
        ] {
            assert!(e.0.contains_key(f), "missing {f}: {e:?}");
        }
        assert_eq!(e.0["mount_paths"].len(), 2);
    }

    #[test]
    fn non_object_body_is_invalid() {
        let e = create_container(&json!([1, 2]), &limits()).expect_err("invalid");
        assert!(e.0.contains_key("body"));
    }

    #[test]
    fn mount_paths_must_be_normalised_and_safe() {
        for bad in [
            "/", "/proc", "/sys/fs", "/dev", "/a/../b", "/a//b", "/a/", "a", "/./a",
        ] {
            assert!(check_mount_path(bad).is_err(), "{bad}");
        }
        for good in ["/root", "/var/data", "/devices", "/process"] {
            assert!(check_mount_path(good).is_ok(), "{good}");
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
    }
}
