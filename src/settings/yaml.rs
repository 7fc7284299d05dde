//! Every use of the YAML parser lives here, so that `serde_yaml` (frozen
//! upstream) can be swapped for another serde-compatible parser by editing
//! this one file.
//!
//! What it offers the loaders: typed parsing with each error pinned to a
//! line and column, `${ENV}` expansion (recording the values as secrets),
//! the key-by-key merge behind `extends`, and [`locate`], which finds where
//! a path such as `dial.url` sits in a file so that problems found *after*
//! parsing (a bad IQX line, a template that does not compile) are reported
//! at their place too. It does no I/O.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub use serde_yaml::Mapping;
pub use serde_yaml::Value;

/// One step of a path into a document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into a document, e.g. `dial.form.to` or `keys[1].key`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(pub Vec<Seg>);

impl Path {
    pub fn root() -> Self {
        Path(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.0.clone();
        p.push(Seg::Key(k.to_string()));
        Path(p)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.0.clone();
        p.push(Seg::Index(i));
        Path(p)
    }
    /// Parses `a.b.c` and `login[1].url` (a key, then list indices); used
    /// by code that names fixed places. A segment whose brackets do not
    /// hold numbers is one key.
    pub fn parse(dotted: &str) -> Self {
        let mut segs = Vec::new();
        for s in dotted.split('.').filter(|s| !s.is_empty()) {
            let mut key = s;
            let mut indices = Vec::new();
            // `name[1][2]`: peel indices off the end while they are numbers.
            while let Some(inner) = key.strip_suffix(']') {
                let Some(open) = inner.rfind('[').filter(|i| *i > 0) else { break };
                let Ok(n) = inner[open + 1..].parse::<usize>() else { break };
                indices.push(n);
                key = &inner[..open];
            }
            segs.push(Seg::Key(key.to_string()));
            segs.extend(indices.into_iter().rev().map(Seg::Index));
        }
        Path(segs)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A parse error with its 1-based place in the source (0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn yaml_error(e: serde_yaml::Error) -> YamlError {
    let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let mut message = e.to_string();
    // serde_yaml appends " at line L column C"; we report the place separately.
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    YamlError { line, column, message }
}

/// Parses `source` twice over one document: as `T` (for typed errors with
/// places, unknown keys included) and as a plain [`Value`] (for merging).
pub fn parse<T: DeserializeOwned>(source: &str) -> Result<(T, Value), YamlError> {
    let value: Value = serde_yaml::from_str(source).map_err(yaml_error)?;
    if value.is_null() {
        return Err(YamlError { line: 1, column: 1, message: "the file is empty".into() });
    }
    let typed: T = serde_yaml::from_str(source).map_err(yaml_error)?;
    Ok((typed, value))
}

/// Each top-level key of a mapping, with its value written back as YAML:
/// the same settings written with other spacing, quoting or comments read
/// the same, so two versions of a file compare by what they say.
pub fn top_level(value: &Value) -> std::collections::BTreeMap<String, String> {
    let Value::Mapping(map) = value else { return Default::default() };
    map.iter()
        .map(|(k, v)| {
            let key = k.as_str().map_or_else(|| serde_yaml::to_string(k).unwrap_or_default(), str::to_string);
            (key, serde_yaml::to_string(v).unwrap_or_default())
        })
        .collect()
}

/// `vars:` as JSON values. YAML mapping keys that are not strings (an
/// unquoted `201:` under a desk-phone branch's `phones:`) are read as the
/// text they are written as, since an extension is text to the gateway.
pub fn json_vars<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::collections::BTreeMap<String, serde_json::Value>>, D::Error> {
    let vars: Option<std::collections::BTreeMap<String, Value>> = Option::deserialize(d)?;
    Ok(vars.map(|m| m.into_iter().map(|(k, v)| (k, to_json(v))).collect()))
}

/// A YAML value as JSON; keys as text (see [`json_vars`]).
pub fn to_json(v: Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => J::from(i),
            (None, Some(u)) => J::from(u),
            _ => n.as_f64().and_then(serde_json::Number::from_f64).map_or(J::Null, J::Number),
        },
        Value::String(s) => J::String(s),
        Value::Sequence(items) => J::Array(items.into_iter().map(to_json).collect()),
        Value::Mapping(m) => J::Object(m.into_iter().map(|(k, v)| (key_text(k), to_json(v))).collect()),
        Value::Tagged(t) => to_json(t.value),
    }
}

fn key_text(k: Value) -> String {
    match k {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => serde_yaml::to_string(&other).unwrap_or_default().trim().to_string(),
    }
}

/// Converts an already-parsed (and possibly merged) value to `T`.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_yaml::from_value(value).map_err(|e| yaml_error(e).message)
}

/// Where `path` starts in `source`, as 1-based (line, column); `None` when
/// the path is not in this document.
pub fn locate(source: &str, path: &Path) -> Option<(usize, usize)> {
    let de = serde_yaml::Deserializer::from_str(source);
    match (Locate { path: &path.0 }).deserialize(de) {
        Ok(()) => None,
        Err(e) => e.location().map(|l| (l.line(), l.column())),
    }
}

const FOUND: &str = "webdial-locate-found";

/// Walks down `path`; at its end, fails on purpose so that the parser
/// attaches the node's position to the error.
struct Locate<'a> {
    path: &'a [Seg],
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        while let Some(key) = map.next_key::<Value>()? {
            let matches = match (first, &key) {
                (Seg::Key(k), Value::String(s)) => k == s,
                (Seg::Key(k), other) => serde_yaml::to_string(other).map(|s| s.trim() == k).unwrap_or(false),
                _ => false,
            };
            if matches {
                map.next_value_seed(Locate { path: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let mut i = 0;
        loop {
            if *first == Seg::Index(i) {
                if seq.next_element_seed(Locate { path: rest })?.is_none() {
                    return Ok(());
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
}

impl Locate<'_> {
    fn leaf<E: de::Error>(self) -> Result<(), E> {
        if self.path.is_empty() { Err(E::custom(FOUND)) } else { Ok(()) }
    }
}

/// Merges `over` onto `base` the way `extends` promises: mappings merge key
/// by key (recursively), anything else in `over` replaces what `base` had.
pub fn merge(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, v) in o {
                let merged = match b.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Mapping(b)
        }
        (_, over) => over,
    }
}

/// Replaces every `${NAME}` in string values with the environment variable
/// NAME, calling `secret` with each value read so it can be kept out of
/// logs and answers. Returns one `(path, message)` per missing variable.
pub fn expand_env(
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    secret: &mut dyn FnMut(&str),
) -> Vec<(Path, String)> {
    let mut errors = Vec::new();
    expand_at(value, &Path::root(), lookup, secret, &mut errors);
    errors
}

fn expand_at(
    value: &mut Value,
    at: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    secret: &mut dyn FnMut(&str),
    errors: &mut Vec<(Path, String)>,
) {
    match value {
        Value::String(s) if s.contains("${") => match expand_str(s, lookup, secret) {
            Ok(v) => *s = v,
            Err(msg) => errors.push((at.clone(), msg)),
        },
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                let key = k.as_str().map(str::to_string).unwrap_or_default();
                expand_at(v, &at.key(&key), lookup, secret, errors);
            }
        }
        Value::Sequence(s) => {
            for (i, v) in s.iter_mut().enumerate() {
                expand_at(v, &at.index(i), lookup, secret, errors);
            }
        }
        Value::Tagged(t) => expand_at(&mut t.value, at, lookup, secret, errors),
        _ => {}
    }
}

/// Expands `${NAME}` references in one string (pure; `lookup` supplies values).
pub fn expand_str(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    secret: &mut dyn FnMut(&str),
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("`${` without a closing `}`".into());
        };
        let name = &after[..end];
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!("`${{{name}}}` is not a valid environment variable name"));
        }
        match lookup(name) {
            Some(v) => {
                secret(&v);
                out.push_str(&v);
            }
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `10s`, `1500ms`, `2m`, or a plain number of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawDuration {
    Seconds(u64),
    Text(String),
}

impl RawDuration {
    pub fn parse(&self) -> Result<Duration, String> {
        match self {
            RawDuration::Seconds(s) => Ok(Duration::from_secs(*s)),
            RawDuration::Text(t) => humantime::parse_duration(t.trim())
                .map_err(|e| format!("{t:?} is not a duration (like 10s or 1500ms): {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_nested_keys_and_list_items() {
        let src = "name: x\ndial:\n  method: GET\n  url: \"http://h/\"\nkeys:\n  - a\n  - b\n";
        assert_eq!(locate(src, &Path::parse("dial.url")), Some((4, 8)));
        assert_eq!(locate(src, &Path::parse("dial")), Some((3, 3)));
        assert_eq!(locate(src, &Path::root().key("keys").index(1)), Some((7, 5)));
        assert_eq!(locate(src, &Path::parse("nope")), None);
        assert_eq!(locate(src, &Path::parse("keys[1]")), Some((7, 5)));
        assert_eq!(Path::parse("login[0].save.token"), Path::root().key("login").index(0).key("save").key("token"));
        assert_eq!(Path::parse("a[1][2]"), Path::root().key("a").index(1).index(2));
        assert_eq!(Path::parse("a[b]"), Path::root().key("a[b]"), "not an index: one key");
    }

    #[test]
    fn vars_read_unquoted_keys_as_text() {
        #[derive(serde::Deserialize)]
        struct Doc {
            #[serde(default, deserialize_with = "json_vars")]
            vars: Option<std::collections::BTreeMap<String, serde_json::Value>>,
        }
        let doc: Doc = serde_yaml::from_str("vars: {phones: {201: 192.0.2.11, 0202: x, true: y}, n: 1.5}").unwrap();
        let vars = doc.vars.unwrap();
        assert_eq!(
            vars["phones"],
            serde_json::json!({"201": "192.0.2.11", "0202": "x", "true": "y"}),
            "a leading 0 stays"
        );
        assert_eq!(vars["n"], serde_json::json!(1.5));
        let doc: Doc = serde_yaml::from_str("other: 1").unwrap_or(Doc { vars: None });
        assert!(doc.vars.is_none());
    }

    #[test]
    fn merge_is_key_by_key_and_child_wins() {
        let base: Value = serde_yaml::from_str("a: 1\nm: {x: 1, y: 2}\ns: str").unwrap();
        let over: Value = serde_yaml::from_str("m: {y: 3}\ns: {k: v}").unwrap();
        let merged = merge(base, over);
        let want: Value = serde_yaml::from_str("a: 1\nm: {x: 1, y: 3}\ns: {k: v}").unwrap();
        assert_eq!(merged, want);
    }

    #[test]
    fn env_expansion_records_secrets_and_reports_missing() {
        let lookup = |n: &str| (n == "TOKEN").then(|| "s3cr3t".to_string());
        let mut seen = Vec::new();
        let got = expand_str("Bearer ${TOKEN}!", &lookup, &mut |v| seen.push(v.to_string()));
        assert_eq!(got.as_deref(), Ok("Bearer s3cr3t!"));
        assert_eq!(seen, ["s3cr3t"]);
        assert!(expand_str("${MISSING}", &lookup, &mut |_| {}).unwrap_err().contains("MISSING is not set"));
        assert!(expand_str("${1X}", &lookup, &mut |_| {}).is_err());
        assert!(expand_str("${OPEN", &lookup, &mut |_| {}).is_err());
    }
}
