//! Starting a branch on a preset, as an admin does it, with the real
//! binary: `webdial presets`, `webdial new`, and `webdial check` on every
//! preset the repository ships (so a preset added later is covered by
//! being added).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use webdial::profile::introspect::{self, PLACEHOLDER};

use crate::cli::{shipped_profiles, text, webdial};

/// The presets the repository ships, by name: git-tracked
/// `profiles/presets/*.yaml` (or every one, outside a git checkout).
fn shipped_presets() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let presets = root.join("profiles").join("presets");
    let mut out: Vec<(String, PathBuf)> = shipped_profiles()
        .into_iter()
        .filter(|f| f.parent() == Some(presets.as_path()))
        .filter(|f| matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .map(|f| (f.file_stem().unwrap().to_string_lossy().to_string(), f))
        .collect();
    out.sort();
    out
}

/// A folder with `webdial.yaml` and `profiles/presets/` holding the shipped
/// presets, and no branch yet.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let presets = dir.path().join("profiles/presets");
    std::fs::create_dir_all(&presets).unwrap();
    for (_, f) in shipped_presets() {
        std::fs::copy(&f, presets.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("webdial.yaml"), "listen: 127.0.0.1:0\nprofiles: profiles\n").unwrap();
    dir
}

fn config(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("webdial.yaml")
}

#[test]
fn check_passes_on_every_shipped_preset_with_sample_variables() {
    let shipped = shipped_presets();
    assert!(shipped.len() >= 10, "{shipped:?}");
    let dir = folder();
    let env = |_: &str| None;
    // What `webdial presets` reads, by the same code.
    let listed = introspect::list(&dir.path().join("profiles"), &env);
    for (name, _) in &shipped {
        let p = listed.iter().find(|p| &p.name == name).unwrap_or_else(|| panic!("{name} not listed"));
        assert!(p.loads(), "{name}: {:?}", p.problems);
        std::fs::write(dir.path().join(format!("profiles/preset-{name}.yaml")), p.sample_branch()).unwrap();
    }
    let out = webdial(&config(&dir), &["check"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("ok: {} branches", shipped.len()));
}

/// Fills a starter as an admin would: each placeholder gets a value
/// (`phones` entries a phone's address), and each `${NAME}` it reads is
/// returned, to be set in the environment.
fn fill(file: &Path) -> BTreeSet<String> {
    let source = std::fs::read_to_string(file).unwrap();
    let mut env = BTreeSet::new();
    let mut filled = String::new();
    for line in source.lines() {
        let code = line.split('#').next().unwrap_or("");
        if let Some((_, rest)) = code.split_once("${") {
            env.insert(rest.split('}').next().unwrap().to_string());
        }
        let line = match line.split_once(':') {
            Some((key, value)) if value.trim() == format!("{PLACEHOLDER:?}") => {
                let key = key.trim();
                let sample = match key.starts_with('"') {
                    true => Value::from("192.0.2.10"),
                    false => introspect::sample(key),
                };
                format!("{}: {sample}", line.split(':').next().unwrap())
            }
            _ => line.to_string(),
        };
        filled.push_str(&line);
        filled.push('\n');
    }
    std::fs::write(file, filled).unwrap();
    env
}

#[test]
fn a_starter_from_new_is_refused_by_check_until_filled_then_accepted_for_every_preset() {
    let shipped = shipped_presets();
    let dir = folder();
    let mut unfilled = Vec::new();
    for (name, _) in &shipped {
        let out = webdial(&config(&dir), &["new", &format!("b-{name}"), "--preset", name], &[]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let file = dir.path().join(format!("profiles/b-{name}.yaml"));
        let starter = std::fs::read_to_string(&file).unwrap();
        assert!(starter.contains(&format!("\nextends: presets/{name}.yaml\n")), "{starter}");
        assert!(text(&out.stdout).contains("webdial check"), "{}", text(&out.stdout));
        let code = |l: &str| l.split('#').next().unwrap_or("").to_string();
        if starter.lines().map(code).any(|l| l.contains(PLACEHOLDER) || l.contains("${")) {
            unfilled.push(file);
        }
    }
    assert!(unfilled.len() >= 5, "most presets need something: {unfilled:?}");
    let out = webdial(&config(&dir), &["check"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    for file in &unfilled {
        assert!(err.contains(&file.display().to_string()), "{} not refused:\n{err}", file.display());
    }
    let mut env = BTreeSet::new();
    for (name, _) in &shipped {
        env.extend(fill(&dir.path().join(format!("profiles/b-{name}.yaml"))));
    }
    let values: Vec<(String, String)> = env.iter().map(|n| (n.clone(), format!("secret-of-{n}"))).collect();
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = webdial(&config(&dir), &["check"], &pairs);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("ok: {} branches", shipped.len()));
}

#[test]
fn a_placeholder_left_is_named_at_its_place() {
    let dir = folder();
    let out = webdial(&config(&dir), &["new", "london", "--preset", "3cx"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = dir.path().join("profiles/london.yaml");
    assert!(text(&out.stdout).contains("set host, client_id in it"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("set LONDON_CLIENT_SECRET in the environment"), "{}", text(&out.stdout));
    let source = std::fs::read_to_string(&file).unwrap();
    assert!(source.contains("  client_secret: ${LONDON_CLIENT_SECRET}\n"), "{source}");
    assert!(source.contains("  # scheme: \"https\"\n"), "{source}");
    let line = source.lines().position(|l| l.starts_with("  client_id:")).unwrap() + 1;
    let out = webdial(&config(&dir), &["check"], &[("LONDON_CLIENT_SECRET", "s3cret")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let at = format!("{}:{line}:14: `client_id` is still \"<fill in>\"", file.display());
    assert!(err.lines().any(|l| l.starts_with(&at)), "{at}\n{err}");
    assert_eq!(err.matches("<fill in>").count(), 2, "one line per placeholder, nothing else: {err}");
    assert!(!err.contains("s3cret"));
}

#[test]
fn presets_lists_every_shipped_preset_with_what_it_needs() {
    let dir = folder();
    let out = webdial(&config(&dir), &["presets", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = all.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let shipped: Vec<String> = shipped_presets().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, shipped.iter().map(String::as_str).collect::<Vec<_>>());
    let get = |name: &str| all.iter().find(|p| p["name"] == name).unwrap();
    let needs = |name: &str| -> Vec<(String, bool)> {
        let list = get(name)["required"].as_array().unwrap().clone();
        list.iter().map(|v| (v["name"].as_str().unwrap().to_string(), v["secret"] == true)).collect()
    };
    assert_eq!(needs("voispeed"), [("host".into(), false), ("token".into(), true)]);
    assert_eq!(get("voispeed")["optional"][0]["name"], "scheme");
    assert_eq!(get("voispeed")["optional"][0]["default"], "https");
    assert!(get("voispeed")["required"][0]["about"].as_str().unwrap().contains("host[:port]"));
    assert_eq!(get("voispeed")["actions"][0], "dial");
    assert_eq!(needs("3cx"), [("host".into(), false), ("client_id".into(), false), ("client_secret".into(), true)]);
    assert_eq!(get("3cx")["login"], true);
    assert_eq!(get("3cx")["events"], false);
    assert_eq!(get("yealink-events")["actions"], serde_json::json!([]));
    assert_eq!(get("yealink-events")["events"], true);
    assert!(get("click2call")["options"].as_array().unwrap().contains(&Value::from("at")));
    assert_eq!(get("asterisk-ami")["summary"], "Asterisk AMI over HTTP (AJAM), the plain-text `/rawman` flavour");
    for p in &all {
        assert_eq!(p["problems"], serde_json::json!([]), "{p}");
        assert!(p["summary"].is_string(), "every shipped preset has a header: {p}");
    }

    let out = webdial(&config(&dir), &["presets"], &[]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    for name in &shipped {
        assert!(listing.lines().any(|l| l.starts_with(&format!("{name} — "))), "{name}:\n{listing}");
    }
    assert!(listing.contains("\n    needs     host, token (secret)\n"), "{listing}");
    for line in listing.lines().filter(|l| l.starts_with("    ")) {
        assert!(line.as_bytes().get(13) == Some(&b' ') && line.as_bytes()[14] != b' ', "not aligned: {line:?}");
    }
}

#[test]
fn a_preset_that_does_not_load_is_listed_with_its_place_and_the_others_still_are() {
    let dir = folder();
    let broken = dir.path().join("profiles/presets/broken.yaml");
    std::fs::write(
        &broken,
        "# Broken on purpose.\ndial:\n  url: \"http://{{ host }}/d?n={{ number }}\"\n  metod: GET\n",
    )
    .unwrap();
    let out = webdial(&config(&dir), &["presets"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let listing = text(&out.stdout);
    assert!(listing.contains("broken — Broken on purpose\n    does not load:\n"), "{listing}");
    assert!(listing.contains(&format!("      {}:4:3: ", broken.display())), "{listing}");
    assert!(listing.contains("voispeed — "), "{listing}");
    let out = webdial(&config(&dir), &["presets", "--json"], &[]);
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let p = all.iter().find(|p| p["name"] == "broken").unwrap();
    assert!(p["problems"][0].as_str().unwrap().starts_with(&format!("{}:4:3: ", broken.display())), "{p}");
    let out = webdial(&config(&dir), &["new", "x", "--preset", "broken"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not load: nothing written"), "{}", text(&out.stderr));
    assert!(!dir.path().join("profiles/x.yaml").exists());
}

#[test]
fn new_refuses_an_existing_file_a_bad_name_and_an_unknown_preset() {
    let dir = folder();
    let existing = dir.path().join("profiles/london.yaml");
    std::fs::write(&existing, "dial: \"tel:#\"\n").unwrap();
    let out = webdial(&config(&dir), &["new", "london", "--preset", "voispeed"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("exists: not overwritten"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "dial: \"tel:#\"\n");

    for bad in ["../evil", "a b", "", "x/y"] {
        let out = webdial(&config(&dir), &["new", bad, "--preset", "voispeed"], &[]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        assert!(text(&out.stderr).contains("is not a usable branch name"), "{bad:?}: {}", text(&out.stderr));
    }
    let out = webdial(&config(&dir), &["new", "paris.yaml", "--preset", "voispeed"], &[]);
    assert!(text(&out.stderr).contains("without .yaml: webdial new paris"), "{}", text(&out.stderr));

    let out = webdial(&config(&dir), &["new", "paris", "--preset", "no-such"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("unknown preset \"no-such\"") && err.contains("3cx, asterisk-ami,"), "{err}");
    let out = webdial(&config(&dir), &["new", "paris", "--preset", "../webdial"], &[]);
    assert!(text(&out.stderr).contains("unknown preset"), "{}", text(&out.stderr));
    let left: Vec<_> =
        std::fs::read_dir(dir.path().join("profiles")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 2, "only presets/ and london.yaml: {left:?}");
}

#[test]
fn new_writes_into_the_configured_profiles_folder_or_dir() {
    let dir = folder();
    std::fs::rename(dir.path().join("profiles"), dir.path().join("branches")).unwrap();
    std::fs::write(config(&dir), "listen: 127.0.0.1:0\nprofiles: branches\n").unwrap();
    let out = webdial(&config(&dir), &["new", "milan", "--preset", "presets/voispeed-client.yaml"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("branches/milan.yaml").is_file());
    let out = webdial(&config(&dir), &["check"], &[]);
    assert!(out.status.success(), "a preset that needs nothing: the starter loads as written: {}", text(&out.stderr));

    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("presets")).unwrap();
    let preset = dir.path().join("branches/presets/voispeed.yaml");
    std::fs::copy(preset, other.path().join("presets/voispeed.yaml")).unwrap();
    let out =
        webdial(&config(&dir), &["new", "rome", "--preset", "voispeed", "--dir", other.path().to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(other.path().join("rome.yaml").is_file() && !dir.path().join("branches/rome.yaml").exists());
}

#[test]
fn the_readme_table_has_one_row_per_shipped_preset_as_webdial_presets_describes_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme.split("\n## Supported phone systems\n").nth(1).expect("the section");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<Vec<String>> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| system |"))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect();
    let systems: Vec<String> = rows.iter().map(|r| r[0].to_lowercase()).collect();
    let mut sorted = systems.clone();
    sorted.sort();
    assert_eq!(systems, sorted, "rows sorted by system, ignoring case");
    let dir = folder();
    let env = |_: &str| None;
    let listed = introspect::list(&dir.path().join("profiles"), &env);
    for p in &listed {
        let row: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == format!("`{}`", p.name)).collect();
        assert_eq!(row.len(), 1, "README: one row for preset `{}`", p.name);
        let row = row[0];
        assert_eq!(row.len(), 6, "{row:?}");
        let actions: BTreeSet<&str> = row[2].split(", ").filter(|a| *a != "—").collect();
        assert_eq!(actions, p.actions.iter().map(String::as_str).collect(), "README actions of `{}`", p.name);
        let yes = |b: bool| if b { "yes" } else { "no" };
        assert_eq!((row[3].as_str(), row[4].as_str()), (yes(p.login), yes(p.events)), "README: `{}`", p.name);
        assert!(!row[5].is_empty(), "{row:?}");
    }
    assert_eq!(rows.len(), listed.len(), "a row for a preset that is not shipped: {rows:?}");
}
