//! `pop: {link: TEMPLATE}`: the link the screen-pop page shows for an
//! incoming call, e.g. `https://crm.example.com/search?q={{ event.remote }}`.
//!
//! Compiled once, at load, into fixed text and `{{ event.NAME }}`
//! placeholders — nothing else: no filters, no logic. A link is opened by a
//! person's browser, and the values come from a PBX, which anyone who can
//! call in controls (the caller id), so the rules are strict:
//!
//! - the template's own text fixes the scheme (`http`/`https`) and the
//!   host: a placeholder may only come after the host (after the first `/`,
//!   `?` or `#` that follows `scheme://`);
//! - every value is percent-encoded as one URL component (the set the
//!   secrets and templates use), so `&admin=1`, `#`, `/`, `?` or `@` in a
//!   caller id can add no parameter, fragment or path segment;
//! - a value of only dots (`.`, `..`), which URL parsers resolve as a path
//!   segment, gives no link;
//! - the result must parse as an `http:`/`https:` URL, or there is no link.

use percent_encoding::utf8_percent_encode;

use crate::secrets::URL_COMPONENT;

/// The event fields a link may use.
pub const FIELDS: &[&str] =
    &["remote", "extension", "branch", "call_id", "dial_id", "external_id", "direction", "type", "id", "at"];

/// A compiled `pop.link`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopLink {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// One of [`FIELDS`].
    Field(&'static str),
}

impl PopLink {
    /// Compiles `text`, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<PopLink, String> {
        if let Some(tag) = ["{%", "{#"].into_iter().find(|t| text.contains(t)) {
            return Err(format!("`{tag}` is not allowed in pop.link: only {{{{ event.NAME }}}} placeholders are"));
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let Some(start) = rest.find("{{") else {
                pieces.push(Piece::Text(rest.to_string()));
                break;
            };
            let (before, after) = rest.split_at(start);
            if !before.is_empty() {
                pieces.push(Piece::Text(before.to_string()));
            }
            let Some(end) = after.find("}}") else {
                return Err("a `{{` in pop.link is not closed with `}}`".into());
            };
            let inner = after[2..end].trim();
            let name = inner.strip_prefix("event.").unwrap_or("");
            let Some(field) = FIELDS.iter().find(|f| **f == name) else {
                return Err(format!(
                    "`{{{{ {inner} }}}}` is not a pop.link placeholder: use {{{{ event.NAME }}}} with NAME one of {}",
                    FIELDS.join(", ")
                ));
            };
            pieces.push(Piece::Field(field));
            rest = &after[end + 2..];
        }
        let head = match pieces.first() {
            Some(Piece::Text(t)) => t.as_str(),
            _ => "",
        };
        let lower = head.to_ascii_lowercase();
        let Some(after_scheme) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) else {
            return Err(format!("pop.link {text:?} must start with http:// or https:// and a host"));
        };
        let fixed_host = after_scheme.find(['/', '?', '#']).is_some_and(|i| i > 0) || pieces.len() == 1;
        if !fixed_host {
            return Err(format!(
                "pop.link {text:?}: the scheme and host must be written out; event values may only follow the host"
            ));
        }
        let link = PopLink { pieces };
        if link.render(|_| Some("x".into())).is_none() {
            return Err(format!("pop.link {text:?} does not make an http(s) URL"));
        }
        Ok(link)
    }

    /// The link for an event whose fields `value` gives (a missing one is
    /// empty); `None` when the result is not an `http:`/`https:` URL.
    pub fn render(&self, value: impl Fn(&str) -> Option<String>) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => {
                    let v = value(f).unwrap_or_default();
                    if !v.is_empty() && v.chars().all(|c| c == '.') {
                        return None;
                    }
                    out.extend(utf8_percent_encode(&v, URL_COMPONENT));
                }
            }
        }
        let url = url::Url::parse(&out).ok()?;
        (matches!(url.scheme(), "http" | "https") && url.host().is_some()).then(|| url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, remote: &str) -> Option<String> {
        PopLink::parse(template).unwrap().render(|f| (f == "remote").then(|| remote.to_string()))
    }

    #[test]
    fn values_are_one_component_each() {
        let t = "https://crm.example.com/search?q={{ event.remote }}&src=pbx";
        assert_eq!(render(t, "+390261616161").unwrap(), "https://crm.example.com/search?q=%2B390261616161&src=pbx");
        assert_eq!(
            render(t, "1&admin=1#x").unwrap(),
            "https://crm.example.com/search?q=1%26admin%3D1%23x&src=pbx",
            "no parameter or fragment added"
        );
        let path = "https://crm.example.com/contacts/{{event.remote}}";
        assert_eq!(render(path, "a/../b").unwrap(), "https://crm.example.com/contacts/a%2F..%2Fb");
        assert_eq!(render(path, ".."), None, "a value cannot remove a path segment");
        assert_eq!(render(path, "").unwrap(), "https://crm.example.com/contacts/");
    }

    #[test]
    fn the_template_fixes_scheme_and_host() {
        for bad in [
            "{{ event.remote }}",
            "javascript:alert(1)//{{ event.remote }}",
            "https://{{ event.remote }}.example.com/",
            "https://crm.example.com{{ event.remote }}",
            "ftp://crm.example.com/{{ event.remote }}",
            "https://crm.example.com/?q={{ remote }}",
            "https://crm.example.com/?q={{ event.secret }}",
            "https://crm.example.com/?q={{ event.remote | upper }}",
            "https://crm.example.com/?q={% if x %}",
            "https://crm.example.com/?q={{ event.remote",
        ] {
            assert!(PopLink::parse(bad).is_err(), "{bad}");
        }
        assert!(PopLink::parse("https://crm.example.com").is_ok());
        assert!(PopLink::parse("HTTP://crm.example.com/x?{{event.extension}}").is_ok());
    }
}
