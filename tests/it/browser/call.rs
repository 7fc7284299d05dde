//! `/call`: one button that rings once per click — a double click too —
//! then the call's progress live from the PBX's events; a failing dial
//! says `failed` and why.

use std::time::Duration;

use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use serde_json::{Value, json};

use super::{Browser, MILAN, pbx_reports};
use crate::helpers::{read, spawn_with};

/// Records every `data-state` `#state` takes from now on in `window.__states`
/// (each change's old value, then the current one: none is missed when
/// several come in one task).
const WATCH_STATE: &str = "const s = document.getElementById('state'); const seen = [s.dataset.state];
    const push = v => { if (v && seen[seen.length - 1] !== v) seen.push(v); };
    window.__states = () => { const all = seen.slice(); const now = s.dataset.state; if (now && all[all.length - 1] !== now) all.push(now); return all; };
    new MutationObserver(records => { records.forEach(r => push(r.oldValue)); push(s.dataset.state); })
      .observe(s, {attributes: true, attributeOldValue: true, attributeFilter: ['data-state']});";

/// A real double click on `#dial`: two presses of the mouse button, as a person does.
async fn double_click(b: &Browser) {
    b.until_enabled("#dial").await;
    let button = b.find("#dial").await;
    let press = |m: MouseActions| {
        m.then(PointerAction::Down { button: MOUSE_BUTTON_LEFT }).then(PointerAction::Up { button: MOUSE_BUTTON_LEFT })
    };
    let mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: button,
        duration: None,
        x: 0.0,
        y: 0.0,
    });
    let mouse = press(press(mouse));
    super::bounded("double click", b.c.perform_actions(mouse)).await;
}

#[tokio::test]
async fn a_double_click_rings_once_and_the_page_follows_the_call_to_its_end() {
    let Some(b) = Browser::open().await else { return };
    // No duplicate window: only the page's single request (and its key) can make it ring once.
    let app = spawn_with(&[("milan", MILAN)], &[], |s| s.dedupe_window = Duration::ZERO).await;
    pbx_reports(&app, "milan", Duration::from_millis(300));

    b.goto(&format!("{}/call?branch=milan&ext=201&number=0212345678", app.url)).await;
    let shown = b.until("the number and extension", "return document.body.innerText").await;
    let shown = shown.as_str().unwrap_or("");
    assert!(shown.contains("0212345678") && shown.contains("201"), "{shown}");
    assert_eq!(b.js("return document.querySelectorAll('button#dial').length", vec![]).await, 1, "one button");
    let offered = b
        .js("return !!navigator.registerProtocolHandler && !document.getElementById('tel-handler').hidden", vec![])
        .await;
    assert_eq!(offered, true, "Chromium can make webdial its tel: handler: offered");
    b.record_fetches().await;
    b.find("#state").await;
    b.js(WATCH_STATE, vec![]).await;

    double_click(&b).await;
    assert_eq!(b.js("return document.getElementById('dial').disabled", vec![]).await, true, "disabled at once");
    b.until("the call to end", "return document.getElementById('state').dataset.state === 'ended'").await;

    let got = app.only_request();
    assert_eq!((got.param("ext").as_deref(), got.param("number").as_deref()), (Some("201"), Some("0212345678")));
    let sent = b.dials_sent().await;
    assert_eq!(sent.len(), 1, "one POST /v1/dial for a double click: {sent:?}");
    let key = sent[0]["key"].as_str().unwrap_or("").to_string();
    assert!(key.len() >= 16, "a random Idempotency-Key: {sent:?}");
    let states = b.js("return window.__states()", vec![]).await;
    let order = ["requested", "ringing", "answered", "ended"];
    // Before the click the page may say it is ready (`idle`); from the click on, the call's states.
    let seen: Vec<&str> =
        states.as_array().into_iter().flatten().filter_map(Value::as_str).filter(|s| *s != "idle").collect();
    assert_eq!(seen, order, "the call's progress, each state once, in order");

    // The gateway holds that key: the same request again gets the first answer and rings nothing.
    let (_, calls) = read(app.client.get(format!("{}/v1/calls", app.url)).send().await.expect("calls")).await;
    let listed = calls["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "one dial in the log: {calls}");
    let body = json!({"branch": "milan", "extension": "201", "number": "0212345678"});
    let again = app.client.post(format!("{}/v1/dial", app.url)).header("idempotency-key", &key).json(&body);
    let (code, answer) = read(again.send().await.expect("replay")).await;
    assert_eq!((code, &answer["id"]), (200, &listed[0]["id"]), "the page's dial, answered again: {answer}");
    assert_eq!(app.received().len(), 1, "and nothing more sent to the PBX");

    b.screenshot_for_docs("call.png").await;
    b.close().await;
}

#[tokio::test]
async fn a_failing_dial_shows_failed_and_says_why() {
    let Some(b) = Browser::open().await else { return };
    let app = spawn_with(&[("milan", MILAN)], &[], |_| {}).await;
    pbx_reports(&app, "milan", Duration::from_millis(100));

    // The PBX refuses (an extension it does not know): failed, with its words.
    b.goto(&format!("{}/call?branch=milan&ext=901&number=0212345678", app.url)).await;
    b.click_enabled("#dial").await;
    b.until("failed", "return document.getElementById('state').dataset.state === 'failed'").await;
    let message = b.text("#message").await;
    assert!(message.trim().len() > 5, "the failure in words: {message:?}");
    assert_eq!(app.received().len(), 1, "the PBX was asked once");

    // Accepted, then the PBX reports it could not make the call.
    b.goto(&format!("{}/call?branch=milan&ext=201&number=tel%3A8123", app.url)).await;
    let shown = b.until("the number", "return document.body.innerText").await;
    let shown = shown.as_str().unwrap_or("");
    assert!(shown.contains("8123") && !shown.contains("tel:8123"), "tel: is stripped: {shown}");
    b.click_enabled("#dial").await;
    b.until("failed from the PBX's event", "return document.getElementById('state').dataset.state === 'failed'").await;
    assert!(b.text("#message").await.trim().len() > 5, "the failure in words");
    assert_eq!(app.received().last().and_then(|r| r.param("number")).as_deref(), Some("8123"), "tel: stripped");

    // A branch the gateway does not have: refused, failed, nothing sent.
    b.goto(&format!("{}/call?branch=nowhere&ext=201&number=0212345678", app.url)).await;
    b.click_enabled("#dial").await;
    b.until("failed for an unknown branch", "return document.getElementById('state').dataset.state === 'failed'").await;
    let message = b.text("#message").await;
    assert!(message.contains("nowhere") || message.to_lowercase().contains("branch"), "why, in words: {message:?}");
    assert_eq!(app.received().len(), 2, "nothing sent for an unknown branch");
    b.close().await;
}
