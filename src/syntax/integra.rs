//! VOIspeed Integra's command line, as a hook's URL:
//!
//! ```text
//! http://crm.local/popup.php?caller=!01&action=!02&ext=!00
//! ```
//! `!00` to `!07` are placeholders, anywhere after the host (the path, the
//! query, the fragment): own extension, remote number, action, own direct
//! number, time, call id, original caller, original called number
//! ([`Field`]). VOIspeed's desktop client hands the line to the Windows
//! shell; webdial sends it itself, as a `GET` (what a browser opening the
//! URL does), so the line is the URL alone: `iexplore http://…` is refused
//! with a hint rather than guessed at.
//!
//! This module only parses; `template` fills in and encodes each value for
//! its place. Errors carry the byte offset in the line so `webdial check`
//! can point at them, as for [`crate::syntax::iqx`].

use std::fmt;

/// What a placeholder stands for (`!00` … `!07`, in that order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `!00`: the extension the event is about.
    OwnExtension,
    /// `!01`: the other party's number (calling or called).
    Remote,
    /// `!02`: `CALL_IN`, `CALL_OUT`, `CALL_ACCEPT`…
    Action,
    /// `!03`: the extension's own direct number that was called.
    OwnDirectNumber,
    /// `!04`: `dd/mm/yyyy_HH.MM.SS`.
    Time,
    /// `!05`: the PBX's id of the call.
    CallId,
    /// `!06`: the real caller of a forwarded call or one through an IVR.
    OriginalCaller,
    /// `!07`: the number the caller dialled (the company's number).
    OriginalCalled,
}

impl Field {
    /// Every field, in placeholder order: `ALL[n]` is `!0n`.
    pub const ALL: [Field; 8] = [
        Field::OwnExtension,
        Field::Remote,
        Field::Action,
        Field::OwnDirectNumber,
        Field::Time,
        Field::CallId,
        Field::OriginalCaller,
        Field::OriginalCalled,
    ];

    /// The placeholder's number (`!05` → 5).
    pub fn number(self) -> usize {
        Field::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// A piece of the line: text as written, or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Field(Field),
}

/// A parsed line: the URL, in pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub url: Vec<Piece>,
}

/// Why a line is not valid. `at` is the byte offset in the (untrimmed) line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegraError {
    #[error("the hook's url is empty")]
    Empty,
    #[error(
        "an Integra command runs a program (`{program} http://…`); webdial sends the URL itself: keep only the URL"
    )]
    Program { program: String, at: usize },
    #[error("the line contains whitespace or a control character; encode it (%20) if the receiver really wants it")]
    Whitespace { at: usize },
    #[error(
        "{prefix} is IQX syntax; an Integra line is a URL sent with GET: for another method use the full form (url, method, form, json)"
    )]
    MethodPrefix { prefix: String, at: usize },
    #[error("the line must start with http:// or https://")]
    NotAUrl { at: usize },
    #[error("a placeholder in the scheme, host or port: event values never choose where a hook is sent")]
    PlaceholderInTarget { at: usize },
    #[error("{text} is not an Integra placeholder: they are !00 to !07")]
    UnknownPlaceholder { text: String, at: usize },
}

impl IntegraError {
    /// Byte offset of the problem in the line given to [`parse`].
    pub fn offset(&self) -> usize {
        match self {
            IntegraError::Empty => 0,
            IntegraError::Program { at, .. }
            | IntegraError::Whitespace { at }
            | IntegraError::MethodPrefix { at, .. }
            | IntegraError::NotAUrl { at }
            | IntegraError::PlaceholderInTarget { at }
            | IntegraError::UnknownPlaceholder { at, .. } => *at,
        }
    }
}

/// Whether `text` uses an Integra placeholder (`!00`–`!07`) anywhere.
pub fn has_placeholder(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(2)).any(|i| b[i] == b'!' && b[i + 1] == b'0' && (b'0'..=b'7').contains(&b[i + 2]))
}

/// Parses one line. Surrounding whitespace is ignored.
pub fn parse(line: &str) -> Result<Line, IntegraError> {
    let lead = line.len() - line.trim_start().len();
    let text = line.trim();
    if text.is_empty() {
        return Err(IntegraError::Empty);
    }
    if let Some(i) = text.find(|c: char| c.is_whitespace() || c.is_control()) {
        // `iexplore http://…`, as VOIspeed's own examples write it.
        let rest = text[i..].trim_start().to_ascii_lowercase();
        if !text[..i].contains("://") && (rest.starts_with("http://") || rest.starts_with("https://")) {
            return Err(IntegraError::Program { program: text[..i].to_string(), at: lead });
        }
        return Err(IntegraError::Whitespace { at: lead + i });
    }
    if text.starts_with('{') {
        let prefix = text.find('}').map(|end| &text[..=end]).unwrap_or(text);
        return Err(IntegraError::MethodPrefix { prefix: prefix.to_string(), at: lead });
    }
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(IntegraError::NotAUrl { at: lead });
    }
    let url = pieces(text, lead)?;
    check_target(text, lead)?;
    Ok(Line { url })
}

/// Refuses a placeholder in the scheme or authority: the target is the admin's.
fn check_target(url: &str, lead: usize) -> Result<(), IntegraError> {
    let authority_start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = url[authority_start..].find(['/', '?', '#']).map(|i| authority_start + i).unwrap_or(url.len());
    match url[..authority_end].find('!') {
        Some(i) if has_placeholder(&url[i..authority_end]) => Err(IntegraError::PlaceholderInTarget { at: lead + i }),
        _ => Ok(()),
    }
}

/// Splits text at `!0N`. A `!` followed by digits that are not `00`–`07`
/// is an error (a typo such as `!08` or `!1` would otherwise be sent as
/// written); a `!` followed by anything else is text.
fn pieces(text: &str, lead: usize) -> Result<Vec<Piece>, IntegraError> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'!' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let field = match (digits, b[i + 1], b.get(i + 2)) {
                (2, b'0', Some(n @ b'0'..=b'7')) => Field::ALL.get(usize::from(n - b'0')).copied(),
                _ => None,
            };
            let Some(field) = field else {
                return Err(IntegraError::UnknownPlaceholder { text: text[i..=i + digits].to_string(), at: lead + i });
            };
            if !lit.is_empty() {
                out.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            out.push(Piece::Field(field));
            i += 3;
            continue;
        }
        // Multi-byte characters are copied whole.
        let ch_len = text[i..].chars().next().map(char::len_utf8).unwrap_or(1);
        lit.push_str(&text[i..i + ch_len]);
        i += ch_len;
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

impl fmt::Display for Piece {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Piece::Lit(s) => f.write_str(s),
            Piece::Field(field) => write!(f, "!{:02}", field.number()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Field::*;

    fn lit(s: &str) -> Piece {
        Piece::Lit(s.to_string())
    }
    fn f(field: Field) -> Piece {
        Piece::Field(field)
    }

    macro_rules! parses {
        ($name:ident, $line:expr, $want:expr) => {
            #[test]
            fn $name() {
                assert_eq!(parse($line), Ok(Line { url: $want }));
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
        the_documented_example,
        "http://crm.local/popup.php?caller=!01&action=!02&ext=!00",
        vec![
            lit("http://crm.local/popup.php?caller="),
            f(Remote),
            lit("&action="),
            f(Action),
            lit("&ext="),
            f(OwnExtension)
        ]
    );
    parses!(
        every_placeholder_in_order,
        "http://h/?a=!00!01!02!03!04!05!06!07",
        vec![
            lit("http://h/?a="),
            f(OwnExtension),
            f(Remote),
            f(Action),
            f(OwnDirectNumber),
            f(Time),
            f(CallId),
            f(OriginalCaller),
            f(OriginalCalled)
        ]
    );
    parses!(
        placeholders_work_in_the_path_and_fragment,
        "https://h:8443/calls/!05/!00#!01",
        vec![lit("https://h:8443/calls/"), f(CallId), lit("/"), f(OwnExtension), lit("#"), f(Remote)]
    );
    parses!(
        voispeeds_leading_ampersand_is_kept,
        "http://mywebserver.com/myscript.php?&num_chiamante=!01&action=!02",
        vec![lit("http://mywebserver.com/myscript.php?&num_chiamante="), f(Remote), lit("&action="), f(Action)]
    );
    parses!(a_bang_before_a_letter_is_text, "http://h/hey!you?x=!a", vec![lit("http://h/hey!you?x=!a")]);
    parses!(a_line_without_placeholders_is_a_plain_url, "  http://h/ping  ", vec![lit("http://h/ping")]);

    fails!(empty_line, "  ", IntegraError::Empty);
    fails!(a_program_in_front, "iexplore http://h/?n=!01", IntegraError::Program { program: "iexplore".into(), at: 0 });
    fails!(inner_whitespace, "http://h/?n=!01 x", IntegraError::Whitespace { at: 15 });
    fails!(iqx_method_prefix, "{POST}http://h/", IntegraError::MethodPrefix { prefix: "{POST}".into(), at: 0 });
    fails!(not_a_url, "crm.local/popup.php?c=!01", IntegraError::NotAUrl { at: 0 });
    fails!(placeholder_in_host, "http://crm!00.local/p", IntegraError::PlaceholderInTarget { at: 10 });
    fails!(placeholder_in_port, "http://crm:!05/p", IntegraError::PlaceholderInTarget { at: 11 });
    fails!(
        eight_is_not_a_placeholder,
        "http://h/?x=!08",
        IntegraError::UnknownPlaceholder { text: "!08".into(), at: 12 }
    );
    fails!(
        one_digit_is_not_a_placeholder,
        "http://h/?x=!1&y",
        IntegraError::UnknownPlaceholder { text: "!1".into(), at: 12 }
    );
    fails!(
        three_digits_are_not_a_placeholder,
        "http://h/?x=!012",
        IntegraError::UnknownPlaceholder { text: "!012".into(), at: 12 }
    );

    #[test]
    fn has_placeholder_finds_any_of_the_eight() {
        assert!(has_placeholder("x!07"));
        assert!(!has_placeholder("{{ event.remote }}!08!"));
    }

    #[test]
    fn pieces_print_back_as_written() {
        let line = "http://h/c/!05?a=!02&t=!04";
        let printed: String = parse(line).unwrap().url.iter().map(ToString::to_string).collect();
        assert_eq!(printed, line);
    }
}
