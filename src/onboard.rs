//! Starting a branch: `webdial presets` (every preset in the profiles
//! folder's `presets/`, with what it needs) and `webdial new BRANCH
//! --preset NAME` (a starter profile). What a preset needs is
//! `profile::introspect`'s; this module finds the folder, prints, and
//! writes the one file, never over an existing one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::profile::introspect::{self, PLACEHOLDER, Preset, Variable};
use crate::profile::{self, starter};
use crate::settings::Settings;

/// The profiles folder of `config` (as `check` finds it), or why not (printed).
fn profiles_dir(config: &Path, explicit: bool) -> Result<PathBuf, ExitCode> {
    let env = |name: &str| std::env::var(name).ok();
    Settings::load(config, explicit, &env).map(|s| s.profiles).map_err(|diagnostics| {
        for d in diagnostics {
            eprintln!("{d}");
        }
        ExitCode::FAILURE
    })
}

/// `webdial presets [--json]`: exit 1 when a preset does not load (it is
/// still listed, with its problems) or there is no preset at all.
pub fn presets(config: &Path, explicit: bool, json: bool) -> ExitCode {
    let dir = match profiles_dir(config, explicit) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let env = |name: &str| std::env::var(name).ok();
    let all = introspect::list(&dir, &env);
    if json {
        match serde_json::to_string_pretty(&all) {
            Ok(text) => print(&format!("{text}\n")),
            Err(e) => eprintln!("{e}"),
        }
    } else if all.is_empty() {
        eprintln!("{}: no presets (*.yaml files) here", dir.join("presets").display());
    } else {
        print(&listing(&all));
    }
    if !all.is_empty() && all.iter().all(Preset::loads) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The presets as text for people: a block per preset, labels aligned.
pub fn listing(all: &[Preset]) -> String {
    let mut out = String::new();
    for p in all {
        let summary = p.summary.as_deref().unwrap_or("(no header comment)");
        out.push_str(&format!("{} — {summary}\n", p.name));
        if !p.loads() {
            out.push_str("    does not load:\n");
            for problem in &p.problems {
                out.push_str(&format!("      {problem}\n"));
            }
            if !p.required.is_empty() {
                let names: Vec<&str> = p.required.iter().map(|v| v.name.as_str()).collect();
                out.push_str(&format!("    (tried with sample values for {})\n", names.join(", ")));
            }
            out.push('\n');
            continue;
        }
        let mut line = |label: &str, value: String| out.push_str(&format!("    {label:<9} {value}\n"));
        let needs = p.required.iter().map(required).collect::<Vec<_>>();
        line("needs", if needs.is_empty() { "nothing".into() } else { needs.join(", ") });
        if !p.optional.is_empty() {
            line("optional", p.optional.iter().map(optional).collect::<Vec<_>>().join(", "));
        }
        line("actions", if p.actions.is_empty() { "none (events only)".into() } else { p.actions.join(", ") });
        if !p.options.is_empty() {
            line("options", p.options.join(", "));
        }
        let mut has = Vec::new();
        if p.login {
            has.push("login steps".to_string());
        }
        if p.events {
            has.push(match p.events_admitted {
                true => "events".to_string(),
                false => "events (the branch says who may send)".to_string(),
            });
        }
        line("has", if has.is_empty() { "-".into() } else { has.join(", ") });
        out.push('\n');
    }
    let broken = all.iter().filter(|p| !p.loads()).count();
    out.push_str(&format!("{} preset(s)", all.len()));
    if broken > 0 {
        out.push_str(&format!(", {broken} of which do(es) not load"));
    }
    out.push_str(". Start a branch on one: webdial new BRANCH --preset NAME\n");
    out
}

fn required(v: &Variable) -> String {
    match (v.secret, v.map) {
        (_, true) => format!("{} (map: extension → host)", v.name),
        (true, false) => format!("{} (secret)", v.name),
        (false, false) => v.name.clone(),
    }
}

fn optional(v: &Variable) -> String {
    match &v.default {
        Some(default) => format!("{}={default}", v.name),
        None => format!("{} (secret)", v.name),
    }
}

/// `webdial new BRANCH --preset NAME [--dir DIR]`.
pub fn new_branch(config: &Path, explicit: bool, branch: &str, preset: &str, dir: Option<&Path>) -> ExitCode {
    match write_starter(config, explicit, branch, preset, dir) {
        Ok(message) => {
            print(&message);
            ExitCode::SUCCESS
        }
        Err(Some(message)) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
        Err(None) => ExitCode::FAILURE,
    }
}

/// Writes the starter; `Err(None)` when the problem was printed already.
fn write_starter(
    config: &Path,
    explicit: bool,
    branch: &str,
    preset: &str,
    dir: Option<&Path>,
) -> Result<String, Option<String>> {
    if branch.ends_with(".yaml") || branch.ends_with(".yml") {
        return Err(Some(format!("give the branch name without .yaml: webdial new {}", stem(branch))));
    }
    if !profile::valid_branch_name(branch) {
        return Err(Some(format!("{branch:?} is not a usable branch name: use letters, digits, - _ .")));
    }
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => profiles_dir(config, explicit).map_err(|_| None)?,
    };
    let name = stem(preset.strip_prefix("presets/").unwrap_or(preset));
    let known = introspect::names(&dir);
    let Some((name, file)) = known.iter().find(|(n, _)| n == name) else {
        let there = dir.join("presets");
        return Err(Some(match known.is_empty() {
            true => format!("unknown preset {preset:?}: {} has no presets", there.display()),
            false => format!(
                "unknown preset {preset:?}; the presets in {}: {}",
                there.display(),
                known.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }));
    };
    let env = |name: &str| std::env::var(name).ok();
    let described = introspect::describe(&mut profile::Loader::new(&env), name, file);
    if !described.loads() {
        let problems = described.problems.join("\n");
        return Err(Some(format!("{problems}\npresets/{name}.yaml does not load: nothing written")));
    }
    let target = dir.join(format!("{branch}.yaml"));
    let other = dir.join(format!("{branch}.yml"));
    if other.exists() {
        return Err(Some(format!("{} exists: branch {branch:?} is already there", other.display())));
    }
    let text = starter::starter(&described, branch);
    let written = std::fs::OpenOptions::new().write(true).create_new(true).open(&target).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Some(format!("{} exists: not overwritten (choose another branch name)", target.display())));
        }
        Err(e) => return Err(Some(format!("{}: cannot write: {e}", target.display()))),
    }
    Ok(next_steps(&described, branch, &target))
}

/// What `new` tells the admin to do next.
fn next_steps(preset: &Preset, branch: &str, target: &Path) -> String {
    let mut out = format!("wrote {}\n", target.display());
    let fill: Vec<&str> = preset.required.iter().filter(|v| !v.secret || v.map).map(|v| v.name.as_str()).collect();
    if !fill.is_empty() {
        out.push_str(&format!("  set {} in it (each is {PLACEHOLDER:?} now)\n", fill.join(", ")));
    }
    for name in starter::env_names(preset, branch) {
        out.push_str(&format!("  set {name} in the environment webdial runs in\n"));
    }
    out.push_str("  then run: webdial check\n");
    out
}

/// Writes to standard output; a reader that went away (`| head`) ends
/// the output, not the process.
fn print(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// `NAME` of `NAME.yaml` / `NAME.yml` / `NAME`.
fn stem(name: &str) -> &str {
    name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml")).unwrap_or(name)
}
