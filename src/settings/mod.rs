//! `webdial.yaml`: the server's own settings — where to listen, where the
//! profiles are, API keys, the duplicate window. Paths are relative to the
//! file itself; `${ENV}` values are read at load and are secrets.

pub mod diagnostic;
pub mod yaml;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::guard::keys::{ApiKey, Keys};
use crate::profile::RawDuration;
use crate::settings::diagnostic::Diagnostic;

/// Where the gateway listens when neither the file nor `--listen` says.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// How long the same dial again is answered from the first one.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(5);

/// Server settings, validated.
#[derive(Debug)]
pub struct Config {
    /// The file these settings came from.
    pub file: PathBuf,
    pub listen: SocketAddr,
    pub profiles: PathBuf,
    pub keys: Keys,
    pub dedupe_window: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    profiles: Option<String>,
    keys: Option<Vec<RawKey>>,
    dedupe_window: Option<RawDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: String,
    key: String,
    branches: Vec<String>,
    rate: Option<String>,
}

impl Config {
    /// Reads `file`. A missing file is not an error when it is the default
    /// `webdial.yaml`: the defaults (and `./profiles`) apply.
    pub fn load(
        file: &Path,
        must_exist: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<Diagnostic>> {
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
        let raw: RawConfig = if source.trim().is_empty() {
            RawConfig::default()
        } else {
            let (_, mut value) = yaml::parse::<RawConfig>(&source)
                .map_err(|e| vec![Diagnostic::new(file, e.line, e.column, e.message)])?;
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
        let mut keys = Vec::new();
        for (i, k) in raw.keys.unwrap_or_default().into_iter().enumerate() {
            let here = yaml::Path::parse("keys").index(i);
            // Keys are secrets whether or not they came from the environment.
            crate::secrets::register(&k.key);
            if keys.iter().any(|other: &ApiKey| other.name == k.name) {
                errors.push(at(&here.key("name"), format!("key name {:?} is used twice", k.name)));
                continue;
            }
            match ApiKey::new(k.name, k.key, k.branches, k.rate.as_deref()) {
                Ok(key) => keys.push(key),
                Err(m) => errors.push(at(&here, m)),
            }
        }
        let profiles = base.join(raw.profiles.as_deref().unwrap_or("profiles"));
        if errors.is_empty() {
            Ok(Config { file: file.to_path_buf(), listen, profiles, keys: Keys::new(keys), dedupe_window })
        } else {
            Err(errors)
        }
    }
}
