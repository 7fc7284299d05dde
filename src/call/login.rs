//! Running a branch's login steps: each step is rendered (seeing what the
//! steps before it saved), sent once, and read with its own `response:`;
//! its `save:` expressions then keep values from its answer, and its
//! `Set-Cookie` headers become `session.cookie`. The last step's answer
//! gives the TTL when `session.ttl` is an expression.
//!
//! Values are masked from the moment they are saved, not only once the
//! session is complete, so a later step's request cannot show an earlier
//! one's token. A failure says which step failed and why, in words that
//! never include a saved value; the caller prefixes `login: `.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::guard::session::{LoginError, Session};
use crate::pbx::answer::Answer;
use crate::pbx::client::Dispatcher;
use crate::profile::{COOKIE, Login, MAX_TTL, Profile, Ttl};
use crate::secrets;
use crate::template::{Context, Rendered, Templates};

/// Runs `login`'s steps for `profile`'s branch; the session they make.
pub(super) async fn run(
    clients: &Dispatcher,
    templates: &Templates,
    profile: &Profile,
    login: &Login,
) -> Result<Session, LoginError> {
    let several = login.steps.len() > 1;
    let mut saved: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut masked = Vec::new();
    let mut last = None;
    for (i, step) in login.steps.iter().enumerate() {
        let which = if several { format!("step {} of {}: ", i + 1, login.steps.len()) } else { String::new() };
        let fail = |why: String| format!("{which}{why}");
        let mut values = saved.clone();
        values.insert(COOKIE.to_string(), cookie_header(&cookies));
        let context = Context::new(&profile.branch).with_session(Arc::new(values));
        let request = match step.request.template.render(templates, &context) {
            Ok(Rendered::Http(r)) => r,
            Ok(Rendered::Uri(_)) => return Err(fail("a login step must be a request, not a URI".into())),
            Err(e) => return Err(fail(format!("the request cannot be built: {e}"))),
        };
        let (sent, _) = clients.send(&request, step.request.timeout, &profile.tls).await;
        let answer = sent.map_err(|e| fail(e.to_string()))?;
        let reading = step.request.response.read(templates, &answer).map_err(|bad| fail(bad.message))?;
        if !reading.ok {
            let why = reading.message.unwrap_or_else(|| "the PBX refused it".into());
            return Err(fail(why));
        }
        let view = step.request.response.view(&answer);
        for (name, expr) in &step.save {
            let value = expr.value(templates, &view).map_err(&fail)?;
            let text = value.as_str().map_or_else(|| value.to_string(), str::to_string).trim().to_string();
            masked.push(secrets::hold([text.as_str()]));
            saved.insert(name.clone(), text);
        }
        keep_cookies(&answer, login.cookies.as_deref(), &mut cookies);
        masked.push(secrets::hold(cookies.iter().map(|(_, v)| v.as_str())));
        last = Some(view);
    }
    let ttl = match (&login.ttl, &last) {
        (Ttl::Fixed(d), _) => Some(*d),
        (Ttl::UntilRefused, _) => None,
        (Ttl::Answer(expr), Some(view)) => {
            let value = expr.value(templates, view)?;
            Some(seconds(&value).ok_or_else(|| format!("{} gave {value}, not a number of seconds", expr.quoted()))?)
        }
        (Ttl::Answer(_), None) => None,
    };
    saved.insert(COOKIE.to_string(), cookie_header(&cookies));
    // The cookies' own values stay masked with the session, not only the header they make.
    Ok(Session::new(saved, ttl, login.identity).masking(masked))
}

/// A TTL in seconds: a number, or text holding one; below zero is zero.
fn seconds(v: &minijinja::Value) -> Option<Duration> {
    let n = match v.as_str() {
        Some(s) => s.trim().parse::<f64>().ok()?,
        None => f64::try_from(v.clone()).ok()?,
    };
    n.is_finite().then(|| Duration::from_secs_f64(n.clamp(0.0, MAX_TTL.as_secs_f64())))
}

/// Adds the cookies `answer` sets (the `name=value` of each `Set-Cookie`,
/// attributes left out) to `cookies`, a later one replacing an earlier one
/// of the same name; only those named in `only`, when given.
fn keep_cookies(answer: &Answer, only: Option<&[String]>, cookies: &mut Vec<(String, String)>) {
    for (_, header) in answer.headers.iter().filter(|(k, _)| k == "set-cookie") {
        let pair = header.split(';').next().unwrap_or_default();
        let Some((name, value)) = pair.split_once('=') else { continue };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || only.is_some_and(|only| !only.iter().any(|o| o == name)) {
            continue;
        }
        cookies.retain(|(n, _)| n != name);
        cookies.push((name.to_string(), value.to_string()));
    }
}

/// The cookies as a `Cookie:` header value: `a=1; b=2`.
fn cookie_header(cookies: &[(String, String)]) -> String {
    cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_headers_become_one_cookie_header() {
        let answer = |cookies: &[&str]| Answer {
            headers: cookies.iter().map(|c| ("set-cookie".to_string(), c.to_string())).collect(),
            ..Answer::default()
        };
        let mut kept = Vec::new();
        keep_cookies(&answer(&["mansession_id=\"ab12\"; Version=1; Max-Age=60", "lang=en; Path=/"]), None, &mut kept);
        keep_cookies(&answer(&["lang=it", "broken", "=nameless"]), None, &mut kept);
        assert_eq!(cookie_header(&kept), "mansession_id=\"ab12\"; lang=it");
        let mut only = Vec::new();
        keep_cookies(&answer(&["a=1", "sid=2"]), Some(&["sid".to_string()]), &mut only);
        assert_eq!(cookie_header(&only), "sid=2");
    }

    #[test]
    fn a_ttl_is_a_number_of_seconds() {
        let s = |v: minijinja::Value| seconds(&v);
        assert_eq!(s(3600.into()), Some(Duration::from_secs(3600)));
        assert_eq!(s("1800".into()), Some(Duration::from_secs(1800)));
        assert_eq!(s(1.5.into()), Some(Duration::from_millis(1500)));
        assert_eq!(s((-5).into()), Some(Duration::ZERO));
        assert_eq!(s(u64::MAX.into()), Some(MAX_TTL));
        assert_eq!(s("soon".into()), None);
        assert_eq!(s(minijinja::Value::from(vec![1])), None);
    }
}
