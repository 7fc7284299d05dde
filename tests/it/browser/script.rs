//! `/webdial.js` on an intranet page of another origin (under a strict
//! Content-Security-Policy that trusts only the gateway): from an origin in
//! `cors.origins` its `tel:` links and `data-webdial-number` elements (also
//! ones added later) dial in one click with the result beside them; from
//! an origin not listed the browser's CORS check stops the dial, the PBX
//! receives nothing and the result says so. Without `data-key` it asks
//! for a key once, beside the link.

use std::time::Duration;

use webdial::settings::{Cors, KeySpec};
use webdial::standin::Behaviour;

use super::{Browser, MILAN, Site};
use crate::helpers::{App, spawn_with};

const DESK: &str = "desk-0123456789abcdef";

/// An intranet page including the gateway's script, with the key given in its tag.
fn page(gateway: &str) -> String {
    page_with(gateway, &format!(" data-key=\"{DESK}\""))
}

/// An intranet page including the gateway's script with `attrs` added to its tag.
fn page_with(gateway: &str, attrs: &str) -> String {
    format!(
        "<!doctype html><html><head><title>CRM</title></head><body>
         <p>Milan office: <a id=\"link\" href=\"tel:0212345678\">02 1234 5678</a></p>
         <p>Rome office: <span id=\"num\" data-webdial-number=\"0612345678\">06 1234 5678</span></p>
         <div id=\"later\"></div>
         <script src=\"{gateway}/webdial.js\" data-branch=\"milan\" data-ext=\"201\"{attrs}></script>
         </body></html>"
    )
}

/// The result shown right after `css`: its `data-status` and words.
async fn result_after(b: &Browser, css: &str) -> (String, String) {
    result_after_but(b, css, "").await
}

/// As [`result_after`], waiting past a result whose status is `old`.
async fn result_after_but(b: &Browser, css: &str, old: &str) -> (String, String) {
    let q = serde_json::to_string(css).unwrap_or_default();
    let old = serde_json::to_string(old).unwrap_or_default();
    let got = b
        .until(
            &format!("the result beside {css}"),
            &format!(
                "const r = document.querySelector({q}).nextElementSibling;
                 return r && r.matches('span.webdial-result') && r.dataset.status && r.dataset.status !== {old}
                   && [r.dataset.status, r.textContent];"
            ),
        )
        .await;
    (got[0].as_str().unwrap_or("").to_string(), got[1].as_str().unwrap_or("").to_string())
}

/// The numbers the PBX was asked to dial.
fn numbers(app: &App) -> Vec<String> {
    app.received().iter().filter_map(|r| r.param("number")).collect()
}

#[tokio::test]
async fn dials_from_an_allowed_origin_and_sends_nothing_from_another() {
    let Some(b) = Browser::open().await else { return };
    let (mut allowed, mut other) = (Site::bind().await, Site::bind().await);
    let cors = Cors { origins: vec![allowed.origin.clone()] };
    let app = spawn_with(&[("milan", MILAN)], &[], |s| {
        s.cors = cors;
        s.keys = vec![KeySpec::new("desk".into(), DESK.into(), vec!["milan".into()], None).expect("key")];
    })
    .await;
    allowed.serve(page(&app.url), &app.url);
    other.serve(page(&app.url), &app.url);

    b.goto(&format!("{}/", allowed.origin)).await;
    b.until("webdial.js loaded", "return !!window.webdial").await;
    b.click("#link").await;
    let (status, words) = result_after(&b, "#link").await;
    assert_eq!(status, "accepted", "{words}");
    assert_eq!(numbers(&app), ["0212345678"], "one click, one dial");
    let here = b.js("return location.href", vec![]).await;
    assert_eq!(here, format!("{}/", allowed.origin), "the tel: link did not navigate");

    b.click("#num").await;
    let (status, words) = result_after(&b, "#num").await;
    assert_eq!(status, "accepted", "{words}");
    assert_eq!(numbers(&app), ["0212345678", "0612345678"]);

    // An element added after the script ran dials too.
    b.js(
        "const a = document.createElement('a'); a.id = 'added'; a.href = 'tel:0311111111'; a.textContent = 'Turin';
         document.getElementById('later').appendChild(a);",
        vec![],
    )
    .await;
    b.click("#added").await;
    let (status, words) = result_after(&b, "#added").await;
    assert_eq!(status, "accepted", "{words}");
    assert_eq!(numbers(&app).len(), 3);
    let globals = b.js("return Object.keys(window).filter(k => k.toLowerCase().includes('webdial'))", vec![]).await;
    assert_eq!(globals, serde_json::json!(["webdial"]), "no globals beyond window.webdial");

    // From an origin the gateway does not list: the browser refuses the preflight.
    b.goto(&format!("{}/", other.origin)).await;
    b.until("webdial.js loaded", "return !!window.webdial").await;
    b.click("#link").await;
    let (status, words) = result_after(&b, "#link").await;
    assert_eq!(status, "error", "{words}");
    assert!(!words.trim().is_empty(), "the error in words");
    // Give a request that slipped through time to arrive before saying none did.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(numbers(&app).len(), 3, "the PBX received nothing from a disallowed origin");
    b.close().await;
}

#[tokio::test]
async fn without_a_key_in_its_tag_it_asks_once_beside_the_link_and_marks_the_link_busy() {
    let Some(b) = Browser::open().await else { return };
    let mut site = Site::bind().await;
    let cors = Cors { origins: vec![site.origin.clone()] };
    let app = spawn_with(&[("milan", MILAN)], &[], |s| {
        s.cors = cors;
        s.keys = vec![KeySpec::new("desk".into(), DESK.into(), vec!["milan".into()], None).expect("key")];
        s.dedupe_window = Duration::ZERO;
    })
    .await;
    site.serve(page_with(&app.url, ""), &app.url);
    b.goto(&format!("{}/", site.origin)).await;
    b.until("webdial.js loaded", "return !!window.webdial").await;

    b.click("#link").await;
    let (status, words) = result_after(&b, "#link").await;
    assert_eq!(status, "unauthorized", "asked for a key: {words}");
    assert!(words.contains("401"), "the refusal in words: {words}");
    assert!(app.received().is_empty(), "nothing reached the PBX without a key");
    // A slow PBX: the link is marked busy while its dial is in flight.
    app.pbx.set_behaviour(Behaviour::Delay(Duration::from_millis(1500)));
    b.fill("span.webdial-result form input[type=password]", DESK).await;
    b.click("span.webdial-result form [type=submit]").await;
    b.until("the link busy", "return document.getElementById('link').getAttribute('aria-busy') === 'true'").await;
    let (status, words) = result_after_but(&b, "#link", "unauthorized").await;
    assert_eq!(status, "accepted", "{words}");
    assert_eq!(b.js("return document.getElementById('link').hasAttribute('aria-busy')", vec![]).await, false);
    assert_eq!(numbers(&app), ["0212345678"]);
    app.pbx.set_behaviour(Behaviour::Faithful);

    // Asked once: the next click dials with the kept key, on this page and after a reload.
    b.click("#num").await;
    assert_eq!(result_after(&b, "#num").await.0, "accepted");
    b.reload().await;
    b.until("webdial.js loaded", "return !!window.webdial").await;
    b.click("#link").await;
    assert_eq!(result_after(&b, "#link").await.0, "accepted", "not asked again");
    assert_eq!(numbers(&app), ["0212345678", "0612345678", "0212345678"]);
    b.close().await;
}
