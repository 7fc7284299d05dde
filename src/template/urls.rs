//! URLs: the encoding of values for their place, the split between the
//! admin's part of a URL (scheme, host, port) and the rest, and building a
//! URL from a branch's base parsed once. Pure.

use percent_encoding::{AsciiSet, utf8_percent_encode};

use super::RenderError;
use crate::secrets;

/// A URL component is encoded like JavaScript's `encodeURIComponent`.
pub(super) const COMPONENT: &AsciiSet = secrets::URL_COMPONENT;

/// In a client-side URI (`tel:+44…`) a `+` is meaningful and stays.
pub(super) const URI_VALUE: &AsciiSet = &COMPONENT.remove(b'+');

/// Percent-encodes `s` for a client-side URI: as a component, keeping `+`.
pub fn encode_uri_value(s: &str) -> String {
    utf8_percent_encode(s, URI_VALUE).to_string()
}

/// Percent-encodes `s` as one URL component.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// The scheme, host and port of a branch's URL, parsed once. Parsing a
/// host (IDNA rules) is the costliest part of building a URL; a rendered URL
/// that starts with this prefix only has its path, query and fragment parsed.
#[derive(Debug, Clone)]
pub(super) struct FixedBase {
    pub(super) prefix: String,
    url: url::Url,
}

impl FixedBase {
    pub(super) fn new(prefix: &str) -> Option<Self> {
        let url = url::Url::parse(prefix).ok()?;
        let bare = matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && !prefix.ends_with('/');
        bare.then(|| FixedBase { prefix: prefix.to_string(), url })
    }
}

/// Parses a rendered URL, reusing the branch's parsed base when it applies.
pub(super) fn build_url(base: Option<&FixedBase>, full: &str) -> Result<url::Url, RenderError> {
    let rest = base.and_then(|b| full.strip_prefix(b.prefix.as_str()).map(|rest| (b, rest)));
    match rest {
        Some((b, rest)) if rest.is_empty() || rest.starts_with(['/', '?', '#']) => {
            let mut url = b.url.clone();
            let (before, fragment) = match rest.split_once('#') {
                Some((a, f)) => (a, Some(f)),
                None => (rest, None),
            };
            let (path, query) = match before.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (before, None),
            };
            if !path.is_empty() {
                url.set_path(path);
            }
            url.set_query(query);
            url.set_fragment(fragment);
            Ok(url)
        }
        _ => parse_url(full),
    }
}

pub(super) fn parse_url(s: &str) -> Result<url::Url, RenderError> {
    let url = url::Url::parse(s)
        .map_err(|e| RenderError::new(format!("the url {:?} is not valid: {e}", secrets::redact(s))))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(RenderError::new(format!(
            "the url {:?} must be http:// or https:// with a host",
            secrets::redact(s)
        )));
    }
    Ok(url)
}

/// Splits a url template into the target part (scheme, host, port) and the
/// rest. The split is at the first literal `/`, `?` or `#` after `://`,
/// outside `{{ }}`, `{% %}` and `{# #}`.
pub fn split_url(src: &str) -> (&str, &str) {
    let literal = literal_positions(src);
    let is_lit = |i: usize| literal.binary_search(&i).is_ok();
    // Where the target part may end: after the first literal `://`, if any.
    let start =
        (0..src.len()).find(|&i| src[i..].starts_with("://") && (i..i + 3).all(is_lit)).map(|i| i + 3).unwrap_or(0);
    match literal.iter().copied().filter(|&i| i >= start).find(|&i| matches!(src.as_bytes()[i], b'/' | b'?' | b'#')) {
        Some(i) => (&src[..i], &src[i..]),
        None => (src, ""),
    }
}

/// Byte offsets of the characters outside `{{ }}`, `{% %}` and `{# #}`.
fn literal_positions(src: &str) -> Vec<usize> {
    let bytes = src.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' && i + 1 < bytes.len() && matches!(bytes[i + 1], b'{' | b'%' | b'#') {
            let close = match bytes[i + 1] {
                b'{' => "}}",
                b'%' => "%}",
                _ => "#}",
            };
            match src[i + 2..].find(close) {
                Some(j) => i = i + 2 + j + 2,
                None => break,
            }
            continue;
        }
        out.push(i);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parsed_base_builds_the_same_url_as_a_full_parse() {
        let base = FixedBase::new("http://PBX.example:8080").unwrap();
        for rest in ["", "/", "/a/b?x=1&y=%2B2#f", "?only=query", "#frag", "/p/../q/./r?", "/sp ace?q=a b|c"] {
            let full = format!("http://PBX.example:8080{rest}");
            assert_eq!(build_url(Some(&base), &full).unwrap(), url::Url::parse(&full).unwrap(), "{rest:?}");
        }
        // Another prefix falls back to the full parse.
        assert_eq!(build_url(Some(&base), "http://other/x").unwrap().as_str(), "http://other/x");
        assert!(FixedBase::new("http://h/path").is_none());
    }

    #[test]
    fn split_url_table() {
        let cases = [
            ("http://{{ host }}/p?x={{ number }}", ("http://{{ host }}", "/p?x={{ number }}")),
            ("https://h:1?x=1", ("https://h:1", "?x=1")),
            ("{{ base }}/api", ("{{ base }}", "/api")),
            ("http://{{ '/' }}x/y", ("http://{{ '/' }}x", "/y")),
            ("http://h", ("http://h", "")),
            ("{{ scheme }}://{{ host }}/p", ("{{ scheme }}://{{ host }}", "/p")),
        ];
        for (src, want) in cases {
            assert_eq!(split_url(src), want, "{src}");
        }
    }
}
