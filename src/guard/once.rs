//! Exactly one call per click: remembering recent dials so that the same
//! dial again gets the first one's answer instead of ringing again.
//!
//! The first request for a key *claims* it and later publishes its result;
//! a request arriving while the first is still in flight waits for that
//! result rather than dialling. Entries expire after their window and are
//! swept as new ones arrive, and the store never holds more than its cap,
//! so memory stays bounded whatever the traffic.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Most entries a store keeps; past this the oldest are dropped.
pub const DEFAULT_CAP: usize = 100_000;

struct Entry<V> {
    at: Instant,
    result: watch::Receiver<Option<V>>,
}

/// Recent dials by key, for `window`.
pub struct Recent<K, V> {
    window: Duration,
    cap: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    map: HashMap<K, Entry<V>>,
    last_sweep: Instant,
}

/// What a claim found.
pub enum Claim<V> {
    /// This request is the first: dial, then [`Publisher::publish`] the result.
    First(Publisher<V>),
    /// Another request got there first: wait for its result.
    Duplicate(watch::Receiver<Option<V>>),
}

/// Publishes the first request's result to everyone waiting on it.
pub struct Publisher<V>(watch::Sender<Option<V>>);

impl<V: Clone> Publisher<V> {
    pub fn publish(self, result: &V) {
        self.0.send_replace(Some(result.clone()));
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Recent<K, V> {
    pub fn new(window: Duration, cap: usize) -> Self {
        Recent { window, cap, inner: Mutex::new(Inner { map: HashMap::new(), last_sweep: Instant::now() }) }
    }

    /// Claims `key`, or finds the request that already did (within the window).
    pub fn claim(&self, key: K) -> Claim<V> {
        let now = Instant::now();
        let Ok(mut inner) = self.inner.lock() else {
            // A poisoned lock means a panic elsewhere; do not block dialling on it.
            return Claim::First(Publisher(watch::channel(None).0));
        };
        if let Some(e) = inner.map.get(&key) {
            if now.duration_since(e.at) < self.window {
                return Claim::Duplicate(e.result.clone());
            }
        }
        if now.duration_since(inner.last_sweep) >= self.window.min(Duration::from_secs(60))
            || inner.map.len() >= self.cap
        {
            let window = self.window;
            inner.map.retain(|_, e| now.duration_since(e.at) < window);
            inner.last_sweep = now;
            while inner.map.len() >= self.cap {
                let Some(oldest) = inner.map.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone()) else { break };
                inner.map.remove(&oldest);
            }
        }
        let (tx, rx) = watch::channel(None);
        inner.map.insert(key, Entry { at: now, result: rx });
        Claim::First(Publisher(tx))
    }

    /// Forgets `key`, so the next request for it dials again.
    pub fn forget(&self, key: &K) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.map.remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Waits for the first request's result; `None` if it vanished without one.
pub async fn wait<V: Clone>(mut rx: watch::Receiver<Option<V>>) -> Option<V> {
    match rx.wait_for(Option::is_some).await {
        Ok(r) => r.clone(),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_duplicate_waits_for_and_gets_the_first_result() {
        let store: Recent<&str, String> = Recent::new(Duration::from_secs(5), 10);
        let Claim::First(publisher) = store.claim("k") else { panic!("first") };
        let Claim::Duplicate(rx) = store.claim("k") else { panic!("duplicate") };
        let waiter = tokio::spawn(wait(rx));
        publisher.publish(&"id1".to_string());
        assert_eq!(waiter.await.unwrap().unwrap(), "id1");
    }

    #[tokio::test]
    async fn entries_expire_and_the_store_stays_under_its_cap() {
        let store: Recent<u32, ()> = Recent::new(Duration::from_millis(20), 50);
        for i in 0..500 {
            let _ = store.claim(i);
        }
        assert!(store.len() <= 50, "{}", store.len());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(matches!(store.claim(499), Claim::First(_)), "expired entries are claimed anew");
        let _ = store.claim(1000);
        assert!(store.len() <= 2, "a sweep dropped the expired ones: {}", store.len());
    }
}
