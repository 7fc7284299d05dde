//! Property tests for the parsers that see untrusted input: they must never
//! panic, and what they accept must keep its promises. Runs briefly in CI
//! (PROPTEST_CASES raises the count: `PROPTEST_CASES=200000 cargo test --release --test fuzz`).

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use webdial::number::DialString;
use webdial::pbx::answer::{Answer, Format};
use webdial::pbx::rules::{Rules, Spec};
use webdial::syntax::iqx;
use webdial::template::Templates;
use webdial::template::{Context, Rendered, RequestTemplate};

/// Answer rules compiled as the profile loader compiles them.
fn compile(env: &mut Templates, spec: Spec) -> Rules {
    Rules::compile(env, spec).expect("valid rules")
}

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
        let answer = Answer { http_status: status, content_type: ct, location: None, headers: Vec::new(), body };
        let mut env = webdial::template::new_env();
        for format in [Format::Auto, Format::Xml, Format::Json, Format::Text] {
            let voispeed = Spec { format, ok: Some("outcome == '0'".into()), call_id: Some("request_id".into()), message: Some("error".into()), ..Spec::default() };
            for spec in [voispeed, Spec { format, ..Spec::default() }] {
                let _ = compile(&mut env, spec).read(&env, &answer);
            }
        }
    }
}

/// The openers and closers of nested answers: XML elements (with and
/// without attributes), JSON arrays and JSON objects.
const LEVELS: [(&str, &str); 4] = [("<a>", "</a>"), ("<b k=\"v\">", "</b>"), ("[", "]"), ("{\"k\":", "}")];

/// An answer `levels` deep, cycling through `kinds` of level (only XML
/// or only JSON kinds: a valid document; both: an invalid one),
/// closed or cut off.
fn nested() -> impl Strategy<Value = (String, Vec<usize>, usize, bool)> {
    (prop::collection::vec(0..LEVELS.len(), 1..4), prop_oneof![1usize..100, 1usize..5_000], any::<bool>()).prop_map(
        |(kinds, levels, closed)| {
            let mut body = String::new();
            for i in 0..levels {
                body.push_str(LEVELS[kinds[i % kinds.len()]].0);
            }
            body.push('1');
            if closed {
                for i in (0..levels).rev() {
                    body.push_str(LEVELS[kinds[i % kinds.len()]].1);
                }
            }
            (body, kinds, levels, closed)
        },
    )
}

/// Deeply nested answers, on a thread with a small stack so that any
/// recursion over the answer's depth aborts this test: each is read in every
/// format without crashing, and a valid document deeper than the bound is
/// refused as such when its format is required.
#[test]
fn deeply_nested_answers_never_crash_and_past_the_bound_are_refused() {
    let run = || {
        let mut env = webdial::template::new_env();
        let formats = [Format::Auto, Format::Xml, Format::Json, Format::Text];
        let spec = |format| Spec {
            format,
            ok: Some("body is defined".into()),
            call_id: Some("body".into()),
            ..Spec::default()
        };
        let rules: Vec<(Format, Rules)> = formats.into_iter().map(|f| (f, compile(&mut env, spec(f)))).collect();
        let mut runner = TestRunner::new(config());
        runner
            .run(&nested(), |(body, kinds, levels, closed)| {
                for ct in [None, Some("application/json"), Some("text/xml")] {
                    let answer = Answer {
                        http_status: 200,
                        content_type: ct.map(str::to_string),
                        location: None,
                        headers: Vec::new(),
                        body: body.clone(),
                    };
                    for (format, rules) in &rules {
                        let (format, read) = (*format, rules.read(&env, &answer));
                        // XML levels with XML levels, JSON with JSON: a valid document.
                        let xml = kinds[0] < 2;
                        let valid = closed && kinds.iter().all(|k| (*k < 2) == xml);
                        let required = (format == Format::Xml && xml) || (format == Format::Json && !xml);
                        if valid && required {
                            match read {
                                Ok(_) => {
                                    prop_assert!(levels <= webdial::pbx::answer::MAX_DEPTH, "{levels} levels read")
                                }
                                Err(e) => {
                                    prop_assert!(levels > webdial::pbx::answer::MAX_DEPTH, "{levels}: {e}");
                                    prop_assert!(e.message.contains("levels deep"), "{e}");
                                }
                            }
                        }
                    }
                }
                Ok(())
            })
            .map_err(|e| e.to_string())
    };
    let outcome =
        std::thread::Builder::new().stack_size(256 * 1024).spawn(run).expect("thread").join().expect("no panic");
    assert_eq!(outcome, Ok(()));
}
