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
