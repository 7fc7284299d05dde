//! The key prompt: with keys configured a page asks for one, says a wrong
//! one was refused (the 401 in words) and sends nothing with it, and asks
//! for the right one once per browser session; the admin page's branches
//! and test forms need an admin key.

use webdial::settings::KeySpec;

use super::{Browser, MILAN, pbx_reports};
use crate::helpers::spawn_with;

const DESK: &str = "desk-0123456789abcdef";

/// The call's state once the gateway accepted the dial.
const ACCEPTED: &str =
    "return ['requested', 'ringing', 'answered', 'ended'].includes(document.getElementById('state').dataset.state)";

/// A script: true when `css` matches an element that is displayed.
fn shown(css: &str) -> String {
    format!("return {};", shown_expr(css))
}

/// As [`shown`], as an expression.
fn shown_expr(css: &str) -> String {
    format!(
        "(function () {{ const e = document.querySelector({}); return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0; }})()",
        serde_json::to_string(css).unwrap_or_default()
    )
}

#[tokio::test]
async fn a_wrong_key_is_refused_in_words_and_the_right_one_is_asked_once_per_session() {
    let Some(b) = Browser::open().await else { return };
    let app = spawn_with(&[("milan", MILAN)], &[], |s| {
        let desk = KeySpec::new("desk".into(), DESK.into(), vec!["milan".into()], None).expect("key");
        s.keys = vec![desk];
        s.dedupe_window = std::time::Duration::ZERO;
    })
    .await;
    pbx_reports(&app, "milan", std::time::Duration::from_millis(100));
    let page = format!("{}/call?branch=milan&ext=201&number=0212345678", app.url);
    b.goto(&page).await;
    b.record_fetches().await;
    // Asked at once, or on the first dial's 401.
    let ready = format!(
        "return {} ? 'asked' : (document.getElementById('dial') && !document.getElementById('dial').disabled && 'ready');",
        shown_expr("#key-form")
    );
    if b.until("the key form or the dial button", &ready).await != "asked" {
        b.click_enabled("#dial").await;
    }
    b.until("the key form", &shown("#key-form")).await;
    assert_eq!(b.js("return document.getElementById('key').type", vec![]).await, "password");

    b.fill("#key", "wrong-0123456789abcdef").await;
    b.click("#key-save").await;
    let error = b.until("the refusal", "const e = document.getElementById('key-error'); return e && e.textContent.includes('401') && e.textContent;").await;
    let error = error.as_str().unwrap_or("");
    assert!(error.split_whitespace().count() >= 3, "the 401 in words: {error:?}");
    b.until("the key form again", &shown("#key-form")).await;
    assert!(app.received().is_empty(), "a refused key reaches no PBX");

    b.fill("#key", DESK).await;
    b.click("#key-save").await;
    b.until("the key form gone", &format!("return !{}", shown_expr("#key-form"))).await;
    let stored = b.js("return sessionStorage.getItem('webdial.key')", vec![]).await;
    assert_eq!(stored, DESK, "kept for the browser session");
    // The page may dial again by itself once it has a key, or let the person click again.
    let next = b
        .until(
            "the dial under way, or the button again",
            "const s = document.getElementById('state').dataset.state, d = document.getElementById('dial');
             return ['requested', 'ringing', 'answered', 'ended'].includes(s) ? 'dialling' : (!d.disabled && 'ready');",
        )
        .await;
    if next == "ready" {
        b.click("#dial").await;
    }
    // Its events reach the page through the key-scoped stream (`?key=`): the call is followed to its end.
    b.until("the call to end", "return document.getElementById('state').dataset.state === 'ended'").await;
    assert_eq!(app.only_request().param("ext").as_deref(), Some("201"));

    let first = b.dials_sent().await.last().map(|r| r["key"].clone()).unwrap_or_default();
    assert!(first.as_str().is_some_and(|k| k.len() >= 16), "an Idempotency-Key: {first}");

    // Reloaded: not asked again; the stored key dials, with a new Idempotency-Key.
    b.reload().await;
    b.record_fetches().await;
    b.click_enabled("#dial").await;
    b.until("the second dial sent", "return (window.__sent || []).some(r => r.method === 'POST')").await;
    assert_eq!(b.js(&shown("#key-form"), vec![]).await, false, "the key is asked once per session");
    let sent = b.dials_sent().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["auth"], format!("Bearer {DESK}"), "sent as a bearer token");
    assert_ne!(sent[0]["key"], first, "a fresh Idempotency-Key per page load");
    b.until("the second dial accepted", ACCEPTED).await;
    assert_eq!(app.received().len(), 2, "the second dial reached the PBX");

    // The admin page with that (not an admin) key: its branches and test forms are refused in words.
    b.goto(&format!("{}/", app.url)).await;
    let refused = b
        .until(
            "the admin part refused",
            "const e = document.getElementById('branches-error'); return e && /403/.test(e.textContent) && e.textContent;",
        )
        .await;
    assert!(refused.as_str().unwrap_or("").split_whitespace().count() >= 3, "in words: {refused}");
    assert_eq!(b.js("return document.querySelectorAll('form.test').length", vec![]).await, 0, "no test form");
    assert_eq!(b.js(&shown("#key-form"), vec![]).await, false, "the key stands; it is only not an admin's");
    assert_eq!(app.received().len(), 2, "nothing more sent to the PBX");
    b.close().await;
}
