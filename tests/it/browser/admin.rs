//! `/`, the admin page: every branch with its load state (a broken
//! profile's `FILE:LINE:COL: message`, new or edited — the edited one still
//! served in its last good version), the recent dials, the live events,
//! and the per-branch test form (a real dial rings once, a dry run sends nothing).

use std::time::Duration;

use serde_json::json;

use super::{Browser, MILAN, pbx_reports};
use crate::helpers::{CLICK2CALL, read, spawn_with};

#[tokio::test]
async fn lists_branches_with_a_broken_profiles_error_the_recent_dials_and_live_events() {
    let Some(b) = Browser::open().await else { return };
    let app = spawn_with(&[("demo-voispeed", MILAN), ("demo-click2call", CLICK2CALL)], &[], |s| {
        s.watch_profiles = false;
    })
    .await;
    pbx_reports(&app, "demo-voispeed", Duration::from_millis(150));
    // A profile added with a mistake on line 3: listed, failed, with where.
    std::fs::write(
        app.dir().join("profiles/demo-broken.yaml"),
        "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: t}\ntimeout: soon\n",
    )
    .expect("write profile");
    // A served profile edited with a mistake: failed too, its last good version still served.
    let served = app.dir().join("profiles/demo-click2call.yaml");
    let good = std::fs::read_to_string(&served).expect("read profile");
    std::fs::write(&served, format!("{good}timeout: later\n")).expect("write profile");
    let (code, report) =
        read(app.client.post(format!("{}/v1/admin/reload", app.url)).send().await.expect("reload")).await;
    assert_eq!((code, report["ok"].as_bool()), (200, Some(false)), "{report}");
    let mut ids = Vec::new();
    for number in ["0212345678", "0612345678"] {
        let (code, dial) = app.post(json!({"branch": "demo-voispeed", "extension": "201", "number": number})).await;
        assert_eq!(code, 200, "{dial}");
        ids.push(dial["id"].as_str().expect("id").to_string());
    }

    // Their calls over (the PBX's events in), so the page's live events are the next dial's.
    for id in &ids {
        let deadline = std::time::Instant::now() + super::WAIT;
        loop {
            let (_, call) =
                read(app.client.get(format!("{}/v1/calls/{id}", app.url)).send().await.expect("call")).await;
            if call["state"] == "ended" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the dial did not end: {call}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    b.goto(&format!("{}/", app.url)).await;
    let rows = b
        .until(
            "the three branches",
            "const rows = [...document.querySelectorAll('#branches tr[data-branch]')];
             return rows.length >= 3 && rows.map(r => [r.dataset.branch, r.dataset.state,
               r.querySelector('td.error').textContent.trim()]);",
        )
        .await;
    let rows = rows.as_array().expect("rows");
    let row = |name: &str| rows.iter().find(|r| r[0] == name).unwrap_or_else(|| panic!("no row for {name}: {rows:?}"));
    assert_eq!(row("demo-voispeed")[1], "loaded", "{rows:?}");
    assert_eq!(row("demo-voispeed")[2], "", "a loaded branch shows no error: {rows:?}");
    let kept = row("demo-click2call");
    assert_eq!(kept[1], "failed", "{rows:?}");
    let located = regex::Regex::new(r"demo-click2call\.yaml:3:\d+: \S").expect("regex");
    assert!(located.is_match(kept[2].as_str().unwrap_or("")), "FILE:LINE:COL: message, got {kept:?}");
    let broken = row("demo-broken");
    assert_eq!(broken[1], "failed", "{rows:?}");
    let error = broken[2].as_str().unwrap_or("");
    let located = regex::Regex::new(r"demo-broken\.yaml:3:\d+: \S").expect("regex");
    assert!(located.is_match(error), "FILE:LINE:COL: message, got {error:?}");
    assert_eq!(
        b.js("return document.querySelectorAll('form.test[data-branch=\"demo-broken\"]').length", vec![]).await,
        0,
        "a branch that never loaded has no test form"
    );

    // The recent dials, newest first.
    let recent = b.until("the recent dials", "const r = [...document.querySelectorAll('#recent tr[data-id]')].map(t => t.dataset.id); return r.length >= 2 && r;").await;
    assert_eq!(recent[0], ids[1].as_str(), "newest first: {recent}");
    assert_eq!(recent[1], ids[0].as_str(), "{recent}");

    // A dial while the page is open: its events arrive live, and it joins the recent dials.
    let (code, dial) = app.post(json!({"branch": "demo-voispeed", "extension": "202", "number": "0298765432"})).await;
    assert_eq!(code, 200, "{dial}");
    let id = dial["id"].as_str().expect("id");
    b.until(
        "the live events up to the call's end",
        "const l = document.querySelectorAll('#events li[data-type]'); return l.length >= 3 && l[0].dataset.type === 'ended';",
    )
    .await;
    let types =
        b.js("return [...document.querySelectorAll('#events li[data-type]')].map(l => l.dataset.type)", vec![]).await;
    assert_eq!(types[0], "ended", "newest first: {types}");
    assert!(types.as_array().is_some_and(|t| t.contains(&json!("answered"))), "{types}");
    let first = b
        .until(
            "the new dial at the top of the recent dials",
            &format!("const r = document.querySelector('#recent tr[data-id]'); return r && r.dataset.id === {id:?};"),
        )
        .await;
    assert_eq!(first, true);

    // The test form, for real (no keys configured: anyone may), on the branch
    // whose edit failed: its last good version rings the PBX, once.
    let before = app.received().len();
    let real = "form.test[data-branch=\"demo-click2call\"]";
    b.fill(&format!("{real} input[name=extension]"), "201").await;
    b.fill(&format!("{real} input[name=number]"), "0233333333").await;
    b.js(&format!("document.querySelector('{real} input[name=dry_run]').checked = false"), vec![]).await;
    b.click(&format!("{real} [type=submit]")).await;
    b.until(
        "the real test dial's answer",
        &format!("const o = document.querySelector('{real} output.result'); return o.dataset.status === 'accepted';"),
    )
    .await;
    let got = app.received();
    assert_eq!(got.len(), before + 1, "one request to the PBX");
    assert_eq!(got[before].path, "/API/dialup.php", "{got:#?}");

    // The test form: a dry run shows what would be sent, and sends nothing.
    let before = app.received().len();
    let form = "form.test[data-branch=\"demo-voispeed\"]";
    b.fill(&format!("{form} input[name=extension]"), "201").await;
    b.fill(&format!("{form} input[name=number]"), "0211111111").await;
    let checked = b.js(&format!("return document.querySelector('{form} input[name=dry_run]').checked"), vec![]).await;
    assert_eq!(checked, true, "dry run is the default");
    b.click(&format!("{form} [type=submit]")).await;
    let result = b.text(&format!("{form} output.result")).await;
    let result = if result.contains("dry_run") {
        result
    } else {
        b.until("the dry run's answer", &format!("const o = document.querySelector('{form} output.result'); return o.textContent.includes('dry_run') && o.textContent;")).await.as_str().unwrap_or("").to_string()
    };
    assert!(result.contains("0211111111"), "the request that would be sent: {result}");
    assert_eq!(app.received().len(), before, "a dry run sends nothing to the PBX");
    // The reload section tells the last reload's result.
    let reload = b.text("#reload").await;
    assert!(reload.contains("demo-broken"), "the last reload's failure: {reload}");

    b.screenshot_for_docs("admin.png").await;

    // A flood of events: the list keeps the newest 200.
    for n in 0..210 {
        let path = format!(
            "demo-voispeed?secret=s3cret-milan&event_type=2&event=8&event_name=incoming_call&ext=35&number=187&call_id=f{n}"
        );
        assert_eq!(app.notify_get(&path).await.0, 200);
    }
    b.until(
        "the newest event at the top",
        "const l = document.querySelector('#events li[data-type]'); return l && l.textContent.includes('f209');",
    )
    .await;
    let kept = b.js("return document.querySelectorAll('#events li').length", vec![]).await;
    assert_eq!(kept, 200, "capped at 200 entries");
    b.close().await;
}
