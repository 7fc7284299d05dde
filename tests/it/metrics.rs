//! `GET /metrics` after dials with several statuses, read with a strict
//! parser of the text format: every line is a HELP/TYPE/UNIT line, a
//! sample of a declared family, or the closing `# EOF`.

use std::collections::BTreeMap;

use serde_json::json;

use crate::helpers::{VOISPEED, spawn_with};

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses OpenMetrics text strictly; panics on anything else.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let name_re = regex::Regex::new(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").unwrap();
    let sample_re = regex::Regex::new(r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$"#).unwrap();
    let label_re = regex::Regex::new(r#"^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)"#).unwrap();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "the text ends with # EOF");
    assert!(text.ends_with("# EOF\n"), "and a newline");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, what) = (parts.next().unwrap(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(name_re.is_match(name), "bad family name in {line:?}");
            match kind {
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "info", "stateset", "unknown", "summary"].contains(&what),
                        "{line}"
                    );
                    assert!(types.insert(name.to_string(), what.to_string()).is_none(), "{name} declared twice");
                }
                "HELP" | "UNIT" => {}
                _ => panic!("unexpected comment {line:?}"),
            }
            continue;
        }
        let caps = sample_re.captures(line).unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let name = caps[1].to_string();
        let mut labels = BTreeMap::new();
        let mut rest = caps.get(3).map_or("", |m| m.as_str());
        while !rest.is_empty() {
            let l = label_re.captures(rest).unwrap_or_else(|| panic!("bad labels in {line:?}"));
            labels.insert(l[1].to_string(), l[2].replace("\\\"", "\"").replace("\\\\", "\\"));
            rest = &rest[l[0].len()..];
        }
        let value: f64 = match &caps[4] {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        // Every sample belongs to a family declared before it, by its type's suffixes.
        let family = types
            .iter()
            .find(|(fam, kind)| match kind.as_str() {
                "counter" => name == format!("{fam}_total") || name == format!("{fam}_created"),
                "histogram" => ["_bucket", "_count", "_sum", "_created"].iter().any(|s| name == format!("{fam}{s}")),
                _ => &name == *fam,
            })
            .unwrap_or_else(|| panic!("{name} has no TYPE line before it"));
        if family.1 == "histogram" && name.ends_with("_bucket") {
            assert!(labels.contains_key("le"), "{line}");
        }
        samples.push(Sample { name, labels, value });
    }
    (types, samples)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    samples.iter().find(|s| s.name == name && s.labels == want).map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_status_with_bounded_labels() {
    let app = spawn_with(&[("m", VOISPEED)], &[], |s| s.watch_profiles = false).await;
    let dial = |b: &str, ext: &str, n: &str| json!({"branch": b, "extension": ext, "number": n});
    assert_eq!(app.post(dial("m", "201", "101")).await.0, 200);
    let (_, again) = app.post(dial("m", "201", "101")).await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(app.post(dial("m", "901", "102")).await.0, 502, "the stand-in refuses extensions starting with 9");
    assert_eq!(app.post(dial("made-up-1", "201", "103")).await.0, 404);
    assert_eq!(app.post(dial("made-up-2", "201", "103")).await.0, 404);
    assert_eq!(app.post(json!({"branch": "m", "extension": "201", "number": "10x"})).await.0, 400);
    let resp = app.client.post(format!("{}/v1/actions/frobnicate", app.url)).json(&dial("m", "201", "1")).send().await;
    assert_eq!(resp.unwrap().status(), 404);
    assert_eq!(app.post(json!({"branch": "m", "extension": "201", "number": "104", "dry_run": true})).await.0, 200);
    // What the events code records, through the gateway's registry.
    let metrics = &app.gw.runtime().metrics;
    metrics.event(&app.gw.snapshot().profiles, "m", "ringing");
    metrics.event(&app.gw.snapshot().profiles, "nope", "ringing");

    let resp = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = resp.text().await.unwrap();
    let (types, samples) = parse(&text);

    for (family, kind) in [
        ("webdial_requests", "counter"),
        ("webdial_pbx_duration_seconds", "histogram"),
        ("webdial_in_flight", "gauge"),
        ("webdial_events", "counter"),
        ("webdial_hook_deliveries", "counter"),
        ("webdial_duplicates", "counter"),
        ("webdial_config_reload_success", "gauge"),
        ("webdial_config_reload_timestamp_seconds", "gauge"),
        ("webdial_log_lines_dropped", "counter"),
    ] {
        assert_eq!(types.get(family).map(String::as_str), Some(kind), "{family} in:\n{text}");
    }
    let req = |b: &str, a: &str, s: &str| {
        value(&samples, "webdial_requests_total", &[("branch", b), ("action", a), ("status", s)])
    };
    assert_eq!(req("m", "dial", "accepted"), Some(2.0), "the first and its duplicate:\n{text}");
    assert_eq!(req("m", "dial", "rejected"), Some(1.0), "{text}");
    assert_eq!(req("m", "dial", "invalid_request"), Some(1.0), "{text}");
    assert_eq!(req("m", "dial", "dry_run"), Some(1.0), "{text}");
    assert_eq!(req("m", "(unknown)", "unknown_action"), Some(1.0), "{text}");
    assert_eq!(req("(unknown)", "(unknown)", "unknown_branch"), Some(2.0), "{text}");
    assert!(!text.contains("made-up"), "a made-up branch makes no series:\n{text}");
    assert_eq!(value(&samples, "webdial_duplicates_total", &[]), Some(1.0));

    // Two requests reached the PBX (the duplicate and the refusals did not).
    let pbx = [("branch", "m"), ("action", "dial")];
    assert_eq!(value(&samples, "webdial_pbx_duration_seconds_count", &pbx), Some(2.0), "{text}");
    let inf = value(&samples, "webdial_pbx_duration_seconds_bucket", &[pbx[0], pbx[1], ("le", "+Inf")]);
    assert_eq!(inf, Some(2.0), "{text}");
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == "webdial_pbx_duration_seconds_bucket" && s.labels["branch"] == "m")
        .map(|s| s.value)
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "buckets are cumulative: {buckets:?}");
    assert_eq!(value(&samples, "webdial_in_flight", &[("branch", "m")]), Some(0.0));

    assert_eq!(value(&samples, "webdial_events_total", &[("branch", "m"), ("type", "ringing")]), Some(1.0));
    assert_eq!(value(&samples, "webdial_events_total", &[("branch", "(unknown)"), ("type", "ringing")]), Some(1.0));
    // The hooks' own totals, taken at scrape time (no hook here: all zero).
    for result in ["delivered", "retried", "rejected", "dropped", "overflowed", "missed"] {
        assert_eq!(value(&samples, "webdial_hook_deliveries_total", &[("result", result)]), Some(0.0), "{result}");
    }
    assert_eq!(value(&samples, "webdial_config_reload_success", &[]), Some(1.0));
    assert!(value(&samples, "webdial_config_reload_timestamp_seconds", &[]).is_some_and(|t| t > 1.7e9), "{text}");
    assert!(value(&samples, "webdial_log_lines_dropped_total", &[]).is_some());

    // A reload that fails turns the success gauge to 0.
    std::fs::write(app.dir().join("profiles/m.yaml"), "dial: [\n").unwrap();
    let resp = app.client.post(format!("{}/v1/admin/reload", app.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    let (_, samples) = parse(&text);
    assert_eq!(value(&samples, "webdial_config_reload_success", &[]), Some(0.0), "{text}");
}
