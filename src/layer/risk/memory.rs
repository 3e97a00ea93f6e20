//! The default store: failure counts in this process's memory, within a fixed number of
//! counters whatever is sprayed at it.
//!
//! **Bound.** At most `capacity` counters (100,000 by default, about 13 MB: see the spray
//! test). Attempts and failures create counters; reads never do. An attempt taken back leaves
//! its counter at zero until it expires, and eviction prefers the lowest counts. A counter
//! whose failures have all left its window is expired; counters are also kept in the order
//! they expire, and every new counter first drops the expired ones at the front (a few at a
//! time), so expired counters make room before any live one is touched.
//!
//! **Eviction, against an attacker.** When the store is full, a new counter takes the place of
//! the weakest of a few counters drawn at random: the lowest current count, then the one
//! untouched the longest. A spray of random user names makes counters of one failure each, so
//! it evicts its own counters, not a victim's two or three: to push out a victim's count an
//! attacker has to give each sprayed name at least as many failures, and fill the whole store.
//! Nor can that go unnoticed: dropping a counter that still counted (an eviction) marks the
//! answers for the next window as [`evicted`](Counts::evicted), which the decision takes as the
//! route's signal, so every `WhenRisky` route asks for the captcha while counts may be missing
//! (fail safe). Evictions are counted for the metrics ([`MemoryStore::evictions`]). Draws come
//! from a generator seeded at random per store, and keys are keyed digests, so an attacker
//! can neither aim at a victim's slot nor predict the draws.
//!
//! One lock, held for a few hash-map operations per call and never across an await.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::key::{Keys, Tally};
use super::store::{Counts, RiskStore, StoreFuture};
use super::window::{Counter, Window};

/// The default number of counters: about 13 MB (133 bytes a counter, measured by the spray
/// test).
pub(crate) const DEFAULT_CAPACITY: usize = 100_000;
/// How many counters are drawn to find one to evict.
const DRAWN: usize = 8;
/// How many expired counters a new one drops at most (the rest wait for the next): a call's
/// work stays bounded.
const SWEPT: usize = 16;

/// Failure counts in memory, bounded. See the module's documentation.
#[derive(Debug)]
pub(crate) struct MemoryStore {
    state: Mutex<State>,
    evictions: AtomicU64,
}

#[derive(Debug)]
struct State {
    capacity: usize,
    /// The counters, densely, so that one can be drawn at random.
    entries: Vec<Entry>,
    /// Where each digest's counter is in `entries`.
    index: HashMap<[u8; 16], u32>,
    /// Every counter by when it expires (seconds since 1970), soonest first.
    expiry: BTreeSet<(u64, [u8; 16])>,
    rng: u64,
    /// When a counter that still counted was last dropped.
    last_eviction: Option<SystemTime>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The digest covers the signal, route, window and subject: one digest, one counter.
    digest: [u8; 16],
    window: Window,
    counter: Counter,
}

#[cfg(test)]
/// How much memory the store holds: counters, and an estimate of their bytes on the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footprint {
    pub(crate) counters: usize,
    pub(crate) approx_bytes: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    /// A store of at most `capacity` counters (at least one, at most 2^32 - 1).
    pub(crate) fn new(capacity: usize) -> Self {
        let seed = RandomState::new().hash_one(0x7269_736b_u64) | 1;
        Self {
            state: Mutex::new(State {
                capacity: capacity.clamp(1, u32::MAX as usize),
                entries: Vec::new(),
                index: HashMap::new(),
                expiry: BTreeSet::new(),
                rng: seed,
                last_eviction: None,
            }),
            evictions: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    /// Counters dropped while they still counted, since the store was made.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    /// The counters held and their approximate heap size.
    pub(crate) fn footprint(&self) -> Footprint {
        let state = self.state();
        // A hash map of n slots allocates a power of two of buckets, at least n × 8/7, of
        // (key, value) and a control byte each. (Under churn it settles at twice the
        // smallest: removals leave tombstones that a resize clears.)
        let buckets = match state.index.capacity() {
            0 => 0,
            slots => (slots * 8 / 7).next_power_of_two(),
        };
        let map = buckets * (size_of::<([u8; 16], u32)>() + 1);
        // A B-tree's leaves hold up to 11 elements, two thirds full on average, plus a few
        // words of node each: about 1.6 times the element.
        let tree = state.expiry.len() * size_of::<(u64, [u8; 16])>() * 8 / 5;
        Footprint {
            counters: state.entries.len(),
            approx_bytes: state.entries.capacity() * size_of::<Entry>() + map + tree,
        }
    }

    fn record(&self, keys: &Keys, now: SystemTime) {
        let mut state = self.state();
        self.record_in(&mut state, keys, now);
    }

    fn record_in(&self, state: &mut State, keys: &Keys, now: SystemTime) {
        for tally in keys.tallies() {
            if let Some(at) = state.slot(&tally.digest) {
                state.add(at, now);
                continue;
            }
            state.sweep(now);
            if state.entries.len() >= state.capacity && state.evict_one(now) {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
            let mut counter = Counter::new(tally.window, now);
            counter.add(tally.window, now);
            state.push(Entry {
                digest: tally.digest,
                window: tally.window,
                counter,
            });
        }
    }

    #[cfg(test)]
    fn read(&self, keys: &Keys, now: SystemTime) -> Counts {
        Self::read_in(&mut self.state(), keys, now)
    }

    /// Reads and counts under one lock.
    fn attempt(&self, keys: &Keys, now: SystemTime) -> Counts {
        let mut state = self.state();
        let before = Self::read_in(&mut state, keys, now);
        self.record_in(&mut state, keys, now);
        before
    }

    fn take_back(&self, keys: &Keys, at: SystemTime) {
        let mut state = self.state();
        for tally in keys.tallies() {
            if let Some(at_slot) = state.slot(&tally.digest) {
                let entry = &mut state.entries[at_slot];
                entry.counter.remove(entry.window, at);
            }
        }
    }

    fn read_in(state: &mut State, keys: &Keys, now: SystemTime) -> Counts {
        let mut count = |tally: Option<&Tally>| {
            let Some(tally) = tally else { return 0 };
            let Some(at) = state.slot(&tally.digest) else {
                return 0;
            };
            let entry = state.entries[at];
            if entry.counter.is_expired(entry.window, now) {
                state.remove(at);
                return 0;
            }
            entry.counter.estimate(entry.window, now)
        };
        let account = count(keys.account.as_ref());
        let ip = count(keys.ip.as_ref());
        let global = count(Some(&keys.global));
        let recent = Duration::from_secs(keys.longest_window().secs());
        let evicted = state.last_eviction.is_some_and(|at| {
            // A clock that went back counts as recent.
            now.duration_since(at).map_or(true, |since| since < recent)
        });
        Counts {
            account,
            ip,
            global,
            evicted,
        }
    }

    fn forget(&self, account: &Tally) {
        let mut state = self.state();
        if let Some(at) = state.slot(&account.digest) {
            state.remove(at);
        }
    }
}

impl State {
    fn next_random(&mut self) -> u64 {
        // xorshift64*: fast, and unpredictable enough from outside with a random seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn random_index(&mut self) -> Option<usize> {
        let len = self.entries.len() as u64;
        (len > 0).then(|| (self.next_random() % len) as usize)
    }

    /// Where the counter of `digest` is.
    fn slot(&self, digest: &[u8; 16]) -> Option<usize> {
        self.index.get(digest).map(|&at| at as usize)
    }

    /// Counts a failure on the counter at `at`, keeping the expiry order.
    fn add(&mut self, at: usize, now: SystemTime) {
        let Some(entry) = self.entries.get_mut(at) else {
            return;
        };
        let before = entry.expires();
        entry.counter.add(entry.window, now);
        let after = entry.expires();
        if after != before {
            let digest = entry.digest;
            self.expiry.remove(&(before, digest));
            self.expiry.insert((after, digest));
        }
    }

    fn push(&mut self, entry: Entry) {
        // Grow by at most what the bound allows: the vector never holds room past `capacity`.
        if self.entries.len() == self.entries.capacity() {
            let room = self.capacity.saturating_sub(self.entries.len());
            // Double (from 16), but never past the bound, and at least one.
            let more = self.entries.len().max(16).min(room).max(1);
            self.entries.reserve_exact(more);
        }
        // `capacity` fits in a u32, and so does every position.
        self.index.insert(entry.digest, self.entries.len() as u32);
        self.expiry.insert((entry.expires(), entry.digest));
        self.entries.push(entry);
    }

    fn remove(&mut self, at: usize) {
        if at >= self.entries.len() {
            return;
        }
        let gone = self.entries.swap_remove(at);
        self.index.remove(&gone.digest);
        self.expiry.remove(&(gone.expires(), gone.digest));
        if let Some(moved) = self.entries.get(at) {
            self.index.insert(moved.digest, at as u32);
        }
    }

    /// Drops up to [`SWEPT`] counters that have expired, soonest first.
    fn sweep(&mut self, now: SystemTime) {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        for _ in 0..SWEPT {
            match self.expiry.first() {
                Some(&(expires, digest)) if expires <= now => {
                    match self.slot(&digest) {
                        Some(at) => self.remove(at),
                        // Not in the index: a stale mark (cannot happen; never loop on it).
                        None => {
                            self.expiry.remove(&(expires, digest));
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// Drops the weakest of a few random counters: the lowest count, then the one untouched
    /// the longest. Returns whether it still counted (an eviction, rather than an expiry).
    fn evict_one(&mut self, now: SystemTime) -> bool {
        let mut weakest: Option<(usize, (u64, u64))> = None;
        for _ in 0..DRAWN {
            let Some(at) = self.random_index() else {
                return false;
            };
            let entry = &self.entries[at];
            let count = entry.counter.estimate(entry.window, now);
            // The start of the bucket it was last counted in, in seconds: comparable across
            // windows.
            let touched = entry.counter.bucket().saturating_mul(entry.window.secs());
            let score = (count, touched);
            if weakest.is_none_or(|(_, best)| score < best) {
                weakest = Some((at, score));
            }
        }
        let Some((at, (count, _))) = weakest else {
            return false;
        };
        self.remove(at);
        let live = count > 0;
        if live {
            self.last_eviction = Some(now);
        }
        live
    }
}

impl Entry {
    /// When its last failure leaves the window, in seconds since 1970: the end of the bucket
    /// after its last one.
    fn expires(&self) -> u64 {
        self.counter
            .bucket()
            .saturating_add(2)
            .saturating_mul(self.window.secs())
    }
}

impl RiskStore for MemoryStore {
    fn record_failure(&self, keys: Keys, now: SystemTime) -> StoreFuture<'_, ()> {
        self.record(&keys, now);
        Box::pin(std::future::ready(Ok(())))
    }

    #[cfg(test)]
    fn counts(&self, keys: Keys, now: SystemTime) -> StoreFuture<'_, Counts> {
        Box::pin(std::future::ready(Ok(self.read(&keys, now))))
    }

    fn clear(&self, account: Tally, _now: SystemTime) -> StoreFuture<'_, ()> {
        self.forget(&account);
        Box::pin(std::future::ready(Ok(())))
    }

    fn attempt(&self, keys: Keys, now: SystemTime) -> StoreFuture<'_, Counts> {
        Box::pin(std::future::ready(Ok(MemoryStore::attempt(
            self, &keys, now,
        ))))
    }

    fn undo(&self, keys: Keys, at: SystemTime) -> StoreFuture<'_, ()> {
        self.take_back(&keys, at);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Seconds since 1970, for tests that move time by hand.
#[cfg(test)]
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::super::decision::{Need, Raised, Thresholds, requirement};
    use super::super::key::{KeyHasher, Signal};
    use super::*;

    fn keys(hasher: &KeyHasher, account: &str) -> Keys {
        let ip = "192.0.2.1".parse().ok();
        hasher.keys("login", Some(account), ip, Thresholds::default().windows())
    }

    async fn decide(store: &MemoryStore, keys: Keys, now: SystemTime) -> Need {
        let counts = store.counts(keys, now).await;
        requirement(counts.as_ref(), &Thresholds::default())
    }

    #[tokio::test]
    async fn failures_count_clear_and_expire() {
        let store = MemoryStore::default();
        let hasher = KeyHasher::with_key(b"k");
        let t0 = at(900 * 2_000);
        let alice = keys(&hasher, "alice");
        let bob = keys(&hasher, "bob");
        assert_eq!(decide(&store, alice, t0).await, Need::NotRequired);
        // Reading created nothing.
        assert_eq!(store.footprint().counters, 0);
        for _ in 0..3 {
            store.record_failure(alice, t0).await.unwrap();
        }
        let counts = store.counts(alice, t0).await.unwrap();
        assert_eq!((counts.account, counts.ip, counts.global), (3, 3, 3));
        assert_eq!(
            decide(&store, alice, t0).await,
            Need::Required(Raised::Account)
        );
        // Bob shares the address and the route, not the account.
        assert_eq!(store.counts(bob, t0).await.unwrap().account, 0);
        // A success clears the account, not the address.
        store.clear(alice.account.unwrap(), t0).await.unwrap();
        let counts = store.counts(alice, t0).await.unwrap();
        assert_eq!((counts.account, counts.ip), (0, 3));
        // Failures leave with the window: the route's after a minute or two, the rest after
        // 15 to 30 minutes, and expired counters go when read.
        store.record_failure(bob, t0).await.unwrap();
        assert_eq!(
            store
                .counts(bob, t0 + Duration::from_secs(120))
                .await
                .unwrap()
                .global,
            0
        );
        let later = t0 + Duration::from_secs(1_800);
        assert_eq!(store.counts(bob, later).await.unwrap(), Counts::default());
        assert_eq!(store.footprint().counters, 0);
        assert_eq!(store.evictions(), 0);
    }

    /// A counter of a random subject, as a spray makes.
    fn sprayed(rng: &mut u64, signal: Signal, window: Window) -> Tally {
        let mut digest = [0u8; 16];
        for half in digest.chunks_mut(8) {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            half.copy_from_slice(&rng.to_le_bytes());
        }
        Tally {
            signal,
            digest,
            window,
        }
    }

    #[tokio::test]
    async fn a_spray_of_a_million_names_stays_within_the_bound_and_spares_the_victim() {
        let store = MemoryStore::default();
        let hasher = KeyHasher::random();
        let windows = Thresholds::default().windows();
        let t0 = at(900 * 3_000);
        // A victim one failure short of the captcha.
        let victim = keys(&hasher, "victim");
        for _ in 0..2 {
            store.record_failure(victim, t0).await.unwrap();
        }
        let route = victim.global;
        let mut rng = 0x1234_5678_9abc_def1_u64;
        let mut largest = store.footprint();
        for i in 0..1_000_000u32 {
            let now = t0 + Duration::from_millis(u64::from(i));
            let keys = Keys {
                account: Some(sprayed(&mut rng, Signal::Account, windows.account)),
                ip: None,
                global: route,
            };
            store.record_failure(keys, now).await.unwrap();
            if i % 10_000 == 0 {
                let footprint = store.footprint();
                if footprint.approx_bytes > largest.approx_bytes {
                    largest = footprint;
                }
            }
        }
        let end = t0 + Duration::from_secs(1_000);
        let footprint = store.footprint();
        eprintln!(
            "after 1,000,000 sprayed names: {} counters, about {} bytes (largest seen {} bytes), \
             {} evictions; {} bytes per counter",
            footprint.counters,
            footprint.approx_bytes,
            largest.approx_bytes,
            store.evictions(),
            footprint.approx_bytes / footprint.counters.max(1),
        );
        assert!(footprint.counters <= DEFAULT_CAPACITY, "{footprint:?}");
        assert!(largest.approx_bytes <= 16 << 20, "{largest:?}");
        // The spray evicted its own counters, and the victim's count is intact.
        assert!(store.evictions() >= 900_000, "{}", store.evictions());
        let counts = store.counts(victim, end).await.unwrap();
        assert_eq!(counts.account, 2);
        assert!(counts.evicted);
        // Counts were dropped: everyone is asked, until a window passes without evictions.
        let mut stranger = keys(&hasher, "stranger");
        stranger.ip = None;
        let mut quiet_route = stranger;
        quiet_route.global = hasher.keys("signup", None, None, windows).global;
        assert_eq!(
            decide(&store, quiet_route, end).await,
            Need::Required(Raised::Global)
        );
        let calm = end + Duration::from_secs(900);
        assert_eq!(decide(&store, quiet_route, calm).await, Need::NotRequired);
    }

    #[tokio::test]
    async fn expired_counters_make_room_without_counting_as_evictions() {
        let store = MemoryStore::new(1_000);
        let window = Window::from_secs(60).unwrap();
        let mut rng = 0xfeed_u64;
        let route = sprayed(&mut rng, Signal::Global, window);
        let spray = |rng: &mut u64| Keys {
            account: Some(sprayed(rng, Signal::Account, window)),
            ip: None,
            global: route,
        };
        for _ in 0..999 {
            store
                .record_failure(spray(&mut rng), at(6_000))
                .await
                .unwrap();
        }
        assert_eq!(store.footprint().counters, 1_000);
        // Two windows later every one of them has expired: as many new ones take their places
        // without an eviction.
        for _ in 0..999 {
            store
                .record_failure(spray(&mut rng), at(6_120))
                .await
                .unwrap();
        }
        assert!(store.footprint().counters <= 1_000);
        assert_eq!(store.evictions(), 0);
        assert!(
            !store
                .counts(spray(&mut rng), at(6_120))
                .await
                .unwrap()
                .evicted
        );
        // A store of no room still holds one counter, without a panic.
        let tiny = MemoryStore::new(0);
        tiny.record_failure(spray(&mut rng), at(6_000))
            .await
            .unwrap();
        assert_eq!(tiny.footprint().counters, 1);
    }
}
