//! The profile file format as written: every key a profile may hold, with
//! serde's `deny_unknown_fields` so a typo is a located load error. Nothing
//! here is validated beyond its type; `profile` compiles these.

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::number::NumberFormat;
use crate::pbx::answer::Format;
pub(crate) use crate::settings::Scalar;
pub(crate) use crate::settings::yaml::RawDuration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    pub(crate) name: Option<String>,
    pub(crate) extends: Option<String>,
    #[serde(default, deserialize_with = "crate::settings::yaml::json_vars")]
    pub(crate) vars: Option<BTreeMap<String, serde_json::Value>>,
    pub(crate) timeout: Option<RawDuration>,
    pub(crate) dial: Option<RawAction>,
    pub(crate) hangup: Option<RawAction>,
    pub(crate) hold: Option<RawAction>,
    pub(crate) unhold: Option<RawAction>,
    pub(crate) transfer: Option<RawAction>,
    pub(crate) divert: Option<RawAction>,
    pub(crate) dtmf: Option<RawAction>,
    pub(crate) record: Option<RawAction>,
    /// Any other action, by name.
    pub(crate) actions: Option<BTreeMap<String, RawAction>>,
    pub(crate) number: Option<RawNumber>,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) tls: Option<RawTls>,
    /// Requests webdial sends when this branch's calls have events.
    pub(crate) hooks: Option<Vec<RawHook>>,
    /// Per-request values callers may send, by name.
    pub(crate) options: Option<BTreeMap<String, RawOption>>,
    /// Requests run, in order, before an action when the branch has no session.
    pub(crate) login: Option<Vec<RawHttp>>,
    pub(crate) session: Option<RawSession>,
    /// How the branch's PBX notifies call events (see `profile::events`).
    pub(crate) events: Option<super::events::RawEvents>,
}

/// One declared option: what a value must look like, and what it is when
/// the caller sends none. `pattern` is required: an option's value lands in
/// a PBX request, so the admin says what it may hold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOption {
    pub(crate) pattern: String,
    pub(crate) default: Option<Scalar>,
}

/// `session:` how long a login's session lasts and when it is renewed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSession {
    /// A duration (`50m`, `3600`) or an expression over the last step's answer (seconds).
    pub(crate) ttl: Option<Scalar>,
    pub(crate) renew_on: Option<String>,
    /// Which cookies make up `session.cookie` (default: every one the steps set).
    pub(crate) cookie: Option<RawNames>,
}

/// One name or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawNames {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNumber {
    pub(crate) country: Option<String>,
    pub(crate) format: Option<NumberFormat>,
    pub(crate) outside_line: Option<Scalar>,
    pub(crate) internal: Option<String>,
    pub(crate) allow: Option<Vec<String>>,
    pub(crate) deny: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) verify: Option<bool>,
    pub(crate) ca: Option<String>,
    pub(crate) pin: Option<String>,
}

#[derive(Debug)]
pub(crate) enum RawAction {
    Line(String),
    Full(Box<RawHttp>),
}

impl<'de> Deserialize<'de> for RawAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawAction;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "an IQX line (a string) or a request (method, url, form, json, headers, auth, timeout, response)",
                )
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawAction, E> {
                Ok(RawAction::Line(s.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawAction, A::Error> {
                RawHttp::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|h| RawAction::Full(Box::new(h)))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    pub(crate) method: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) form: Option<OrderedMap>,
    pub(crate) json: Option<serde_json::Value>,
    pub(crate) headers: Option<OrderedMap>,
    pub(crate) auth: Option<RawAuth>,
    pub(crate) timeout: Option<RawDuration>,
    pub(crate) response: Option<RawResponse>,
    /// Login steps only: `{NAME: expression}` over the answer, kept as `session.NAME`.
    pub(crate) save: Option<OrderedMap>,
}

/// `auth: {basic: {user, password}}`, `{bearer: token}` or `{digest: {user, password}}`: exactly one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub(crate) basic: Option<RawUserPassword>,
    pub(crate) bearer: Option<String>,
    pub(crate) digest: Option<RawUserPassword>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUserPassword {
    pub(crate) user: String,
    pub(crate) password: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResponse {
    pub(crate) format: Option<Format>,
    pub(crate) ok: Option<String>,
    pub(crate) call_id: Option<String>,
    pub(crate) message: Option<String>,
    /// The HTTP statuses whose answers are read as answers (default: every 2xx).
    pub(crate) statuses: Option<Vec<u16>>,
    pub(crate) example: Option<RawExamples>,
}

/// `example:` a sample answer body as text, or a list of them.
#[derive(Debug)]
pub(crate) enum RawExamples {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for RawExamples {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawExamples;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sample answer body (text) or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawExamples, E> {
                Ok(RawExamples::One(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawExamples, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element::<String>()? {
                    all.push(one);
                }
                Ok(RawExamples::Many(all))
            }
        }
        d.deserialize_any(V)
    }
}

/// One hook, in a profile or in `webdial.yaml`: which events, and the
/// request. `url` alone (without `{{ }}`) is an Integra line; with
/// `method`, `form`, `json`, `headers` or `auth`, or a template in `url`,
/// it is the full form, written like an action's. `tls` is the hook's own:
/// a hook's receiver is not the branch's PBX.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHook {
    pub(crate) on: Vec<String>,
    pub(crate) only_external: Option<bool>,
    pub(crate) url: String,
    pub(crate) method: Option<String>,
    pub(crate) form: Option<OrderedMap>,
    pub(crate) json: Option<serde_json::Value>,
    pub(crate) headers: Option<OrderedMap>,
    pub(crate) auth: Option<RawAuth>,
    pub(crate) tls: Option<RawTls>,
    pub(crate) timeout: Option<RawDuration>,
}

/// A string-to-string mapping that keeps the file's order (form fields are sent in it).
/// A value written as a list gives one entry per item, under the same name:
/// some APIs take a form field once per value (Twilio's `StatusCallbackEvent`),
/// and a YAML mapping cannot repeat a key.
#[derive(Debug, Default, Clone)]
pub(crate) struct OrderedMap(pub(crate) Vec<(String, String)>);

/// One value of an [`OrderedMap`] as written: text, or a list of texts.
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|v| Scalar::deserialize(v).map(|s| s.0).map_err(serde::de::Error::custom))
                .collect::<Result<Vec<_>, _>>()
                .map(OneOrMany),
            other => Scalar::deserialize(other).map(|s| OneOrMany(vec![s.0])).map_err(serde::de::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of names to text (or lists of text)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, OneOrMany>()? {
                    out.extend(v.0.into_iter().map(|v| (k.clone(), v)));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The actions a profile may define as top-level keys, in the order they are listed.
pub(crate) const NAMED_ACTIONS: &[&str] = &["dial", "hangup", "hold", "unhold", "transfer", "divert", "dtmf", "record"];

impl RawProfile {
    /// Whether it defines any action (a preset that only reads events has none).
    pub(crate) fn has_actions(&self) -> bool {
        let named = [&self.dial, &self.hangup, &self.hold, &self.unhold, &self.transfer, &self.divert, &self.dtmf];
        named.iter().any(|a| a.is_some())
            || self.record.is_some()
            || self.actions.as_ref().is_some_and(|a| !a.is_empty())
    }

    /// Every action the file defines: the named ones, then `actions:`.
    pub(crate) fn take_actions(&mut self) -> Vec<(String, RawAction, bool)> {
        let named = [
            ("dial", self.dial.take()),
            ("hangup", self.hangup.take()),
            ("hold", self.hold.take()),
            ("unhold", self.unhold.take()),
            ("transfer", self.transfer.take()),
            ("divert", self.divert.take()),
            ("dtmf", self.dtmf.take()),
            ("record", self.record.take()),
        ];
        let mut out: Vec<(String, RawAction, bool)> =
            named.into_iter().filter_map(|(n, a)| a.map(|a| (n.to_string(), a, true))).collect();
        out.extend(self.actions.take().unwrap_or_default().into_iter().map(|(n, a)| (n, a, false)));
        out
    }
}
