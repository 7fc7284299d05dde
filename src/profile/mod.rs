//! Branch profiles: `profiles/NAME.yaml`, one per branch, loaded and compiled
//! once at start-up.
//!
//! A profile that loads can render: every template, expression and URL is
//! compiled and tried here, and every problem in every file is collected as
//! a [`Diagnostic`] at its place (`FILE:LINE:COL`). Files in sub-folders are
//! presets: never branches themselves, only `extends`-ed (relative path;
//! maps merge key by key, the extending file wins). `${ENV}` values are read
//! here and registered as secrets.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::diagnostic::Diagnostic;
use crate::iqx;
use crate::number::{self, NumberFormat, NumberRules};
use crate::render::{self, Auth, HttpSpec, RequestTemplate, Templates};
use crate::response;
use crate::yaml;

mod raw;

pub use raw::RawDuration;
use raw::{RawAction, RawAuth, RawNumber, RawProfile, RawTls};

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
    /// A few actions at most: a list is smaller than a map (a map node of
    /// eleven inline actions cost 3 KB per branch).
    pub actions: Vec<(String, Action)>,
    pub number: NumberRules,
    /// Dials to this branch's PBX at once; `None` = unlimited.
    pub in_flight: Option<Arc<tokio::sync::Semaphore>>,
    pub tls: Tls,
}

/// How a branch's PBX certificate is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Tls {
    /// Against the system's roots.
    #[default]
    Verify,
    /// Not at all (`tls: {verify: false}`): for PBXs with self-signed certificates.
    NoVerify,
    /// Against this CA only (`tls: {ca: file}`), PEM as read at load.
    Ca { path: PathBuf, pem: Vec<u8> },
}

/// One action of a profile, ready to render.
#[derive(Debug)]
pub struct Action {
    pub template: RequestTemplate,
    pub response: response::Rules,
    pub timeout: Duration,
}

impl Profile {
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

/// All branches, by branch id, and the templates they share.
#[derive(Debug, Clone)]
pub struct Profiles {
    map: HashMap<String, Arc<Profile>>,
    /// Branches whose file exists but did not load, with their first problem.
    broken: HashMap<String, String>,
    templates: Arc<Templates>,
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles { map: HashMap::new(), broken: HashMap::new(), templates: Arc::new(render::new_env()) }
    }
}

impl Profiles {
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
    pub fn branches(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
    /// Why `branch` did not load, when its file exists but has errors.
    pub fn broken(&self, branch: &str) -> Option<&str> {
        self.broken.get(branch).map(String::as_str)
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
    cache: HashMap<PathBuf, Result<Arc<Parsed>, ()>>,
    diagnostics: Vec<Diagnostic>,
}

/// Loads every branch in `dir` with the process environment.
pub fn load_dir(dir: &Path) -> (Profiles, Vec<Diagnostic>) {
    let env = |name: &str| std::env::var(name).ok();
    Loader::new(&env).load_dir(dir)
}

impl<'a> Loader<'a> {
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Loader { env, templates: render::new_env(), cache: HashMap::new(), diagnostics: Vec::new() }
    }

    /// Every `*.yaml`/`*.yml` directly in `dir` is a branch named by its stem.
    pub fn load_dir(mut self, dir: &Path) -> (Profiles, Vec<Diagnostic>) {
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
            let loaded = self.load_branch(&file);
            if let (None, Some(first)) = (&loaded, self.diagnostics.get(before)) {
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
        profiles.templates = Arc::new(self.templates);
        (profiles, self.diagnostics)
    }

    /// Loads one branch file; its problems go to the diagnostics.
    pub fn load_branch(&mut self, file: &Path) -> Option<Profile> {
        let branch = file.file_stem()?.to_string_lossy().to_string();
        if branch.is_empty() || !branch.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            self.diagnostics.push(Diagnostic::whole_file(
                file,
                format!("{branch:?} is not a usable branch name: use letters, digits, - _ ."),
            ));
            return None;
        }
        let chain = self.chain(file)?;
        // Merge from the base to the branch file: the extending file wins.
        let mut merged = yaml::Value::Null;
        for p in chain.iter().rev() {
            let mut v = p.value.clone();
            if let yaml::Value::Mapping(m) = &mut v {
                m.remove("extends");
            }
            merged = yaml::merge(merged, v);
        }
        let raw: RawProfile = match yaml::from_value(merged) {
            Ok(r) => r,
            Err(msg) => {
                self.diagnostics.push(Diagnostic::whole_file(file, format!("after extends: {msg}")));
                return None;
            }
        };
        // A relative path is relative to the file that wrote it.
        let dir_of = |path: &yaml::Path| {
            let holder = chain.iter().find(|p| yaml::locate(&p.source, path).is_some()).unwrap_or(&chain[0]);
            holder.path.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        match compile(&mut self.templates, raw, &dir_of) {
            Ok(compiled) => Some(Profile {
                branch,
                name: compiled.name,
                file: file.to_path_buf(),
                actions: compiled.actions,
                number: compiled.number,
                in_flight: compiled.max_in_flight.map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
                tls: compiled.tls,
            }),
            Err(errors) => {
                for (path, message) in errors {
                    let d = place(&chain, &path, message);
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
            return cached.clone().ok();
        }
        let result = self.parse_uncached(path);
        self.cache.insert(path.to_path_buf(), result.clone().ok_or(()));
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

type CompileErrors = Vec<(yaml::Path, String)>;

/// The parts of a profile `compile` produces.
struct Compiled {
    name: Option<String>,
    actions: Vec<(String, Action)>,
    number: NumberRules,
    max_in_flight: Option<usize>,
    tls: Tls,
}

/// Turns a merged raw profile into actions; errors name their profile field.
fn compile(
    templates: &mut Templates,
    raw: RawProfile,
    dir_of: &dyn Fn(&yaml::Path) -> PathBuf,
) -> Result<Compiled, CompileErrors> {
    let mut errors: CompileErrors = Vec::new();
    let number = compile_number(raw.number.unwrap_or_default(), &mut errors);
    let tls = compile_tls(raw.tls.unwrap_or_default(), dir_of, &mut errors);
    if raw.max_in_flight == Some(0) {
        errors.push((yaml::Path::parse("max_in_flight"), "max_in_flight must be at least 1".into()));
    }
    let timeout = match raw.timeout.as_ref().map(RawDuration::parse).transpose() {
        Ok(t) => t.unwrap_or(DEFAULT_TIMEOUT),
        Err(e) => {
            errors.push((yaml::Path::parse("timeout"), e));
            DEFAULT_TIMEOUT
        }
    };
    check_timeout(timeout, "timeout", &mut errors);
    let vars = raw.vars.unwrap_or_default();
    let mut actions = Vec::new();
    match raw.dial {
        None => errors.push((yaml::Path::root(), "no `dial`: a branch profile needs a dial line or request".into())),
        Some(action) => {
            if let Some(a) = compile_action(templates, "dial", action, &vars, timeout, &number, &mut errors) {
                actions.push(("dial".to_string(), a));
            }
        }
    }
    if errors.is_empty() {
        Ok(Compiled { name: raw.name, actions, number, max_in_flight: raw.max_in_flight, tls })
    } else {
        Err(errors)
    }
}

fn check_timeout(t: Duration, field: &str, errors: &mut CompileErrors) {
    if t.is_zero() || t > MAX_TIMEOUT {
        errors.push((yaml::Path::parse(field), format!("timeout must be between 1ms and {}s", MAX_TIMEOUT.as_secs())));
    }
}

fn compile_action(
    templates: &mut Templates,
    name: &str,
    raw: RawAction,
    vars: &BTreeMap<String, serde_json::Value>,
    timeout: Duration,
    number_rules: &NumberRules,
    errors: &mut CompileErrors,
) -> Option<Action> {
    match raw {
        RawAction::Line(line) => match iqx::parse(&line) {
            Ok(parsed) => {
                Some(Action { template: RequestTemplate::iqx(parsed), response: response::Rules::default(), timeout })
            }
            Err(e) => {
                errors.push((yaml::Path::parse(name), format!("{e} (at character {} of the line)", e.offset() + 1)));
                None
            }
        },
        RawAction::Full(http) => {
            let http = *http;
            let field = |f: &str| yaml::Path::parse(&format!("{name}.{f}"));
            let before = errors.len();
            let method = match http.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
                None => None,
                Some("GET") => Some(iqx::Method::Get),
                Some("POST") => Some(iqx::Method::Post),
                Some("PUT") => Some(iqx::Method::Put),
                Some(other) => {
                    errors.push((field("method"), format!("method {other:?} is not supported: use GET, POST or PUT")));
                    None
                }
            };
            let Some(url) = http.url else {
                errors.push((yaml::Path::parse(name), "no `url`".into()));
                return None;
            };
            let timeout = match http.timeout.as_ref().map(RawDuration::parse).transpose() {
                Ok(t) => t.unwrap_or(timeout),
                Err(e) => {
                    errors.push((field("timeout"), e));
                    timeout
                }
            };
            check_timeout(timeout, &format!("{name}.timeout"), errors);
            let raw_rules = http.response.unwrap_or_default();
            let rules = response::Rules {
                format: raw_rules.format.unwrap_or_default(),
                ok: raw_rules.ok,
                call_id: raw_rules.call_id,
                message: raw_rules.message,
            };
            for (f, msg) in rules.check() {
                errors.push((field(&format!("response.{f}")), msg));
            }
            let auth = match http.auth {
                None => None,
                Some(RawAuth { basic: Some(up), bearer: None, digest: None }) => {
                    Some(Auth::Basic { user: up.user, password: up.password })
                }
                Some(RawAuth { basic: None, bearer: Some(t), digest: None }) => Some(Auth::Bearer(t)),
                Some(RawAuth { basic: None, bearer: None, digest: Some(up) }) => {
                    Some(Auth::Digest { user: up.user, password: up.password })
                }
                Some(_) => {
                    errors.push((field("auth"), "give exactly one of basic, bearer, digest".into()));
                    None
                }
            };
            let spec = HttpSpec {
                method,
                url,
                form: http.form.unwrap_or_default().0,
                json: http.json,
                headers: http.headers.unwrap_or_default().0,
                auth,
            };
            if errors.len() > before {
                return None;
            }
            match RequestTemplate::compile(templates, name, spec, vars, number_rules) {
                Ok(template) => Some(Action { template, response: rules, timeout }),
                Err(es) => {
                    for e in es {
                        errors.push((yaml::Path::parse(&e.field.replace('#', ".")), e.message));
                    }
                    None
                }
            }
        }
    }
}

fn compile_number(raw: RawNumber, errors: &mut CompileErrors) -> NumberRules {
    let at = |f: &str| yaml::Path::parse("number").key(f);
    let country =
        raw.country.as_deref().and_then(|c| number::parse_country(c).map_err(|m| errors.push((at("country"), m))).ok());
    let mut regex = |field: &str, i: Option<usize>, src: &str| {
        let path = match i {
            Some(i) => at(field).index(i),
            None => at(field),
        };
        regex::Regex::new(src).map_err(|e| errors.push((path, format!("not a valid regex: {e}")))).ok()
    };
    let internal = raw.internal.as_deref().and_then(|r| regex("internal", None, r));
    let allow: Vec<_> =
        raw.allow.unwrap_or_default().iter().enumerate().filter_map(|(i, r)| regex("allow", Some(i), r)).collect();
    let deny: Vec<_> =
        raw.deny.unwrap_or_default().iter().enumerate().filter_map(|(i, r)| regex("deny", Some(i), r)).collect();
    let format = raw.format.unwrap_or_default();
    if raw.country.is_none() && (format != NumberFormat::Digits || !allow.is_empty() || !deny.is_empty()) {
        errors.push((
            yaml::Path::parse("number"),
            "`format` and `allow`/`deny` need `country` (e.g. GB) to read numbers written without +".into(),
        ));
    }
    let outside_line = raw.outside_line.map(|s| s.0).filter(|s| !s.is_empty());
    if let Some(o) = &outside_line {
        if !o.chars().all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | ',')) {
            errors.push((at("outside_line"), format!("outside_line {o:?} may hold only digits, * # and ,")));
        }
    }
    NumberRules { country, format, outside_line, internal, allow, deny }
}

fn compile_tls(raw: RawTls, dir_of: &dyn Fn(&yaml::Path) -> PathBuf, errors: &mut CompileErrors) -> Tls {
    match (raw.verify, raw.ca) {
        (Some(false), Some(_)) => {
            errors
                .push((yaml::Path::parse("tls"), "`verify: false` and `ca` contradict each other: choose one".into()));
            Tls::Verify
        }
        (Some(false), None) => Tls::NoVerify,
        (_, Some(ca)) => {
            let at = yaml::Path::parse("tls.ca");
            let path = dir_of(&at).join(&ca);
            match std::fs::read(&path) {
                Ok(pem) if reqwest::Certificate::from_pem_bundle(&pem).is_ok_and(|c| !c.is_empty()) => {
                    Tls::Ca { path, pem }
                }
                Ok(_) => {
                    errors.push((at, format!("{} holds no PEM certificate", path.display())));
                    Tls::Verify
                }
                Err(e) => {
                    errors.push((at, format!("cannot read {}: {e}", path.display())));
                    Tls::Verify
                }
            }
        }
        _ => Tls::Verify,
    }
}
