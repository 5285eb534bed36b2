//! Users see only their own things; forged tokens get 401; bad input gets 4xx JSON and
//! changes nothing; quotas hold.

use anyhow::Result;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use berth_tests::Cluster;
use serde_json::{json, Value};

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn users_tokens_validation_and_quotas() -> Result<()> {
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let bob = c.user("bob")?;
    let key = alice.add_key("laptop").await?;
    let (id, _) = alice
        .create_container(json!({"name": "web", "ssh_key_ids": [key]}))
        .await?;

    // Another user: 404 on every endpoint of alice's container, and nothing changes.
    let not_found = json!({"error": "not_found"});
    for (m, p) in [
        ("GET", format!("/compute/containers/{id}")),
        ("DELETE", format!("/compute/containers/{id}")),
        ("POST", format!("/compute/containers/{id}/start")),
        ("POST", format!("/compute/containers/{id}/stop")),
    ] {
        assert_eq!(
            bob.call(m, &p, None).await?,
            (404, not_found.clone()),
            "{m} {p}"
        );
    }
    assert_eq!(
        bob.call("GET", "/compute/containers", None).await?,
        (200, json!({"containers": []}))
    );
    assert_eq!(alice.container(&id).await?["name"], "web");
    // Bob cannot use alice's key, nor delete it.
    let (s, body) = bob
        .post_container(json!({"name": "x", "ssh_key_ids": [key]}))
        .await?;
    assert_eq!(s, 422, "{body}");
    assert!(body["details"]["ssh_key_ids"].is_array(), "{body}");
    bob.expect(404, "DELETE", &format!("/compute/ssh-keys/{key}"), None)
        .await?;

    // Forged, expired, algorithm-none and missing tokens: 401, always the same body.
    let unauth = json!({"error": "unauthenticated"});
    let other_key = {
        let header = b64(&json!({"alg": "HS256", "typ": "JWT"}));
        let claims = b64(&json!({"sub": "alice", "exp": 9_999_999_999u64}));
        format!("{header}.{claims}.c2lnbmVkLXdpdGgtYW5vdGhlci1rZXk")
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&json!({"sub": "alice", "exp": 9_999_999_999u64}))
    );
    let expired = c
        .coordinator_cmd(&["token", "--user", "alice", "--ttl", "0s"])?
        .trim()
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for t in [
        other_key.as_str(),
        none.as_str(),
        expired.as_str(),
        "not-a-jwt",
        "",
    ] {
        let u = alice.with_token(t);
        assert_eq!(
            u.call("GET", "/compute/containers", None).await?,
            (401, unauth.clone()),
            "token {t:?}"
        );
        assert_eq!(
            u.call("GET", &format!("/compute/containers/{id}"), None)
                .await?,
            (401, unauth.clone())
        );
    }

    // Validation: 422 with details per field, nothing stored.
    let (s, body) = alice
        .post_container(
            json!({"memory_mb": "lots", "instance_type": "huge", "mount_paths": ["/proc"]}),
        )
        .await?;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["error"], "invalid");
    for f in "name memory_mb instance_type mount_paths ssh_key_ids".split(' ') {
        assert!(body["details"][f].is_array(), "no detail for {f}: {body}");
    }
    assert_eq!(
        alice
            .raw("POST", "/compute/containers", "{not json")
            .await?
            .0,
        400
    );
    assert_eq!(
        alice.raw("POST", "/compute/containers", "[1,2]").await?.0,
        422
    );
    let (_, list) = alice.call("GET", "/compute/containers", None).await?;
    assert_eq!(list["containers"].as_array().map(Vec::len), Some(1));

    // SSH keys are parsed: garbage and unsupported types are 422, duplicates 409.
    for bad in [
        "hello",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBAD",
    ] {
        let (s, body) = alice.post_key("k", bad).await?;
        assert_eq!(s, 422, "{bad}: {body}");
        assert!(body["details"]["public_key"].is_array());
    }
    let (_, keys) = alice.call("GET", "/compute/ssh-keys", None).await?;
    let existing = keys["ssh_keys"][0]["public_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(alice.post_key("again", &existing).await?.0, 409);

    // Quota: 3 containers per user.
    for name in ["two", "three"] {
        alice
            .create_container(json!({"name": name, "ssh_key_ids": [key]}))
            .await?;
    }
    let (s, body) = alice
        .post_container(json!({"name": "four", "ssh_key_ids": [key]}))
        .await?;
    assert_eq!(s, 403);
    assert_eq!(
        body,
        json!({"error": "over_quota", "detail": {"dimension": "containers", "requested": 4, "max": 3}})
    );

    // An instance type whose arch no host has stays pending with a reason, not a 500.
    let bob_key = bob.add_key("bob").await?;
    let (_, arm) = bob
        .create_container(json!({"name": "arm", "instance_type": "nano", "ssh_key_ids": [bob_key]}))
        .await?;
    assert_eq!(arm["status"], "pending");
    assert!(
        arm["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("arm64")),
        "{arm}"
    );

    // Unknown routes are JSON 404s too.
    assert_eq!(
        alice.call("GET", "/compute/nothing-here", None).await?,
        (404, not_found)
    );
    Ok(())
}
