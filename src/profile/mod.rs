//! Branch profiles: `profiles/NAME.yaml`, one per branch, loaded and compiled
//! into immutable values. Runtime state (in-flight counts, sessions) is kept
//! elsewhere, by branch name, so a new set of profiles can replace this one.
//!
//! A profile that loads can render: every template, expression and URL is
//! compiled and tried here, and every problem in every file is collected as
//! a [`Diagnostic`] at its place (`FILE:LINE:COL`). Files in sub-folders are
//! presets: never branches themselves, only `extends`-ed (relative path;
//! maps merge key by key, the extending file wins). `${ENV}` values are read
//! here and registered as secrets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::events::inbound::Intake;
use crate::number::NumberRules;
use crate::pbx::{Tls, rules};
use crate::settings::Section;
use crate::settings::diagnostic::Diagnostic;
use crate::settings::yaml;
use crate::template::{self, RequestTemplate, Templates};

mod compile;
mod header;
mod lines;
pub mod hooks;
pub mod introspect;
mod login;
mod events;
mod raw;
pub mod starter;

pub use hooks::Hook;
pub use login::{COOKIE, DEFAULT_RENEW_ON, Login, MAX_TTL, Step, Ttl};
use raw::RawProfile;

/// Default time to wait for a PBX's answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest timeout a profile may set (Click2Call's own maximum ring time).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// A loaded, compiled branch profile.
#[derive(Debug)]
pub struct Profile {
    pub branch: String,
    pub name: Option<String>,
    pub file: PathBuf,
    /// A few actions at most: a list is smaller than a map.
    pub actions: Vec<(String, Action)>,
    pub number: NumberRules,
    /// Requests to this branch's PBX at once; `None` = unlimited.
    pub max_in_flight: Option<usize>,
    pub tls: Tls,
    /// The options callers may send, by name; any other name is refused.
    pub options: BTreeMap<String, OptionSpec>,
    /// What to send when this branch's calls have events (shared with
    /// deliveries still queued when a reload replaces the profile).
    pub hooks: Vec<Arc<Hook>>,
    /// A hash of what it was built from (its file and every file it
    /// extends), so a reload can tell a changed branch from one read again.
    pub fingerprint: u64,
    /// Requests that get the branch a session before its actions, if it needs one.
    pub login: Option<Login>,
    /// How its PBX's call notifications are authenticated and read, if it sends any.
    pub events: Option<Intake>,
}

/// The longest option value accepted, whatever its pattern allows: a value
/// ends up in a PBX request and in the duplicate key.
pub const MAX_OPTION: usize = 256;

/// One declared option (`options: {NAME: {pattern, default}}`).
#[derive(Debug, Clone)]
pub struct OptionSpec {
    /// The pattern as written, for messages.
    pub pattern: String,
    /// The pattern anchored at both ends: a value must match it whole, so
    /// `\d{12}` does not accept `x202611231830x`.
    full: regex::Regex,
    /// What templates see when the caller sends no value.
    pub default: Option<String>,
}

impl OptionSpec {
    pub fn new(pattern: &str, default: Option<String>) -> Result<Self, regex::Error> {
        // Alone first, so an error quotes the pattern as the admin wrote it.
        regex::Regex::new(pattern)?;
        let full = regex::Regex::new(&format!("^(?:{pattern})$"))?;
        Ok(OptionSpec { pattern: pattern.to_string(), full, default })
    }

    /// Whether `value` is one this option may take.
    pub fn accepts(&self, value: &str) -> bool {
        value.chars().count() <= MAX_OPTION && self.full.is_match(value)
    }
}

/// One action of a profile, ready to render.
#[derive(Debug)]
pub struct Action {
    pub template: RequestTemplate,
    pub response: rules::Rules,
    pub timeout: Duration,
    /// The request values its templates read (`extension`, `number`,
    /// `call_id`…): what a caller must send for this action.
    pub uses: BTreeSet<&'static str>,
}

impl Profile {
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }

    /// The names of its actions, in file order.
    pub fn action_names(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().map(|(n, _)| n.as_str())
    }

    /// The names of every template its actions render and read answers with.
    fn template_names(&self) -> impl Iterator<Item = &str> {
        let actions = self
            .actions
            .iter()
            .flat_map(|(_, a)| a.template.template_names().into_iter().chain(a.response.template_names()));
        actions.chain(self.hooks.iter().flat_map(|h| h.template.template_names()))
    }
}

/// All branches, by branch id, and the templates they share.
#[derive(Debug, Clone)]
pub struct Profiles {
    map: HashMap<String, Arc<Profile>>,
    /// Branches whose file exists but did not load, with their first
    /// problem; after a reload one may also be in `map`, kept from before.
    broken: HashMap<String, String>,
    templates: Arc<Templates>,
    /// `hooks:` in `webdial.yaml`: every branch's.
    global_hooks: Vec<Arc<Hook>>,
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles {
            map: HashMap::new(),
            broken: HashMap::new(),
            templates: Arc::new(template::new_env()),
            global_hooks: Vec::new(),
        }
    }
}

impl Profiles {
    /// The hooks every branch's events go to (from `webdial.yaml`).
    pub fn global_hooks(&self) -> &[Arc<Hook>] {
        &self.global_hooks
    }
    /// The template environment every branch's actions render with.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }
    pub fn get(&self, branch: &str) -> Option<&Arc<Profile>> {
        self.map.get(branch)
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Profile>> {
        self.map.values()
    }
    /// Whether `branch` is served with the version an earlier load kept,
    /// because its file now has errors.
    pub fn is_kept(&self, branch: &str) -> bool {
        self.broken.contains_key(branch) && self.map.contains_key(branch)
    }
    /// Why `branch` did not load, when its file exists but has errors.
    pub fn broken(&self, branch: &str) -> Option<&str> {
        self.broken.get(branch).map(String::as_str)
    }
    /// Every branch whose file did not load, with its first problem, by name.
    pub fn broken_all(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut all: Vec<(&str, &str)> = self.broken.iter().map(|(b, w)| (b.as_str(), w.as_str())).collect();
        all.sort();
        all.into_iter()
    }
    pub fn insert(&mut self, profile: Profile) {
        self.map.insert(profile.branch.clone(), Arc::new(profile));
    }
}

// ---- loading ----------------------------------------------------------------

/// One parsed file of an `extends` chain.
#[derive(Debug, Clone)]
struct Parsed {
    path: PathBuf,
    source: String,
    value: yaml::Value,
    extends: Option<String>,
}

/// Loads profiles, keeping parsed presets so a preset shared by many
/// branches is read and checked once.
pub struct Loader<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    templates: Templates,
    /// Each file read, or its first problem: a preset that fails is
    /// reported once, and still named as the reason for every branch on it.
    cache: HashMap<PathBuf, Result<Arc<Parsed>, Option<Diagnostic>>>,
    diagnostics: Vec<Diagnostic>,
    global_hooks: Vec<Arc<Hook>>,
    /// The problem of a failed file met again in the cache, for the branch
    /// being loaded.
    reused: Option<Diagnostic>,
}

/// Loads every branch in `dir` with the process environment.
pub fn load_dir(dir: &Path) -> (Profiles, Vec<Diagnostic>) {
    let env = |name: &str| std::env::var(name).ok();
    Loader::new(&env).load_dir(dir)
}

impl<'a> Loader<'a> {
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Loader {
            env,
            templates: template::new_env(),
            cache: HashMap::new(),
            diagnostics: Vec::new(),
            global_hooks: Vec::new(),
            reused: None,
        }
    }

    /// Compiles `hooks:` from `webdial.yaml` (`file`, already read into
    /// `section`) into the environment the branches share; its problems are
    /// reported in that file. A hook with a problem is left out, the others
    /// are kept.
    pub fn global_hooks(mut self, file: &Path, section: Option<&Section>) -> Self {
        let Some(section) = section else { return self };
        /// Only `hooks:`, typed, for its errors' places; the rest of the file is the settings'.
        #[derive(serde::Deserialize)]
        struct Doc {
            #[allow(dead_code)]
            hooks: Option<Vec<raw::RawHook>>,
        }
        if let Err(e) = yaml::parse::<Doc>(&section.source) {
            self.diagnostics.push(Diagnostic::new(file, e.line, e.column, e.message));
            return self;
        }
        let raw: Vec<raw::RawHook> = match yaml::from_value(section.value.clone()) {
            Ok(r) => r,
            Err(m) => {
                self.diagnostics.push(Diagnostic::whole_file(file, format!("hooks: {m}")));
                return self;
            }
        };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut errors = compile::CompileErrors::default();
        let compiled = hooks::compile(
            &mut self.templates,
            raw,
            &BTreeMap::new(),
            &NumberRules::default(),
            &|_| dir.clone(),
            &mut errors,
        );
        let holder = [Arc::new(Parsed {
            path: file.to_path_buf(),
            source: section.source.to_string(),
            value: yaml::Value::Null,
            extends: None,
        })];
        for problem in errors.0 {
            self.diagnostics.push(place(&holder, &problem.at, problem.message));
        }
        self.global_hooks = compiled.into_iter().map(Arc::new).collect();
        self
    }

    /// Every `*.yaml`/`*.yml` directly in `dir` is a branch named by its stem.
    pub fn load_dir(self, dir: &Path) -> (Profiles, Vec<Diagnostic>) {
        self.load_dir_keeping(dir, &Profiles::default())
    }

    /// As [`Loader::load_dir`], for a reload: a branch whose file now fails
    /// keeps its version from `last` (still listed as broken, with its
    /// problem), so one bad edit does not take a working branch down. A
    /// branch whose file is gone is gone.
    pub fn load_dir_keeping(mut self, dir: &Path, last: &Profiles) -> (Profiles, Vec<Diagnostic>) {
        let mut profiles = Profiles::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                return (profiles, vec![Diagnostic::whole_file(dir, format!("cannot read the profiles folder: {e}"))]);
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        files.sort();
        for file in files {
            let before = self.diagnostics.len();
            self.reused = None;
            let loaded = self.load_branch(&file);
            let first = self.diagnostics.get(before).cloned().or_else(|| self.reused.take());
            if let (None, Some(first)) = (&loaded, first) {
                let branch = file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                profiles.broken.insert(branch, first.to_string());
            }
            if let Some(p) = loaded {
                if profiles.get(&p.branch).is_some() {
                    self.diagnostics.push(Diagnostic::whole_file(
                        &file,
                        format!("branch {:?} is defined twice (.yaml and .yml)", p.branch),
                    ));
                    continue;
                }
                profiles.insert(p);
            }
        }
        if profiles.is_empty() && self.diagnostics.is_empty() {
            self.diagnostics.push(Diagnostic::whole_file(dir, "no profiles: add one NAME.yaml per branch"));
        }
        self.diagnostics.dedup();
        let broken: Vec<String> = profiles.broken.keys().cloned().collect();
        for branch in broken {
            let Some(kept) = last.get(&branch).filter(|_| profiles.get(&branch).is_none()) else { continue };
            let carried: Result<(), String> =
                kept.template_names().try_for_each(|name| self.templates.carry(&last.templates, name));
            match carried {
                Ok(()) => {
                    profiles.map.insert(branch, kept.clone());
                }
                Err(e) => self
                    .diagnostics
                    .push(Diagnostic::whole_file(&kept.file, format!("the last good version cannot be kept: {e}"))),
            }
        }
        profiles.templates = Arc::new(self.templates);
        profiles.global_hooks = self.global_hooks;
        (profiles, self.diagnostics)
    }

    /// Loads one branch file; its problems go to the diagnostics.
    pub fn load_branch(&mut self, file: &Path) -> Option<Profile> {
        let branch = file.file_stem()?.to_string_lossy().to_string();
        if !valid_branch_name(&branch) {
            self.diagnostics.push(Diagnostic::whole_file(
                file,
                format!("{branch:?} is not a usable branch name: use letters, digits, - _ ."),
            ));
            return None;
        }
        let chain = self.chain(file)?;
        let raw = match merge(&chain) {
            Ok(r) => r,
            Err(d) => {
                self.diagnostics.push(d);
                return None;
            }
        };
        let dir_of = |path: &yaml::Path| dir_of(&chain, path);
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            chain.iter().for_each(|p| (&p.path, &p.source).hash(&mut h));
            h.finish()
        };
        match compile::compile(&mut self.templates, raw, &dir_of) {
            Ok(compiled) => Some(Profile {
                fingerprint,
                branch,
                name: compiled.name,
                file: file.to_path_buf(),
                actions: compiled.actions,
                number: compiled.number,
                max_in_flight: compiled.max_in_flight,
                tls: compiled.tls,
                options: compiled.options,
                hooks: compiled.hooks.into_iter().map(Arc::new).collect(),
                login: compiled.login,
                events: compiled.events,
            }),
            Err(errors) => {
                // Once per variable: a preset's every action may use it.
                let mut unset = BTreeSet::new();
                for problem in errors.0 {
                    let d = place(&chain, &problem.at, problem.message);
                    // A variable a preset's template needs is the branch's to
                    // set: say so at the branch file, naming where it is used.
                    let d = match (problem.missing, d.file == chain[0].path) {
                        (Some(var), false) if !unset.insert(var.clone()) => continue,
                        (Some(var), false) => {
                            let (line, col) =
                                yaml::locate(&chain[0].source, &yaml::Path::parse("vars")).unwrap_or((1, 1));
                            Diagnostic::new(
                                &chain[0].path,
                                line,
                                col,
                                format!(
                                    "`{var}` is not set: {}:{}:{} uses it; add `{var}:` under `vars:`",
                                    d.file.display(),
                                    d.line,
                                    d.column
                                ),
                            )
                        }
                        _ => d,
                    };
                    self.diagnostics.push(d);
                }
                None
            }
        }
    }

    /// The file and everything it extends, the file first.
    fn chain(&mut self, file: &Path) -> Option<Vec<Arc<Parsed>>> {
        let mut chain: Vec<Arc<Parsed>> = Vec::new();
        let mut next = file.to_path_buf();
        loop {
            let parsed = self.parse(&next)?;
            let extends = parsed.extends.clone();
            chain.push(parsed);
            let Some(rel) = extends else {
                return Some(chain);
            };
            let last = &chain[chain.len() - 1];
            let target = last.path.parent().unwrap_or(Path::new(".")).join(&rel);
            let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            if chain.iter().any(|p| canon(&p.path) == canon(&target)) {
                let (line, col) = yaml::locate(&last.source, &yaml::Path::parse("extends")).unwrap_or((1, 1));
                self.diagnostics.push(Diagnostic::new(&last.path, line, col, format!("extends {rel:?} makes a loop")));
                return None;
            }
            if !target.is_file() {
                let (line, col) = yaml::locate(&last.source, &yaml::Path::parse("extends")).unwrap_or((1, 1));
                self.diagnostics.push(Diagnostic::new(
                    &last.path,
                    line,
                    col,
                    format!("extends {rel:?}: no such file ({})", target.display()),
                ));
                return None;
            }
            next = target;
        }
    }

    /// Reads, parses (typed, for located errors) and expands `${ENV}` in one file.
    fn parse(&mut self, path: &Path) -> Option<Arc<Parsed>> {
        if let Some(cached) = self.cache.get(path) {
            return match cached {
                Ok(parsed) => Some(parsed.clone()),
                Err(first) => {
                    self.reused = first.clone();
                    None
                }
            };
        }
        let before = self.diagnostics.len();
        let result = self.parse_uncached(path);
        let cached = result.clone().ok_or_else(|| self.diagnostics.get(before).cloned());
        self.cache.insert(path.to_path_buf(), cached);
        result
    }

    fn parse_uncached(&mut self, path: &Path) -> Option<Arc<Parsed>> {
        let source = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                self.diagnostics.push(Diagnostic::whole_file(path, format!("cannot read: {e}")));
                return None;
            }
        };
        let (raw, mut value) = match yaml::parse::<RawProfile>(&source) {
            Ok(v) => v,
            Err(e) => {
                self.diagnostics.push(Diagnostic::new(path, e.line, e.column, e.message));
                return None;
            }
        };
        let errors = yaml::expand_env(&mut value, self.env, &mut |s| crate::secrets::register(s));
        if !errors.is_empty() {
            for (at, message) in errors {
                let (line, col) = yaml::locate(&source, &at).unwrap_or((1, 1));
                self.diagnostics.push(Diagnostic::new(path, line, col, message));
            }
            return None;
        }
        Some(Arc::new(Parsed { path: path.to_path_buf(), source, value, extends: raw.extends }))
    }
}

/// Whether `name` may name a branch: it is a file stem, a URL segment
/// (`/v1/events/BRANCH`) and a metrics label, so letters, digits, `-`, `_`
/// and `.` only.
pub fn valid_branch_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A chain merged from the base to the first file (the extending file wins).
fn merge(chain: &[Arc<Parsed>]) -> Result<RawProfile, Diagnostic> {
    let mut merged = yaml::Value::Null;
    for p in chain.iter().rev() {
        let mut v = p.value.clone();
        if let yaml::Value::Mapping(m) = &mut v {
            m.remove("extends");
        }
        merged = yaml::merge(merged, v);
    }
    yaml::from_value(merged).map_err(|msg| Diagnostic::whole_file(&chain[0].path, format!("after extends: {msg}")))
}

/// The folder a relative path at `path` is relative to: that of the file of
/// the chain that wrote it.
fn dir_of(chain: &[Arc<Parsed>], path: &yaml::Path) -> PathBuf {
    let holder = chain.iter().find(|p| yaml::locate(&p.source, path).is_some()).unwrap_or(&chain[0]);
    holder.path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Places a problem found after merging in the first file of the chain that
/// holds its path (or the closest enclosing path).
fn place(chain: &[Arc<Parsed>], path: &yaml::Path, message: String) -> Diagnostic {
    let mut path = path.clone();
    loop {
        for p in chain {
            if let Some((line, col)) = yaml::locate(&p.source, &path) {
                return Diagnostic::new(&p.path, line, col, message);
            }
        }
        if path.0.pop().is_none() {
            return Diagnostic::whole_file(&chain[0].path, message);
        }
    }
}
