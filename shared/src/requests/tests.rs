use super::*;
use serde_json::json;

fn limits() -> SizeLimits<'static> {
    SizeLimits {
        instance_types: vec!["nano", "tiny"],
        default_instance_type: "nano",
        default_memory_mb: 512,
        default_storage_gb: 5,
        memory_mb: (64, 16384),
        storage_gb: (1, 100),
    }
}

fn create(v: serde_json::Value) -> Result<crate::api::CreateContainer, FieldErrors> {
    from_value::<CreateBody>(v)?.validate(&limits())
}

#[test]
fn applies_seed_defaults() {
    let c = create(json!({"name": "my-app", "ssh_key_ids": [1]})).expect("valid");
    assert_eq!(c.instance_type, "nano");
    assert_eq!((c.memory_mb, c.storage_gb), (512, 5));
    assert_eq!(c.mount_paths, vec!["/root"]);
    assert!(!c.ssh_enabled);
}

#[test]
fn reports_every_bad_field() {
    let e = create(
        json!({"name": "", "memory_mb": "lots", "instance_type": "huge",
        "mount_paths": ["rel", "/proc/x"], "ssh_enabled": 3, "env": {"A": 1}}),
    )
    .expect_err("invalid");
    for f in [
        "name",
        "memory_mb",
        "instance_type",
        "mount_paths",
        "ssh_key_ids",
        "ssh_enabled",
        "env",
    ] {
        assert!(e.0.contains_key(f), "missing {f}: {e:?}");
    }
    assert_eq!(e.0["mount_paths"].len(), 2);
    assert_eq!(e.0["memory_mb"], [UINT]);
}

#[test]
fn fields_a_client_may_not_set_are_ignored() {
    let c = create(
        json!({"name": "a", "ssh_key_ids": [1], "id": "x", "owner": "eve",
        "status": "running", "host_key": null}),
    )
    .expect("valid");
    assert_eq!(c.host_key, None);
}

#[test]
fn non_object_body_is_invalid() {
    let e = create(json!([1, 2])).expect_err("invalid");
    assert!(e.0.contains_key("body"));
}

fn patch_limits() -> PatchLimits<'static> {
    PatchLimits {
        memory_mb: (64, 16384),
        storage_gb: (1, 100),
        max_cpu_millis: 1000,
        instance_type: "tiny",
        storage_now: 10,
    }
}

#[test]
fn patch_shares_the_create_rules_and_keeps_what_is_given() {
    let p = from_value::<PatchBody>(json!({"memory_mb": 1024}))
        .and_then(|b| b.validate(&patch_limits()))
        .expect("valid");
    assert_eq!((p.memory_mb, p.name), (Some(1024), None));
    let e = from_value::<PatchBody>(json!({"name": "-x", "memory_mb": 1, "storage_gb": 5,
        "cpu_millis": 5000}))
    .and_then(|b| b.validate(&patch_limits()))
    .expect_err("invalid");
    for f in ["name", "memory_mb", "storage_gb", "cpu_millis"] {
        assert!(e.0.contains_key(f), "missing {f}: {e:?}");
    }
    let e = from_value::<PatchBody>(json!({}))
        .and_then(|b| b.validate(&patch_limits()))
        .expect_err("nothing");
    assert!(e.0.contains_key("body"));
}

#[test]
fn small_bodies() {
    let ssh = |v| from_value::<SshBody>(v).and_then(|b| b.validate(&()));
    assert_eq!(ssh(json!({"ssh_enabled": true})), Ok(true));
    assert!(ssh(json!({"ssh_enabled": "yes"})).is_err());
    assert!(ssh(json!({})).is_err());
    let ingress = |v| from_value::<IngressBody>(v).and_then(|b| b.validate(&()));
    assert_eq!(ingress(json!({"port": 8080})), Ok((8080, 8080)));
    assert_eq!(
        ingress(json!({"port": 443, "target_port": 8443})),
        Ok((443, 8443))
    );
    let e = ingress(json!({"port": 22, "target_port": 0})).expect_err("bad");
    assert!(e.0.contains_key("port") && e.0.contains_key("target_port"));
    let action = |v| from_value::<ActionBody>(v).and_then(|b| b.validate(&()));
    assert_eq!(action(json!({"type": "power_on"})), Ok(Action::PowerOn));
    assert!(action(json!({"type": "explode"})).is_err());
}

#[test]
fn numbers_without_a_fraction_are_integers() {
    let c = create(
        json!({"name": "web", "ssh_key_ids": [1.0], "memory_mb": 256.0,
        "storage_gb": 1e1, "ports": [8080.0]}),
    )
    .expect("integral floats are integers");
    assert_eq!((c.memory_mb, c.storage_gb), (256, 10));
    assert_eq!((c.ssh_key_ids, c.ports), (vec![1], vec![8080]));
    let e = create(json!({"name": "web", "ssh_key_ids": [1], "memory_mb": 256.5, "ports": [80.5]}))
        .expect_err("a fraction is no integer");
    assert!(
        e.0.contains_key("memory_mb") && e.0.contains_key("ports"),
        "{e:?}"
    );
    let e =
        create(json!({"name": "web", "ssh_key_ids": [1], "memory_mb": -1.0, "storage_gb": 1e300}))
            .expect_err("negative or huge");
    assert!(
        e.0.contains_key("memory_mb") && e.0.contains_key("storage_gb"),
        "{e:?}"
    );
}

#[test]
fn restart_policies_and_health_checks_are_read_with_defaults() {
    use crate::upkeep::{Probe, RestartMode};
    use std::time::Duration;
    let c = create(json!({"name": "a", "ssh_key_ids": [1]})).expect("valid");
    assert_eq!(c.restart_policy.mode, RestartMode::Always);
    assert_eq!((c.restart_policy.max_retries, c.health_check), (None, None));
    let c = create(json!({"name": "a", "ssh_key_ids": [1],
        "restart_policy": {"mode": "on-failure", "max_retries": 5},
        "health_check": {"type": "http", "port": 8080, "interval": "1s"}}))
    .expect("valid");
    assert_eq!(
        (c.restart_policy.mode, c.restart_policy.max_retries),
        (RestartMode::OnFailure, Some(5))
    );
    let h = c.health_check.expect("a check");
    assert_eq!(
        h.probe,
        Probe::Http {
            port: 8080,
            path: "/".into()
        }
    );
    // The timeout defaults to 2 s but never beyond the interval.
    assert_eq!(
        (h.interval, h.timeout, h.failures, h.grace),
        (
            Duration::from_secs(1),
            Duration::from_secs(1),
            3,
            Duration::from_secs(30)
        )
    );
}

#[test]
fn bad_restart_policies_and_health_checks_say_which_field() {
    let cases = [
        (
            json!({"restart_policy": {"mode": "sometimes"}}),
            "restart_policy.mode",
        ),
        (
            json!({"restart_policy": {"max_retries": -1}}),
            "restart_policy.max_retries",
        ),
        (json!({"restart_policy": "always"}), "restart_policy"),
        (
            json!({"health_check": {"type": "tcp", "port": 8080, "interval": "500ms"}}),
            "health_check.interval",
        ),
        (
            json!({"health_check": {"type": "tcp", "port": 70000}}),
            "health_check.port",
        ),
        (
            json!({"health_check": {"type": "tcp", "port": 0}}),
            "health_check.port",
        ),
        (
            json!({"health_check": {"type": "http"}}),
            "health_check.port",
        ),
        (
            json!({"health_check": {"type": "http", "port": 80, "path": "x"}}),
            "health_check.path",
        ),
        (
            json!({"health_check": {"type": "exec", "command": []}}),
            "health_check.command",
        ),
        (
            json!({"health_check": {"type": "exec"}}),
            "health_check.command",
        ),
        (
            json!({"health_check": {"type": "grpc", "port": 1}}),
            "health_check.type",
        ),
        (
            json!({"health_check": {"type": "none"}}),
            "health_check.type",
        ),
        (
            json!({"health_check": {"type": "tcp", "port": 1, "failures": 0}}),
            "health_check.failures",
        ),
        (
            json!({"health_check": {"type": "tcp", "port": 1, "interval": "2s", "timeout": "5s"}}),
            "health_check.timeout",
        ),
        (
            json!({"health_check": {"type": "tcp", "port": 1, "grace": "soon"}}),
            "health_check.grace",
        ),
    ];
    for (extra, field) in cases {
        let mut body = json!({"name": "a", "ssh_key_ids": [1]});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let e = create(body.clone()).expect_err(&body.to_string());
        assert!(e.0.contains_key(field), "{body}: {e:?}");
    }
}

#[test]
fn patch_changes_or_removes_a_health_check() {
    let l = PatchLimits {
        memory_mb: (64, 16384),
        storage_gb: (1, 100),
        max_cpu_millis: 1000,
        instance_type: "nano",
        storage_now: 5,
    };
    let p = |v| from_value::<PatchBody>(v).expect("object").validate(&l);
    let got = p(json!({"health_check": {"type": "none"}})).expect("valid");
    assert_eq!(got.health_check, Some(None));
    let got = p(json!({"restart_policy": {"mode": "no"}})).expect("valid");
    assert_eq!(
        got.restart_policy.map(|r| r.mode),
        Some(crate::upkeep::RestartMode::No)
    );
    assert!(p(json!({"restart_policy": {"mode": 1}})).is_err());
}

#[test]
fn a_field_another_type_ignores_is_still_checked() {
    let long: Vec<String> = (0..65).map(|i| i.to_string()).collect();
    let e = create(json!({"name": "a", "ssh_key_ids": [1],
        "health_check": {"type": "http", "port": 8080, "command": long}}))
    .expect_err("65 args");
    assert!(e.0.contains_key("health_check.command"), "{e:?}");
    let e = create(json!({"name": "a", "ssh_key_ids": [1],
        "health_check": {"type": "exec", "command": ["true"], "port": 0}}))
    .expect_err("port 0");
    assert!(e.0.contains_key("health_check.port"), "{e:?}");
}
