//! The IQX "web phone dialling" one-liner, parsed exactly as IQX documents it.
//!
//! ```text
//! {POST}http://pbx/api?func=make_call<&>from=^<&>to=#
//! ```
//! `^` is the user's extension and `#` the number to dial, everywhere in the
//! line (there is no escape). An optional `{GET}` (the default), `{POST}` or
//! `{PUT}` prefix picks the method. Each `<&>` starts a POST variable; all of
//! them come after every URL parameter, and a line without URL parameters has
//! no `?`. A line that is a client-side URI (`tel:#`, `callto:#`, `sip:#@host`,
//! `voispeed:#`) is not sent at all: the caller's softphone opens it.
//!
//! This module only parses; [`crate::template`] substitutes and encodes. Errors
//! carry the byte offset in the line so `webdial check` can point at them.

use std::fmt;

/// The method a line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    /// Only in the full form (REST APIs hang up with it); an IQX line has no `{DELETE}`.
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// A piece of text with placeholders resolved into their roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Extension,
    Number,
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// An HTTP request: the URL (with its parameters) and the POST variables.
    Http { method: Method, url: Vec<Piece>, post: Vec<(String, Vec<Piece>)> },
    /// A client-side URI for the caller's own softphone.
    Uri(Vec<Piece>),
}

/// Why a line is not valid. `at` is the byte offset in the (untrimmed) line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IqxError {
    #[error("the dial line is empty")]
    Empty,
    #[error("unknown method prefix {prefix}: use {{GET}}, {{POST}} or {{PUT}}")]
    UnknownPrefix { prefix: String, at: usize },
    #[error("<&> marks a POST variable, but this is a GET line: add {{POST}} in front, or use & for URL parameters")]
    PostVarInGet { at: usize },
    #[error("a URL parameter follows a POST variable: every <&> variable must come after all URL parameters")]
    UrlParamAfterPostVar { at: usize },
    #[error("a POST variable has no name")]
    EmptyPostVarName { at: usize },
    #[error("POST variable {name:?} has no `=value`")]
    PostVarWithoutValue { name: String, at: usize },
    #[error("the line must start with http:// or https:// (or be a tel:, callto:, sip: or voispeed: URI)")]
    NotAUrl { at: usize },
    #[error("^ or # in the scheme, host or port: request values never choose where a dial is sent")]
    PlaceholderInTarget { at: usize },
    #[error(
        "a client-side {scheme} URI is opened by the caller's softphone: {{GET}}/{{POST}}/{{PUT}} and <&> do not apply"
    )]
    MethodOnUri { scheme: String, at: usize },
    #[error("the line contains whitespace or a control character; encode it (%20) if the PBX really wants it")]
    Whitespace { at: usize },
}

impl IqxError {
    /// Byte offset of the problem in the line given to [`parse`].
    pub fn offset(&self) -> usize {
        match self {
            IqxError::Empty => 0,
            IqxError::UnknownPrefix { at, .. }
            | IqxError::PostVarInGet { at }
            | IqxError::UrlParamAfterPostVar { at }
            | IqxError::EmptyPostVarName { at }
            | IqxError::PostVarWithoutValue { at, .. }
            | IqxError::NotAUrl { at }
            | IqxError::PlaceholderInTarget { at }
            | IqxError::MethodOnUri { at, .. }
            | IqxError::Whitespace { at } => *at,
        }
    }
}

/// Client-side schemes, longest first so `tel://` wins over `tel:`.
const URI_SCHEMES: &[&str] = &["tel://", "callto://", "tel:", "callto:", "sips:", "sip:", "voispeed:"];

/// Whether `text` is a client-side URI (`tel:`, `callto:`, `sip:`,
/// `voispeed:`…): opened by the caller's softphone, never sent.
pub fn is_client_uri(text: &str) -> bool {
    let t = text.trim_start().to_ascii_lowercase();
    URI_SCHEMES.iter().any(|s| t.starts_with(s))
}

const POST_VAR: &str = "<&>";

/// Parses one line. Surrounding whitespace is ignored.
pub fn parse(line: &str) -> Result<Line, IqxError> {
    let lead = line.len() - line.trim_start().len();
    let text = line.trim();
    if text.is_empty() {
        return Err(IqxError::Empty);
    }
    if let Some(i) = text.find(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(IqxError::Whitespace { at: lead + i });
    }

    let (method, explicit, body, body_at) = split_prefix(text, lead)?;

    let lower = body.to_ascii_lowercase();
    if let Some(scheme) = URI_SCHEMES.iter().find(|s| lower.starts_with(**s)) {
        let name = scheme.trim_end_matches('/').to_string();
        if explicit {
            return Err(IqxError::MethodOnUri { scheme: name, at: lead });
        }
        if let Some(i) = body.find(POST_VAR) {
            return Err(IqxError::MethodOnUri { scheme: name, at: body_at + i });
        }
        return Ok(Line::Uri(pieces(body)));
    }
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(IqxError::NotAUrl { at: body_at });
    }

    let (url, vars) = match body.find(POST_VAR) {
        Some(i) => (&body[..i], Some((&body[i..], body_at + i))),
        None => (body, None),
    };
    check_target(url, body_at)?;

    let mut post = Vec::new();
    if let Some((vars, vars_at)) = vars {
        if method == Method::Get {
            return Err(IqxError::PostVarInGet { at: vars_at });
        }
        let mut at = vars_at;
        for var in vars.split(POST_VAR).skip(1) {
            at += POST_VAR.len();
            if let Some(i) = var.find(['&', '?']) {
                return Err(IqxError::UrlParamAfterPostVar { at: at + i });
            }
            let Some((name, value)) = var.split_once('=') else {
                return Err(IqxError::PostVarWithoutValue { name: var.to_string(), at });
            };
            if name.is_empty() {
                return Err(IqxError::EmptyPostVarName { at });
            }
            post.push((name.to_string(), pieces(value)));
            at += var.len();
        }
    }
    Ok(Line::Http { method, url: pieces(url), post })
}

/// Splits off `{METHOD}`; returns (method, was it explicit, rest, rest's offset).
fn split_prefix(text: &str, lead: usize) -> Result<(Method, bool, &str, usize), IqxError> {
    if !text.starts_with('{') {
        return Ok((Method::Get, false, text, lead));
    }
    let Some(end) = text.find('}') else {
        return Err(IqxError::UnknownPrefix { prefix: text.to_string(), at: lead });
    };
    let prefix = &text[..=end];
    let method = match prefix.to_ascii_uppercase().as_str() {
        "{GET}" => Method::Get,
        "{POST}" => Method::Post,
        "{PUT}" => Method::Put,
        _ => {
            return Err(IqxError::UnknownPrefix { prefix: prefix.to_string(), at: lead });
        }
    };
    Ok((method, true, &text[end + 1..], lead + end + 1))
}

/// Refuses `^`/`#` in the scheme or authority: the target is the admin's, not the caller's.
fn check_target(url: &str, url_at: usize) -> Result<(), IqxError> {
    let authority_start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = url[authority_start..].find(['/', '?']).map(|i| authority_start + i).unwrap_or(url.len());
    match url[..authority_end].find(['^', '#']) {
        Some(i) => Err(IqxError::PlaceholderInTarget { at: url_at + i }),
        None => Ok(()),
    }
}

/// Splits text at `^` and `#`.
fn pieces(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut lit = String::new();
    for c in text.chars() {
        let role = match c {
            '^' => Piece::Extension,
            '#' => Piece::Number,
            _ => {
                lit.push(c);
                continue;
            }
        };
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        out.push(role);
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    out
}

impl fmt::Display for Piece {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Piece::Lit(s) => f.write_str(s),
            Piece::Extension => f.write_str("^"),
            Piece::Number => f.write_str("#"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Piece::{Extension as E, Number as N};

    fn lit(s: &str) -> Piece {
        Piece::Lit(s.to_string())
    }

    macro_rules! parses {
        ($name:ident, $line:expr, $want:expr) => {
            #[test]
            fn $name() {
                assert_eq!(parse($line), Ok($want));
            }
        };
    }
    macro_rules! fails {
        ($name:ident, $line:expr, $want:expr) => {
            #[test]
            fn $name() {
                assert_eq!(parse($line), Err($want));
            }
        };
    }

    parses!(
        plain_get_is_the_default,
        "http://h:5463/ivr/PbxAPI.aspx?func=make_call&from=^&to=#",
        Line::Http {
            method: Method::Get,
            url: vec![lit("http://h:5463/ivr/PbxAPI.aspx?func=make_call&from="), E, lit("&to="), N],
            post: vec![]
        }
    );
    parses!(
        explicit_get_means_the_default,
        "{GET}http://h/p?from=^&to=#",
        Line::Http { method: Method::Get, url: vec![lit("http://h/p?from="), E, lit("&to="), N], post: vec![] }
    );
    parses!(
        post_vars_follow_url_params,
        "{POST}http://h/p?func=make_call<&>from=^<&>to=#",
        Line::Http {
            method: Method::Post,
            url: vec![lit("http://h/p?func=make_call")],
            post: vec![("from".into(), vec![E]), ("to".into(), vec![N])]
        }
    );
    parses!(
        post_without_url_params_has_no_question_mark,
        "{POST}http://h/p<&>from=^<&>to=#",
        Line::Http {
            method: Method::Post,
            url: vec![lit("http://h/p")],
            post: vec![("from".into(), vec![E]), ("to".into(), vec![N])]
        }
    );
    parses!(
        put_works_like_post,
        "{put}https://h/p<&>to=#",
        Line::Http { method: Method::Put, url: vec![lit("https://h/p")], post: vec![("to".into(), vec![N])] }
    );
    parses!(
        placeholders_work_in_the_path,
        "http://sys1:82/api/call/makecall/^/#/9",
        Line::Http {
            method: Method::Get,
            url: vec![lit("http://sys1:82/api/call/makecall/"), E, lit("/"), N, lit("/9")],
            post: vec![]
        }
    );
    parses!(
        post_value_may_contain_equals_and_literals,
        "{POST}http://h/p<&>x=a=b^c<&>y=",
        Line::Http {
            method: Method::Post,
            url: vec![lit("http://h/p")],
            post: vec![("x".into(), vec![lit("a=b"), E, lit("c")]), ("y".into(), vec![])]
        }
    );
    parses!(
        surrounding_whitespace_is_ignored,
        "  http://h/?n=#  ",
        Line::Http { method: Method::Get, url: vec![lit("http://h/?n="), N], post: vec![] }
    );
    parses!(tel_uri, "tel:#", Line::Uri(vec![lit("tel:"), N]));
    parses!(tel_slashes_uri, "tel://#", Line::Uri(vec![lit("tel://"), N]));
    parses!(callto_uri, "callto:#", Line::Uri(vec![lit("callto:"), N]));
    parses!(sip_uri_with_host, "sip:#@pbx.example.com", Line::Uri(vec![lit("sip:"), N, lit("@pbx.example.com")]));
    parses!(voispeed_uri, "voispeed:#", Line::Uri(vec![lit("voispeed:"), N]));

    fails!(empty_line, "   ", IqxError::Empty);
    fails!(post_var_in_default_get, "http://h/p<&>to=#", IqxError::PostVarInGet { at: 10 });
    fails!(post_var_in_explicit_get, "{GET}http://h/p<&>to=#", IqxError::PostVarInGet { at: 15 });
    fails!(url_param_after_post_var, "{POST}http://h/p<&>from=^&to=#", IqxError::UrlParamAfterPostVar { at: 25 });
    fails!(query_after_post_var, "{POST}http://h/p<&>from=^?to=#", IqxError::UrlParamAfterPostVar { at: 25 });
    fails!(unknown_prefix, "{DELETE}http://h/p", IqxError::UnknownPrefix { prefix: "{DELETE}".into(), at: 0 });
    fails!(unclosed_prefix, "{POST http://h", IqxError::Whitespace { at: 5 });
    fails!(empty_post_var_name, "{POST}http://h/p<&>=#", IqxError::EmptyPostVarName { at: 19 });
    fails!(
        post_var_without_value,
        "{POST}http://h/p<&>to",
        IqxError::PostVarWithoutValue { name: "to".into(), at: 19 }
    );
    fails!(not_a_url, "ftp://h/#", IqxError::NotAUrl { at: 0 });
    fails!(no_scheme, "192.168.7.231/ivr?to=#", IqxError::NotAUrl { at: 0 });
    fails!(placeholder_in_host, "http://pbx#.example.com/p", IqxError::PlaceholderInTarget { at: 10 });
    fails!(placeholder_in_port, "{POST}http://h:^/p", IqxError::PlaceholderInTarget { at: 15 });
    fails!(method_on_uri, "{POST}tel:#", IqxError::MethodOnUri { scheme: "tel:".into(), at: 0 });
    fails!(post_var_on_uri, "tel:#<&>x=1", IqxError::MethodOnUri { scheme: "tel:".into(), at: 5 });
    fails!(inner_whitespace, "http://h/p?to=# x", IqxError::Whitespace { at: 15 });
}
