//! Dolibarr's click-to-dial URL mask, pasted into a profile as one line,
//! as Dolibarr's `CLICKTODIAL_URL` (or a user's own click-to-dial URL)
//! holds it:
//!
//! ```text
//! https://pbx.example.com/call.php?login=__LOGIN__&password=__PASS__&caller=__PHONEFROM__&called=__PHONETO__
//! ```
//! Dolibarr substitutes `__PHONETO__` (the number), `__PHONEFROM__` (the
//! user's extension, its "poste"), `__LOGIN__` and `__PASS__` (the user's
//! click-to-dial login and password), each URL-encoded, after first running
//! the mask through PHP's `sprintf` with the same four values as `%1$s`
//! (number), `%2$s` (extension), `%3$s` (login), `%4$s` (password): the
//! legacy form, which works here too.
//!
//! A line is a Dolibarr mask when it holds at least one of these masks
//! ([`is_mask`]). Such a line may not also use IQX's `^`/`#` (a line is one
//! or the other), and holds no whitespace. Only the exact `%1$s`…`%4$s` are
//! masks: any other `%` stays as written (Dolibarr's `sprintf` would choke
//! on it; webdial does not). The mask becomes a full-form GET template
//! ([`to_template`]) so it is checked, encoded and rendered like any other:
//! values are percent-encoded for their place, request values never choose
//! the scheme, host or port, and a `sip:`/`tel:` mask is a client-side URI.

/// What a mask stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// `__PHONETO__`, `%1$s`: the number to dial.
    PhoneTo,
    /// `__PHONEFROM__`, `%2$s`: the user's extension.
    PhoneFrom,
    /// `__LOGIN__`, `%3$s`: the profile's `vars.login`.
    Login,
    /// `__PASS__`, `%4$s`: the profile's `vars.pass`.
    Pass,
}

impl Mask {
    /// The template variable the mask becomes.
    pub fn variable(self) -> &'static str {
        match self {
            Mask::PhoneTo => "number",
            Mask::PhoneFrom => "extension",
            Mask::Login => "login",
            Mask::Pass => "pass",
        }
    }
}

/// Every mask as written, with what it stands for.
const MASKS: &[(&str, Mask)] = &[
    ("__PHONETO__", Mask::PhoneTo),
    ("__PHONEFROM__", Mask::PhoneFrom),
    ("__LOGIN__", Mask::Login),
    ("__PASS__", Mask::Pass),
    ("%1$s", Mask::PhoneTo),
    ("%2$s", Mask::PhoneFrom),
    ("%3$s", Mask::Login),
    ("%4$s", Mask::Pass),
];

/// A piece of a mask line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Mask(Mask),
}

/// Why a mask line is not valid; `at` is the byte offset in the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DolibarrError {
    #[error("a Dolibarr mask line cannot also use IQX's ^ or #: write __PHONEFROM__ and __PHONETO__")]
    IqxPlaceholder { at: usize },
    #[error("the line contains whitespace or a control character; encode it (%20) if the PBX really wants it")]
    Whitespace { at: usize },
    #[error("{{{{, {{% and {{# are template syntax, not part of a Dolibarr mask: use the full form")]
    TemplateSyntax { at: usize },
}

impl DolibarrError {
    pub fn offset(&self) -> usize {
        match self {
            DolibarrError::IqxPlaceholder { at }
            | DolibarrError::Whitespace { at }
            | DolibarrError::TemplateSyntax { at } => *at,
        }
    }
}

/// Whether `line` holds a Dolibarr mask (and so is read as one).
pub fn is_mask(line: &str) -> bool {
    MASKS.iter().any(|(m, _)| line.contains(m))
}

/// Splits a mask line into literal text and masks. Surrounding whitespace
/// is ignored.
pub fn parse(line: &str) -> Result<Vec<Piece>, DolibarrError> {
    let lead = line.len() - line.trim_start().len();
    let text = line.trim();
    if let Some(i) = text.find(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(DolibarrError::Whitespace { at: lead + i });
    }
    if let Some(i) = text.find(['^', '#']) {
        return Err(DolibarrError::IqxPlaceholder { at: lead + i });
    }
    if let Some(i) = ["{{", "{%", "{#"].iter().filter_map(|s| text.find(s)).min() {
        return Err(DolibarrError::TemplateSyntax { at: lead + i });
    }
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some((written, mask)) = MASKS.iter().find(|(m, _)| rest.starts_with(m)) {
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Mask(*mask));
            rest = &rest[written.len()..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            lit.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

/// The masks a parsed line uses.
pub fn masks(pieces: &[Piece]) -> impl Iterator<Item = Mask> + '_ {
    pieces.iter().filter_map(|p| match p {
        Piece::Mask(m) => Some(*m),
        Piece::Lit(_) => None,
    })
}

/// The line as a URL template: each mask becomes its variable
/// (`{{ number }}`, `{{ extension }}`, `{{ login }}`, `{{ pass }}`), literal
/// text stays as written.
pub fn to_template(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Lit(s) => s.clone(),
            Piece::Mask(m) => format!("{{{{ {} }}}}", m.variable()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(line: &str) -> String {
        to_template(&parse(line).unwrap())
    }

    #[test]
    fn masks_become_their_variables() {
        let cases = [
            (
                "http://h/call.php?login=__LOGIN__&password=__PASS__&caller=__PHONEFROM__&called=__PHONETO__",
                "http://h/call.php?login={{ login }}&password={{ pass }}&caller={{ extension }}&called={{ number }}",
            ),
            (
                "http://h/c?to=%1$s&from=%2$s&u=%3$s&p=%4$s",
                "http://h/c?to={{ number }}&from={{ extension }}&u={{ login }}&p={{ pass }}",
            ),
            ("http://h/c/__PHONEFROM__/__PHONETO__", "http://h/c/{{ extension }}/{{ number }}"),
            ("sip:__PHONETO__@my.sip.server", "sip:{{ number }}@my.sip.server"),
            ("  http://h/c?n=__PHONETO__  ", "http://h/c?n={{ number }}"),
            // Other `%`s stay as written; masks side by side.
            ("http://h/c?x=%20&n=__PHONETO____PHONEFROM__%5$s", "http://h/c?x=%20&n={{ number }}{{ extension }}%5$s"),
        ];
        for (line, want) in cases {
            assert!(is_mask(line), "{line}");
            assert_eq!(template(line), want, "{line}");
        }
    }

    #[test]
    fn a_line_without_masks_is_not_dolibarr() {
        for line in ["http://h/p?from=^&to=#", "tel:#", "http://h/p?x=%5$s&y=__PHONE__", "http://h/p?x=%1s"] {
            assert!(!is_mask(line), "{line}");
        }
    }

    #[test]
    fn bad_lines_are_errors_with_their_place() {
        let cases = [
            ("http://h/p?from=^&to=__PHONETO__", DolibarrError::IqxPlaceholder { at: 16 }),
            ("http://h/p?to=__PHONETO__#x", DolibarrError::IqxPlaceholder { at: 25 }),
            (" http://h/p?to=__PHONETO__ x", DolibarrError::Whitespace { at: 26 }),
            ("http://h/p?to=__PHONETO__&x={{y}}", DolibarrError::TemplateSyntax { at: 28 }),
        ];
        for (line, want) in cases {
            let got = parse(line).unwrap_err();
            assert_eq!(got, want, "{line}");
            assert_eq!(got.offset(), want.offset());
        }
    }

    #[test]
    fn masks_are_listed() {
        let p = parse("http://h/?a=__PASS__&b=%1$s").unwrap();
        assert_eq!(masks(&p).collect::<Vec<_>>(), [Mask::Pass, Mask::PhoneTo]);
    }
}
