//! The one-line actions admins paste into a profile: an IQX line, or a
//! Dolibarr click-to-dial mask (which becomes a full-form template, so the
//! caller compiles it like any other).

use std::collections::BTreeMap;
use std::time::Duration;

use super::Action;
use super::compile::{CompileErrors, Problem};
use crate::pbx::rules;
use crate::settings::yaml;
use crate::syntax::{dolibarr, iqx};
use crate::template::RequestTemplate;

/// An IQX line as an action, or `None` with its problem pushed.
pub(super) fn iqx_action(name: &str, line: &str, timeout: Duration, errors: &mut CompileErrors) -> Option<Action> {
    match iqx::parse(line) {
        Ok(parsed) => {
            let template = RequestTemplate::iqx(parsed);
            let uses = template.uses();
            Some(Action { template, response: rules::Rules::default(), timeout, uses })
        }
        Err(e) => {
            errors.push((yaml::Path::parse(name), format!("{e} (at character {} of the line)", e.offset() + 1)));
            None
        }
    }
}

/// A Dolibarr mask line as a URL template, or `None` with its problems
/// pushed: a dial must use `__PHONETO__`, and `__LOGIN__`/`__PASS__` need
/// `vars.login`/`vars.pass`.
pub(super) fn dolibarr_url(
    name: &str,
    line: &str,
    vars: &BTreeMap<String, serde_json::Value>,
    errors: &mut CompileErrors,
) -> Option<String> {
    let at = yaml::Path::parse(name);
    let pieces = match dolibarr::parse(line) {
        Ok(p) => p,
        Err(e) => {
            errors.push((at, format!("{e} (at character {} of the line)", e.offset() + 1)));
            return None;
        }
    };
    let before = errors.len();
    if name == "dial" && !dolibarr::masks(&pieces).any(|m| m == dolibarr::Mask::PhoneTo) {
        errors.push((
            at.clone(),
            "the Dolibarr line has no __PHONETO__ (or %1$s): every dial would ring an empty number".into(),
        ));
    }
    for (mask, var) in [(dolibarr::Mask::Login, "__LOGIN__ (%3$s)"), (dolibarr::Mask::Pass, "__PASS__ (%4$s)")] {
        if dolibarr::masks(&pieces).any(|m| m == mask) && !vars.contains_key(mask.variable()) {
            let message = format!(
                "{var} is the profile's `vars.{0}`: set it, e.g. `vars: {{{0}: ${{MY_SECRET}}}}`",
                mask.variable()
            );
            errors.push(Problem { at: at.clone(), message, missing: Some(mask.variable().to_string()) });
        }
    }
    (errors.len() == before).then(|| dolibarr::to_template(&pieces))
}
