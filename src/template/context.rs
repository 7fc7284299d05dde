//! What one request puts in front of a template: the validated values the
//! caller sent, by name, and the options its action declares.
//!
//! The context is open, not a dial-shaped struct: an action's templates may
//! use any of [`REQUEST_VALUES`], and what an action needs from a caller is
//! read off its templates at load (see `profile`). Every value here has
//! already passed input validation; templates encode them for their place.
//! `session` is not the caller's: it is what a branch's login steps saved,
//! set just before rendering.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Names a template may use that come from the caller's request. They may
/// never appear in the scheme/host/port part of a URL.
pub const REQUEST_VALUES: &[&str] =
    &["extension", "number", "raw_number", "caller_id", "external_id", "call_id", "digits", "options"];

/// Names the gateway provides; `vars` may not reuse them (`event` is what
/// a hook's templates see).
pub const RESERVED: &[&str] = &[
    "extension",
    "number",
    "raw_number",
    "caller_id",
    "external_id",
    "call_id",
    "digits",
    "options",
    "branch",
    "now",
    "event",
    "session",
];

/// One request's values, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Context {
    pub branch: String,
    /// Request values by name (a subset of [`REQUEST_VALUES`] except `options`).
    values: BTreeMap<&'static str, String>,
    /// Declared options with their values (defaults filled in).
    pub options: BTreeMap<String, String>,
    /// What the branch's login steps saved, by name (`session.token`);
    /// empty for a branch without login steps, and until its session is known.
    pub session: Arc<BTreeMap<String, String>>,
}

impl Context {
    pub fn new(branch: &str) -> Self {
        Context { branch: branch.to_string(), ..Default::default() }
    }

    /// Sets a request value; `name` must be one of [`REQUEST_VALUES`].
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        debug_assert!(REQUEST_VALUES.contains(&name), "{name} is not a request value");
        self.values.insert(name, value.into());
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The values that are set, by name.
    pub fn values(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// The same values with `session` set.
    pub fn with_session(&self, session: Arc<BTreeMap<String, String>>) -> Self {
        Context { session, ..self.clone() }
    }

    /// Plausible values used to try every template once at load time.
    pub fn sample(branch: &str) -> Self {
        Context::new(branch)
            .with("extension", "201")
            .with("number", "+442079460000")
            .with("raw_number", "+44 20 7946 0000")
            .with("caller_id", "+442079460001")
            .with("external_id", "sample-1")
            .with("call_id", "sample-call-1")
            .with("digits", "123#")
    }
}
