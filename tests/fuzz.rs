//! Property tests for the parsers that see untrusted input: they must never
//! panic, and what they accept must keep its promises. Runs briefly in CI
//! (PROPTEST_CASES raises the count: `PROPTEST_CASES=200000 cargo test --release --test fuzz`).

use proptest::prelude::*;
use webdial::number::DialString;
use webdial::pbx::answer::{Answer, Format, Rules};
use webdial::syntax::iqx;
use webdial::template::{Context, Rendered, RequestTemplate};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000),
        ..ProptestConfig::default()
    }
}

/// Text biased towards the characters the parsers care about.
fn tricky() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("{POST}".to_string()),
            Just("{GET}".to_string()),
            Just("<&>".to_string()),
            Just("http://h/p".to_string()),
            Just("tel:".to_string()),
            Just("?".to_string()),
            Just("&".to_string()),
            Just("=".to_string()),
            Just("^".to_string()),
            Just("#".to_string()),
            Just("<".to_string()),
            Just("{".to_string()),
            "[ -~]{0,4}",
            any::<char>().prop_map(String::from),
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn iqx_parse_never_panics_and_accepted_lines_render_to_the_same_host(line in tricky(), ext in "[0-9]{1,4}", num in "\\+?[0-9*#]{1,15}") {
        if let Ok(parsed) = iqx::parse(&line) {
            let values = Context::new("b").with("extension", ext).with("number", num.clone()).with("raw_number", num);
            let sample = Context::sample("b");
            let t = RequestTemplate::iqx(parsed);
            let env = webdial::template::new_env();
            if let (Ok(Rendered::Http(a)), Ok(Rendered::Http(b))) = (t.render(&env, &values), t.render(&env, &sample)) {
                prop_assert_eq!(a.url.host_str(), b.url.host_str());
                prop_assert_eq!(a.url.port(), b.url.port());
                prop_assert_eq!(a.url.scheme(), b.url.scheme());
            }
        }
    }

    #[test]
    fn dial_strings_hold_only_dial_characters(raw in any::<String>()) {
        if let Ok(d) = DialString::parse(&raw) {
            let s = d.as_str();
            prop_assert!(!s.is_empty() && s.len() <= webdial::number::MAX_LEN);
            prop_assert!(s.chars().enumerate().all(|(i, c)| c.is_ascii_digit() || c == '*' || c == '#' || (c == '+' && i == 0)));
        }
    }

    #[test]
    fn reading_any_answer_never_panics(body in prop_oneof![any::<String>(), tricky(), "<[a-z]{1,3}( [a-z]=\"[^\"]{0,3}\")?>[^<]{0,8}(</[a-z]{1,3}>)?"], status in 100u16..600, ct in prop::option::of(prop_oneof![Just("application/json".to_string()), Just("text/xml".to_string()), Just("text/html".to_string())])) {
        let answer = Answer { http_status: status, content_type: ct, location: None, body };
        for format in [Format::Auto, Format::Xml, Format::Json, Format::Text] {
            let rules = Rules { format, ok: Some("outcome == '0'".into()), call_id: Some("request_id".into()), message: Some("error".into()) };
            let _ = rules.read(&answer);
            let _ = Rules { format, ..Rules::default() }.read(&answer);
        }
    }
}
