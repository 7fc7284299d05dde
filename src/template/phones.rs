//! Desk phones: one host per user. A request value never chooses where a
//! request goes, with one exception: `{{ MAP[extension] }}` in the target
//! part of a URL (scheme, host, port), where `MAP` is a map under the
//! branch's `vars` from extension to the phone's `host[:port]` (`phones:
//! {201: 192.0.2.11}`). The caller's extension then only *selects* one of
//! the hosts the admin wrote: an extension that is not a key of the map is
//! refused before anything is rendered or sent, and the map's values are
//! checked at load to be plain `host[:port]`s. Pure.

use std::collections::BTreeMap;

use super::RenderError;

/// The one request value a host may be chosen by.
const KEY: &str = "extension";

/// Where a phone map is looked up in a URL's target part: `(start, end,
/// map name)` for each `{{ NAME[extension] }}` (whitespace and `-`
/// trimming allowed, nothing else: no filter, no default).
pub(super) fn lookups(base: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = base[from..].find("{{").map(|i| from + i) {
        let Some(close) = base[open + 2..].find("}}").map(|i| open + 2 + i) else { break };
        let inner = base[open + 2..close].trim_start_matches('-').trim_end_matches('-').trim();
        if let Some(name) = lookup_name(inner) {
            out.push((open, close + 2, name.to_string()));
        }
        from = close + 2;
    }
    out
}

/// `NAME[extension]` → `NAME`, for a plain identifier `NAME`.
fn lookup_name(inner: &str) -> Option<&str> {
    let (name, rest) = inner.split_once('[')?;
    let name = name.trim();
    let index = rest.strip_suffix(']')?.trim();
    let ident = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (ident && index == KEY).then_some(name)
}

/// `base` with every phone lookup replaced by a plain host, so what is left
/// can be checked like any target part: no other request value may remain.
pub(super) fn without_lookups(base: &str, found: &[(usize, usize, String)]) -> String {
    let mut out = String::with_capacity(base.len());
    let mut at = 0;
    for (start, end, _) in found {
        out.push_str(&base[at..*start]);
        out.push_str("phone.invalid");
        at = *end;
    }
    out.push_str(&base[at..]);
    out
}

/// A branch's phone map, read from its `vars` at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PhoneMap {
    pub(super) name: String,
    /// Extension → `host[:port]`, as the admin wrote them.
    pub(super) hosts: BTreeMap<String, String>,
}

impl PhoneMap {
    /// Reads `vars[name]`: a map whose every value is a `host[:port]`.
    /// `Ok(None)` when the branch does not set it (the loader then names
    /// the missing variable).
    pub(super) fn read(name: &str, vars: &BTreeMap<String, serde_json::Value>) -> Result<Option<Self>, String> {
        let Some(value) = vars.get(name) else { return Ok(None) };
        let serde_json::Value::Object(map) = value else {
            return Err(format!(
                "`{name}` must be a map from extension to the phone's host[:port] (`{name}: {{201: 192.0.2.11}}`)"
            ));
        };
        if map.is_empty() {
            return Err(format!("`{name}` is empty: list each extension's phone (`{name}: {{201: 192.0.2.11}}`)"));
        }
        let mut hosts = BTreeMap::new();
        for (ext, host) in map {
            let host = match host {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if !is_host_port(&host) {
                return Err(format!(
                    "`{name}.{ext}`: {host:?} is not a host[:port] (such as 192.0.2.11 or phone-201.lan:8080)"
                ));
            }
            hosts.insert(ext.clone(), host);
        }
        Ok(Some(PhoneMap { name: name.to_string(), hosts }))
    }

    /// Whether the request's extension picks a phone from this map; the
    /// refusal names the extension and the map, so the caller knows why.
    pub(super) fn pick(&self, extension: Option<&str>) -> Result<&str, RenderError> {
        let Some(ext) = extension else {
            return Err(RenderError::new(format!(
                "an extension is needed to pick the phone from this branch's `{}` map",
                self.name
            )));
        };
        self.hosts.get(ext).map(String::as_str).ok_or_else(|| {
            RenderError::new(format!("extension {ext} is not in this branch's `{}` map: nothing was sent", self.name))
        })
    }

    /// An extension the load-time try can use.
    pub(super) fn sample_extension(&self) -> Option<&str> {
        self.hosts.keys().next().map(String::as_str)
    }
}

/// A plain `host[:port]`: nothing that could add user info, a path, a
/// query or a fragment, and a URL parser agrees it is just a host.
fn is_host_port(s: &str) -> bool {
    if s.is_empty()
        || s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '@' | '\\'))
    {
        return false;
    }
    match url::Url::parse(&format!("http://{s}/")) {
        Ok(u) => u.host().is_some() && u.username().is_empty() && u.password().is_none() && u.path() == "/",
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_map_lookup_by_extension_is_found() {
        let names = |s: &str| lookups(s).into_iter().map(|(_, _, n)| n).collect::<Vec<_>>();
        assert_eq!(names("{{ scheme }}://{{ phones[extension] }}"), ["phones"]);
        assert_eq!(names("http://{{phones[ extension ]}}"), ["phones"]);
        assert_eq!(names("http://{{- desks[extension] -}}:80"), ["desks"]);
        for refused in [
            "http://{{ phones[number] }}",
            "http://{{ phones[extension] | default('x') }}",
            "http://{{ phones[extension ~ 'x'] }}",
            "http://{{ phones.extension }}",
            "http://{{ phones[extension][0] }}",
            "http://{{ 'a.b'[extension] }}",
            "http://{{ extension }}",
        ] {
            assert!(names(refused).is_empty(), "{refused}");
        }
        let base = "{{ scheme }}://{{ phones[extension] }}";
        assert_eq!(without_lookups(base, &lookups(base)), "{{ scheme }}://phone.invalid");
    }

    fn vars(yaml: &str) -> BTreeMap<String, serde_json::Value> {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_map_reads_hosts_and_picks_only_its_own_keys() {
        let map =
            PhoneMap::read("phones", &vars("phones: {'201': 192.0.2.11, '202': 'desk.lan:8080'}")).unwrap().unwrap();
        assert_eq!(map.pick(Some("201")).unwrap(), "192.0.2.11");
        assert_eq!(map.pick(Some("202")).unwrap(), "desk.lan:8080");
        for hostile in ["207", "../x", "201@evil", "201#", "201/", " 201", "", "2010"] {
            let e = map.pick(Some(hostile)).unwrap_err();
            assert!(e.message.contains("is not in this branch's `phones` map"), "{hostile}: {e}");
        }
        assert!(map.pick(None).is_err());
        assert_eq!(map.sample_extension(), Some("201"));
        assert_eq!(PhoneMap::read("phones", &vars("host: x")).unwrap(), None);
    }

    #[test]
    fn map_values_must_be_plain_hosts() {
        for bad in ["phones: 192.0.2.11", "phones: {}", "phones: ['192.0.2.11']"] {
            assert!(PhoneMap::read("phones", &vars(bad)).is_err(), "{bad}");
        }
        for bad in ["evil.example/x", "u@evil.example", "h?x=1", "h#f", "h x", "", "h:notaport", "h\\x"] {
            let v = vars(&format!("phones: {{'201': {bad:?}}}"));
            assert!(PhoneMap::read("phones", &v).is_err(), "{bad}");
        }
        for good in ["192.0.2.11", "192.0.2.11:8080", "[2001:db8::1]:80", "phone-201.lan"] {
            let v = vars(&format!("phones: {{'201': {good:?}}}"));
            assert!(PhoneMap::read("phones", &v).is_ok(), "{good}");
        }
    }

    /// Compiles `url` as a dial with `vars` (YAML) and renders it for `ext`.
    fn dial(url: &str, vars_yaml: &str) -> Result<(super::super::RequestTemplate, super::super::Templates), String> {
        let mut env = super::super::new_env();
        let spec = super::super::HttpSpec { url: url.into(), ..Default::default() };
        super::super::RequestTemplate::compile(&mut env, "dial", spec, &vars(vars_yaml), &Default::default())
            .map(|t| (t, env))
            .map_err(|e| format!("{e:?}"))
    }

    fn render(t: &(super::super::RequestTemplate, super::super::Templates), ext: &str) -> Result<String, String> {
        let ctx = super::super::Context::new("b").with("extension", ext).with("number", "555");
        match t.0.render(&t.1, &ctx) {
            Ok(super::super::Rendered::Http(r)) => Ok(r.url.to_string()),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.message),
        }
    }

    const PHONES: &str = "{scheme: http, phones: {201: 192.0.2.11, 202: 'desk.lan:8080'}}";

    #[test]
    fn the_extension_picks_the_admins_host_and_nothing_else() {
        let t = dial("{{ scheme }}://{{ phones[extension] }}/command.htm?number={{ number }}", PHONES).unwrap();
        assert_eq!(render(&t, "201").unwrap(), "http://192.0.2.11/command.htm?number=555");
        assert_eq!(render(&t, "202").unwrap(), "http://desk.lan:8080/command.htm?number=555");
        for hostile in ["207", "../x", "201@evil", "201#", "201/..", "evil.example", "201?x"] {
            let e = render(&t, hostile).unwrap_err();
            assert!(e.contains(&format!("extension {hostile} is not in this branch's `phones` map")), "{hostile}: {e}");
        }
    }

    #[test]
    fn other_request_values_in_the_target_stay_refused() {
        for url in [
            "http://{{ number }}/x",
            "http://{{ phones[extension] }}{{ number }}/x",
            "http://{{ phones[number] }}/x",
            "http://{{ phones[extension] | default(number) }}/x",
            "http://{{ phones[extension] }}.{{ extension }}/x",
        ] {
            let e = dial(url, PHONES).map(|_| ()).unwrap_err();
            assert!(e.contains("never choose where a dial is sent"), "{url}: {e}");
        }
    }

    #[test]
    fn a_missing_or_wrong_map_is_named_at_load() {
        let e = dial("http://{{ phones[extension] }}/x", "{host: h}").map(|_| ()).unwrap_err();
        assert!(e.contains("`phones` is not defined"), "{e}");
        let e = dial("http://{{ phones[extension] }}/x", "{phones: 192.0.2.11}").map(|_| ()).unwrap_err();
        assert!(e.contains("vars.phones") && e.contains("must be a map"), "{e}");
        let e = dial("http://{{ phones[extension] }}/x", "{phones: {201: 'evil/x'}}").map(|_| ()).unwrap_err();
        assert!(e.contains("not a host[:port]"), "{e}");
    }
}
