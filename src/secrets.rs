//! Values read from `${ENV}` are secrets: they must never reach a log line,
//! an API answer or `render` output.
//!
//! Secrets are registered once, when configuration loads, in a process-wide
//! set; [`redact`] replaces every occurrence with `***`, in the forms in
//! which a secret can appear on the wire (as is, percent-encoded, form-encoded).
//! The log writer ([`RedactingWriter`]) passes every formatted line through
//! [`redact`], so even a dependency's debug log cannot leak one. Redaction is
//! the last line of defence, not the only one: secrets are also kept out of
//! what we choose to log.

use std::borrow::Cow;
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

#[derive(Default)]
struct Set {
    values: Vec<String>,
    matcher: Option<Arc<AhoCorasick>>,
}

static SECRETS: RwLock<Set> = RwLock::new(Set { values: Vec::new(), matcher: None });

/// Adds `value` (and its encoded forms) to the set of secrets.
pub fn register(value: &str) {
    if value.is_empty() {
        return;
    }
    let mut forms = vec![value.to_string()];
    forms.push(percent_encoding::utf8_percent_encode(value, URL_COMPONENT).to_string());
    forms.push(form_urlencoded::byte_serialize(value.as_bytes()).collect());
    let Ok(mut set) = SECRETS.write() else { return };
    let mut changed = false;
    for f in forms {
        if !set.values.contains(&f) {
            set.values.push(f);
            changed = true;
        }
    }
    if changed {
        // Longest first, so a secret that contains another is masked whole.
        let mut patterns = set.values.clone();
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        set.matcher = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok()
            .map(Arc::new);
    }
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
}
