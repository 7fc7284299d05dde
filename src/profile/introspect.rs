//! What a preset asks of a branch that extends it, read off the preset
//! itself: for `webdial presets`, `webdial new` and the test that every
//! shipped preset passes `webdial check`.
//!
//! The variables a branch must set are not taken from the header comment:
//! they are the names its compiled templates use (minijinja's undeclared
//! variables, as the loader reports them) that neither the preset's `vars`
//! nor the request defines. The preset is compiled again with a sample
//! value for each, until it loads or fails for another reason, so a preset
//! listed as loading is one a branch can extend once it sets them. The
//! header comment only supplies words for people: the summary and what
//! each variable is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use super::header::Header;
use super::raw::RawAction;
use super::{Loader, compile, dir_of, merge};
use crate::template::Context;

/// What `webdial new` writes where a branch must put a value; a profile
/// that still holds it does not load.
pub const PLACEHOLDER: &str = "<fill in>";

/// The dial a branch on a preset without actions starts with (a branch
/// needs one): the caller's own phone opens `tel:NUMBER`.
pub const STARTER_DIAL: &str = "tel:#";

/// The variable desk-phone presets take: extension → the phone's host[:port].
pub const PHONES: &str = "phones";

/// Compiling again with samples stops after this many rounds (each round
/// can only reveal variables an earlier failure hid).
const ROUNDS: usize = 4;

/// One variable of a preset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variable {
    pub name: String,
    /// Looks like a credential: meant to come from the environment.
    pub secret: bool,
    /// A map (extension → host), not one value.
    pub map: bool,
    /// The preset's own value; `None` for a required variable, and for a
    /// secret (its value is not shown, whatever it is). Values the
    /// preset took from `${ENV}` are masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// What the preset's header says about it.
    pub about: Option<String>,
}

/// One preset, as `webdial presets` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Preset {
    /// The file stem: what `extends: presets/NAME.yaml` and `--preset` name.
    pub name: String,
    pub file: PathBuf,
    pub summary: Option<String>,
    /// What a branch must set, in the order the header describes them.
    pub required: Vec<Variable>,
    /// The preset's `vars`: a branch may set them instead.
    pub optional: Vec<Variable>,
    pub actions: Vec<String>,
    /// The options its actions accept per request.
    pub options: Vec<String>,
    pub login: bool,
    pub events: bool,
    /// Whether the preset itself says who may send events (a signature
    /// check, addresses or a secret); otherwise a branch must.
    pub events_admitted: bool,
    /// Why it does not load (`FILE:LINE:COL: message`); empty when it does.
    pub problems: Vec<String>,
}

impl Preset {
    pub fn loads(&self) -> bool {
        self.problems.is_empty()
    }

    /// A value for every required variable, as [`sample`] gives it.
    pub fn samples(&self) -> BTreeMap<String, Value> {
        self.required.iter().map(|v| (v.name.clone(), sample(&v.name))).collect()
    }

    /// A branch file on this preset with sample values: one that loads
    /// whenever the preset does (`extends` as seen from the profiles folder).
    pub fn sample_branch(&self) -> String {
        let mut out = format!("extends: presets/{}.yaml\n", self.name);
        if !self.required.is_empty() {
            out.push_str(&format!("vars: {}\n", Value::from_iter(self.samples())));
        }
        if self.actions.is_empty() {
            out.push_str(&format!("dial: {}\n", Value::from(STARTER_DIAL)));
        }
        out
    }
}

/// Whether a variable's name says it holds a credential.
pub fn looks_secret(name: &str) -> bool {
    const WORDS: &[&str] =
        &["secret", "password", "passwd", "pass", "pwd", "token", "key", "apikey", "jwt", "credentials", "pin"];
    let lower = name.to_ascii_lowercase();
    lower.split(['_', '-']).any(|w| WORDS.contains(&w))
        || ["secret", "password", "token"].iter().any(|w| lower.ends_with(w))
}

/// A plausible value for a required variable: what the test of every
/// shipped preset and `webdial presets` compile with. `phones` is a map
/// holding the extension the loader tries templates with.
pub fn sample(name: &str) -> Value {
    if name == PHONES {
        let ext = Context::sample("sample").get("extension").unwrap_or("201").to_string();
        return json!({ ext: "192.0.2.10", "202": "192.0.2.11:8080" });
    }
    match name {
        "host" => json!("pbx.example.com"),
        "scheme" => json!("https"),
        "domain" => json!("example.com"),
        n if n.ends_with("url") => json!("https://webdial.example.com"),
        n if n.ends_with("port") => json!("8080"),
        n if n.ends_with("number") => json!("+442079460001"),
        n => json!(format!("sample-{}", n.replace('_', "-"))),
    }
}

/// Whether `value` (or anything in it) is still [`PLACEHOLDER`].
pub fn holds_placeholder(value: &Value) -> bool {
    match value {
        Value::String(s) => s.trim() == PLACEHOLDER,
        Value::Array(a) => a.iter().any(holds_placeholder),
        Value::Object(o) => o.values().any(holds_placeholder),
        _ => false,
    }
}

/// The presets in `profiles/presets/` (`*.yaml`, `*.yml`), by name.
pub fn names(profiles: &Path) -> Vec<(String, PathBuf)> {
    let dir = profiles.join("presets");
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .filter_map(|p| Some((p.file_stem()?.to_string_lossy().to_string(), p)))
        .collect();
    out.sort();
    out
}

/// Every preset in `profiles/presets/`, described; one that does not load
/// is listed with its problems. `env` supplies `${NAME}` values.
pub fn list(profiles: &Path, env: &dyn Fn(&str) -> Option<String>) -> Vec<Preset> {
    let mut loader = Loader::new(env);
    names(profiles).into_iter().map(|(name, file)| describe(&mut loader, &name, &file)).collect()
}

/// Describes one preset file.
pub fn describe(loader: &mut Loader<'_>, name: &str, file: &Path) -> Preset {
    let header = Header::read(&std::fs::read_to_string(file).unwrap_or_default());
    let mut preset = Preset {
        name: name.to_string(),
        file: file.to_path_buf(),
        summary: header.summary(),
        required: Vec::new(),
        optional: Vec::new(),
        actions: Vec::new(),
        options: Vec::new(),
        login: false,
        events: false,
        events_admitted: false,
        problems: Vec::new(),
    };
    let before = loader.diagnostics.len();
    loader.reused = None;
    let failed = |loader: &mut Loader<'_>| -> Vec<String> {
        let mut found: Vec<String> = loader.diagnostics.drain(before..).map(|d| d.to_string()).collect();
        found.extend(loader.reused.take().map(|d| d.to_string()));
        found
    };
    let Some(chain) = loader.chain(file) else {
        preset.problems = failed(loader);
        return preset;
    };
    let merged = |extra: &BTreeMap<String, Value>| {
        merge(&chain).map(|mut raw| {
            raw.vars.get_or_insert_with(BTreeMap::new).extend(extra.clone());
            raw
        })
    };
    let defaults = match merged(&BTreeMap::new()) {
        Ok(raw) => raw.vars.unwrap_or_default(),
        Err(d) => {
            preset.problems = vec![d.to_string()];
            return preset;
        }
    };
    let mut required: Vec<String> = Vec::new();
    for _ in 0..ROUNDS {
        let samples: BTreeMap<String, Value> = required.iter().map(|n| (n.clone(), sample(n))).collect();
        let mut raw = match merged(&samples) {
            Ok(raw) => raw,
            Err(d) => {
                preset.problems = vec![d.to_string()];
                return preset;
            }
        };
        let actionless = !raw.has_actions();
        if actionless {
            raw.dial = Some(RawAction::Line(STARTER_DIAL.into()));
        }
        let dir = |path: &crate::settings::yaml::Path| dir_of(&chain, path);
        match compile::compile(&mut loader.templates, raw, &dir) {
            Ok(c) => {
                preset.actions = if actionless { Vec::new() } else { c.actions.into_iter().map(|(n, _)| n).collect() };
                preset.options = c.options.into_keys().collect();
                preset.login = c.login.is_some();
                preset.events_admitted = c.events.as_ref().is_some_and(|e| e.enabled());
                preset.events = c.events.is_some();
                preset.problems.clear();
                break;
            }
            Err(errors) => {
                let new: Vec<String> =
                    errors.0.iter().filter_map(|p| p.missing.clone()).filter(|n| !required.contains(n)).collect();
                preset.problems =
                    errors.0.into_iter().map(|p| super::place(&chain, &p.at, p.message).to_string()).collect();
                if new.is_empty() {
                    break;
                }
                for n in new {
                    if !required.contains(&n) {
                        required.push(n);
                    }
                }
            }
        }
    }
    let _ = failed(loader);
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let variable = |name: &str, default: Option<&Value>| {
        let secret = looks_secret(name);
        let shown = default.filter(|_| !secret).map(|d| {
            let mut d = d.clone();
            crate::secrets::redact_json(&mut d);
            d
        });
        Variable {
            name: name.to_string(),
            secret,
            map: name == PHONES || default.is_some_and(Value::is_object),
            about: header.about(name, default.map(text).as_deref()),
            default: shown,
        }
    };
    // The order the header describes them in, then the rest by name.
    let order = |v: &Variable| (header.position(&v.name).unwrap_or((usize::MAX, 0)), v.name.clone());
    preset.required = required.iter().map(|n| variable(n, None)).collect();
    preset.required.sort_by_key(order);
    preset.optional = defaults.iter().map(|(n, d)| variable(n, Some(d))).collect();
    preset.optional.sort_by_key(order);
    preset
}

#[cfg(test)]
#[path = "introspect_tests.rs"]
mod tests;
