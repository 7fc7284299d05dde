//! Login sessions: at most one per branch, shared by all its actions, kept
//! until its TTL less 10 % (so a token is not used in its last moments,
//! when clocks and queues could make the PBX see it expired).
//!
//! Only one login runs at a time per branch: a request that finds no usable
//! session takes the branch's lock and logs in while the others wait for
//! it, then use what it got. When that login fails, the requests that were
//! waiting for it get its failure rather than each trying again in turn (a
//! hundred failed logins in a row is how a PBX comes to block an address).
//! A request that arrives after a failure tries afresh.
//!
//! Sessions are runtime state, kept by branch name, so a reload keeps them;
//! each remembers which login made it ([`Session::identity`]), and one made
//! by another login (a reload changed the steps or their `vars`) is not
//! used. A session's values are secrets, held ([`crate::secrets::hold`])
//! for as long as the session lives.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use crate::profile::MAX_TTL;
use crate::secrets;

/// One branch's session: what its login saved, and until when it is used.
#[derive(Debug)]
pub struct Session {
    /// By name, as templates see them (`session.token`).
    pub values: Arc<BTreeMap<String, String>>,
    /// When it stops being used; `None`: until the PBX refuses it.
    pub expires: Option<Instant>,
    /// Which login made it (see [`crate::profile::Login::identity`]).
    pub identity: u64,
    /// Its values, and whatever else its login asked to mask while it lives
    /// (each cookie's own value, besides `session.cookie` as a whole).
    _masked: Vec<secrets::Held>,
}

impl Session {
    /// A session got now, lasting `ttl` less 10 % (`None`: until refused).
    /// Its values are masked wherever they appear from now on.
    pub fn new(values: BTreeMap<String, String>, ttl: Option<Duration>, identity: u64) -> Session {
        let masked = secrets::hold(values.values().map(String::as_str));
        // At most MAX_TTL: no TTL a PBX sends can overflow the clock.
        let expires = ttl.and_then(|t| Instant::now().checked_add(t.min(MAX_TTL).mul_f64(0.9)));
        Session { values: Arc::new(values), expires, identity, _masked: vec![masked] }
    }

    /// Keeps `held` masked for as long as this session lives.
    pub fn masking(mut self, held: Vec<secrets::Held>) -> Session {
        self._masked.extend(held);
        self
    }

    fn usable(&self, identity: u64) -> bool {
        self.identity == identity && self.expires.is_none_or(|e| Instant::now() < e)
    }
}

/// Why there is no session: the login's own words (`login: …` is added by the caller).
pub type LoginError = String;

/// Every branch's session, by branch name.
#[derive(Debug, Default)]
pub struct Sessions {
    by_branch: Mutex<HashMap<String, Arc<Cell>>>,
}

#[derive(Debug, Default)]
struct Cell {
    /// The session, read without waiting: a warm branch's requests never
    /// queue on the login lock.
    current: ArcSwapOption<Session>,
    /// Logins finished so far: a waiter compares it with what it saw on arrival.
    finished: AtomicU64,
    /// Held while logging in: the last login's failure, with its number
    /// among the finished ones.
    login: tokio::sync::Mutex<Option<(u64, LoginError)>>,
}

/// A session, and whether this request's own login got it.
pub type Got = (Arc<Session>, bool);

impl Sessions {
    fn cell(&self, branch: &str) -> Arc<Cell> {
        // Nothing that can panic runs under this lock: a poisoned map is still whole.
        let mut map = self.by_branch.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(branch) {
            Some(cell) => cell.clone(),
            None => map.entry(branch.to_string()).or_default().clone(),
        }
    }

    /// `branch`'s session if it has a usable one now, without waiting.
    pub fn warm(&self, branch: &str, identity: u64) -> Option<Arc<Session>> {
        let cell = self.by_branch.lock().unwrap_or_else(PoisonError::into_inner).get(branch)?.clone();
        cell.current.load_full().filter(|s| s.usable(identity))
    }

    /// `branch`'s session, logging in with `login` when it has no usable one
    /// (none, expired, or made by another login than `identity`).
    pub async fn get<F, Fut>(&self, branch: &str, identity: u64, login: F) -> Result<Got, LoginError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Session, LoginError>>,
    {
        self.obtain(branch, identity, None, login).await
    }

    /// A new session for `branch` after the PBX refused `stale`: dropped,
    /// and replaced by one new login — unless another request already
    /// replaced it, whose session is then used as it is.
    pub async fn renew<F, Fut>(
        &self,
        branch: &str,
        identity: u64,
        stale: &Arc<Session>,
        login: F,
    ) -> Result<Got, LoginError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Session, LoginError>>,
    {
        self.obtain(branch, identity, Some(stale), login).await
    }

    async fn obtain<F, Fut>(
        &self,
        branch: &str,
        identity: u64,
        stale: Option<&Arc<Session>>,
        login: F,
    ) -> Result<Got, LoginError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Session, LoginError>>,
    {
        let cell = self.cell(branch);
        let current = |cell: &Cell| {
            let s = cell.current.load_full()?;
            let refused = stale.is_some_and(|stale| Arc::ptr_eq(&s, stale));
            (!refused && s.usable(identity)).then_some(s)
        };
        if let Some(s) = current(&cell) {
            return Ok((s, false));
        }
        let seen = cell.finished.load(Ordering::Acquire);
        let mut failure = cell.login.lock().await;
        // Another request logged in while this one waited for the lock.
        if let Some(s) = current(&cell) {
            return Ok((s, false));
        }
        // A login finished while this request waited for it, and failed.
        if let Some((n, why)) = &*failure {
            if *n > seen {
                return Err(why.clone());
            }
        }
        cell.current.store(None);
        let result = login().await;
        let n = cell.finished.fetch_add(1, Ordering::AcqRel) + 1;
        match result {
            Ok(session) => {
                let session = Arc::new(session);
                cell.current.store(Some(session.clone()));
                *failure = None;
                Ok((session, true))
            }
            Err(why) => {
                *failure = Some((n, why.clone()));
                Err(why)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A login that takes 50 ms and counts itself; token `t<N>`.
    fn counting(count: &Arc<AtomicUsize>, ttl: Option<Duration>) -> impl Future<Output = Result<Session, LoginError>> {
        let count = count.clone();
        async move {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(Session::new(BTreeMap::from([("token".to_string(), format!("tok-{n}"))]), ttl, 1))
        }
    }

    fn token(got: &Got) -> &str {
        got.0.values.get("token").map(String::as_str).unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn a_hundred_requests_without_a_session_cause_one_login() {
        let sessions = Arc::new(Sessions::default());
        let count = Arc::new(AtomicUsize::new(0));
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let (sessions, count) = (sessions.clone(), count.clone());
            all.spawn(async move {
                sessions.get("b", 1, || counting(&count, None)).await.map(|g| (token(&g).to_string(), g.1))
            });
        }
        let got: Vec<_> = all.join_all().await.into_iter().map(Result::unwrap).collect();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(got.iter().all(|(t, _)| t == "tok-1"));
        assert_eq!(got.iter().filter(|(_, own)| *own).count(), 1, "one of them logged in");
        let other = sessions.get("other", 1, || counting(&count, None)).await.unwrap();
        assert_eq!((token(&other), count.load(Ordering::SeqCst)), ("tok-2", 2), "sessions are per branch");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_login_is_shared_by_those_who_waited_for_it_and_the_next_request_tries_again() {
        let sessions = Arc::new(Sessions::default());
        let attempts = Arc::new(AtomicUsize::new(0));
        let failing = |attempts: Arc<AtomicUsize>| async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err::<Session, _>("invalid_client".to_string())
        };
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (sessions, attempts) = (sessions.clone(), attempts.clone());
            all.spawn(async move { sessions.get("b", 1, || failing(attempts)).await.map(drop) });
        }
        let got = all.join_all().await;
        assert!(got.iter().all(|r| r.as_ref().is_err_and(|e| e == "invalid_client")), "{got:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "one login, not one per waiting request");
        let count = Arc::new(AtomicUsize::new(0));
        let later = sessions.get("b", 1, || counting(&count, None)).await.unwrap();
        assert_eq!((token(&later), later.1), ("tok-1", true), "a request after the failure logs in afresh");
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_is_used_until_its_ttl_less_ten_percent() {
        let sessions = Sessions::default();
        let count = Arc::new(AtomicUsize::new(0));
        let ttl = Some(Duration::from_secs(100));
        let first = sessions.get("b", 1, || counting(&count, ttl)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(89)).await;
        let same = sessions.get("b", 1, || counting(&count, ttl)).await.unwrap();
        assert!(Arc::ptr_eq(&first.0, &same.0) && !same.1, "89 s into a 100 s TTL: still used");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let next = sessions.get("b", 1, || counting(&count, ttl)).await.unwrap();
        assert_eq!((token(&next), next.1), ("tok-2", true), "91 s: past 90 %, a new login");
        let untimed = sessions.get("c", 1, || counting(&count, None)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(365 * 24 * 3600)).await;
        assert!(Arc::ptr_eq(&untimed.0, &sessions.get("c", 1, || counting(&count, None)).await.unwrap().0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_session_is_renewed_once_however_many_requests_it_failed() {
        let sessions = Arc::new(Sessions::default());
        let count = Arc::new(AtomicUsize::new(0));
        let (stale, _) = sessions.get("b", 1, || counting(&count, None)).await.unwrap();
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (sessions, count, stale) = (sessions.clone(), count.clone(), stale.clone());
            all.spawn(async move {
                sessions.renew("b", 1, &stale, || counting(&count, None)).await.map(|g| token(&g).to_string())
            });
        }
        let got: Vec<_> = all.join_all().await.into_iter().map(Result::unwrap).collect();
        assert!(got.iter().all(|t| t == "tok-2"), "{got:?}");
        assert_eq!(count.load(Ordering::SeqCst), 2, "the first login, and one renewal for all ten");
        let changed = sessions.get("b", 2, || counting(&count, None)).await.unwrap();
        assert_eq!(token(&changed), "tok-3", "another login (after a reload) does not use this one's session");
    }
}
