//! The OpenAPI document at `/compute/openapi.json`, as the running coordinator serves it:
//! every documented operation is served (401 without a token; where it is public, anything but
//! 401/404/405) and no undocumented method is served on a documented path. That the document
//! and the route table list exactly the same operations (and bodies, and public routes) is
//! `berth-coordinator`'s unit test `api::tests::the_openapi_document_lists_exactly_the_routes_of_the_table`.

use anyhow::{Context, Result};
use berth_tests::Cluster;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

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
