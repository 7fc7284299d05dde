//! Values read from `${ENV}` are secrets: they must never reach a log line,
//! an API answer or `render` output. So are the values a login step saves
//! (tokens, session cookies), which change while the gateway runs.
//!
//! Configuration's secrets are registered once, when it loads, in a
//! process-wide set, and stay for the life of the process. A session's
//! values are *held* instead ([`hold`]): masked while anything holds them,
//! then retired. A retired value is still masked until [`RETIRED_KEPT`]
//! newer ones have retired after it, so a line formatted while its session
//! was being replaced (the log writer redacts on its own thread, a result
//! is redacted after its request let go of the session) is still masked;
//! and the set stays bounded however often tokens rotate.
//!
//! [`redact`] replaces every occurrence with `***`, in the forms in which a
//! secret can appear on the wire (as is, percent-encoded, form-encoded).
//! The log writer ([`RedactingWriter`]) passes every formatted line through
//! [`redact`], so even a dependency's debug log cannot leak one. Redaction is
//! the last line of defence, not the only one: secrets are also kept out of
//! what we choose to log.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::sync::{Arc, RwLock};

use aho_corasick::AhoCorasick;

/// Characters left as they are in a URL component: those of JavaScript's
/// `encodeURIComponent` (`A-Z a-z 0-9 - _ . ! ~ * ' ( )`). Defined here, the
/// lowest module, because redaction must know exactly how a secret looks
/// once it is encoded into a URL; `template` encodes with this same set.
pub const URL_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// How many retired forms (a value is up to three) stay masked after their
/// holders let go. A retired form only needs to outlive the lines and
/// results already on their way, formed within moments of the retirement;
/// this many covers dozens of sessions replaced at once.
pub const RETIRED_KEPT: usize = 256;

/// Held values shorter than this are not masked: a login may save a
/// status code or a flag, and masking every `1` or `200` in every log line
/// would hide everything else. A real token is far longer.
pub const MIN_HELD: usize = 4;

struct Set {
    /// Configuration's secrets: for the life of the process.
    fixed: Vec<String>,
    /// Forms held by live sessions, with how many holders each has.
    held: BTreeMap<String, usize>,
    /// Forms no longer held, oldest first, at most [`RETIRED_KEPT`].
    retired: VecDeque<String>,
    matcher: Option<Arc<AhoCorasick>>,
}

static SECRETS: RwLock<Set> =
    RwLock::new(Set { fixed: Vec::new(), held: BTreeMap::new(), retired: VecDeque::new(), matcher: None });

/// A value as it can appear: as is, percent-encoded, form-encoded.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string()];
    for f in [
        percent_encoding::utf8_percent_encode(value, URL_COMPONENT).to_string(),
        form_urlencoded::byte_serialize(value.as_bytes()).collect(),
    ] {
        if !forms.contains(&f) {
            forms.push(f);
        }
    }
    forms
}

impl Set {
    fn rebuild(&mut self) {
        let mut patterns: Vec<&String> = self.fixed.iter().chain(self.held.keys()).chain(self.retired.iter()).collect();
        patterns.sort_unstable();
        patterns.dedup();
        // Longest first, so a secret that contains another is masked whole.
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        self.matcher = match patterns.is_empty() {
            true => None,
            false => AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&patterns)
                .ok()
                .map(Arc::new),
        };
    }
}

/// Adds `value` (and its encoded forms) to the secrets, for good.
pub fn register(value: &str) {
    if value.is_empty() {
        return;
    }
    let Ok(mut set) = SECRETS.write() else { return };
    let mut changed = false;
    for f in forms(value) {
        if !set.fixed.contains(&f) {
            set.fixed.push(f);
            changed = true;
        }
    }
    if changed {
        set.rebuild();
    }
}

/// Values masked while this is alive (see [`hold`]); dropping it retires them.
#[derive(Debug, Default)]
pub struct Held {
    forms: Vec<String>,
}

/// Masks `values` (and their encoded forms) until the returned [`Held`] is
/// dropped, and for a while after (see [`RETIRED_KEPT`]). Values shorter
/// than [`MIN_HELD`] are left out. Holding a value twice is counted: it is
/// retired when the last holder lets go.
pub fn hold<'a>(values: impl IntoIterator<Item = &'a str>) -> Held {
    let mut held = Held::default();
    for v in values.into_iter().filter(|v| v.chars().count() >= MIN_HELD) {
        for f in forms(v) {
            if !held.forms.contains(&f) {
                held.forms.push(f);
            }
        }
    }
    if held.forms.is_empty() {
        return held;
    }
    if let Ok(mut set) = SECRETS.write() {
        for f in &held.forms {
            *set.held.entry(f.clone()).or_insert(0) += 1;
            set.retired.retain(|r| r != f);
        }
        set.rebuild();
    }
    held
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.forms.is_empty() {
            return;
        }
        let Ok(mut set) = SECRETS.write() else { return };
        for f in self.forms.drain(..) {
            match set.held.get_mut(&f) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    set.held.remove(&f);
                    set.retired.push_back(f);
                }
                None => {}
            }
        }
        while set.retired.len() > RETIRED_KEPT {
            set.retired.pop_front();
        }
        set.rebuild();
    }
}

/// How many held and retired forms are masked now (not configuration's).
pub fn temporary_len() -> usize {
    SECRETS.read().map(|s| s.held.len() + s.retired.len()).unwrap_or(0)
}

fn matcher() -> Option<Arc<AhoCorasick>> {
    SECRETS.read().ok().and_then(|s| s.matcher.clone())
}

/// `text` with every registered secret replaced by `***`.
pub fn redact(text: &str) -> Cow<'_, str> {
    match matcher() {
        Some(m) if m.is_match(text) => {
            let replacements = vec![MASK; m.patterns_len()];
            Cow::Owned(m.replace_all(text, &replacements))
        }
        _ => Cow::Borrowed(text),
    }
}

/// Redacts every string inside a JSON value, in place.
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(r) = redact(s) {
                *s = r;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// A log writer that redacts each formatted line before it reaches stderr.
/// `tracing-subscriber` formats an event completely and hands it over in one
/// piece, so a secret is never split across two writes.
pub struct RedactingWriter<W: Write>(pub W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact(text).as_bytes())?,
            Err(_) => self.0.write_all(redact(&String::from_utf8_lossy(buf)).as_bytes())?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_masked_in_all_their_forms() {
        register("t0k+en&x");
        assert_eq!(redact("token=t0k+en&x;"), "token=***;");
        assert_eq!(redact("token=t0k%2Ben%26x"), "token=***");
        assert_eq!(redact("token=t0k%2Ben%26x&y"), "token=***&y");
        assert_eq!(redact("nothing here"), "nothing here");
        let mut v = serde_json::json!({"a": ["xx t0k+en&x"]});
        redact_json(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["xx ***"]}));
    }

    #[test]
    fn held_values_are_masked_while_held_then_retired_and_the_set_stays_bounded() {
        let first = hold(["sess-tok/0-first"]);
        let again = hold(["sess-tok/0-first"]);
        assert_eq!(redact("Bearer sess-tok/0-first"), "Bearer ***");
        assert_eq!(redact("t=sess-tok%2F0-first"), "t=***", "encoded forms too");
        drop(first);
        assert_eq!(redact("sess-tok/0-first"), "***", "still held by its second holder");
        drop(again);
        assert_eq!(redact("sess-tok/0-first"), "***", "just retired: still masked");
        assert_eq!(redact("ok 200"), "ok 200");
        let short = hold(["200", ""]);
        assert_eq!(redact("ok 200"), "ok 200", "too short to be a secret, and masking it would hide every 200");
        drop(short);

        // Tokens rotating for a long time: what is masked does not grow with
        // them. Each of these has three forms (as is, %-encoded, form-encoded).
        let token = |i: usize| format!("sess tok/r{i}");
        let rotations = RETIRED_KEPT / 3 + 2;
        let mut current = hold([token(0).as_str()]);
        for i in 1..=rotations {
            let next = hold([token(i).as_str()]);
            drop(std::mem::replace(&mut current, next));
            assert!(temporary_len() <= RETIRED_KEPT + 3, "{} forms after {i} rotations", temporary_len());
        }
        for gone in [token(0), token(1), "sess%20tok%2Fr0".to_string(), "sess+tok%2Fr0".to_string()] {
            assert_eq!(redact(&gone), gone, "long retired: no longer masked");
        }
        assert_eq!(redact(&token(rotations)), "***", "the live one");
        assert_eq!(redact(&token(rotations - 1)), "***", "the one it replaced a moment ago");
        drop(current);
    }
}
