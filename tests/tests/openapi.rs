//! The OpenAPI document at `/compute/openapi.json` cannot drift from the router:
//! every documented operation is served (401 without a token; where it is public, anything but
//! 401/404/405), no
//! undocumented method is served on a documented path, and every literal path segment in the
//! route code appears in some documented path.

use anyhow::{Context, Result};
use berth_tests::Cluster;
use serde_json::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Quoted literals inside `path!(…)` and `path(…)` calls of the route files.
fn route_literals() -> Result<BTreeSet<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/src/api");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir)? {
        let src = std::fs::read_to_string(entry?.path())?;
        for (i, _) in src.match_indices("path") {
            let rest = &src[i + 4..];
            let rest = rest.strip_prefix('!').unwrap_or(rest);
            let Some(args) = rest.strip_prefix('(') else {
                continue;
            };
            let args = &args[..args.find(')').unwrap_or(0)];
            for (n, part) in args.split('"').enumerate() {
                if n % 2 == 1 {
                    out.insert(part.to_string());
                }
            }
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_matches_the_router() -> Result<()> {
    let c = Cluster::start().await?;
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{}/compute/openapi.json", c.api))
        .send()
        .await?
        .json()
        .await?;
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
    let paths = doc["paths"].as_object().context("paths")?;

    let documented: BTreeSet<&str> = paths
        .keys()
        .flat_map(|p| p.split('/'))
        .filter(|s| !s.starts_with('{'))
        .collect();
    for lit in route_literals()? {
        assert!(
            documented.contains(lit.as_str()),
            "route segment {lit:?} is served but no documented path has it"
        );
    }

    for (path, ops) in paths {
        let concrete = path
            .replace("{id}", "abcd1234")
            .replace("{port}", "8080")
            .replace("{key_id}", "1")
            .replace("{host_key}", &c.host_key);
        for m in METHODS {
            let resp = http
                .request(m.to_uppercase().parse()?, format!("{}{concrete}", c.api))
                .send()
                .await?;
            let status = resp.status().as_u16();
            match ops.get(m) {
                Some(op) => {
                    let public = op["security"].as_array().is_some_and(|s| s.is_empty());
                    if public {
                        // Served: anything but "no such route" (a body may be missing).
                        assert!(
                            ![401, 404, 405].contains(&status),
                            "{m} {path} is documented but answers {status}"
                        );
                    } else {
                        assert_eq!(status, 401, "{m} {path} is documented but answers {status}");
                        let body: Value = resp.json().await?;
                        assert_eq!(body["error"], "unauthenticated", "{m} {path}");
                    }
                }
                None => assert!(
                    status == 404 || status == 405,
                    "{m} {path} is served ({status}) but not documented"
                ),
            }
        }
    }
    Ok(())
}
