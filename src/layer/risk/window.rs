//! A sliding window of failures, counted in two fixed buckets: the current bucket and the
//! previous one, both in full. Pure arithmetic on a `now` the caller passes, so tests move
//! time by hand.
//!
//! Buckets are numbered from the Unix epoch (`bucket = seconds since 1970 / window length`), so
//! that instances sharing a store agree on them without talking to each other; a few seconds of
//! clock skew between instances moves a bucket boundary by as much, which against windows of a
//! minute and more is noise.
//!
//! A failure counts in full while its bucket is current and through the whole next bucket, so
//! it is forgotten between one and two windows after it happened, never sooner than one: any
//! span of one window holds no more failures than the limit lets in. (Weighting the previous
//! bucket by how much of it the window still covers, the usual estimate, lets a burst just
//! before a bucket's end and another just after it pass the limit almost twice.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The length of a sliding window, in whole seconds (at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Window {
    secs: u64,
}

impl Window {
    /// A window of `length`, or `None` if it is shorter than a second.
    pub(crate) fn new(length: Duration) -> Option<Self> {
        let secs = length.as_secs();
        (secs >= 1).then_some(Self { secs })
    }

    pub(crate) const fn from_secs(secs: u64) -> Option<Self> {
        if secs >= 1 { Some(Self { secs }) } else { None }
    }

    pub(crate) fn secs(self) -> u64 {
        self.secs
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // Redis keys and errors.
    /// How long a bucket must be kept after its last increment: it is read as the previous
    /// bucket until the end of the next one, so two windows.
    pub(crate) fn retention(self) -> Duration {
        Duration::from_secs(self.secs.saturating_mul(2))
    }

    /// The number of the bucket `now` falls in. A clock before 1970 reads as 1970.
    pub(crate) fn bucket(self, now: SystemTime) -> u64 {
        since_epoch(now).as_secs() / self.secs
    }

    /// The count for the window ending at `now`, from the counts of the bucket `now` falls in
    /// (`current`) and of the one before it (`previous`): never fewer than the window holds.
    pub(crate) fn estimate(self, _now: SystemTime, current: u64, previous: u64) -> u64 {
        current.saturating_add(previous)
    }
}

fn since_epoch(now: SystemTime) -> Duration {
    now.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// One subject's counts in memory: the current bucket and the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counter {
    bucket: u64,
    current: u32,
    previous: u32,
}

impl Counter {
    /// An empty counter at `now`.
    pub(crate) fn new(window: Window, now: SystemTime) -> Self {
        Self {
            bucket: window.bucket(now),
            current: 0,
            previous: 0,
        }
    }

    /// Moves the buckets on to `now`. A clock that went back keeps the counts where they are
    /// (forgetting early would let failures through).
    fn roll(&mut self, window: Window, now: SystemTime) {
        let bucket = window.bucket(now);
        if bucket <= self.bucket {
            return;
        }
        self.previous = if bucket == self.bucket + 1 {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.bucket = bucket;
    }

    /// Counts one event at `now`.
    pub(crate) fn add(&mut self, window: Window, now: SystemTime) {
        self.roll(window, now);
        self.current = self.current.saturating_add(1);
    }

    /// Takes back one event counted at `at`, from whichever of the two buckets holds it.
    pub(crate) fn remove(&mut self, window: Window, at: SystemTime) {
        let bucket = window.bucket(at);
        if bucket == self.bucket {
            self.current = self.current.saturating_sub(1);
        } else if bucket.saturating_add(1) == self.bucket {
            self.previous = self.previous.saturating_sub(1);
        }
    }

    /// The estimate of the window ending at `now`.
    pub(crate) fn estimate(&self, window: Window, now: SystemTime) -> u64 {
        let mut rolled = *self;
        rolled.roll(window, now);
        window.estimate(now, rolled.current.into(), rolled.previous.into())
    }

    /// Whether every event counted has left the window at `now`: the counter can go.
    pub(crate) fn is_expired(&self, window: Window, now: SystemTime) -> bool {
        window.bucket(now) > self.bucket.saturating_add(1)
    }

    /// The bucket of the last event (or of creation): how recently the counter was touched, at
    /// the window's granularity.
    pub(crate) fn bucket(&self) -> u64 {
        self.bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn windows_shorter_than_a_second_are_refused() {
        assert_eq!(Window::new(Duration::from_millis(999)), None);
        assert_eq!(Window::from_secs(0), None);
        assert_eq!(
            Window::new(Duration::from_secs(900)).map(Window::secs),
            Some(900)
        );
    }

    #[test]
    fn the_previous_bucket_counts_in_full_through_the_current_one() {
        let w = Window::from_secs(100).unwrap();
        // (now, current, previous, count)
        let rows = [
            (1_000, 0, 0, 0),
            (1_000, 2, 0, 2),
            (1_000, 0, 4, 4),
            (1_050, 0, 4, 4),
            (1_075, 1, 4, 5),
            (1_099, 0, 1, 1),
            // No overflow at the extremes.
            (1_050, u64::MAX, u64::MAX, u64::MAX),
        ];
        for (now, current, previous, expected) in rows {
            assert_eq!(
                w.estimate(at(now), current, previous),
                expected,
                "{now} {current} {previous}"
            );
        }
    }

    /// Three failures just before a bucket's end, then more just after it: any one window
    /// holds at most the limit, so a limit of three lets no fourth through.
    #[test]
    fn a_burst_at_a_bucket_edge_is_held_to_the_limit() {
        let w = Window::from_secs(100).unwrap();
        let mut c = Counter::new(w, at(1_099));
        for _ in 0..3 {
            c.add(w, at(1_099));
        }
        for now in [1_100, 1_137, 1_175, 1_199] {
            assert_eq!(c.estimate(w, at(now)), 3, "{now}");
        }
    }

    #[test]
    fn a_counter_forgets_between_one_and_two_windows_after() {
        let w = Window::from_secs(900).unwrap();
        let start = at(900 * 1_000 + 300);
        let mut c = Counter::new(w, start);
        for _ in 0..3 {
            c.add(w, start);
        }
        assert_eq!(c.estimate(w, start), 3);
        assert_eq!(c.estimate(w, start + Duration::from_secs(599)), 3);
        // The next bucket: still in full.
        let next = at(900 * 1_001 + 450);
        assert_eq!(c.estimate(w, next), 3);
        assert!(!c.is_expired(w, next));
        // Two buckets on: gone.
        let later = at(900 * 1_002);
        assert_eq!(c.estimate(w, later), 0);
        assert!(c.is_expired(w, later));
        // Counting again starts afresh.
        c.add(w, later);
        assert_eq!(c.estimate(w, later), 1);
    }

    #[test]
    fn a_clock_that_goes_back_forgets_nothing() {
        let w = Window::from_secs(60).unwrap();
        let mut c = Counter::new(w, at(6_000));
        c.add(w, at(6_000));
        c.add(w, at(5_000));
        assert_eq!(c.estimate(w, at(6_000)), 2);
        assert_eq!(c.estimate(w, at(1_000)), 2);
        // Before 1970 reads as 1970, without a panic.
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(c.estimate(w, before), 2);
        assert_eq!(w.bucket(before), 0);
    }
}
