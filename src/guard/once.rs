//! Exactly one call per click: remembering recent requests so that the same
//! request again gets the first one's answer instead of ringing again.
//!
//! The contract of a store ([`Once`]):
//!
//! - The first request for a key *claims* it ([`Claim::First`]) and later
//!   settles it with its result ([`Ticket::settle`]).
//! - A request for the same key while the first is still in flight waits
//!   for that result ([`Claim::Duplicate`], [`Waiter::wait`]): no polling,
//!   and an in-flight claim does not expire, however long the first takes.
//! - Once settled, the result is remembered until the window, counted from
//!   the claim, ends. After it, the key is claimed afresh.
//! - A result settled with `forget` (the PBX never saw the request) is
//!   handed to those already waiting and then forgotten, so the next click
//!   may dial again.
//! - A claim dropped without being settled (its task died) is remembered as
//!   "no answer" for the window: the PBX may have received it, so it is not
//!   sent again; its waiters get `None`.
//! - A key claimed before with another *fingerprint* (what else must match
//!   for two requests to be the same one) is a [`Claim::Conflict`].
//! - Memory is bounded in bytes ([`Weigh`] plus the store's own estimate of
//!   its bookkeeping) and in entries. At the bound the oldest entries are
//!   dropped, so a full store keeps admitting new requests at full speed: it
//!   never refuses or slows dialling.
//!
//! # Why not a general cache
//!
//! Every entry of a store lives for the same window, so the order entries
//! expire in is the order they were claimed in, which is also the "oldest"
//! order to drop at the bound. Each shard is therefore a hash map plus a
//! FIFO queue of its keys: a claim appends, expiry and eviction pop the
//! front, all O(1) and under one shard's short lock (16 shards). No timer
//! wheel, no LRU lists, no sweep of every entry. Each claim also expires a
//! few due entries of its shard, and a maintenance thread expires the rest
//! in small batches, so memory comes back after a burst even when no
//! request follows, and the work never lands on one request. Measured
//! against `moka` (a concurrent cache, TinyLFU/LRU with per-entry expiry)
//! in `BENCHMARKS.md`: about half the memory per remembered dial and a
//! fraction of the CPU per claim.
//!
//! Time is tokio's clock, so tests pause and advance it.
//!
//! The store knows nothing of dials: it is generic over the remembered value.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Most entries a store keeps, whatever their size.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;
/// Most bytes a store's entries take, by estimate (see [`Weigh`]).
pub const DEFAULT_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// How often the maintenance thread expires due entries while the store
/// holds any (ten times that while it is empty).
pub const MAINTENANCE_TICK: Duration = Duration::from_millis(100);

/// The longest window a store keeps (longer ones are cut to it), so that
/// no instant overflows.
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// A store that held at least this many bytes gives memory back once it
/// has drained.
pub const RETURN_AFTER: usize = 1024 * 1024;

/// Shards: enough that two claims rarely wait for each other.
const SHARDS: usize = 16;
/// Due entries a claim expires in its shard: more than the one it adds, so
/// traffic alone keeps up with expiry.
const EXPIRE_PER_CLAIM: usize = 4;
/// Entries the maintenance thread expires per lock of a shard, so a
/// request never waits for more than a short batch.
const EXPIRE_PER_BATCH: usize = 256;
/// Allocator bookkeeping per heap block (glibc: a 16-byte header and
/// 16-byte rounding, counted as one).
const PER_BLOCK: usize = 16;

/// What a value costs to remember: the bytes it owns on the heap (its
/// inline size is counted by the store). An estimate, used to keep the
/// store within its bound.
pub trait Weigh {
    fn weight(&self) -> usize;
}

/// A remembered request's identity, compared as exact bytes.
///
/// The fields are length-prefixed into one shared buffer: one allocation
/// per entry (shared by its map slot, its queue slot and its ticket), and
/// no two different field lists encode alike.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OnceKey(Arc<[u8]>);

impl OnceKey {
    /// The duplicate window's key: the same caller, branch, action,
    /// extension and number.
    pub fn window(caller: &str, branch: &str, action: &str, extension: &str, number: &str) -> Self {
        let fields = [caller, branch, action, extension, number].map(str::as_bytes);
        OnceKey::encode(b'w', &fields)
    }

    /// An `Idempotency-Key`: the same caller and the exact key bytes
    /// received (not necessarily UTF-8).
    pub fn idempotency(caller: &str, key: &[u8]) -> Self {
        OnceKey::encode(b'i', &[caller.as_bytes(), key])
    }

    fn encode(kind: u8, fields: &[&[u8]]) -> Self {
        let mut buf = Vec::with_capacity(1 + fields.iter().map(|f| f.len() + 4).sum::<usize>());
        buf.push(kind);
        for f in fields {
            // Fields are at most a few hundred bytes; saturate rather than wrap.
            buf.extend_from_slice(&u32::try_from(f.len()).unwrap_or(u32::MAX).to_le_bytes());
            buf.extend_from_slice(f);
        }
        OnceKey(buf.into())
    }

    /// The shared buffer: its bytes and two reference counts.
    fn heap(&self) -> usize {
        self.0.len() + 2 * size_of::<usize>() + PER_BLOCK
    }
}

impl std::fmt::Debug for OnceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys name callers and numbers: show only their size.
        write!(f, "OnceKey({} bytes)", self.0.len())
    }
}

/// What a claim found.
pub enum Claim<V> {
    /// This request is the first: send it, then [`Ticket::settle`].
    First(Ticket<V>),
    /// The same request was claimed before: [`Waiter::wait`] for its result.
    Duplicate(Waiter<V>),
    /// The key was claimed before for a different request (another
    /// fingerprint): nothing may be sent.
    Conflict,
}

/// A claim in flight, shared with its waiters.
struct Pending<V> {
    result: OnceLock<Option<V>>,
    settled: Notify,
}

enum State<V> {
    /// In flight.
    Pending(Arc<Pending<V>>),
    /// Settled (`None`: the first ended without a result).
    Done(Option<V>),
    /// Forgotten: claimable at once. Kept until its queue slot comes up,
    /// so every entry leaves through the queue.
    Free,
}

struct Entry<V> {
    claimed: Instant,
    fingerprint: u64,
    /// What this entry counts against the bound, in bytes.
    weight: usize,
    state: State<V>,
}

/// A key's place in its shard's queue. Every entry has exactly one; `due`
/// is when to look at it again (its window's end, at the latest).
struct Queued {
    key: OnceKey,
    due: Instant,
}

struct Shard<V> {
    map: HashMap<OnceKey, Entry<V>>,
    queue: VecDeque<Queued>,
    bytes: usize,
}

struct Shared<V> {
    window: Duration,
    shards: Box<[Mutex<Shard<V>>]>,
    hasher: RandomState,
    /// Bounds per shard.
    max_bytes: usize,
    max_entries: usize,
}

/// Recent requests by key, each remembered for `window` from its claim.
pub struct Once<V> {
    shared: Arc<Shared<V>>,
}

impl<V> std::fmt::Debug for Once<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Once").field("window", &self.shared.window).finish_non_exhaustive()
    }
}

/// An entry's fixed cost: its map slot, its queue slot and its key. The
/// tables' spare capacity is not counted; measured with VOIspeed answers,
/// an entry weighs 1.15 to 1.4 times the memory it really takes.
fn base_weight<V>(key: &OnceKey) -> usize {
    size_of::<(OnceKey, Entry<V>)>() + size_of::<Queued>() + key.heap()
}

fn value_weight<V: Weigh>(state: &State<V>) -> usize {
    match state {
        State::Pending(_) => size_of::<Pending<V>>() + 2 * size_of::<usize>() + PER_BLOCK,
        State::Done(Some(v)) => v.weight(),
        State::Done(None) | State::Free => 0,
    }
}

impl<V> Shared<V> {
    fn shard(&self, key: &OnceKey) -> MutexGuard<'_, Shard<V>> {
        let i = (self.hasher.hash_one(key) as usize) % self.shards.len();
        // Nothing panics while a shard is locked; if something did, the
        // shard is still consistent enough to keep dialling.
        self.shards[i].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<V> Shard<V> {
    /// Expires up to `budget` due entries from the front of the queue.
    /// Returns whether more may be due.
    fn expire(&mut self, now: Instant, window: Duration, mut budget: usize) -> bool {
        while let Some(front) = self.queue.front() {
            if front.due > now {
                return false;
            }
            if budget == 0 {
                return true;
            }
            budget -= 1;
            let Some(q) = self.queue.pop_front() else { break };
            let Some(e) = self.map.get(&q.key) else { continue };
            let ends = e.claimed + window;
            match e.state {
                // In flight: look again a window from now.
                State::Pending(_) => self.queue.push_back(Queued { key: q.key, due: now + window }),
                // Claimed again since it was queued: look again at its end.
                State::Done(_) if ends > now => self.queue.push_back(Queued { key: q.key, due: ends }),
                State::Done(_) | State::Free => self.remove(&q.key),
            }
        }
        false
    }

    /// Drops the oldest entries until the shard is within its bounds.
    fn evict(&mut self, max_bytes: usize, max_entries: usize) {
        while self.bytes > max_bytes || self.map.len() > max_entries {
            let Some(q) = self.queue.pop_front() else { break };
            self.remove(&q.key);
        }
    }

    fn remove(&mut self, key: &OnceKey) {
        if let Some(e) = self.map.remove(key) {
            self.bytes = self.bytes.saturating_sub(e.weight);
        }
    }
}

impl<V: Weigh + Clone + Send + Sync + 'static> Once<V> {
    /// A store remembering each request for `window`, holding at most
    /// `max_bytes` (estimated) and `max_entries`, whichever comes first.
    /// Plain values only, so a store can outlive a configuration reload.
    /// Starts a maintenance thread that ends with the store.
    pub fn new(window: Duration, max_bytes: u64, max_entries: u64) -> Self {
        let per_shard = |total: u64| usize::try_from(total.div_ceil(SHARDS as u64)).unwrap_or(usize::MAX);
        let shards =
            (0..SHARDS).map(|_| Mutex::new(Shard { map: HashMap::new(), queue: VecDeque::new(), bytes: 0 })).collect();
        let shared = Arc::new(Shared {
            window: window.min(MAX_WINDOW),
            shards,
            hasher: RandomState::new(),
            max_bytes: per_shard(max_bytes),
            max_entries: per_shard(max_entries),
        });
        maintain(Arc::downgrade(&shared));
        Once { shared }
    }

    pub fn window(&self) -> Duration {
        self.shared.window
    }

    /// Claims `key` for a request with `fingerprint`, or finds the request
    /// that claimed it before (in flight, or settled within the window).
    pub fn claim(&self, key: OnceKey, fingerprint: u64) -> Claim<V> {
        let s = &self.shared;
        let mut shard = s.shard(&key);
        let now = Instant::now();
        shard.expire(now, s.window, EXPIRE_PER_CLAIM);
        let shard = &mut *shard;
        if let Some(e) = shard.map.get(&key) {
            let found = match &e.state {
                State::Pending(p) => Some(Waits::Pending(p.clone())),
                State::Done(v) if now.saturating_duration_since(e.claimed) < s.window => Some(Waits::Ready(v.clone())),
                State::Done(_) | State::Free => None,
            };
            match found {
                Some(_) if e.fingerprint != fingerprint => return Claim::Conflict,
                Some(w) => return Claim::Duplicate(Waiter(w)),
                None => {}
            }
        }
        let pending = Arc::new(Pending { result: OnceLock::new(), settled: Notify::new() });
        let state = State::Pending(pending.clone());
        let weight = base_weight::<V>(&key) + value_weight(&state);
        match shard.map.get_mut(&key) {
            // Expired or forgotten but not yet dropped: claimed afresh in
            // its queue slot (the expiry pass above usually dropped it first).
            Some(e) => {
                shard.bytes = shard.bytes.saturating_sub(e.weight) + weight;
                *e = Entry { claimed: now, fingerprint, weight, state };
            }
            None => {
                shard.map.insert(key.clone(), Entry { claimed: now, fingerprint, weight, state });
                shard.queue.push_back(Queued { key: key.clone(), due: now + s.window });
                shard.bytes += weight;
            }
        }
        shard.evict(s.max_bytes, s.max_entries);
        Claim::First(Ticket { shared: s.clone(), key, pending, settled: false })
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.shared.shards.iter().map(|m| m.lock().unwrap_or_else(PoisonError::into_inner).map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.shared.shards.iter().map(|m| m.lock().unwrap_or_else(PoisonError::into_inner).bytes).sum()
    }
}

/// Expires due entries off the request path until the store is dropped,
/// so memory comes back after a burst even when no request follows: once
/// the store has shrunk to a sixteenth of what it held (and held at least
/// [`RETURN_AFTER`]), its tables are shrunk and the freed heap is given
/// back to the OS (glibc keeps it otherwise).
fn maintain<V: Send + Sync + 'static>(shared: Weak<Shared<V>>) {
    let spawned = std::thread::Builder::new().name("webdial-once".into()).spawn(move || {
        let mut peak = 0;
        loop {
            let Some(s) = shared.upgrade() else { return };
            let (mut empty, mut bytes) = (true, 0);
            for m in &s.shards {
                loop {
                    let mut shard = m.lock().unwrap_or_else(PoisonError::into_inner);
                    let more = shard.expire(Instant::now(), s.window, EXPIRE_PER_BATCH);
                    if !more {
                        empty &= shard.map.is_empty();
                        bytes += shard.bytes;
                        break;
                    }
                }
            }
            peak = bytes.max(peak);
            if peak >= RETURN_AFTER && bytes <= peak / 16 {
                for m in &s.shards {
                    let mut shard = m.lock().unwrap_or_else(PoisonError::into_inner);
                    shard.map.shrink_to_fit();
                    shard.queue.shrink_to_fit();
                }
                release_free_memory();
                peak = bytes;
            }
            drop(s);
            std::thread::sleep(if empty { MAINTENANCE_TICK * 10 } else { MAINTENANCE_TICK });
        }
    });
    if let Err(e) = spawned {
        // Claims still expire entries as they come; only idle memory is
        // returned later.
        tracing::warn!("no maintenance thread for a once-per-click store: {e}");
    }
}

/// Gives freed heap memory back to the OS.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the OS; it has no
    // preconditions and touches no memory the program still uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The first request's claim. Settle it with the result; dropped unsettled,
/// it is remembered as "no answer" (see the module docs).
pub struct Ticket<V> {
    shared: Arc<Shared<V>>,
    key: OnceKey,
    pending: Arc<Pending<V>>,
    settled: bool,
}

impl<V: Weigh + Clone> Ticket<V> {
    /// Hands `value` to every waiter, then remembers it for the rest of the
    /// window, or forgets the key when `forget` (nothing reached the PBX).
    pub fn settle(mut self, value: V, forget: bool) {
        self.finish(Some(value), forget);
    }

    fn finish(&mut self, value: Option<V>, forget: bool) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        let p = &self.pending;
        let _ = p.result.set(value.clone());
        p.settled.notify_waiters();
        let s = &self.shared;
        let mut shard = s.shard(&self.key);
        let shard = &mut *shard;
        // Only our own claim: after an eviction the key may be a newer request's.
        let Some(e) = shard.map.get_mut(&self.key) else { return };
        if !matches!(&e.state, State::Pending(mine) if Arc::ptr_eq(mine, p)) {
            return;
        }
        e.state = if forget { State::Free } else { State::Done(value) };
        let weight = base_weight::<V>(&self.key) + value_weight(&e.state);
        shard.bytes = shard.bytes.saturating_sub(e.weight) + weight;
        e.weight = weight;
        shard.evict(s.max_bytes, s.max_entries);
    }
}

impl<V> Drop for Ticket<V> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // Settling needs `V: Weigh + Clone`, which `Drop` cannot ask for:
        // wake the waiters with "no answer" and leave the entry in flight
        // until its window ends and the queue finds it, as "no answer".
        let _ = self.pending.result.set(None);
        self.pending.settled.notify_waiters();
        let mut shard = self.shared.shard(&self.key);
        if let Some(e) = shard.map.get_mut(&self.key) {
            if matches!(&e.state, State::Pending(mine) if Arc::ptr_eq(mine, &self.pending)) {
                e.state = State::Done(None);
            }
        }
    }
}

enum Waits<V> {
    Pending(Arc<Pending<V>>),
    Ready(Option<V>),
}

/// A duplicate's view of the first request.
pub struct Waiter<V>(Waits<V>);

impl<V: Clone> Waiter<V> {
    /// The first request's result once it is settled; `None` if it ended
    /// without one.
    pub async fn wait(self) -> Option<V> {
        match self.0 {
            Waits::Ready(v) => v,
            Waits::Pending(p) => loop {
                let settled = p.settled.notified();
                tokio::pin!(settled);
                // Registered before looking, so a settle in between is not missed.
                settled.as_mut().enable();
                if let Some(r) = p.result.get() {
                    return r.clone();
                }
                settled.await;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Answer(Vec<u8>);

    impl Weigh for Answer {
        fn weight(&self) -> usize {
            self.0.capacity()
        }
    }

    fn answer(s: &str) -> Answer {
        Answer(s.as_bytes().to_vec())
    }

    fn store(window: Duration) -> Once<Answer> {
        Once::new(window, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES)
    }

    fn key(n: u32) -> OnceKey {
        OnceKey::window("erp", "london", "dial", "201", &format!("+44{n}"))
    }

    fn first(c: Claim<Answer>) -> Ticket<Answer> {
        match c {
            Claim::First(t) => t,
            Claim::Duplicate(_) => panic!("expected the first claim, got a duplicate"),
            Claim::Conflict => panic!("expected the first claim, got a conflict"),
        }
    }

    fn duplicate(c: Claim<Answer>) -> Waiter<Answer> {
        match c {
            Claim::Duplicate(w) => w,
            Claim::First(_) => panic!("expected a duplicate, got a first claim"),
            Claim::Conflict => panic!("expected a duplicate, got a conflict"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_duplicate_in_flight_waits_for_and_gets_the_first_result() {
        let s = store(Duration::from_secs(5));
        let ticket = first(s.claim(key(1), 7));
        let waiters: Vec<_> = (0..20).map(|_| tokio::spawn(duplicate(s.claim(key(1), 7)).wait())).collect();
        // The first takes longer than the window: its duplicates still wait.
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        for n in 100..200 {
            // Other claims expire due entries, but not one in flight.
            let _ = s.claim(key(n), 7);
        }
        assert!(matches!(s.claim(key(1), 7), Claim::Duplicate(_)), "in flight never expires");
        ticket.settle(answer("first"), false);
        for w in waiters {
            assert_eq!(w.await.unwrap(), Some(answer("first")));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_settled_result_is_remembered_for_the_window_from_the_claim() {
        let s = store(Duration::from_secs(5));
        let t = first(s.claim(key(1), 0));
        tokio::time::advance(Duration::from_secs(2)).await;
        t.settle(answer("a"), false);
        tokio::time::advance(Duration::from_millis(2_999)).await;
        assert_eq!(duplicate(s.claim(key(1), 0)).wait().await, Some(answer("a")));
        assert!(matches!(s.claim(key(2), 0), Claim::First(_)), "another key is another request");
        tokio::time::advance(Duration::from_millis(1)).await;
        let again = first(s.claim(key(1), 0));
        again.settle(answer("b"), false);
        assert_eq!(duplicate(s.claim(key(1), 0)).wait().await, Some(answer("b")));
        // Claimed again in its old queue slot: still remembered for its own window.
        tokio::time::advance(Duration::from_millis(4_999)).await;
        for n in 100..200 {
            let _ = s.claim(key(n), 0);
        }
        assert_eq!(duplicate(s.claim(key(1), 0)).wait().await, Some(answer("b")));
    }

    #[tokio::test(start_paused = true)]
    async fn forget_hands_the_result_to_waiters_then_lets_the_next_claim_dial() {
        let s = store(Duration::from_secs(5));
        let t = first(s.claim(key(1), 0));
        let w = tokio::spawn(duplicate(s.claim(key(1), 0)).wait());
        tokio::task::yield_now().await;
        t.settle(answer("unreachable"), true);
        assert_eq!(w.await.unwrap(), Some(answer("unreachable")));
        assert!(matches!(s.claim(key(1), 0), Claim::First(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_claim_is_remembered_without_an_answer() {
        let s = store(Duration::from_secs(5));
        let t = first(s.claim(key(1), 0));
        let w = tokio::spawn(duplicate(s.claim(key(1), 0)).wait());
        tokio::task::yield_now().await;
        drop(t);
        assert_eq!(w.await.unwrap(), None);
        assert_eq!(duplicate(s.claim(key(1), 0)).wait().await, None, "not sent again within the window");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(matches!(s.claim(key(1), 0), Claim::First(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn another_fingerprint_is_a_conflict_in_flight_and_settled() {
        let s = store(Duration::from_secs(5));
        let k = || OnceKey::idempotency("erp", b"order-42");
        let t = first(s.claim(k(), 1));
        assert!(matches!(s.claim(k(), 2), Claim::Conflict));
        t.settle(answer("a"), false);
        assert!(matches!(s.claim(k(), 2), Claim::Conflict));
        assert!(matches!(s.claim(k(), 1), Claim::Duplicate(_)));
        assert!(matches!(s.claim(OnceKey::idempotency("crm", b"order-42"), 2), Claim::First(_)), "per caller");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(matches!(s.claim(k(), 2), Claim::First(_)), "expired");
    }

    #[test]
    fn keys_are_exact_bytes_and_fields_do_not_run_together() {
        let k = |b: &[u8]| OnceKey::idempotency("erp", b);
        assert_ne!(k(b"order-\xe9"), k(b"order-\xe8"));
        assert_eq!(k(b"order-\xe9"), k(b"order-\xe9"));
        assert_ne!(OnceKey::window("a", "bc", "dial", "1", "2"), OnceKey::window("ab", "c", "dial", "1", "2"));
        assert_ne!(OnceKey::window("a", "b", "dial", "1", "2"), OnceKey::window("a", "b", "hangup", "1", "2"));
        assert_ne!(OnceKey::idempotency("a", b""), OnceKey::window("a", "", "", "", ""));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_entries_leave_as_claims_come_and_the_store_does_not_grow() {
        let s = store(Duration::from_secs(5));
        for n in 0..1_000 {
            first(s.claim(key(n), 0)).settle(answer("ok"), false);
        }
        assert_eq!(s.len(), 1_000);
        tokio::time::advance(Duration::from_secs(5)).await;
        for n in 1_000..2_000 {
            first(s.claim(key(n), 0)).settle(answer("ok"), false);
        }
        // Each claim expired up to four of the old ones in its shard.
        assert!(s.len() < 1_400, "{}", s.len());
    }

    #[tokio::test(start_paused = true)]
    async fn the_byte_bound_holds_with_large_answers_and_new_keys_are_still_remembered() {
        let bound = 8 * 1024 * 1024;
        let s: Once<Answer> = Once::new(Duration::from_secs(5), bound, DEFAULT_MAX_ENTRIES);
        let big = Answer(vec![b'x'; 200 * 1024]);
        for n in 0..500 {
            first(s.claim(key(n), 0)).settle(big.clone(), false);
            assert!(s.bytes() as u64 <= bound, "{} bytes after {n}", s.bytes());
        }
        assert!(s.len() >= 16, "answers of 200 KB are still remembered: {}", s.len());
        // At the bound the oldest are dropped and the newest are remembered.
        assert!(matches!(s.claim(key(0), 0), Claim::First(_)), "the oldest was dropped");
        assert_eq!(duplicate(s.claim(key(499), 0)).wait().await, Some(big));
    }

    #[tokio::test(start_paused = true)]
    async fn the_entry_cap_holds_and_a_full_store_keeps_admitting() {
        let s: Once<Answer> = Once::new(Duration::from_secs(3600), DEFAULT_MAX_BYTES, 1_000);
        for n in 0..5_000 {
            first(s.claim(key(n), 0)).settle(answer("ok"), false);
        }
        assert!(s.len() <= 1_000 + SHARDS, "{}", s.len());
        assert_eq!(duplicate(s.claim(key(4_999), 0)).wait().await, Some(answer("ok")));
    }

    #[test]
    fn expired_entries_are_freed_without_further_requests() {
        // Outside a runtime tokio's clock is the wall clock. This waits for
        // the event, not for a time: the entries are there, then the
        // maintenance thread alone drops them (no request touches the store).
        let s: Once<Answer> = Once::new(Duration::from_secs(2), DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES);
        for n in 0..100 {
            first(s.claim(key(n), 0)).settle(answer("ok"), false);
        }
        assert_eq!(s.len(), 100);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !s.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(MAINTENANCE_TICK);
        }
        assert_eq!((s.len(), s.bytes()), (0, 0), "the maintenance thread dropped them");
    }
}
