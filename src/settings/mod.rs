//! `webdial.yaml`: the server's own settings — where to listen, where the
//! profiles are, API keys, the duplicate window, the browser origins
//! allowed (CORS), where the dial log is kept and for how long. Paths are
//! relative to the file itself; `${ENV}` values are read at load and are
//! secrets.
//!
//! Everything here is plain, validated data: what uses it (the key check,
//! the once-per-click store) lives above and keeps its runtime state apart.

pub mod diagnostic;
pub mod pop;
pub mod yaml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::settings::diagnostic::Diagnostic;
pub use pop::PopLink;
use yaml::RawDuration;

/// Where the gateway listens when neither the file nor `--listen` says.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// How long the same dial again is answered from the first one.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(5);
/// The shortest API key accepted.
pub const MIN_KEY_LEN: usize = 16;
/// The dial log's file when `data:` is not given, beside `webdial.yaml`: a
/// gateway keeps its dials across a restart unless told otherwise.
pub const DEFAULT_DATA: &str = "webdial.db";
/// How long the dial log keeps a row when `retention:` is not given.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where the dial log lives (`data:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// `":memory:"`: kept in this process only, gone at exit.
    Memory,
    /// A SQLite file (relative paths already resolved against `webdial.yaml`).
    File(PathBuf),
}

impl std::fmt::Display for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Data::Memory => f.write_str(":memory:"),
            Data::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Server settings, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file these settings came from.
    pub file: PathBuf,
    pub listen: SocketAddr,
    pub profiles: PathBuf,
    pub keys: Vec<KeySpec>,
    /// Zero turns the duplicate window off.
    pub dedupe_window: Duration,
    /// `hooks:`, every branch's, as written: compiled with the profiles,
    /// since a hook's request is a template.
    pub hooks: Option<Section>,
    /// The web origins whose pages may call the API from a browser.
    pub cors: Cors,
    /// Reload by itself when a file under the profiles folder changes
    /// (`watch_profiles: false`: only on SIGHUP or `POST /v1/admin/reload`,
    /// e.g. where the folder is on a network file system).
    pub watch_profiles: bool,
    /// Each top-level key of the file as written (before `${ENV}`), in a
    /// normal form: a reload compares it with the file now to tell which
    /// settings changed, whatever settings exist.
    pub written: BTreeMap<String, String>,
    /// The dial log (`data:`).
    pub data: Data,
    /// How long the dial log keeps a row; never zero.
    pub retention: Duration,
    /// `pop: {link}`: the screen-pop page's link for an incoming call.
    pub pop_link: Option<PopLink>,
}

/// A part of `webdial.yaml` that a later layer compiles, with `${ENV}`
/// already read, kept with the file's text so that its problems are
/// reported at their place.
#[derive(Clone)]
pub struct Section {
    pub value: yaml::Value,
    pub source: Arc<str>,
}

impl std::fmt::Debug for Section {
    // The file's text may hold API keys; the value is what matters.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Section").field("value", &self.value).finish_non_exhaustive()
    }
}

/// `cors: {origins: [...]}`: exact origins (`https://crm.example.com`),
/// normalized as browsers send them (lowercase, no default port, no path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    pub origins: Vec<String>,
}

impl Cors {
    /// Reads one origin as written, or says what is wrong with it.
    pub fn origin(text: &str) -> Result<String, String> {
        if text.trim() == "*" {
            return Err("`*` is not allowed: list each origin whose pages may use the API keys".into());
        }
        let url = url::Url::parse(text.trim()).map_err(|e| format!("origin {text:?} is not a URL: {e}"))?;
        let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare || !url.username().is_empty()
        {
            return Err(format!("origin {text:?} is not like https://crm.example.com (scheme, host, optional port)"));
        }
        Ok(url.origin().ascii_serialization())
    }
}

/// One configured API key.
#[derive(Clone)]
pub struct KeySpec {
    pub name: String,
    /// The key itself: a secret, never logged or shown.
    pub secret: String,
    /// `None` = every branch (`"*"`).
    pub branches: Option<Vec<String>>,
    pub rate: Option<Rate>,
    /// May use `/v1/admin/*` (reload).
    pub admin: bool,
}

impl std::fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySpec")
            .field("name", &self.name)
            .field("branches", &self.branches)
            .field("rate", &self.rate)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// `N/sec`, `N/min` or `N/hour`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
    /// As written (`30/min`), for messages.
    pub text: String,
}

impl Rate {
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad = || format!("rate {text:?} is not like 30/min (N/sec, N/min or N/hour)");
        let (n, unit) = text.split_once('/').ok_or_else(bad)?;
        let count: NonZeroU32 = n.trim().parse().map_err(|_| bad())?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if (period / count.get()).is_zero() {
            return Err(format!("rate {text:?} is too fast"));
        }
        Ok(Rate { count, period, text: text.to_string() })
    }
}

impl KeySpec {
    /// `branches`: `["*"]` or names.
    pub fn new(name: String, secret: String, branches: Vec<String>, rate: Option<&str>) -> Result<Self, String> {
        if secret.len() < MIN_KEY_LEN {
            return Err(format!("key {name:?} is shorter than {MIN_KEY_LEN} characters: use a long random key"));
        }
        let branches = if branches.iter().any(|b| b == "*") { None } else { Some(branches) };
        let rate = rate.map(Rate::parse).transpose()?;
        Ok(KeySpec { name, secret, branches, rate, admin: false })
    }
}

/// A scalar read as text, wherever configuration or a request may write a
/// value either way: `org: 12` is the text "12", `"dry_run": true` reads
/// like `"dry_run": "true"`. Lists, maps and null are refused.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Scalar(s)),
            serde_json::Value::Number(n) => Ok(Scalar(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Scalar(b.to_string())),
            other => Err(serde::de::Error::custom(format!("expected text, a number or true/false, found {other}"))),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    listen: Option<String>,
    profiles: Option<String>,
    keys: Option<Vec<RawKey>>,
    dedupe_window: Option<RawDuration>,
    /// Checked where hooks are compiled (`profile::hooks`).
    hooks: Option<yaml::Value>,
    cors: Option<RawCors>,
    watch_profiles: Option<bool>,
    data: Option<String>,
    retention: Option<RawDuration>,
    pop: Option<RawPop>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPop {
    link: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCors {
    origins: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: String,
    key: String,
    branches: Vec<String>,
    rate: Option<String>,
    #[serde(default)]
    admin: bool,
}

impl Settings {
    /// Settings for tests and embedding: `profiles` as given, no keys, the
    /// default duplicate window, the dial log in memory (nothing written
    /// beside the caller's profiles).
    pub fn for_profiles(profiles: &Path) -> Settings {
        Settings {
            file: profiles.join("webdial.yaml"),
            listen: DEFAULT_LISTEN,
            profiles: profiles.to_path_buf(),
            keys: Vec::new(),
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            hooks: None,
            cors: Cors::default(),
            watch_profiles: true,
            written: BTreeMap::new(),
            data: Data::Memory,
            retention: DEFAULT_RETENTION,
            pop_link: None,
        }
    }

    /// Reads `file`. A missing file is not an error when it is the default
    /// `webdial.yaml` (`must_exist` false): the defaults (and `./profiles`) apply.
    pub fn load(
        file: &Path,
        must_exist: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, Vec<Diagnostic>> {
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let source = match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => String::new(),
            Err(e) => return Err(vec![Diagnostic::whole_file(file, format!("cannot read: {e}"))]),
        };
        let at = |path: &yaml::Path, message: String| {
            let (line, col) = yaml::locate(&source, path).unwrap_or((1, 1));
            Diagnostic::new(file, line, col, message)
        };
        let mut written = BTreeMap::new();
        let raw: RawSettings = if source.trim().is_empty() {
            RawSettings::default()
        } else {
            let (_, mut value) = yaml::parse::<RawSettings>(&source)
                .map_err(|e| vec![Diagnostic::new(file, e.line, e.column, e.message)])?;
            written = yaml::top_level(&value);
            let errors = yaml::expand_env(&mut value, env, &mut |s| crate::secrets::register(s));
            if !errors.is_empty() {
                return Err(errors.into_iter().map(|(p, m)| at(&p, m)).collect());
            }
            yaml::from_value(value).map_err(|m| vec![Diagnostic::whole_file(file, m)])?
        };

        let mut errors = Vec::new();
        let listen = match raw.listen.as_deref().map(str::parse::<SocketAddr>) {
            None => DEFAULT_LISTEN,
            Some(Ok(a)) => a,
            Some(Err(_)) => {
                errors.push(at(
                    &yaml::Path::parse("listen"),
                    format!("listen {:?} is not an address like 127.0.0.1:8080", raw.listen.unwrap_or_default()),
                ));
                DEFAULT_LISTEN
            }
        };
        let dedupe_window = match raw.dedupe_window.as_ref().map(RawDuration::parse) {
            None => DEFAULT_DEDUPE_WINDOW,
            Some(Ok(d)) => d,
            Some(Err(m)) => {
                errors.push(at(&yaml::Path::parse("dedupe_window"), m));
                DEFAULT_DEDUPE_WINDOW
            }
        };
        let retention = match raw.retention.as_ref().map(RawDuration::parse) {
            None => DEFAULT_RETENTION,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                errors.push(at(&yaml::Path::parse("retention"), "retention must be longer than 0s (like 30d)".into()));
                DEFAULT_RETENTION
            }
            Some(Err(m)) => {
                errors.push(at(&yaml::Path::parse("retention"), m));
                DEFAULT_RETENTION
            }
        };
        let data = match raw.data.as_deref().map(str::trim) {
            Some(":memory:") => Data::Memory,
            Some("") => {
                errors.push(at(
                    &yaml::Path::parse("data"),
                    "data is empty: name a file (like webdial.db) or \":memory:\"".into(),
                ));
                Data::Memory
            }
            other => Data::File(base.join(other.unwrap_or(DEFAULT_DATA))),
        };
        let mut keys: Vec<KeySpec> = Vec::new();
        for (i, k) in raw.keys.unwrap_or_default().into_iter().enumerate() {
            let here = yaml::Path::parse("keys").index(i);
            // Keys are secrets whether or not they came from the environment.
            crate::secrets::register(&k.key);
            if keys.iter().any(|other| other.name == k.name) {
                errors.push(at(&here.key("name"), format!("key name {:?} is used twice", k.name)));
                continue;
            }
            match KeySpec::new(k.name, k.key, k.branches, k.rate.as_deref()) {
                Ok(key) => keys.push(KeySpec { admin: k.admin, ..key }),
                Err(m) => errors.push(at(&here, m)),
            }
        }
        let mut cors = Cors::default();
        for (i, origin) in raw.cors.map(|c| c.origins).unwrap_or_default().iter().enumerate() {
            match Cors::origin(origin) {
                Ok(o) if !cors.origins.contains(&o) => cors.origins.push(o),
                Ok(_) => {}
                Err(m) => errors.push(at(&yaml::Path::parse("cors.origins").index(i), m)),
            }
        }
        let profiles = base.join(raw.profiles.as_deref().unwrap_or("profiles"));
        // The profiles folder is watched: a log in it would reload the
        // profiles at every commit.
        if matches!(&data, Data::File(f) if f.starts_with(&profiles)) {
            errors.push(at(
                &yaml::Path::parse("data"),
                format!("data {data} is inside the profiles folder: keep the dial log elsewhere"),
            ));
        }
        let pop_link = match raw.pop.and_then(|p| p.link).map(|l| PopLink::parse(&l)) {
            None => None,
            Some(Ok(link)) => Some(link),
            Some(Err(m)) => {
                errors.push(at(&yaml::Path::parse("pop.link"), m));
                None
            }
        };
        let hooks = raw.hooks.map(|value| Section { value, source: Arc::from(source.as_str()) });
        if errors.is_empty() {
            let watch_profiles = raw.watch_profiles.unwrap_or(true);
            Ok(Settings {
                file: file.to_path_buf(),
                listen,
                profiles,
                keys,
                dedupe_window,
                cors,
                watch_profiles,
                written,
                hooks,
                data,
                retention,
                pop_link,
            })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        let r = Rate::parse("30/min").unwrap();
        assert_eq!((r.count.get(), r.period), (30, Duration::from_secs(60)));
        assert!(Rate::parse("30 per min").is_err());
        assert!(Rate::parse("0/min").is_err());
    }

    fn load(text: &str) -> Result<Settings, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("webdial.yaml");
        std::fs::write(&file, text).unwrap();
        Settings::load(&file, true, &|_| None)
    }

    #[test]
    fn data_is_beside_the_file_by_default_and_retention_is_a_duration() {
        let s = load("listen: 127.0.0.1:0\n").unwrap();
        assert_eq!(s.data, Data::File(s.file.parent().unwrap().join("webdial.db")));
        assert_eq!(s.retention, DEFAULT_RETENTION);
        let s = load("data: logs/dials.sqlite\nretention: 7d\n").unwrap();
        assert_eq!(s.data, Data::File(s.file.parent().unwrap().join("logs/dials.sqlite")));
        assert_eq!(s.retention, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(load("data: /var/lib/webdial/x.db\n").unwrap().data, Data::File("/var/lib/webdial/x.db".into()));
        assert_eq!(load("data: \":memory:\"\n").unwrap().data, Data::Memory);
    }

    #[test]
    fn a_bad_data_or_retention_is_reported_at_its_place() {
        let shown = |text: &str| load(text).unwrap_err().iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n");
        assert!(shown("retention: soon\n").contains("webdial.yaml:1:12: \"soon\" is not a duration"));
        assert!(shown("retention: 0s\n").contains("webdial.yaml:1:12: retention must be longer than 0s"));
        assert!(shown("data: \"\"\n").contains("webdial.yaml:1:7: data is empty"));
        let inside = shown("data: profiles/dials.db\n");
        assert!(
            inside.contains("webdial.yaml:1:7: data ") && inside.contains("inside the profiles folder"),
            "{inside}"
        );
    }

    #[test]
    fn origins_are_exact_and_normal() {
        assert_eq!(Cors::origin("https://CRM.example.com").unwrap(), "https://crm.example.com");
        assert_eq!(Cors::origin("https://crm.example.com:443/").unwrap(), "https://crm.example.com");
        assert_eq!(Cors::origin("http://127.0.0.1:3000").unwrap(), "http://127.0.0.1:3000");
        for bad in ["*", "crm.example.com", "https://crm.example.com/app", "ftp://x", "https://a@b"] {
            assert!(Cors::origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_pop_link_is_reported_at_its_place() {
        let shown = |text: &str| load(text).unwrap_err().iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n");
        let s = load("pop:\n  link: \"https://crm.example.com/?q={{ event.remote }}\"\n").unwrap();
        assert!(s.pop_link.is_some());
        let bad = shown("pop:\n  link: \"https://{{ event.remote }}/\"\n");
        assert!(bad.contains("webdial.yaml:2:9: pop.link"), "{bad}");
        assert!(shown("pop: {lnk: x}\n").contains("webdial.yaml:1:"), "an unknown key is located");
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(KeySpec::new("k".into(), "short".into(), vec!["*".into()], None).is_err());
    }
}
