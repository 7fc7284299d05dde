//! Phone numbers and extensions as they arrive from callers, and what they
//! become before a template sees them.
//!
//! Input is forgiving about presentation and strict about content: the
//! separators people type (space, `-`, `.`, `(`, `)`, `/`) are dropped;
//! digits, one leading `+`, `*` and `#` are kept; anything else (a letter,
//! `&`, `=`, `%`…) refuses the whole request before anything is sent. This
//! is what guarantees that a number can never carry URL syntax to a PBX.

use std::fmt;

/// Longest dial string accepted (E.164 allows 15 digits; room for prefixes,
/// `*`/`#` feature codes and extensions).
pub const MAX_LEN: usize = 32;

/// A dial string made only of digits, `*`, `#` and at most one leading `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialString(String);

/// Why an input is not a dial string. The message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("contains {0:?}: only digits, a leading +, * and # are allowed")]
    BadChar(char),
    #[error("has a + that is not at the start")]
    MisplacedPlus,
}

impl DialString {
    /// Normalizes caller input (see the module docs).
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let mut out = String::with_capacity(raw.len());
        for c in raw.trim().chars() {
            match c {
                ' ' | '-' | '.' | '(' | ')' | '/' | '\t' => {}
                '0'..='9' | '*' | '#' => out.push(c),
                '+' if out.is_empty() => out.push(c),
                '+' => return Err(InputError::MisplacedPlus),
                other => return Err(InputError::BadChar(other)),
            }
        }
        if out.is_empty() || out == "+" {
            return Err(InputError::Empty);
        }
        if out.len() > MAX_LEN {
            return Err(InputError::TooLong);
        }
        Ok(DialString(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DialString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Software that opens a URL without encoding it sends `+44…` as ` 44…`
/// (a `+` in a query means space). A value that starts with a space followed
/// by a digit gets its `+` back; everything else is returned as is.
pub fn restore_plus(raw: &str) -> std::borrow::Cow<'_, str> {
    let rest = raw.trim_start_matches(' ');
    if rest.len() < raw.len() && rest.starts_with(|c: char| c.is_ascii_digit()) {
        std::borrow::Cow::Owned(format!("+{rest}"))
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_table() {
        let ok: &[(&str, &str)] = &[
            ("+44 20 7946 0000", "+442079460000"),
            ("(020) 7946-0000", "02079460000"),
            ("020.7946/0000", "02079460000"),
            ("  201  ", "201"),
            ("*72#", "*72#"),
            ("+1 (555) 010-9999", "+15550109999"),
        ];
        for (input, want) in ok {
            assert_eq!(
                DialString::parse(input).map(|d| d.0),
                Ok(want.to_string()),
                "{input}"
            );
        }
        let bad: &[(&str, InputError)] = &[
            ("", InputError::Empty),
            ("  ", InputError::Empty),
            ("+", InputError::Empty),
            ("0207x", InputError::BadChar('x')),
            ("201&to=999", InputError::BadChar('&')),
            ("1=2", InputError::BadChar('=')),
            ("12%34", InputError::BadChar('%')),
            ("44+20", InputError::MisplacedPlus),
            ("++44", InputError::MisplacedPlus),
            ("1\r\n2", InputError::BadChar('\r')),
            (&"1".repeat(33), InputError::TooLong),
        ];
        for (input, want) in bad {
            assert_eq!(
                DialString::parse(input).as_ref().err(),
                Some(want),
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_leading_space_before_digits_was_a_plus() {
        assert_eq!(restore_plus(" 442079460000"), "+442079460000");
        assert_eq!(restore_plus("442079460000"), "442079460000");
        assert_eq!(restore_plus(" (020)"), " (020)");
        assert_eq!(restore_plus("+44"), "+44");
    }
}
