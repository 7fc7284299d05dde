//! What `GET /metrics` shows: counters, gauges and a histogram in the
//! Prometheus (OpenMetrics) text format, one registry per gateway.
//!
//! Every label value is bounded. Branch and action names come from the
//! profiles; a request for a branch or action that no profile has is counted
//! under [`UNKNOWN`], so a caller cannot create one series per made-up name.
//! Statuses, event types and hook results are `&'static str`: the set of
//! them is fixed by the code.
//!
//! Recording is a read lock, a hash lookup and an atomic add (a write lock
//! only the first time a label set is seen): cheap next to a PBX request.
//! The registry is per gateway, not global, so two gateways in one process
//! (the tests) count apart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::outcome::ActionResult;
use crate::profile::Profiles;

/// The label value for a branch or action no profile has.
pub const UNKNOWN: &str = "(unknown)";

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// PBX answer times: 5 ms to 5 min, the longest timeout a profile may set.
const PBX_BUCKETS: [f64; 15] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    branch: String,
    action: String,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BranchAction {
    branch: String,
    action: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BranchLabel {
    branch: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    branch: String,
    r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabels {
    result: &'static str,
}

fn pbx_histogram() -> Histogram {
    Histogram::new(PBX_BUCKETS)
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    pbx_duration: Family<BranchAction, Histogram, fn() -> Histogram>,
    in_flight: Family<BranchLabel, Gauge>,
    events: Family<EventLabels, Counter>,
    hooks: Family<HookLabels, Counter>,
    duplicates: Counter,
    reload_success: Gauge,
    reload_timestamp: Gauge<f64, AtomicU64>,
    log_lines_dropped: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            pbx_duration: Family::new_with_constructor(pbx_histogram),
            in_flight: Family::default(),
            events: Family::default(),
            hooks: Family::default(),
            duplicates: Counter::default(),
            reload_success: Gauge::default(),
            reload_timestamp: Gauge::default(),
            log_lines_dropped: Counter::default(),
        };
        // Counters are registered without `_total`: the encoder adds it.
        let r = &mut m.registry;
        r.register("webdial_requests", "Requests answered, by branch, action and status", m.requests.clone());
        r.register(
            "webdial_pbx_duration_seconds",
            "Time from sending a request to a PBX to its answer (or failure)",
            m.pbx_duration.clone(),
        );
        r.register("webdial_in_flight", "Requests waiting for a PBX's answer now", m.in_flight.clone());
        r.register("webdial_events", "Call events received, by branch and type", m.events.clone());
        r.register("webdial_hook_deliveries", "Hook deliveries, by result", m.hooks.clone());
        r.register(
            "webdial_duplicates",
            "Repeated requests answered with the first one's answer",
            m.duplicates.clone(),
        );
        r.register(
            "webdial_config_reload_success",
            "1 if the last load of the profiles had no problem, else 0",
            m.reload_success.clone(),
        );
        r.register(
            "webdial_config_reload_timestamp_seconds",
            "When the profiles were last loaded (start-up or reload), successfully or not",
            m.reload_timestamp.clone(),
        );
        r.register(
            "webdial_log_lines_dropped",
            "Log lines dropped because the log reader did not keep up",
            m.log_lines_dropped.clone(),
        );
        m
    }

    /// Counts one answered request (and, for a repeat, one duplicate).
    /// `profiles` is the configuration the request ran with: a branch or
    /// action it does not have is counted as [`UNKNOWN`].
    pub fn request(&self, profiles: &Profiles, result: &ActionResult) {
        let profile = result.branch.as_deref().and_then(|b| profiles.get(b));
        let (branch, action) = match profile {
            Some(p) if p.action(&result.action).is_some() => (p.branch.clone(), result.action.clone()),
            Some(p) => (p.branch.clone(), UNKNOWN.to_string()),
            None => (UNKNOWN.to_string(), UNKNOWN.to_string()),
        };
        self.requests.get_or_create(&RequestLabels { branch, action, status: result.status.as_str() }).inc();
        if result.duplicate {
            self.duplicates.inc();
        }
    }

    /// Marks one request to `branch`'s PBX as in flight until the guard is
    /// dropped. `branch` must be a loaded profile's.
    pub fn in_flight(&self, branch: &str) -> InFlightGuard {
        let gauge = self.in_flight.get_or_create_owned(&BranchLabel { branch: branch.to_string() });
        gauge.inc();
        InFlightGuard(gauge)
    }

    /// How long one PBX request took. `branch` and `action` must be a
    /// loaded profile's.
    pub fn pbx_duration(&self, branch: &str, action: &str, elapsed: Duration) {
        let labels = BranchAction { branch: branch.to_string(), action: action.to_string() };
        self.pbx_duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// Counts one call event of type `kind` for `branch` (an unknown branch
    /// as [`UNKNOWN`]).
    pub fn event(&self, profiles: &Profiles, branch: &str, kind: &'static str) {
        let branch = if profiles.get(branch).is_some() { branch.to_string() } else { UNKNOWN.to_string() };
        self.events.get_or_create(&EventLabels { branch, r#type: kind }).inc();
    }

    /// Takes the hook deliveries' totals by result, as the hooks keep them
    /// (`hooks::Counts::by_result`): read at scrape time, so delivering a
    /// hook records nothing here.
    pub fn hook_deliveries(&self, by_result: &[(&'static str, u64)]) {
        for &(result, total) in by_result {
            self.hooks.get_or_create(&HookLabels { result }).inner().fetch_max(total, Ordering::Relaxed);
        }
    }

    /// Records a load of the profiles (start-up or reload) at `at`.
    pub fn config_loaded(&self, success: bool, at: SystemTime) {
        self.reload_success.set(i64::from(success));
        self.reload_timestamp.set(at.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()));
    }

    /// The text for `GET /metrics`. `log_lines_dropped` is read by the
    /// caller (the log writer sits above this layer).
    pub fn render(&self, log_lines_dropped: u64) -> String {
        // The log's own count is the truth; `fetch_max` keeps two scrapes
        // at once from adding it twice.
        self.log_lines_dropped.inner().fetch_max(log_lines_dropped, Ordering::Relaxed);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One request in flight to a PBX; counted until dropped.
#[derive(Debug)]
pub struct InFlightGuard(Gauge);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    #[test]
    fn unknown_branches_share_one_series() {
        let m = Metrics::new();
        let profiles = Profiles::default();
        for b in ["a", "b", "c"] {
            m.request(&profiles, &ActionResult::new("id", Status::UnknownBranch, Some(b), "dial"));
        }
        let text = m.render(0);
        assert!(
            text.contains(r#"webdial_requests_total{branch="(unknown)",action="(unknown)",status="unknown_branch"} 3"#),
            "{text}"
        );
        assert!(!text.contains(r#"branch="a""#), "{text}");
    }

    #[test]
    fn hook_totals_are_taken_as_they_are() {
        let m = Metrics::new();
        m.hook_deliveries(&[("delivered", 3), ("dropped", 0)]);
        m.hook_deliveries(&[("delivered", 5), ("dropped", 1)]);
        let text = m.render(0);
        assert!(text.contains(r#"webdial_hook_deliveries_total{result="delivered"} 5"#), "{text}");
        assert!(text.contains(r#"webdial_hook_deliveries_total{result="dropped"} 1"#), "{text}");
    }

    #[test]
    fn in_flight_goes_back_down_and_dropped_lines_follow_the_log() {
        let m = Metrics::new();
        let g = m.in_flight("x");
        assert!(m.render(0).contains(r#"webdial_in_flight{branch="x"} 1"#));
        drop(g);
        let text = m.render(7);
        assert!(text.contains(r#"webdial_in_flight{branch="x"} 0"#), "{text}");
        assert!(text.contains("webdial_log_lines_dropped_total 7"), "{text}");
        assert!(m.render(7).contains("webdial_log_lines_dropped_total 7"));
    }
}
