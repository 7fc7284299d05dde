//! API keys: required, checked, scoped to branches, rate-limited; refused
//! requests reach no PBX.

use serde_json::json;
use webdial::settings::{KeySpec, Settings};

use crate::helpers::spawn_with;

fn key(name: &str, secret: &str, branches: &[&str], rate: Option<&str>) -> KeySpec {
    KeySpec::new(name.into(), secret.into(), branches.iter().map(|s| s.to_string()).collect(), rate).unwrap()
}

fn keyed(s: &mut Settings) {
    s.keys = vec![
        key("erp", "erp-0123456789abcdef", &["*"], None),
        key("intranet", "web-0123456789abcdef", &["london"], Some("2/min")),
    ];
}

#[tokio::test]
async fn keys_are_required_checked_scoped_and_rate_limited() {
    let iqx = "dial: \"PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"";
    let app = spawn_with(&[("london", iqx), ("leeds", iqx)], &[], keyed).await;
    let url = format!("{}/v1/dial", app.url);
    let body = |branch: &str, n: u32| json!({"branch": branch, "extension": "201", "number": format!("0207946000{n}")});
    let post = |b: serde_json::Value| app.client.post(&url).json(&b);

    let (code, r) = crate::helpers::read(post(body("london", 1)).send().await.unwrap()).await;
    assert_eq!((code, r["status"].as_str()), (401, Some("unauthorized")));
    let (code, _) =
        crate::helpers::read(post(body("london", 1)).bearer_auth("wrong-0123456789abcdef").send().await.unwrap()).await;
    assert_eq!(code, 401);
    let (code, r) =
        crate::helpers::read(post(body("leeds", 1)).header("x-api-key", "web-0123456789abcdef").send().await.unwrap())
            .await;
    assert_eq!((code, r["status"].as_str()), (403, Some("forbidden")), "{r}");
    assert!(app.received().is_empty(), "refused keys reach no PBX");

    // The three ways to present a key.
    let (code, r) =
        crate::helpers::read(post(body("leeds", 2)).bearer_auth("erp-0123456789abcdef").send().await.unwrap()).await;
    assert_eq!(code, 200, "{r}");
    let (code, r) =
        crate::helpers::read(post(body("leeds", 3)).header("x-api-key", "erp-0123456789abcdef").send().await.unwrap())
            .await;
    assert_eq!(code, 200, "{r}");
    let (code, r) = app.get("branch=leeds&ext=201&number=02079460004&key=erp-0123456789abcdef").await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(app.received().len(), 3);

    // intranet: 2/min (its refused leeds attempt above was stopped by scope, before the rate).
    for n in 5..=6 {
        let (code, r) = app.get(&format!("branch=london&ext=201&number=0207946000{n}&key=web-0123456789abcdef")).await;
        assert_eq!(code, 200, "{r}");
    }
    let (code, r) = app.get("branch=london&ext=201&number=02079460007&key=web-0123456789abcdef").await;
    assert_eq!((code, r["status"].as_str()), (429, Some("rate_limited")), "{r}");
    assert_eq!(app.received().len(), 5, "the rate-limited dial reached no PBX");
}
