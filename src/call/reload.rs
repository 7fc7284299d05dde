//! Reloading the profiles while serving: on SIGHUP, `POST /v1/admin/reload`
//! and a change under the profiles folder (see [`crate::watch`]).
//!
//! Every profile is loaded again, on a blocking thread (loading compiles
//! every template; it must not hold up the request threads), into a new
//! [`Snapshot`] that is swapped in whole. A request keeps the snapshot it
//! started with, so a dial in flight finishes with the version it began
//! with. What outlives a snapshot (rates, in-flight counts, the
//! once-per-click stores, the calls) is in [`crate::state::Runtime`], kept by
//! name, and is not touched.
//!
//! A branch whose file now fails keeps its last good version (see
//! [`crate::profile::Loader::load_dir_keeping`]); a removed file removes its
//! branch. `webdial.yaml` itself is read again only to say which of its
//! settings changed: those take effect at the next start, and the running
//! ones stay. One reload runs at a time, so two triggers at once cannot
//! swap in an older load after a newer one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use super::Gateway;
use crate::metrics::Metrics;
use crate::profile::{Loader, Profiles};
use crate::settings::Settings;
use crate::settings::diagnostic::Diagnostic;
use crate::state::Snapshot;

/// What asked for a load of the profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first load, when the gateway was built.
    StartUp,
    /// SIGHUP.
    Signal,
    /// `POST /v1/admin/reload`.
    Api,
    /// A change under the profiles folder.
    Files,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::StartUp => "start-up",
            Trigger::Signal => "SIGHUP",
            Trigger::Api => "api",
            Trigger::Files => "files",
        }
    }
}

/// The result of one load of the profiles: the reload answer, and what
/// `/healthz` shows of the last one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Every profile loaded and `webdial.yaml` could be read.
    pub ok: bool,
    /// `start-up`, `SIGHUP`, `api` or `files`.
    pub trigger: String,
    /// When it ran (RFC 3339, UTC).
    pub at: String,
    /// Branches served after it (kept ones included).
    pub branches: usize,
    /// Branches that are new.
    pub added: Vec<String>,
    /// Branches whose file (or a file it extends) changed and loaded.
    pub changed: Vec<String>,
    /// Branches whose file is gone: they answer `unknown_branch` now.
    pub removed: Vec<String>,
    /// Branches whose file did not load, with the first problem as
    /// `FILE:LINE:COL: message`.
    pub failed: BTreeMap<String, String>,
    /// Failed branches still served with their last good version.
    pub kept: Vec<String>,
    /// Every problem found, as `FILE:LINE:COL: message`.
    pub problems: Vec<String>,
    /// Settings in `webdial.yaml` that changed since start-up: they apply
    /// only after a restart; the running ones stay.
    pub restart_needed: Vec<String>,
    #[serde(skip)]
    pub when: SystemTime,
}

/// The gateway's reload bookkeeping.
pub(super) struct Reloads {
    /// Held for a whole reload: one at a time.
    one_at_a_time: tokio::sync::Mutex<()>,
    /// The last report; subscribers are woken by each new one.
    last: tokio::sync::watch::Sender<Arc<Report>>,
}

impl Reloads {
    /// The start-up load as the first report.
    pub(super) fn new(snapshot: &Snapshot, metrics: &Metrics) -> Reloads {
        let failed: BTreeMap<String, String> =
            snapshot.profiles.broken_all().map(|(b, why)| (b.to_string(), why.to_string())).collect();
        let report = Report {
            ok: failed.is_empty(),
            trigger: Trigger::StartUp.as_str().to_string(),
            at: String::new(),
            branches: snapshot.profiles.len(),
            added: sorted(snapshot.profiles.iter().map(|p| p.branch.clone())),
            changed: Vec::new(),
            removed: Vec::new(),
            problems: failed.values().cloned().collect(),
            kept: Vec::new(),
            failed,
            restart_needed: Vec::new(),
            when: SystemTime::now(),
        };
        metrics.config_loaded(report.ok, report.when);
        let (last, _) = tokio::sync::watch::channel(Arc::new(stamped(report)));
        Reloads { one_at_a_time: tokio::sync::Mutex::new(()), last }
    }
}

fn stamped(mut report: Report) -> Report {
    report.at = humantime::format_rfc3339_seconds(report.when).to_string();
    report
}

fn sorted(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = names.collect();
    v.sort();
    v
}

/// What a load on the blocking thread found.
struct Loaded {
    /// `None`: nothing to swap in (the profiles folder cannot be read).
    profiles: Option<Profiles>,
    diagnostics: Vec<Diagnostic>,
    restart_needed: Vec<String>,
}

impl Gateway {
    /// Loads every profile again and swaps the result in; see the module
    /// documentation. Never fails: what went wrong is in the report (and
    /// the log), and the branches that cannot be loaded stay as they were.
    pub async fn reload(&self, trigger: Trigger) -> Arc<Report> {
        let _one = self.reloads.one_at_a_time.lock().await;
        let old = self.snapshot();
        let last = old.clone();
        let loaded = match tokio::task::spawn_blocking(move || load_again(&last)).await {
            Ok(l) => l,
            Err(e) => Loaded {
                profiles: None,
                diagnostics: vec![Diagnostic::whole_file(
                    &old.settings.profiles,
                    format!("loading the profiles failed inside the gateway: {e}"),
                )],
                restart_needed: Vec::new(),
            },
        };
        let report = Arc::new(stamped(self.swap_in(&old, loaded, trigger)));
        self.runtime.metrics.config_loaded(report.ok, report.when);
        log(&report);
        self.reloads.last.send_replace(report.clone());
        report
    }

    /// The last load of the profiles (start-up or reload).
    pub fn last_reload(&self) -> Arc<Report> {
        self.reloads.last.borrow().clone()
    }

    /// Each load's report as it happens (for a page that shows them, and
    /// for tests that wait for the watcher's reload instead of sleeping).
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<Arc<Report>> {
        self.reloads.last.subscribe()
    }

    fn swap_in(&self, old: &Snapshot, loaded: Loaded, trigger: Trigger) -> Report {
        let problems: Vec<String> = loaded.diagnostics.iter().map(Diagnostic::to_string).collect();
        let mut report = Report {
            ok: problems.is_empty(),
            trigger: trigger.as_str().to_string(),
            at: String::new(),
            branches: old.profiles.len(),
            added: Vec::new(),
            changed: Vec::new(),
            removed: Vec::new(),
            failed: BTreeMap::new(),
            kept: Vec::new(),
            problems,
            restart_needed: loaded.restart_needed,
            when: SystemTime::now(),
        };
        let Some(new) = loaded.profiles else { return report };
        let before: BTreeSet<&str> = old.profiles.iter().map(|p| p.branch.as_str()).collect();
        let after: BTreeSet<&str> = new.iter().map(|p| p.branch.as_str()).collect();
        report.added = after.difference(&before).map(|b| b.to_string()).collect();
        report.removed = before.difference(&after).map(|b| b.to_string()).collect();
        report.changed = after
            .intersection(&before)
            .filter(|b| !new.is_kept(b))
            .filter(|b| {
                let fingerprint = |p: &Profiles| p.get(b).map(|p| p.fingerprint);
                fingerprint(&new) != fingerprint(&old.profiles)
            })
            .map(|b| b.to_string())
            .collect();
        report.failed = new.broken_all().map(|(b, why)| (b.to_string(), why.to_string())).collect();
        report.kept = report.failed.keys().filter(|b| new.is_kept(b)).cloned().collect();
        report.branches = new.len();
        self.snapshot.store(Arc::new(Snapshot { settings: old.settings.clone(), profiles: new }));
        report
    }
}

/// Reads the profiles (and `webdial.yaml`, to compare) again. Blocking.
fn load_again(old: &Snapshot) -> Loaded {
    let env = |name: &str| std::env::var(name).ok();
    let mut diagnostics = Vec::new();
    let restart_needed = match Settings::load(&old.settings.file, false, &env) {
        Ok(now) => changed_settings(&old.settings, &now),
        Err(problems) => {
            diagnostics.extend(problems);
            Vec::new()
        }
    };
    let dir = &old.settings.profiles;
    if !dir.is_dir() {
        diagnostics.push(Diagnostic::whole_file(
            dir,
            "the profiles folder cannot be read: every branch stays as it was".to_string(),
        ));
        return Loaded { profiles: None, diagnostics, restart_needed };
    }
    // `hooks:` of the running settings: a changed one, like any setting,
    // waits for a restart.
    let (profiles, found) = Loader::new(&env)
        .global_hooks(&old.settings.file, old.settings.hooks.as_ref())
        .load_dir_keeping(dir, &old.profiles);
    diagnostics.extend(found);
    Loaded { profiles: Some(profiles), diagnostics, restart_needed }
}

/// The top-level settings whose written value differs.
fn changed_settings(running: &Settings, now: &Settings) -> Vec<String> {
    let keys: BTreeSet<&String> = running.written.keys().chain(now.written.keys()).collect();
    keys.into_iter().filter(|k| running.written.get(*k) != now.written.get(*k)).cloned().collect()
}

fn log(report: &Report) {
    for problem in &report.problems {
        tracing::error!("{problem}");
    }
    if !report.restart_needed.is_empty() {
        tracing::warn!(
            "webdial.yaml changed ({}): restart webdial to apply; the running settings stay",
            report.restart_needed.join(", ")
        );
    }
    let list = |what: &str, names: &[String]| {
        if names.is_empty() { String::new() } else { format!("; {what}: {}", names.join(", ")) }
    };
    let summary = format!(
        "profiles reloaded ({}): {} branches{}{}{}{}",
        report.trigger,
        report.branches,
        list("added", &report.added),
        list("changed", &report.changed),
        list("removed", &report.removed),
        list("failed, last good version kept", &report.kept),
    );
    if report.ok {
        tracing::info!("{summary}");
    } else {
        tracing::warn!("{summary}; {} problem(s), listed above", report.problems.len());
    }
}
