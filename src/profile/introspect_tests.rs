use super::*;

/// A profiles folder with these presets (name, text).
fn folder(presets: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("presets")).unwrap();
    for (name, text) in presets {
        std::fs::write(dir.path().join("presets").join(format!("{name}.yaml")), text).unwrap();
    }
    dir
}

fn one(text: &str) -> Preset {
    let dir = folder(&[("p", text)]);
    let env = |_: &str| None;
    list(dir.path(), &env).remove(0)
}

fn yaml(text: &str) -> (Value, crate::settings::yaml::Value) {
    crate::settings::yaml::parse::<Value>(text).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

fn names(vars: &[Variable]) -> Vec<&str> {
    vars.iter().map(|v| v.name.as_str()).collect()
}

const SERI: &str = "# A SERI-like system: one GET per action.
#
# Variables:
#   host     required  the PBX, host[:port]
#   token    required  the module's token
#   scheme   https     http without TLS
vars:
  scheme: https
dial:
  url: \"{{ scheme }}://{{ host }}/d?t={{ token }}&e={{ extension }}&n={{ number }}{% if device %}&d={{ device }}{% endif %}\"
actions:
  dnd_on:
    url: \"http://{{ host }}/mode?e={{ extension }}&m=2\"
";

#[test]
fn required_variables_are_what_the_templates_use_and_nothing_defines() {
    let p = one(SERI);
    assert!(p.loads(), "{:?}", p.problems);
    // `device` is read only inside an `if`, and no header line names it: still required, listed last.
    assert_eq!(names(&p.required), ["host", "token", "device"]);
    assert_eq!(names(&p.optional), ["scheme"]);
    assert_eq!(p.optional[0].default, Some(json!("https")));
    assert_eq!(p.optional[0].about.as_deref(), Some("http without TLS"));
    assert_eq!(p.required[0].about.as_deref(), Some("the PBX, host[:port]"));
    assert!(p.required[1].secret && !p.required[0].secret && !p.required[2].secret);
    assert_eq!(p.actions, ["dial", "dnd_on"]);
    assert_eq!(p.summary.as_deref(), Some("A SERI-like system"));
    assert!(!p.login && !p.events);
}

#[test]
fn login_steps_and_a_base_preset_count_too() {
    let dir = folder(&[
        ("base", "vars: {scheme: https, context: default}\n"),
        (
            "child",
            "extends: base.yaml
login:
  - url: \"{{ scheme }}://{{ host }}/token?id={{ client_id }}\"
    save: {token: access_token}
dial:
  url: \"{{ scheme }}://{{ host }}/call?c={{ context }}&n={{ number }}\"
  auth: {bearer: \"{{ session.token }}\"}
",
        ),
    ]);
    let env = |_: &str| None;
    let all = list(dir.path(), &env);
    let child = all.iter().find(|p| p.name == "child").unwrap();
    assert!(child.loads(), "{:?}", child.problems);
    assert_eq!(names(&child.required), ["client_id", "host"]);
    assert_eq!(names(&child.optional), ["context", "scheme"], "the defaults of the preset it extends");
    assert!(child.login);
    let base = all.iter().find(|p| p.name == "base").unwrap();
    assert!(base.loads() && base.actions.is_empty() && base.required.is_empty());
}

#[test]
fn an_events_only_preset_has_no_actions_and_loads() {
    let p = one("# Phones' Action URLs.\nevents:\n  read:\n    type: \"event\"\n");
    assert!(p.loads(), "{:?}", p.problems);
    assert!(p.events && !p.events_admitted && p.actions.is_empty());
    assert!(p.sample_branch().contains("dial: \"tel:#\""), "{}", p.sample_branch());
}

#[test]
fn a_preset_that_does_not_load_is_described_with_its_problems_placed() {
    let p = one("# Broken.\ndial:\n  url: \"http://{{ host }}/d?n={{ number }}\"\n  metod: GET\n");
    assert!(!p.loads());
    let file = p.file.display().to_string();
    assert!(p.problems.iter().any(|m| m.starts_with(&format!("{file}:4:3: "))), "{:?}", p.problems);
    let p = one("dial:\n  url: \"http://{{ host }}/d?n={{ number }}\"\nmax_in_flight: 0\n");
    assert!(!p.loads() && p.problems[0].contains(":3:16: max_in_flight must be at least 1"), "{:?}", p.problems);
    assert_eq!(names(&p.required), ["host"], "what it needs is still known");
}

#[test]
fn desk_phones_take_a_map_and_samples_make_every_preset_load() {
    let p = one("dial:\n  url: \"http://{{ host }}/d?n={{ number }}&k={{ api_key }}&u={{ public_url }}\"\n");
    assert!(p.loads(), "{:?}", p.problems);
    assert!(p.required.iter().all(|v| !v.map));
    assert_eq!(sample(PHONES)[Context::sample("b").get("extension").unwrap()], json!("192.0.2.10"));
    let vars = p.samples();
    assert_eq!(vars["host"], json!("pbx.example.com"));
    assert_eq!(vars["public_url"], json!("https://webdial.example.com"));
    let phones = Variable { name: PHONES.into(), secret: false, map: true, default: None, about: None };
    assert!(phones.map && sample(&phones.name).is_object());
}

#[test]
fn secrets_are_told_by_their_names() {
    for s in [
        "token",
        "pass",
        "password",
        "client_secret",
        "webhook_secret",
        "api_key",
        "AuthToken",
        "apiPassword",
        "jwt",
        "auth_token",
    ] {
        assert!(looks_secret(s), "{s}");
    }
    for s in [
        "host",
        "user",
        "account",
        "client_id",
        "scheme",
        "passage",
        "monkey",
        "context",
        "from_number",
        "auth_user",
        "auth_id",
    ] {
        assert!(!looks_secret(s), "{s}");
    }
}

#[test]
fn a_placeholder_is_found_anywhere_in_a_value() {
    assert!(holds_placeholder(&json!(PLACEHOLDER)));
    assert!(holds_placeholder(&json!({"201": PLACEHOLDER})));
    assert!(!holds_placeholder(&json!({"201": "192.0.2.10"})));
    assert!(!holds_placeholder(&json!("fill in the host")));
}

#[test]
fn a_phones_map_is_required_as_a_map_and_its_sample_loads() {
    let p =
        one("# Desk phones.\ndial:\n  url: \"http://{{ host }}/call?phone={{ phones[extension] }}&n={{ number }}\"\n");
    assert!(p.loads(), "{:?}", p.problems);
    assert_eq!(names(&p.required), ["host", "phones"]);
    assert!(p.required[1].map && !p.required[0].map);
    let (branch, _) = yaml(&p.sample_branch());
    assert!(branch["vars"]["phones"].is_object(), "{}", p.sample_branch());
}

#[test]
fn a_starter_is_yaml_with_a_placeholder_or_an_env_reference_for_each_variable_it_needs() {
    let p = one(SERI);
    let text = super::super::starter::starter(&p, "new-york");
    let (doc, _) = yaml(&text);
    assert_eq!(doc["extends"], json!("presets/p.yaml"));
    assert_eq!(doc["vars"]["host"], json!(PLACEHOLDER));
    assert_eq!(doc["vars"]["device"], json!(PLACEHOLDER));
    assert_eq!(doc["vars"]["token"], json!("${NEW_YORK_TOKEN}"));
    assert!(doc["vars"].get("scheme").is_none(), "a default stays the preset's: {text}");
    assert!(text.contains("  # the PBX, host[:port]\n  host: \"<fill in>\"\n"), "{text}");
    assert!(text.contains("  # http without TLS\n  # scheme: \"https\"\n"), "{text}");
    assert!(doc.get("dial").is_none() && doc.get("events").is_none(), "{text}");
}

#[test]
fn a_secrets_value_is_never_shown() {
    let dir = folder(&[(
        "p",
        "vars:\n  token: ${INTROSPECT_TEST_TOKEN}\n  realm: ${INTROSPECT_TEST_REALM}\ndial: \"tel:#\"\n",
    )]);
    let env = |n: &str| Some(format!("value-of-{n}"));
    let p = list(dir.path(), &env).remove(0);
    assert!(p.loads(), "{:?}", p.problems);
    let token = p.optional.iter().find(|v| v.name == "token").unwrap();
    assert!(token.secret && token.default.is_none());
    let realm = p.optional.iter().find(|v| v.name == "realm").unwrap();
    assert_eq!(realm.default, Some(json!(crate::secrets::MASK)), "an ${{ENV}} value is a secret whatever its name");
    assert!(!serde_json::to_string(&p).unwrap().contains("value-of-"));
}
