//! API keys: who may use which branches, how often.
//!
//! A key is presented as `Authorization: Bearer KEY`, `X-Api-Key: KEY` or
//! `?key=KEY`. Every configured key is compared in constant time (`subtle`),
//! and all of them are always compared, so timing tells nothing about which
//! one nearly matched. Keys are secrets: only their `name` is ever logged.
//!
//! The keys themselves are configuration ([`KeySpec`]); their rate budgets
//! are runtime state ([`Rates`]), kept by key name so that reloading the
//! configuration does not hand every key a fresh budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;

use crate::settings::{KeySpec, Rate};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The local command line: an admin at the machine, no key needed.
    Local,
    /// An HTTP caller, with the key it presented (if any).
    Presented(Option<String>),
}

/// The caller, once authenticated.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    Local,
    /// No keys configured.
    Anonymous,
    Key(&'a KeySpec),
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

/// Why a key check refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("an API key is required: send Authorization: Bearer KEY, X-Api-Key: KEY or ?key=KEY")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
    #[error("key {key:?} may not use branch {branch:?}")]
    OutOfScope { key: String, branch: String },
    #[error("key {key:?} is over its rate of {rate}")]
    OverRate { key: String, rate: String },
    #[error("key {key:?} is not an admin key: /v1/admin needs a key with `admin: true`")]
    NotAdmin { key: String },
}

/// 401 unless the credential names one of `keys` (or no keys are configured).
pub fn authenticate<'a>(keys: &'a [KeySpec], credential: &Credential) -> Result<Caller<'a>, KeyError> {
    let presented = match credential {
        Credential::Local => return Ok(Caller::Local),
        Credential::Presented(_) if keys.is_empty() => return Ok(Caller::Anonymous),
        Credential::Presented(None) => return Err(KeyError::Missing),
        Credential::Presented(Some(k)) => k.as_bytes(),
    };
    // Compare against every key, without stopping early.
    let mut found = None;
    for key in keys {
        let matches: bool = key.secret.as_bytes().ct_eq(presented).into();
        if matches && found.is_none() {
            found = Some(key);
        }
    }
    found.map(Caller::Key).ok_or(KeyError::Invalid)
}

/// 403 when `branch` is outside the key's scope.
pub fn may_use(key: &KeySpec, branch: &str) -> Result<(), KeyError> {
    match &key.branches {
        Some(list) if !list.iter().any(|b| b == branch) => {
            Err(KeyError::OutOfScope { key: key.name.clone(), branch: branch.to_string() })
        }
        _ => Ok(()),
    }
}

/// 403 unless the caller may administer the gateway (`/v1/admin/*`): a key
/// with `admin: true`, the local command line, or anyone when no keys are
/// configured (then only loopback is served, unless `--no-auth` says
/// something in front authenticates).
pub fn may_administer(caller: &Caller<'_>) -> Result<(), KeyError> {
    match caller {
        Caller::Key(k) if !k.admin => Err(KeyError::NotAdmin { key: k.name.clone() }),
        _ => Ok(()),
    }
}

/// Per-key rate budgets: runtime state that outlives a configuration.
#[derive(Debug, Default)]
pub struct Rates {
    limiters: Mutex<HashMap<(String, Rate), Arc<DefaultDirectRateLimiter>>>,
}

impl Rates {
    /// 429 when over the key's rate. Each call counts one request.
    pub fn take(&self, key: &KeySpec) -> Result<(), KeyError> {
        let Some(rate) = &key.rate else { return Ok(()) };
        let limiter = {
            let Ok(mut map) = self.limiters.lock() else { return Ok(()) };
            map.entry((key.name.clone(), rate.clone()))
                .or_insert_with(|| {
                    let per_one = rate.period / rate.count.get();
                    // `Rate::parse` refused periods that round to zero.
                    let quota = Quota::with_period(per_one).unwrap_or_else(|| Quota::per_second(rate.count));
                    Arc::new(RateLimiter::direct(quota.allow_burst(rate.count)))
                })
                .clone()
        };
        if limiter.check().is_err() {
            return Err(KeyError::OverRate { key: key.name.clone(), rate: rate.text.clone() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, secret: &str, branches: &[&str], rate: Option<&str>) -> KeySpec {
        KeySpec::new(name.into(), secret.into(), branches.iter().map(|s| s.to_string()).collect(), rate).unwrap()
    }

    #[test]
    fn authentication_and_scope() {
        let keys =
            vec![key("erp", "erp-key-0123456789", &["*"], None), key("web", "web-key-0123456789", &["london"], None)];
        assert_eq!(authenticate(&keys, &Credential::Presented(None)).unwrap_err(), KeyError::Missing);
        assert_eq!(authenticate(&keys, &Credential::Presented(Some("nope".into()))).unwrap_err(), KeyError::Invalid);
        let web = authenticate(&keys, &Credential::Presented(Some("web-key-0123456789".into()))).unwrap();
        assert_eq!(web.name(), "web");
        let Caller::Key(web) = web else { panic!() };
        assert!(may_use(web, "london").is_ok());
        assert!(matches!(may_use(web, "leeds"), Err(KeyError::OutOfScope { .. })));
        assert!(matches!(authenticate(&keys, &Credential::Local), Ok(Caller::Local)));
        assert!(matches!(authenticate(&[], &Credential::Presented(None)), Ok(Caller::Anonymous)));
    }

    #[test]
    fn only_admin_keys_administer() {
        let plain = key("erp", "erp-key-0123456789", &["*"], None);
        let admin = KeySpec { admin: true, ..key("ops", "ops-key-0123456789", &["*"], None) };
        assert!(matches!(may_administer(&Caller::Key(&plain)), Err(KeyError::NotAdmin { .. })));
        assert!(may_administer(&Caller::Key(&admin)).is_ok());
        assert!(may_administer(&Caller::Anonymous).is_ok(), "no keys: the loopback gateway is open");
        assert!(may_administer(&Caller::Local).is_ok());
    }

    #[test]
    fn rate_budgets_are_per_key_and_survive_a_new_key_list() {
        let rates = Rates::default();
        let k = key("k", "k-key-0123456789abc", &["*"], Some("2/hour"));
        assert!(rates.take(&k).is_ok());
        assert!(rates.take(&k).is_ok());
        assert!(matches!(rates.take(&k), Err(KeyError::OverRate { .. })));
        // The same key loaded again (a reload) keeps its spent budget.
        let again = key("k", "k-key-0123456789abc", &["*"], Some("2/hour"));
        assert!(rates.take(&again).is_err());
        assert!(rates.take(&key("other", "o-key-0123456789abc", &["*"], Some("2/hour"))).is_ok());
    }
}
