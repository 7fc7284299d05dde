//! CORS for the origins `cors:` lists: echoed exactly, preflights answered,
//! any other origin gets no CORS header at all.

use reqwest::header::HeaderMap;
use serde_json::json;
use webdial::settings::Cors;

use crate::helpers::{App, VOISPEED, spawn_with, write_config};

const CRM: &str = "https://crm.example.com";

async fn spawn_cors(origins: &[&str]) -> App {
    let cors = Cors { origins: origins.iter().map(|o| o.to_string()).collect() };
    spawn_with(&[("m", VOISPEED)], &[], |s| s.cors = cors).await
}

fn cors_headers(h: &HeaderMap) -> Vec<String> {
    h.keys().map(|k| k.as_str().to_string()).filter(|k| k.starts_with("access-control-")).collect()
}

async fn preflight(app: &App, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/dial", app.url))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, authorization, x-api-key, idempotency-key")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_listed_origin_gets_its_preflight_answered_and_its_origin_echoed() {
    let app = spawn_cors(&[CRM, "http://127.0.0.1:3000"]).await;
    let resp = preflight(&app, CRM).await;
    assert!(matches!(resp.status().as_u16(), 200 | 204), "{}", resp.status());
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], CRM, "echoed exactly, never *");
    assert!(h.get("access-control-allow-credentials").is_none(), "keys are sent by the page, not as cookies");
    let methods = h["access-control-allow-methods"].to_str().unwrap().to_ascii_uppercase();
    assert!(methods.contains("POST") && methods.contains("GET"), "{methods}");
    let allowed = h["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    for name in ["content-type", "authorization", "x-api-key", "idempotency-key"] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }
    assert!(h.get("access-control-max-age").is_some());
    assert!(h.get_all("vary").iter().any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin")));
    assert!(app.received().is_empty(), "a preflight sends nothing");

    let resp = app
        .client
        .post(format!("{}/v1/dial", app.url))
        .header("origin", CRM)
        .json(&json!({"branch": "m", "extension": "201", "number": "101"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], CRM);
    let exposed = resp.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers() {
    let app = spawn_cors(&[CRM]).await;
    for origin in ["https://evil.example.com", "https://crm.example.com.evil.example", "null", "http://crm.example.com"]
    {
        let resp = preflight(&app, origin).await;
        assert_eq!(cors_headers(resp.headers()), Vec::<String>::new(), "preflight from {origin}");
        let resp = app
            .client
            .post(format!("{}/v1/dial", app.url))
            .header("origin", origin)
            .json(&json!({"branch": "m", "extension": "201", "number": "0207", "dry_run": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(cors_headers(resp.headers()), Vec::<String>::new(), "dial from {origin}");
    }
}

#[tokio::test]
async fn without_origins_there_is_no_cors_and_a_preflight_is_refused() {
    let app = spawn_cors(&[]).await;
    let resp = preflight(&app, CRM).await;
    assert_eq!(resp.status(), 400, "OPTIONS is not a method the API takes");
    assert_eq!(cors_headers(resp.headers()), Vec::<String>::new());
}

#[test]
fn origins_are_checked_where_they_are_written() {
    let dir = write_config("http://127.0.0.1:9", &[("m", VOISPEED)]);
    let config = dir.path().join("webdial.yaml");
    let env = |_: &str| None;
    std::fs::write(&config, "cors:\n  origins:\n    - https://crm.example.com\n    - \"*\"\n").unwrap();
    let loaded = webdial::app::load(&config, true, &env);
    let problems: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("webdial.yaml:4:") && problems[0].contains("`*` is not allowed"), "{problems:?}");
    std::fs::write(&config, "cors: {origins: [\"HTTPS://CRM.example.com:443\"]}\n").unwrap();
    let settings = webdial::app::load(&config, true, &env).settings.expect("loads");
    assert_eq!(settings.cors.origins, [CRM], "normalized as a browser sends it");
}
