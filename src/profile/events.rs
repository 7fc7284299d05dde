//! `events:` in a profile: how the branch's PBX authenticates its
//! notifications and how to read them. The file format is here (rather
//! than in `raw`) with its compilation, which is `events::inbound`'s.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::compile::CompileErrors;
use super::raw::Scalar;
use crate::events::inbound::{Intake, ReadSpec, Spec};
use crate::settings::yaml;
use crate::template::Templates;

/// `events:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvents {
    pub(crate) secret: Option<Scalar>,
    pub(crate) from: Option<Vec<String>>,
    pub(crate) verify: Option<String>,
    pub(crate) read: Option<RawRead>,
}

/// `events.read:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRead {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) direction: Option<String>,
    pub(crate) extension: Option<String>,
    pub(crate) remote: Option<String>,
    pub(crate) call_id: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) external_id: Option<String>,
}

/// Compiles `events:`; problems are placed at their field (`events.read.type`).
pub(super) fn compile(
    templates: &mut Templates,
    raw: RawEvents,
    vars: &BTreeMap<String, serde_json::Value>,
    errors: &mut CompileErrors,
) -> Option<Intake> {
    let read = raw.read.unwrap_or_default();
    let spec = Spec {
        secret: raw.secret.map(|s| s.0),
        from: raw.from.unwrap_or_default(),
        verify: raw.verify,
        read: ReadSpec {
            kind: read.kind,
            direction: read.direction,
            extension: read.extension,
            remote: read.remote,
            call_id: read.call_id,
            request_id: read.request_id,
            external_id: read.external_id,
        },
    };
    match Intake::compile(templates, spec, vars) {
        Ok(intake) => Some(intake),
        Err(problems) => {
            for p in problems {
                errors.push((place(&p.field), p.message));
            }
            None
        }
    }
}

/// `read.type` → `events.read.type`; `from[1]` → `events.from` item 1.
fn place(field: &str) -> yaml::Path {
    let at = yaml::Path::parse("events");
    match field.split_once('[') {
        Some((name, rest)) => {
            let i = rest.trim_end_matches(']').parse().unwrap_or(0);
            at.key(name).index(i)
        }
        None => field.split('.').fold(at, |p, k| p.key(k)),
    }
}
