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

// ---- number rules (per branch) ----------------------------------------------

use phonenumber::country;
use regex::Regex;

/// What `{{ number }}` becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberFormat {
    /// The input with separators removed (the default).
    #[default]
    Digits,
    /// `+442079460000`
    E164,
    /// `02079460000`
    National,
    /// `00442079460000` (the country's own international prefix)
    International,
}

/// A branch's number rules (`number:` in a profile), compiled.
#[derive(Debug, Clone, Default)]
pub struct NumberRules {
    pub country: Option<country::Id>,
    pub format: NumberFormat,
    pub outside_line: Option<String>,
    pub internal: Option<Regex>,
    pub allow: Vec<Regex>,
    pub deny: Vec<Regex>,
}

/// A number after the branch's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// What templates see as `number`.
    pub dial: String,
    /// The E.164 form, when the number could be read.
    pub e164: Option<String>,
    /// True when the `internal` pattern matched (an extension).
    pub internal: bool,
}

/// Why the rules refuse a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// 400: the number cannot be read where the rules need it read.
    #[error("{0}")]
    Unreadable(String),
    /// 403: the policy refuses it; the message names the rule.
    #[error("{0}")]
    Forbidden(String),
}

impl NumberRules {
    /// Applies the rules to a validated dial string.
    pub fn apply(&self, input: &DialString) -> Result<Resolved, RuleError> {
        let digits = input.as_str();
        if self.internal.as_ref().is_some_and(|re| re.is_match(digits)) {
            return Ok(Resolved { dial: digits.to_string(), e164: None, internal: true });
        }
        // Reading a number with libphonenumber's rules is the costly part of a
        // dial: only done when the format or the policy needs it.
        let needs_reading = self.format != NumberFormat::Digits || !self.allow.is_empty() || !self.deny.is_empty();
        let parsed = if needs_reading { Some(self.parse(digits).map_err(RuleError::Unreadable)?) } else { None };
        let e164 = parsed.as_ref().map(|p| p.format().mode(phonenumber::Mode::E164).to_string());
        if let Some(e) = &e164 {
            if let Some(rule) = self.deny.iter().find(|re| re.is_match(e)) {
                return Err(RuleError::Forbidden(format!("{e} is refused by the deny rule {}", rule.as_str())));
            }
            if !self.allow.is_empty() && !self.allow.iter().any(|re| re.is_match(e)) {
                let rules: Vec<&str> = self.allow.iter().map(Regex::as_str).collect();
                return Err(RuleError::Forbidden(format!("{e} matches no allow rule ({})", rules.join(", "))));
            }
        }
        let formatted = match (&parsed, self.format) {
            (Some(p), format) if format != NumberFormat::Digits => self.format_as(p, format),
            _ => digits.to_string(),
        };
        let dial = format!("{}{formatted}", self.outside_line.as_deref().unwrap_or(""));
        Ok(Resolved { dial, e164, internal: false })
    }

    fn parse(&self, digits: &str) -> Result<phonenumber::PhoneNumber, String> {
        let region = if digits.starts_with('+') { None } else { self.country };
        if region.is_none() && !digits.starts_with('+') {
            return Err(format!("{digits} has no country code and the branch sets no `number.country`"));
        }
        let where_ = self.country.map(|c| format!(" in {}", c.as_ref())).unwrap_or_default();
        let p = phonenumber::parse(region, digits)
            .map_err(|e| format!("{digits} cannot be read as a phone number{where_}: {e}"))?;
        if !phonenumber::is_valid(&p) {
            return Err(format!("{digits} is not a valid phone number{where_}"));
        }
        Ok(p)
    }

    /// Formats for the template filters (`{{ number | e164 }}`…). Unreadable input is an error.
    pub fn filter(&self, value: &str, format: NumberFormat) -> Result<String, String> {
        if format == NumberFormat::Digits {
            return Ok(value.chars().filter(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#')).collect());
        }
        let input = DialString::parse(value).map_err(|e| format!("{value:?} {e}"))?;
        self.parse(input.as_str()).map(|p| self.format_as(&p, format))
    }

    /// `p` in one of the formats, digits only (plus `+` for E.164).
    fn format_as(&self, p: &phonenumber::PhoneNumber, format: NumberFormat) -> String {
        let e164 = || p.format().mode(phonenumber::Mode::E164).to_string();
        match format {
            NumberFormat::E164 | NumberFormat::Digits => e164(),
            NumberFormat::National => {
                p.format().mode(phonenumber::Mode::National).to_string().chars().filter(char::is_ascii_digit).collect()
            }
            NumberFormat::International => {
                format!("{}{}", international_prefix(self.country), e164().trim_start_matches('+'))
            }
        }
    }
}

/// The prefix for calling abroad from the branch's country (`00`, `011`…).
fn international_prefix(country: Option<country::Id>) -> String {
    let meta = country.and_then(|c| phonenumber::metadata::DATABASE.by_id(c.as_ref()));
    let prefix = meta.and_then(|m| {
        m.preferred_international_prefix().map(str::to_string).or_else(|| {
            m.international_prefix().map(|r| r.as_str().to_string()).filter(|s| s.chars().all(|c| c.is_ascii_digit()))
        })
    });
    prefix.unwrap_or_else(|| "00".to_string())
}

/// Parses a region code (`GB`, `us`).
pub fn parse_country(code: &str) -> Result<country::Id, String> {
    code.trim()
        .to_ascii_uppercase()
        .parse::<country::Id>()
        .map_err(|_| format!("{code:?} is not a region code like GB or US"))
}

#[cfg(test)]
mod rule_tests {
    use super::*;

    fn gb(format: NumberFormat) -> NumberRules {
        NumberRules { country: Some(country::Id::GB), format, ..Default::default() }
    }

    fn apply(rules: &NumberRules, input: &str) -> Result<String, RuleError> {
        rules.apply(&DialString::parse(input).unwrap()).map(|r| r.dial)
    }

    #[test]
    fn one_number_written_three_ways() {
        for input in ["+44 (0)20 7946 0000", "0044 20 7946 0000", "020 7946 0000"] {
            assert_eq!(apply(&gb(NumberFormat::E164), input).as_deref(), Ok("+442079460000"), "{input}");
            assert_eq!(apply(&gb(NumberFormat::National), input).as_deref(), Ok("02079460000"), "{input}");
            assert_eq!(apply(&gb(NumberFormat::International), input).as_deref(), Ok("00442079460000"), "{input}");
        }
    }

    #[test]
    fn digits_keeps_the_input_and_reads_it_only_when_it_can() {
        assert_eq!(apply(&gb(NumberFormat::Digits), "020 7946 0000").as_deref(), Ok("02079460000"));
        assert_eq!(apply(&gb(NumberFormat::Digits), "*72#").as_deref(), Ok("*72#"));
        assert!(matches!(apply(&gb(NumberFormat::E164), "*72#"), Err(RuleError::Unreadable(_))));
        assert!(matches!(apply(&gb(NumberFormat::E164), "12"), Err(RuleError::Unreadable(_))));
    }

    #[test]
    fn us_international_prefix_is_011() {
        let us =
            NumberRules { country: Some(country::Id::US), format: NumberFormat::International, ..Default::default() };
        assert_eq!(apply(&us, "+44 20 7946 0000").as_deref(), Ok("011442079460000"));
    }

    #[test]
    fn outside_line_only_for_external_numbers_and_internal_is_untouched() {
        let rules = NumberRules {
            outside_line: Some("9".into()),
            internal: Some(Regex::new(r"^[1-9]\d{2,3}$").unwrap()),
            allow: vec![Regex::new(r"^\+44").unwrap()],
            ..gb(NumberFormat::National)
        };
        assert_eq!(apply(&rules, "+44 20 7946 0000").as_deref(), Ok("902079460000"));
        let r = rules.apply(&DialString::parse("201").unwrap()).unwrap();
        assert_eq!((r.dial.as_str(), r.internal), ("201", true));
    }

    #[test]
    fn deny_wins_over_allow_and_names_the_rule() {
        let rules = NumberRules {
            allow: vec![Regex::new(r"^\+44").unwrap()],
            deny: vec![Regex::new(r"^\+449").unwrap()],
            ..gb(NumberFormat::E164)
        };
        let e = apply(&rules, "09098 790000").unwrap_err();
        assert_eq!(e, RuleError::Forbidden(r"+449098790000 is refused by the deny rule ^\+449".into()));
        let e = apply(&rules, "+1 212 555 0100").unwrap_err();
        assert!(matches!(&e, RuleError::Forbidden(m) if m.contains("no allow rule")), "{e:?}");
        assert!(apply(&rules, "020 7946 0000").is_ok());
    }

    #[test]
    fn filters_format_any_value() {
        let rules = gb(NumberFormat::Digits);
        assert_eq!(rules.filter("020 7946 0000", NumberFormat::E164).as_deref(), Ok("+442079460000"));
        assert_eq!(rules.filter("+442079460000", NumberFormat::National).as_deref(), Ok("02079460000"));
        assert!(rules.filter("abc", NumberFormat::E164).is_err());
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
            assert_eq!(DialString::parse(input).map(|d| d.0), Ok(want.to_string()), "{input}");
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
            assert_eq!(DialString::parse(input).as_ref().err(), Some(want), "{input:?}");
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
