//! The route table and the OpenAPI document cannot drift: the same operations, the same
//! bodies, the same public routes. A route added to the table without its documentation
//! fails here.

use super::{table, Scope, OPENAPI};
use std::collections::BTreeSet;

#[test]
fn the_openapi_document_lists_exactly_the_routes_of_the_table() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("the document is JSON");
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            let body = op.get("requestBody").is_some();
            documented.insert((method.to_uppercase(), path.clone(), public, body));
        }
    }
    let served: BTreeSet<(String, String, bool, bool)> = table()
        .iter()
        .map(|r| {
            let public = !r.scope.authenticated();
            (
                r.method.to_string(),
                r.path.to_string(),
                public,
                r.body.is_some(),
            )
        })
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented (method, path, public, body): {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
}

#[test]
fn every_route_is_unique_and_container_routes_name_their_container() {
    let t = table();
    let keys: BTreeSet<(String, &str)> = t.iter().map(|r| (r.method.to_string(), r.path)).collect();
    assert_eq!(keys.len(), t.len(), "a method and path appear twice");
    for r in &t {
        let names_id = r.path.contains("{id}");
        assert_eq!(
            matches!(r.scope, Scope::Container(_)),
            names_id,
            "{} {}: per-container routes, and only they, check ownership",
            r.method,
            r.path
        );
    }
}

#[test]
fn patterns_match_paths() {
    let t = table();
    let ingress = t
        .iter()
        .find(|r| r.path == "/compute/containers/{id}/ingress/{port}")
        .expect("route");
    let p = ingress
        .matches("/compute/containers/ab12cd34/ingress/8080")
        .expect("match");
    assert_eq!(
        p,
        vec![("id", "ab12cd34".to_string()), ("port", "8080".to_string())]
    );
    assert!(ingress
        .matches("/compute/containers/ab12cd34/ingress")
        .is_none());
    assert!(ingress.matches("/compute/containers//ingress/1").is_none());
    assert_eq!(ingress.label(), "/compute/containers/:id/ingress/:port");
}

/// The document's rules against the server's: every limit the document states is the one the
/// server applies, so a request valid by the document is not refused for a reason it does
/// not state, and one it calls invalid is refused. Patterns are evaluated, not compared.
mod rules {
    use super::super::inside::{COLS, LIMIT, ROWS, TAIL};
    use super::OPENAPI;
    use crate::config::Limits;
    use berth_shared::api::ErrorBody;
    use berth_shared::catalog::Catalog;
    use berth_shared::requests::{
        from_value, CreateBody, IngressBody, KeyBody, PatchBody, PatchLimits, SizeLimits, Validate,
    };
    use berth_shared::validation::{self, MAX_ENV, MAX_PORTS};
    use serde_json::{json, Value};
    use std::collections::{BTreeMap, BTreeSet};

    fn doc() -> Value {
        serde_json::from_str(OPENAPI).expect("the document is JSON")
    }

    /// `#/components/schemas/<name>`, or `s` itself when it is no reference.
    fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
        match s["$ref"].as_str() {
            Some(r) => {
                let name = r.rsplit('/').next().expect("reference");
                &doc["components"]["schemas"][name]
            }
            None => s,
        }
    }

    fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
        let s = &doc["components"]["schemas"][name];
        assert!(s.is_object(), "no schema {name}");
        s
    }

    fn has_type(s: &Value, t: &str) -> bool {
        match &s["type"] {
            Value::Null => true,
            Value::String(x) => x == t || (t == "integer" && x == "number"),
            Value::Array(xs) => xs.iter().any(|x| x == t),
            _ => false,
        }
    }

    /// Whether `v` is valid by `s`, for the keywords the document's schemas use.
    fn valid(doc: &Value, s: &Value, v: &Value) -> bool {
        let s = resolve(doc, s);
        let t = match v {
            Value::Null => "null",
            Value::String(_) => "string",
            Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !has_type(s, t) {
            return false;
        }
        let num = |k: &str| s[k].as_u64();
        if let Some(e) = s["enum"].as_array() {
            if !e.contains(v) {
                return false;
            }
        }
        if s.get("const").is_some_and(|c| c != v) {
            return false;
        }
        match v {
            Value::String(x) => {
                let n = x.chars().count() as u64;
                if num("minLength").is_some_and(|m| n < m)
                    || num("maxLength").is_some_and(|m| n > m)
                {
                    return false;
                }
                if let Some(p) = s["pattern"].as_str() {
                    let re = regex::Regex::new(p).unwrap_or_else(|e| panic!("pattern {p}: {e}"));
                    if !re.is_match(x) {
                        return false;
                    }
                }
            }
            Value::Number(x) => {
                let x = x.as_i64().unwrap_or(i64::MAX);
                let bound = |k: &str| s[k].as_i64();
                if bound("minimum").is_some_and(|m| x < m)
                    || bound("maximum").is_some_and(|m| x > m)
                {
                    return false;
                }
            }
            Value::Array(xs) => {
                let n = xs.len() as u64;
                if num("minItems").is_some_and(|m| n < m) || num("maxItems").is_some_and(|m| n > m)
                {
                    return false;
                }
                if s["uniqueItems"] == true
                    && xs
                        .iter()
                        .map(Value::to_string)
                        .collect::<BTreeSet<_>>()
                        .len()
                        != xs.len()
                {
                    return false;
                }
                if s.get("items").is_some() && !xs.iter().all(|x| valid(doc, &s["items"], x)) {
                    return false;
                }
            }
            Value::Object(m) => {
                let n = m.len() as u64;
                if num("maxProperties").is_some_and(|x| n > x) {
                    return false;
                }
                let names = &s["propertyNames"];
                if names.is_object() && !m.keys().all(|k| valid(doc, names, &json!(k))) {
                    return false;
                }
                let required = s["required"].as_array().cloned().unwrap_or_default();
                if !required
                    .iter()
                    .all(|r| r.as_str().is_some_and(|r| m.contains_key(r)))
                {
                    return false;
                }
                for (k, x) in m {
                    let p = &s["properties"][k];
                    let extra = &s["additionalProperties"];
                    let sub = if p.is_object() { p } else { extra };
                    if sub.is_object() && !valid(doc, sub, x) {
                        return false;
                    }
                }
            }
            _ => {}
        }
        if s.get("not").is_some() && valid(doc, &s["not"], v) {
            return false;
        }
        if let Some(any) = s["anyOf"].as_array() {
            if !any.iter().any(|a| valid(doc, a, v)) {
                return false;
            }
        }
        true
    }

    /// The default catalog and limits, as the containers service passes them.
    fn with_size_limits<T>(f: impl FnOnce(&SizeLimits<'_>) -> T) -> T {
        let (l, cat) = (Limits::default(), Catalog::seed());
        f(&SizeLimits {
            instance_types: cat.names(),
            default_instance_type: &cat.default_instance_type,
            default_memory_mb: l.default_memory_mb,
            default_storage_gb: l.default_storage_gb,
            memory_mb: (l.min_memory_mb, l.max_memory_mb),
            storage_gb: (l.min_storage_gb, l.max_storage_gb),
        })
    }

    /// The fields the server refuses in `body`.
    fn refused<B: Validate + serde::de::DeserializeOwned>(
        body: Value,
        ctx: &B::Context<'_>,
    ) -> BTreeSet<String> {
        match from_value::<B>(body).map(|b| b.validate(ctx)) {
            Ok(Ok(_)) => BTreeSet::new(),
            Ok(Err(e)) | Err(e) => e.0.into_keys().collect(),
        }
    }

    /// A create body with `field` set to `value`, and what the server and the document say.
    fn create(doc: &Value, field: &str, value: Value) -> (bool, bool) {
        let mut body = json!({"name": "web", "ssh_key_ids": [1]});
        body[field] = value;
        let server = with_size_limits(|l| refused::<CreateBody>(body.clone(), l));
        (
            !server.contains(field),
            valid(doc, schema(doc, "CreateContainer"), &body),
        )
    }

    fn agree(what: &str, cases: impl IntoIterator<Item = (Value, bool, bool)>) {
        let mut n = 0;
        for (v, server, document) in cases {
            assert_eq!(
                server, document,
                "{what} {v}: the server says {server}, the document {document}"
            );
            n += 1;
        }
        assert!(n > 0);
    }

    fn strings(xs: &[&str]) -> Vec<Value> {
        xs.iter().map(|x| json!(x)).collect()
    }

    const NAMES: &[&str] = &[
        "a",
        "web",
        "my-app-1",
        "A-B",
        "0",
        "12345678",
        "abcd-123",
        "ABCD1234",
        "abcd1234",
        "zzzzzzzz",
        "abcdefghi",
        "-x",
        "a-",
        "a--b",
        "a b",
        "a_b",
        "é",
        "a\n",
        "",
        " a",
    ];
    const MOUNTS: &[&str] = &[
        "/root",
        "/var/data",
        "/devices",
        "/process",
        "/data",
        "/var/lib/db",
        "/a/.hidden",
        "/...",
        "/home/u ser",
        "/runs",
        "/bootstrap",
        "/libfoo",
        "/var/runner",
        "/usrx",
        "/",
        "/proc",
        "/proc/1",
        "/sys/fs",
        "/dev",
        "/a/../b",
        "/a//b",
        "/a/",
        "a",
        "/./a",
        "/..",
        "/.",
        "/bin/sh",
        "/.berth",
        "/.berth/init",
        "/etc",
        "/usr",
        "/usr/local",
        "/run",
        "/var/run",
        "/var/run/x",
        "/lib64",
        "/lib",
        "/boot",
        "/sbin",
        "/a\u{7}b",
        "/a\tb",
        "/a\u{85}",
        "",
    ];

    #[test]
    fn names_follow_the_document() {
        let doc = doc();
        let mut long = vec!["a".repeat(64), "a".repeat(65)];
        long.extend(NAMES.iter().map(|s| s.to_string()));
        agree(
            "name",
            long.iter().map(|n| {
                let (s, d) = create(&doc, "name", json!(n));
                (json!(n), s, d)
            }),
        );
        for n in &long {
            let patch = refused::<PatchBody>(json!({"name": n}), &patch_limits());
            let document = valid(&doc, schema(&doc, "PatchContainer"), &json!({"name": n}));
            assert_eq!(!patch.contains("name"), document, "PATCH name {n:?}");
        }
    }

    #[test]
    fn mount_paths_follow_the_document() {
        let doc = doc();
        let mut paths: Vec<String> = MOUNTS.iter().map(|s| s.to_string()).collect();
        paths.push(format!("/{}", "a".repeat(254)));
        paths.push(format!("/{}", "a".repeat(255)));
        let one = schema(&doc, "MountPath");
        agree(
            "mount path",
            paths.iter().map(|p| {
                let server = validation::check_mount_path(p).is_ok();
                (json!(p), server, valid(&doc, one, &json!(p)))
            }),
        );
        let many = schema(&doc, "MountPaths");
        let list = |n: usize| (0..n).map(|i| format!("/d{i}")).collect::<Vec<_>>();
        for n in [0, 1, 16, 17] {
            let l = list(n);
            let server = validation::check_mount_paths(&l).is_ok();
            assert_eq!(server, valid(&doc, many, &json!(l)), "{n} mount paths");
        }
        let twice = vec!["/a".to_string(), "/a".to_string()];
        assert!(validation::check_mount_paths(&twice).is_err());
        assert!(!valid(&doc, many, &json!(twice)), "uniqueItems");
        agree(
            "create mount_paths",
            [json!(["/data"]), json!([]), json!(["/proc"]), json!(null)]
                .into_iter()
                .map(|v| {
                    let (s, d) = create(&doc, "mount_paths", v.clone());
                    (v, s, d)
                }),
        );
    }

    #[test]
    fn sizes_types_images_regions_and_hosts_follow_the_document() {
        let doc = doc();
        let l = Limits::default();
        let create_schema = &schema(&doc, "CreateContainer")["properties"];
        assert_eq!(create_schema["memory_mb"]["default"], l.default_memory_mb);
        assert_eq!(create_schema["storage_gb"]["default"], l.default_storage_gb);
        let mut cases = Vec::new();
        for (field, lo, hi) in [
            ("memory_mb", l.min_memory_mb, l.max_memory_mb),
            ("storage_gb", l.min_storage_gb, l.max_storage_gb),
        ] {
            for v in [
                json!(0),
                json!(lo - 1),
                json!(lo),
                json!(hi),
                json!(hi + 1),
                json!(-1),
            ] {
                let (s, d) = create(&doc, field, v.clone());
                cases.push((json!({ field: v }), s, d));
            }
            let (s, d) = create(&doc, field, json!(null));
            cases.push((json!({ field: null }), s, d));
        }
        let cat = Catalog::seed();
        let mut types: Vec<Value> = cat.names().iter().map(|n| json!(n)).collect();
        types.extend(strings(&["huge", "", "NANO"]));
        for v in types {
            let (s, d) = create(&doc, "instance_type", v.clone());
            cases.push((json!({ "instance_type": v }), s, d));
        }
        let images = [
            "berth.local/base:latest",
            "host:5000/repo:tag",
            "a b",
            "",
            "a\u{0}",
            "a\u{85}b",
            "a\u{a0}b",
            "a\u{3000}",
            "é",
        ];
        let mut images = strings(&images);
        images.extend([json!("x".repeat(255)), json!("x".repeat(256))]);
        for v in images {
            let (s, d) = create(&doc, "image", v.clone());
            cases.push((json!({ "image": v }), s, d));
        }
        let mut regions = strings(&["", "eu-west", "é"]);
        regions.extend([json!("r".repeat(64)), json!("r".repeat(65))]);
        for v in regions {
            let (s, d) = create(&doc, "region", v.clone());
            cases.push((json!({ "region": v }), s, d));
        }
        for v in strings(&["runc", "gvisor", "kata", "", "RUNC"])
            .into_iter()
            .chain([json!(null), json!(1)])
        {
            let (s, d) = create(&doc, "runtime", v.clone());
            cases.push((json!({ "runtime": v }), s, d));
        }
        let hosts = ["h1", "edge-1", "-h", "h-", "H1", "h_1", "", "a.b"];
        let mut hosts = strings(&hosts);
        hosts.extend([json!("h".repeat(63)), json!("h".repeat(64))]);
        for v in hosts {
            let (s, d) = create(&doc, "host_key", v.clone());
            cases.push((json!({ "host_key": v }), s, d));
        }
        for v in [
            json!([1]),
            json!([]),
            json!((0..10).collect::<Vec<_>>()),
            json!((0..11).collect::<Vec<_>>()),
            json!([-1]),
            json!(null),
        ] {
            let (s, d) = create(&doc, "ssh_key_ids", v.clone());
            cases.push((json!({ "ssh_key_ids": v }), s, d));
        }
        agree("create", cases);
        let max_cpu = cat.instance_types.iter().map(|t| t.cpu_millis()).max();
        let cpu = &schema(&doc, "PatchContainer")["properties"]["cpu_millis"];
        assert_eq!(
            cpu["maximum"].as_u64(),
            max_cpu.map(u64::from),
            "cpu_millis maximum"
        );
        for v in [99, 100, 4000, 4001] {
            let server = !refused::<PatchBody>(json!({"cpu_millis": v}), &patch_limits())
                .contains("cpu_millis");
            let body = json!({ "cpu_millis": v });
            assert_eq!(
                server,
                valid(&doc, schema(&doc, "PatchContainer"), &body),
                "{body}"
            );
        }
        for body in [json!({}), json!({"name": null}), json!({"memory_mb": 1024})] {
            let server = refused::<PatchBody>(body.clone(), &patch_limits()).is_empty();
            assert_eq!(
                server,
                valid(&doc, schema(&doc, "PatchContainer"), &body),
                "{body}"
            );
        }
    }

    /// A medium container (the largest CPU of the seed catalog) of 5 GiB.
    fn patch_limits() -> PatchLimits<'static> {
        let l = Limits::default();
        PatchLimits {
            memory_mb: (l.min_memory_mb, l.max_memory_mb),
            storage_gb: (l.min_storage_gb, l.max_storage_gb),
            max_cpu_millis: 4000,
            instance_type: "medium",
            storage_now: l.min_storage_gb,
        }
    }

    #[test]
    fn env_and_ports_follow_the_document() {
        let doc = doc();
        let env = schema(&doc, "Env");
        assert_eq!(env["maxProperties"].as_u64(), Some(MAX_ENV as u64));
        let ports = schema(&doc, "Ports");
        assert_eq!(ports["maxItems"].as_u64(), Some(MAX_PORTS as u64));
        let mut cases = Vec::new();
        let long_key = "K".repeat(256);
        let longer_key = "K".repeat(257);
        let keys = [
            "A",
            "_",
            "a1",
            "PATH",
            "1a",
            "",
            "A-B",
            "A B",
            "é",
            &long_key,
            &longer_key,
        ];
        for k in keys {
            let v = json!({ k: "v" });
            let (s, d) = create(&doc, "env", v.clone());
            cases.push((v, s, d));
        }
        for value in [
            json!("a\u{0}b"),
            json!("x".repeat(32 * 1024)),
            json!("x".repeat(32 * 1024 + 1)),
            json!(1),
        ] {
            let v = json!({ "K": value });
            let (s, d) = create(&doc, "env", v.clone());
            cases.push((json!("env value"), s, d));
        }
        for n in [MAX_ENV, MAX_ENV + 1] {
            let v: serde_json::Map<String, Value> =
                (0..n).map(|i| (format!("K{i}"), json!("v"))).collect();
            let (s, d) = create(&doc, "env", Value::Object(v));
            cases.push((json!(n), s, d));
        }
        for v in [
            json!([1]),
            json!([0]),
            json!([65535]),
            json!([65536]),
            json!([80, 80]),
            json!(["80:80"]),
            json!([{"host": 1}]),
            json!(8080),
            json!(vec![1; MAX_PORTS]),
            json!(vec![1; MAX_PORTS + 1]),
        ] {
            let (s, d) = create(&doc, "ports", v.clone());
            cases.push((v, s, d));
        }
        agree("create", cases);
    }

    #[test]
    fn ingress_ports_follow_the_document() {
        let doc = doc();
        let body = schema(&doc, "AddIngress");
        for port in 0..=65_536u64 {
            let server = validation::check_ingress_port(port).is_ok();
            let b = json!({ "port": port });
            let refused = !refused::<IngressBody>(b.clone(), &()).is_empty();
            assert_eq!(server, !refused);
            assert_eq!(server, valid(&doc, body, &b), "ingress port {port}");
        }
        for target in [json!(0), json!(1), json!(65535), json!(65536), json!(null)] {
            let b = json!({"port": 80, "target_port": target});
            let server = refused::<IngressBody>(b.clone(), &()).is_empty();
            assert_eq!(server, valid(&doc, body, &b), "{b}");
        }
    }

    /// A well-formed ed25519 public key line.
    fn ed25519(seed: u8) -> String {
        use base64::Engine;
        let mut blob = Vec::new();
        for part in [&b"ssh-ed25519"[..], &[seed; 32][..]] {
            blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
            blob.extend_from_slice(part);
        }
        let data = base64::engine::general_purpose::STANDARD.encode(blob);
        format!("ssh-ed25519 {data}")
    }

    #[test]
    fn ssh_keys_follow_the_document() {
        let doc = doc();
        let body = schema(&doc, "AddSshKey");
        let key = ed25519(7);
        let long = "n".repeat(64);
        let longer = "n".repeat(65);
        let names = [
            "laptop", "my key", " padded ", "", "  ", "\u{3000}", "a\u{7}", "é", &long, &longer,
        ];
        for name in names {
            let b = json!({"name": name, "public_key": key});
            let server = !refused::<KeyBody>(b.clone(), &()).contains("name");
            assert_eq!(server, valid(&doc, body, &b), "key name {name:?}");
        }
        // The pattern is the key line's shape; the server also decodes it, so it may refuse
        // a line of the right shape (the document says so), never accept one of another.
        let lines = [
            key.clone(),
            format!("{key} me@laptop"),
            format!("  {key}\tcomment with spaces"),
            format!("{key}\n"),
            "ssh-ed25519 AAAA".to_string(),
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP".to_string(),
            "ssh-ed25519".to_string(),
            "ssh-ed25519 !!!".to_string(),
            String::new(),
        ];
        for line in lines {
            let b = json!({"name": "k", "public_key": line});
            let server = !refused::<KeyBody>(b.clone(), &()).contains("public_key");
            let document = valid(&doc, body, &b);
            assert!(
                !server || document,
                "the server takes {line:?}, the document does not"
            );
        }
        assert!(valid(&doc, body, &body["example"]), "the example is valid");
        assert!(
            refused::<KeyBody>(body["example"].clone(), &()).is_empty(),
            "the example is a key"
        );
    }

    #[test]
    fn query_parameters_follow_the_server() {
        let doc = doc();
        for (path, name, (default, lo, hi)) in [
            ("/compute/containers/{id}/logs", "limit", LIMIT),
            ("/compute/containers/{id}/logs", "tail", TAIL),
            ("/compute/containers/{id}/terminal", "cols", COLS),
            ("/compute/containers/{id}/terminal", "rows", ROWS),
        ] {
            let params = doc["paths"][path]["get"]["parameters"]
                .as_array()
                .expect("parameters");
            let p = params.iter().find(|p| p["name"] == name).expect(name);
            let s = &p["schema"];
            assert_eq!(
                (
                    s["default"].as_u64(),
                    s["minimum"].as_u64(),
                    s["maximum"].as_u64()
                ),
                (Some(default as u64), Some(lo as u64), Some(hi as u64)),
                "{path} {name}"
            );
        }
    }

    #[test]
    fn pages_follow_the_server() {
        use crate::api::page::{DEFAULT_LIMIT, MAX_LIMIT};
        let doc = doc();
        let s = &doc["components"]["parameters"]["Limit"]["schema"];
        assert_eq!(
            (
                s["default"].as_u64(),
                s["minimum"].as_u64(),
                s["maximum"].as_u64()
            ),
            (Some(DEFAULT_LIMIT as u64), Some(1), Some(MAX_LIMIT as u64))
        );
        // Every list route takes the page parameters.
        for path in [
            "/compute/containers",
            "/compute/containers/{id}/events",
            "/compute/ssh-keys",
            "/compute/containers/{id}/ingress",
            "/compute/hosts",
            "/compute/images",
        ] {
            let params = doc["paths"][path]["get"]["parameters"].to_string();
            for p in ["Limit", "Cursor"] {
                assert!(params.contains(&format!("/parameters/{p}")), "{path} {p}");
            }
        }
    }

    /// Every error body the server can send. A new `ErrorBody` variant does not compile here
    /// until it is added, and then the document must describe it.
    fn every_error_body() -> Vec<ErrorBody> {
        let m = || "m".to_string();
        let all = vec![
            ErrorBody::Unauthenticated,
            ErrorBody::Forbidden { message: m() },
            ErrorBody::ContainerNotRunning { message: m() },
            ErrorBody::NotFound,
            ErrorBody::OverQuota {
                detail: berth_shared::api::QuotaDetail {
                    dimension: "containers".into(),
                    requested: 4,
                    max: 3,
                },
            },
            ErrorBody::Invalid {
                details: BTreeMap::from([("name".to_string(), vec![m()])]),
            },
            ErrorBody::Conflict { message: m() },
            ErrorBody::BadRequest { message: m() },
            ErrorBody::MethodNotAllowed,
            ErrorBody::UnsupportedMediaType { message: m() },
            ErrorBody::PayloadTooLarge { message: m() },
            ErrorBody::Unavailable { message: m() },
            ErrorBody::NotRunning { message: m() },
            ErrorBody::Timeout { message: m() },
            ErrorBody::PreconditionFailed { message: m() },
            ErrorBody::RateLimited { message: m() },
            ErrorBody::Internal,
        ];
        for e in &all {
            match e {
                ErrorBody::Unauthenticated
                | ErrorBody::Forbidden { .. }
                | ErrorBody::ContainerNotRunning { .. }
                | ErrorBody::NotFound
                | ErrorBody::OverQuota { .. }
                | ErrorBody::Invalid { .. }
                | ErrorBody::Conflict { .. }
                | ErrorBody::BadRequest { .. }
                | ErrorBody::MethodNotAllowed
                | ErrorBody::UnsupportedMediaType { .. }
                | ErrorBody::PayloadTooLarge { .. }
                | ErrorBody::Unavailable { .. }
                | ErrorBody::NotRunning { .. }
                | ErrorBody::Timeout { .. }
                | ErrorBody::PreconditionFailed { .. }
                | ErrorBody::RateLimited { .. }
                | ErrorBody::Internal => {}
            }
        }
        all
    }

    #[test]
    fn every_error_body_is_documented_with_its_fields() {
        let doc = doc();
        let mapping = doc["components"]["schemas"]["Error"]["discriminator"]["mapping"]
            .as_object()
            .expect("the Error schema's mapping");
        let bodies = every_error_body();
        assert_eq!(mapping.len(), bodies.len(), "documented kinds: {mapping:?}");
        for e in bodies {
            let v = serde_json::to_value(&e).expect("json");
            let kind = v["error"].as_str().expect("error");
            let target = mapping
                .get(kind)
                .unwrap_or_else(|| panic!("{kind} is not documented"));
            let reference = json!({ "$ref": target });
            let s = resolve(&doc, &reference);
            let required: BTreeSet<&str> = s["required"]
                .as_array()
                .expect("required")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let sent: BTreeSet<&str> = v
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(required, sent, "the fields of {kind}");
            assert!(valid(&doc, s, &v), "{v} is valid by its schema");
        }
    }

    #[test]
    fn operations_have_ids_answers_have_schemas_and_links_have_targets() {
        let doc = doc();
        let mut ids = BTreeMap::new();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for (method, op) in ops.as_object().expect("operations") {
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path}: operationId"));
                assert!(
                    ids.insert(id.to_string(), op.clone()).is_none(),
                    "{id} twice"
                );
            }
        }
        for (id, op) in &ids {
            for (status, r) in op["responses"].as_object().expect("responses") {
                let r = match r["$ref"].as_str() {
                    Some(x) => &doc["components"]["responses"][x.rsplit('/').next().expect("ref")],
                    None => r,
                };
                assert!(r["description"].is_string(), "{id} {status}");
                if status != "101" {
                    let s = &r["content"]["application/json"]["schema"];
                    assert!(s.is_object(), "{id} {status}: no JSON schema");
                }
                for (name, link) in r["links"].as_object().into_iter().flatten() {
                    let target = link["operationId"].as_str().expect("link operationId");
                    let t = ids
                        .get(target)
                        .unwrap_or_else(|| panic!("{id} link {name}: {target}"));
                    for p in link["parameters"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|p| p.0)
                    {
                        let params = t["parameters"].as_array().expect("parameters");
                        assert!(
                            params.iter().any(|x| x["name"] == *p),
                            "{id} link {name}: {p}"
                        );
                    }
                }
            }
        }
    }
}
