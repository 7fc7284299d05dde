//! `webdial.yaml`: the server's own settings (where to listen, where the
//! profiles are). Paths in it are relative to the file itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnostic::Diagnostic;
use crate::yaml;

/// Where the gateway listens when neither the file nor `--listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Server settings, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file these settings came from.
    pub file: PathBuf,
    pub listen: SocketAddr,
    pub profiles: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    profiles: Option<String>,
}

impl Config {
    /// Reads `file`. A missing file is not an error when it is the default
    /// `webdial.yaml`: the defaults (and `./profiles`) apply.
    pub fn load(file: &Path, must_exist: bool) -> Result<Config, Vec<Diagnostic>> {
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let source = match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => String::new(),
            Err(e) => {
                return Err(vec![Diagnostic::whole_file(
                    file,
                    format!("cannot read: {e}"),
                )]);
            }
        };
        let raw: RawConfig = if source.trim().is_empty() {
            RawConfig::default()
        } else {
            match yaml::parse::<RawConfig>(&source) {
                Ok((raw, _)) => raw,
                Err(e) => return Err(vec![Diagnostic::new(file, e.line, e.column, e.message)]),
            }
        };
        let mut errors = Vec::new();
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                let (line, col) =
                    yaml::locate(&source, &yaml::Path::parse("listen")).unwrap_or((1, 1));
                errors.push(Diagnostic::new(
                    file,
                    line,
                    col,
                    format!("listen {listen_text:?} is not an address like 127.0.0.1:8080"),
                ));
                DEFAULT_LISTEN
                    .parse()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)))
            }
        };
        let profiles = base.join(raw.profiles.as_deref().unwrap_or("profiles"));
        if errors.is_empty() {
            Ok(Config {
                file: file.to_path_buf(),
                listen,
                profiles,
            })
        } else {
            Err(errors)
        }
    }
}
