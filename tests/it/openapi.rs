//! `GET /openapi.json`: OpenAPI 3.1, parsed as such (oas3), every route of
//! every router in `src/api/` described with its methods, every `$ref`
//! resolving, every status of the status table in the answer's schema.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::helpers::{VOISPEED, spawn};

/// Every `.route("PATH", get(..).post(..)…)` in `src/api/`: path → methods.
fn routes_in_code() -> BTreeMap<String, BTreeSet<String>> {
    let route = regex::Regex::new(r#"\.route\(\s*"([^"]+)","#).unwrap();
    let method = regex::Regex::new(r"(?:^|[\s.])(get|post|put|delete|patch)\(").unwrap();
    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api")];
    while let Some(f) = files.pop() {
        if f.is_dir() {
            files.extend(std::fs::read_dir(&f).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for c in route.captures_iter(&text) {
            // The method router: up to the parenthesis closing `.route(`.
            let rest = &text[c.get(0).unwrap().end()..];
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, ch)| {
                    depth += match ch {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            let methods = method.captures_iter(&rest[..end]).map(|m| m[1].to_string());
            routes.entry(c[1].to_string()).or_default().extend(methods);
        }
    }
    routes
}

/// Every `$ref` in `v`, with where it is.
fn refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                match (k.as_str(), item) {
                    ("$ref", Value::String(r)) => out.push((at.clone(), r)),
                    _ => refs(item, format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, item)| refs(item, format!("{at}/{i}"), out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_describes_every_route() {
    let app = spawn(&[("m", VOISPEED)]).await;
    let resp = app.client.get(format!("{}/openapi.json", app.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let text = resp.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
    let spec = oas3::from_json(&text).expect("an OpenAPI 3.1 document");
    assert!(spec.validate_version().is_ok());
    assert_eq!(text, webdial::api::openapi_document(), "served as generated");

    let routes = routes_in_code();
    assert!(routes.len() >= 8, "the route scan found the routers: {routes:?}");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in &routes {
        let described = paths.get(path).unwrap_or_else(|| panic!("{path} is not in /openapi.json"));
        for m in methods {
            let op = &described[m];
            assert!(op.is_object(), "{m} {path} is not in /openapi.json");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{m} {path} has no responses");
            assert!(op["summary"].is_string() || op["description"].is_string(), "{m} {path} is not described");
        }
    }
    for path in paths.keys() {
        assert!(routes.contains_key(path), "{path} is described but no router serves it");
    }

    let mut found = Vec::new();
    refs(&doc, String::new(), &mut found);
    assert!(!found.is_empty());
    for (at, r) in found {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{at}: external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "{at}: $ref {r} does not resolve");
    }

    let statuses: BTreeSet<&str> = doc
        .pointer("/components/schemas/Status/enum")
        .and_then(Value::as_array)
        .expect("the Status schema")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for s in
        ["accepted", "open_uri", "dry_run", "rejected", "timeout", "unknown_branch", "rate_limited", "unknown_call"]
    {
        assert!(statuses.contains(s), "{s} in {statuses:?}");
    }
    let result = &doc["components"]["schemas"]["ActionResult"]["properties"];
    for field in ["ok", "status", "branch", "action", "call_id", "message", "uri", "id", "pbx"] {
        assert!(result[field].is_object(), "ActionResult.{field}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
