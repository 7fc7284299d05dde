//! API keys (`keys:` in `webdial.yaml`): who may dial which branches, how often.
//!
//! A key is presented as `Authorization: Bearer KEY`, `X-Api-Key: KEY` or
//! `?key=KEY`. Every configured key is compared in constant time (`subtle`),
//! and all of them are always compared, so timing tells nothing about which
//! one nearly matched. Keys are secrets: only their `name` is ever logged.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;

use crate::call::outcome::Refusal;

/// One configured key.
#[derive(Debug)]
pub struct ApiKey {
    pub name: String,
    secret: String,
    /// `None` = every branch (`"*"`).
    branches: Option<Vec<String>>,
    rate: Option<DefaultDirectRateLimiter>,
    /// As written (`30/min`), for messages.
    rate_text: Option<String>,
}

/// Who is asking for a dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The local command line: an admin at the machine, no key needed.
    Local,
    /// An HTTP caller, with the key it presented (if any).
    Presented(Option<String>),
}

/// All configured keys. With none, the API is open (see `serve --no-auth`).
#[derive(Debug, Default)]
pub struct Keys {
    keys: Vec<ApiKey>,
}

/// The caller, once authenticated.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    Local,
    /// No keys configured.
    Anonymous,
    Key(&'a ApiKey),
}

impl Caller<'_> {
    /// The name logged and used to scope duplicates.
    pub fn name(&self) -> &str {
        match self {
            Caller::Local => "local",
            Caller::Anonymous => "-",
            Caller::Key(k) => &k.name,
        }
    }
}

/// `N/sec`, `N/min`, `N/hour` → (N, period).
pub fn parse_rate(text: &str) -> Result<(NonZeroU32, Duration), String> {
    let bad = || format!("rate {text:?} is not like 30/min (N/sec, N/min or N/hour)");
    let (n, unit) = text.split_once('/').ok_or_else(bad)?;
    let n: NonZeroU32 = n.trim().parse().map_err(|_| bad())?;
    let period = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    Ok((n, period))
}

impl ApiKey {
    /// `branches`: `["*"]` or names; `rate`: e.g. `30/min`.
    pub fn new(name: String, secret: String, branches: Vec<String>, rate: Option<&str>) -> Result<Self, String> {
        if secret.len() < 16 {
            return Err(format!("key {name:?} is shorter than 16 characters: use a long random key"));
        }
        let branches = if branches.iter().any(|b| b == "*") { None } else { Some(branches) };
        let rate_limiter = match rate {
            None => None,
            Some(text) => {
                let (n, period) = parse_rate(text)?;
                let per_one = period / n.get();
                let quota =
                    Quota::with_period(per_one).ok_or_else(|| format!("rate {text:?} is too fast"))?.allow_burst(n);
                Some(RateLimiter::direct(quota))
            }
        };
        Ok(ApiKey { name, secret, branches, rate: rate_limiter, rate_text: rate.map(str::to_string) })
    }

    fn matches(&self, presented: &[u8]) -> bool {
        self.secret.as_bytes().ct_eq(presented).into()
    }

    /// 403 when the branch is outside this key's scope.
    pub fn may_dial(&self, branch: &str) -> Result<(), Refusal> {
        match &self.branches {
            Some(list) if !list.iter().any(|b| b == branch) => {
                Err(Refusal::Forbidden(format!("key {:?} may not dial branch {branch:?}", self.name)))
            }
            _ => Ok(()),
        }
    }

    /// 429 when over this key's rate. Each call counts one dial.
    pub fn take(&self) -> Result<(), Refusal> {
        match &self.rate {
            Some(limiter) if limiter.check().is_err() => Err(Refusal::RateLimited(format!(
                "key {:?} is over its rate of {}",
                self.name,
                self.rate_text.as_deref().unwrap_or("?")
            ))),
            _ => Ok(()),
        }
    }
}

impl Keys {
    pub fn new(keys: Vec<ApiKey>) -> Self {
        Keys { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// 401 unless the credential names a configured key (or no keys are configured).
    pub fn authenticate(&self, credential: &Credential) -> Result<Caller<'_>, Refusal> {
        let presented = match credential {
            Credential::Local => return Ok(Caller::Local),
            Credential::Presented(_) if self.keys.is_empty() => return Ok(Caller::Anonymous),
            Credential::Presented(None) => {
                return Err(Refusal::Unauthorized(
                    "an API key is required: send Authorization: Bearer KEY, X-Api-Key: KEY or ?key=KEY".into(),
                ));
            }
            Credential::Presented(Some(k)) => k.as_bytes(),
        };
        // Compare against every key, without stopping early.
        let mut found = None;
        for key in &self.keys {
            if key.matches(presented) && found.is_none() {
                found = Some(key);
            }
        }
        found.map(Caller::Key).ok_or_else(|| Refusal::Unauthorized("the API key is not valid".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, secret: &str, branches: &[&str], rate: Option<&str>) -> ApiKey {
        ApiKey::new(name.into(), secret.into(), branches.iter().map(|s| s.to_string()).collect(), rate).unwrap()
    }

    #[test]
    fn authentication_and_scope() {
        let keys = Keys::new(vec![
            key("erp", "erp-key-0123456789", &["*"], None),
            key("web", "web-key-0123456789", &["london"], None),
        ]);
        assert!(matches!(keys.authenticate(&Credential::Presented(None)), Err(Refusal::Unauthorized(_))));
        assert!(matches!(
            keys.authenticate(&Credential::Presented(Some("nope".into()))),
            Err(Refusal::Unauthorized(_))
        ));
        let web = keys.authenticate(&Credential::Presented(Some("web-key-0123456789".into()))).unwrap();
        assert_eq!(web.name(), "web");
        let Caller::Key(web) = web else { panic!() };
        assert!(web.may_dial("london").is_ok());
        assert!(matches!(web.may_dial("leeds"), Err(Refusal::Forbidden(_))));
        assert!(matches!(keys.authenticate(&Credential::Local), Ok(Caller::Local)));
        assert!(matches!(Keys::default().authenticate(&Credential::Presented(None)), Ok(Caller::Anonymous)));
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("30/min").unwrap(), (NonZeroU32::new(30).unwrap(), Duration::from_secs(60)));
        assert!(parse_rate("30 per min").is_err());
        assert!(parse_rate("0/min").is_err());
        let k = key("k", "k-key-0123456789abc", &["*"], Some("2/hour"));
        assert!(k.take().is_ok());
        assert!(k.take().is_ok());
        assert!(matches!(k.take(), Err(Refusal::RateLimited(_))));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(ApiKey::new("k".into(), "short".into(), vec!["*".into()], None).is_err());
    }
}
