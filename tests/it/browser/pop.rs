//! `/pop?extension=E`, the screen-pop: each call ringing at E appears with
//! its caller and the CRM link `pop: {link}` builds; calls to other
//! extensions do not.

use super::{Browser, MILAN};
use crate::helpers::{App, spawn_configured};

/// The PBX tells the gateway a call from `number` rings at `ext`.
async fn rings(app: &App, ext: &str, number: &str, call: u32) {
    let path = format!(
        "milan?secret=s3cret-milan&event_type=2&event=8&event_name=incoming_call&ext={ext}&number={number}&call_id={call}"
    );
    let (status, body) = app.notify_get(&path).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn shows_each_caller_ringing_at_the_extension_with_the_crm_link() {
    let Some(b) = Browser::open().await else { return };
    let pop = "pop: {link: \"https://crm.example.com/search?q={{ event.remote }}\"}\n";
    let app = spawn_configured(&[("milan", MILAN)], &[], pop, |_| {}).await;
    b.goto(&format!("{}/pop?extension=35", app.url)).await;
    b.find("#calls").await;
    // The page's stream is open once the gateway has a subscriber; ring until the page shows it.
    let mut call = 0;
    let shown = loop {
        call += 1;
        rings(&app, "36", "0299999999", call).await;
        rings(&app, "35", "%2B390212345678", call + 1000).await;
        let got = b
            .js(
                "const li = document.querySelector('#calls li.pop');
                 return li && [li.querySelector('.remote').textContent, li.querySelector('a.pop-link').getAttribute('href'),
                   document.querySelectorAll('#calls li.pop').length];",
                vec![],
            )
            .await;
        if !got.is_null() || call > 40 {
            break got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert!(!shown.is_null(), "no ringing call shown after {call} rings");
    assert!(shown[0].as_str().unwrap_or("").contains("+390212345678"), "the caller: {shown}");
    assert_eq!(shown[1], "https://crm.example.com/search?q=%2B390212345678", "the link, the caller encoded: {shown}");
    let remotes =
        b.js("return [...document.querySelectorAll('#calls li.pop .remote')].map(r => r.textContent)", vec![]).await;
    assert!(
        remotes.as_array().into_iter().flatten().all(|r| !r.as_str().unwrap_or("").contains("0299999999")),
        "only calls to extension 35: {remotes}"
    );
    b.close().await;
}
