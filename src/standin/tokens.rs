//! Bearer tokens (or session ids) a stand-in issued, for the systems that
//! want a login first: issue one per login, accept it until it expires or
//! a test expires them all. One [`Tokens`] per system, kept by name in
//! [`Logins`], so a system module needs no field of its own.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use super::KEEP;

/// The tokens one system issued.
#[derive(Debug, Default)]
pub struct Tokens {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    valid: HashSet<String>,
    issued: VecDeque<String>,
}

impl Tokens {
    /// A new random token, accepted from now on.
    pub fn issue(&self) -> String {
        let token = format!("{:032x}", ulid::Ulid::generate().0);
        self.accept(&token);
        token
    }

    /// `token`, chosen by the caller, accepted from now on as if issued
    /// (for ids a system takes from its client, such as ARI's `channelId`).
    pub fn accept(&self, token: &str) {
        let token = token.to_string();
        if let Ok(mut t) = self.inner.lock() {
            if t.valid.len() >= KEEP {
                t.valid.clear();
            }
            if t.issued.len() >= KEEP {
                t.issued.pop_front();
            }
            t.valid.insert(token.clone());
            t.issued.push_back(token);
        }
    }

    /// Whether `token` was issued and has not expired.
    pub fn accepts(&self, token: Option<&str>) -> bool {
        token.is_some_and(|token| self.inner.lock().is_ok_and(|t| t.valid.contains(token)))
    }

    /// Every token issued so far is expired from now on.
    pub fn expire_all(&self) {
        if let Ok(mut t) = self.inner.lock() {
            t.valid.clear();
        }
    }

    /// Every token issued, oldest first.
    pub fn issued(&self) -> Vec<String> {
        self.inner.lock().map(|t| t.issued.iter().cloned().collect()).unwrap_or_default()
    }
}

/// Each system's [`Tokens`], by system name.
#[derive(Debug, Default)]
pub struct Logins {
    by_system: Mutex<HashMap<&'static str, std::sync::Arc<Tokens>>>,
}

impl Logins {
    /// The tokens of `system` (created empty on first use).
    pub fn of(&self, system: &'static str) -> std::sync::Arc<Tokens> {
        match self.by_system.lock() {
            Ok(mut m) => m.entry(system).or_default().clone(),
            Err(_) => std::sync::Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_accepted_until_expired_and_systems_are_apart() {
        let logins = Logins::default();
        let t = logins.of("a").issue();
        assert!(logins.of("a").accepts(Some(&t)));
        assert!(!logins.of("b").accepts(Some(&t)));
        assert!(!logins.of("a").accepts(None));
        logins.of("a").expire_all();
        assert!(!logins.of("a").accepts(Some(&t)));
        assert_eq!(logins.of("a").issued(), [t]);
    }
}
