//! Where failure counts live: the [`RiskStore`] trait (in memory, in Redis, or an app's own),
//! what it answers, how it fails, and the deadline every call is held to.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use super::key::{Keys, Tally};

/// A store's answer, boxed so that the trait stays object-safe (one store behind a `dyn` for
/// every route).
pub(crate) type StoreFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Failure counts shared by the services of a layer, or by several instances.
///
/// Keys are digests ([`Keys`]): a store never sees an account name or an address. Each call is
/// held to a deadline by the caller ([`within`]); a store may hold itself to a shorter one.
pub(crate) trait RiskStore: Send + Sync {
    /// Counts one failure at `now` for each of the request's counters.
    fn record_failure(&self, keys: Keys, now: SystemTime) -> StoreFuture<'_, ()>;

    #[cfg(test)]
    /// The sliding counts of the request's counters at `now`. Reading creates nothing.
    fn counts(&self, keys: Keys, now: SystemTime) -> StoreFuture<'_, Counts>;

    /// Counts an attempt at `now` as a failure before it is answered, and returns the counts
    /// from before it, in one atomic step: concurrent attempts each see the others, so a burst
    /// of guesses is held to the limits like a sequence. [`undo`](Self::undo) takes it back
    /// when the attempt turns out not to have failed.
    fn attempt(&self, keys: Keys, now: SystemTime) -> StoreFuture<'_, Counts>;

    /// Takes back an attempt counted at `at`.
    fn undo(&self, keys: Keys, at: SystemTime) -> StoreFuture<'_, ()>;

    /// Forgets an account's failures (after a success, if the route says so). An address's
    /// and the route's counts are never cleared: one good account must not wash an address
    /// clean.
    fn clear(&self, account: Tally, now: SystemTime) -> StoreFuture<'_, ()>;
}

/// A request's sliding failure counts: zero for a counter it does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub(crate) account: u64,
    pub(crate) ip: u64,
    pub(crate) global: u64,
    /// The store dropped counts that were still live to stay within its bound, within the
    /// longest window asked about: some count may be missing.
    pub(crate) evicted: bool,
}

/// Runs a store's call under `deadline`: past it the call is dropped and the store is
/// counted as down (the captcha is then required).
pub(crate) async fn within<T>(
    deadline: Duration,
    call: StoreFuture<'_, T>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(deadline, call).await {
        Ok(answer) => answer,
        Err(_) => Err(StoreError::timeout(deadline)),
    }
}

/// Why a store gave no answer. Its text never holds a secret: details are chosen by the store
/// from fixed words and error kinds, never a URL or a server's message with a password in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreError {
    kind: StoreErrorKind,
    detail: Cow<'static, str>,
}

/// What kind of failure, for log lines and alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreErrorKind {
    /// No answer within the deadline.
    Timeout,
    /// No connection (refused, dropped, reconnecting).
    Unavailable,
    /// The store answered with an error (read-only replica, out of memory, wrong type, …).
    Server,
    /// The store is set up wrongly (an invalid URL, no runtime).
    Configuration,
}

impl StoreError {
    pub(crate) fn timeout(deadline: Duration) -> Self {
        Self {
            kind: StoreErrorKind::Timeout,
            detail: Cow::Owned(format!("no answer within {deadline:?}")),
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // Redis keys and errors.
    pub(crate) fn unavailable(detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: StoreErrorKind::Unavailable,
            detail: detail.into(),
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // Redis keys and errors.
    pub(crate) fn server(detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: StoreErrorKind::Server,
            detail: detail.into(),
        }
    }

    pub(crate) fn configuration(detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: StoreErrorKind::Configuration,
            detail: detail.into(),
        }
    }

    #[cfg(test)]
    pub(crate) fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// A fixed name per kind, for the layer's aggregated alarms (one WARN line per kind per
    /// interval).
    pub(crate) fn alarm(&self) -> &'static str {
        match self.kind {
            StoreErrorKind::Timeout => "risk_store_timeout",
            StoreErrorKind::Unavailable => "risk_store_unavailable",
            StoreErrorKind::Server => "risk_store_error",
            StoreErrorKind::Configuration => "risk_store_configuration",
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            StoreErrorKind::Timeout => "the risk store was too slow",
            StoreErrorKind::Unavailable => "the risk store is unreachable",
            StoreErrorKind::Server => "the risk store answered with an error",
            StoreErrorKind::Configuration => "the risk store is misconfigured",
        };
        write!(f, "{what} ({})", self.detail)
    }
}

impl std::error::Error for StoreError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that never answers.
    struct Stuck;

    impl RiskStore for Stuck {
        fn record_failure(&self, _: Keys, _: SystemTime) -> StoreFuture<'_, ()> {
            Box::pin(std::future::pending())
        }
        fn counts(&self, _: Keys, _: SystemTime) -> StoreFuture<'_, Counts> {
            Box::pin(std::future::pending())
        }
        fn clear(&self, _: Tally, _: SystemTime) -> StoreFuture<'_, ()> {
            Box::pin(std::future::pending())
        }
        fn attempt(&self, _: Keys, _: SystemTime) -> StoreFuture<'_, Counts> {
            Box::pin(std::future::pending())
        }
        fn undo(&self, _: Keys, _: SystemTime) -> StoreFuture<'_, ()> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn a_store_that_does_not_answer_is_down_at_the_deadline() {
        use super::super::decision::Thresholds;
        use super::super::key::KeyHasher;
        let store: Box<dyn RiskStore> = Box::new(Stuck);
        let keys = KeyHasher::with_key(b"k").keys(
            "login",
            Some("alice"),
            None,
            Thresholds::default().windows(),
        );
        let deadline = Duration::from_millis(50);
        let started = std::time::Instant::now();
        let answer = within(deadline, store.attempt(keys, SystemTime::now())).await;
        let took = started.elapsed();
        assert!(
            took >= deadline && took < Duration::from_secs(1),
            "{took:?}"
        );
        let error = answer.unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Timeout);
        assert_eq!(error.alarm(), "risk_store_timeout");
        assert_eq!(
            error.to_string(),
            "the risk store was too slow (no answer within 50ms)"
        );
        let cleared = within(
            deadline,
            store.clear(keys.account.unwrap(), SystemTime::now()),
        );
        assert!(cleared.await.is_err());
    }
}
