//! The client's copy of its credentials: asked of the provider once, refreshed ahead of expiry
//! in the background, served while a refresh fails as long as it is valid.
//!
//! Every fetch runs in a task of its own, one at a time; callers that need credentials wait
//! for it (each within its own deadline) but never carry it, so a caller that gives up does
//! not cancel the fetch the others wait on.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::{Credentials, CredentialsError, ProvideCredentials};

/// Refresh when this much of the credentials' lifetime is left, at most (Alibaba's libraries
/// use 15 minutes), or half their lifetime when that is shorter.
const REFRESH_AHEAD: Duration = Duration::from_secs(15 * 60);
/// Stop using credentials this long before they expire, at most (an eighth of their lifetime
/// when shorter): a request signed now must still be valid when it arrives, on a server whose
/// clock may run ahead.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// A fetch gives up after this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// After a failed background refresh, the next try waits this long (or a quarter of what is
/// left, when shorter).
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// With no valid credentials, a failed fetch answers every caller for this long, so that a
/// flood while the source is down costs one fetch, not one per caller.
const FAILURE_HOLD: Duration = Duration::from_secs(1);

pub(crate) struct CredentialsCache {
    provider: Box<dyn ProvideCredentials>,
    current: RwLock<Option<Cached>>,
    /// Held by the one fetch under way.
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// Bumped when a fetch ends, whatever its outcome: what waiting callers wait for.
    fetched: watch::Sender<u64>,
    /// The last failed fetch: when, and its error.
    last_failure: Mutex<Option<(Instant, CredentialsError)>>,
}

#[derive(Clone)]
struct Cached {
    credentials: Arc<Credentials>,
    /// When to start refreshing; `None` for credentials that never expire.
    refresh_at: Option<SystemTime>,
    /// When to stop using them; `None` for credentials that never expire.
    usable_until: Option<SystemTime>,
}

impl Cached {
    fn new(credentials: Credentials, now: SystemTime) -> Self {
        let (refresh_at, usable_until) = match credentials.expiration() {
            Some(expiration) => {
                let lifetime = expiration.duration_since(now).unwrap_or_default();
                (
                    Some(expiration - REFRESH_AHEAD.min(lifetime / 2)),
                    Some(expiration - EXPIRY_MARGIN.min(lifetime / 8)),
                )
            }
            None => (None, None),
        };
        Self {
            credentials: Arc::new(credentials),
            refresh_at,
            usable_until,
        }
    }

    fn valid_at(&self, now: SystemTime) -> bool {
        self.usable_until.is_none_or(|until| now < until)
    }
}

impl CredentialsCache {
    /// A cache over `provider`, empty until first asked.
    pub(crate) fn new(provider: Box<dyn ProvideCredentials>) -> Self {
        Self {
            provider,
            current: RwLock::new(None),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
            fetched: watch::Sender::new(0),
            last_failure: Mutex::new(None),
        }
    }

    /// A cache holding `credentials`, which never need refreshing.
    pub(crate) fn fixed(credentials: Credentials) -> Self {
        let cache = Self::new(Box::new(credentials.clone()));
        *cache.current.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Cached::new(credentials, SystemTime::now()));
        cache
    }

    fn cached(&self) -> Option<Cached> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn valid(&self) -> Option<Cached> {
        self.cached().filter(|c| c.valid_at(SystemTime::now()))
    }

    /// The current credentials, without waiting: `None` before the first fetch, or once they
    /// are no longer usable.
    pub(crate) fn now(&self) -> Option<Arc<Credentials>> {
        self.valid().map(|c| c.credentials)
    }

    /// What [`get`](Self::get) answers at once, without a future: valid credentials (starting a
    /// background refresh when they near their expiry), or `None` when it would have to wait
    /// or fail.
    pub(crate) fn at_hand(self: &Arc<Self>) -> Option<Arc<Credentials>> {
        let cached = self.cached()?;
        let now = SystemTime::now();
        if !cached.valid_at(now) {
            return None;
        }
        if cached.refresh_at.is_some_and(|at| now >= at) {
            let _ = self.start_fetch();
        }
        Some(cached.credentials)
    }

    /// Credentials to sign with. Valid ones are served at once (starting a background refresh
    /// when they near their expiry); otherwise this waits for the fetch under way, or starts
    /// one. Dropping this future leaves the fetch running for the others.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Arc<Credentials>, CredentialsError> {
        if let Some(credentials) = self.at_hand() {
            return Ok(credentials);
        }
        if let Some(error) = self.recent_failure() {
            return Err(self.unusable(error));
        }
        // Subscribe before starting, so that the end of this fetch cannot be missed.
        let mut fetched = self.fetched.subscribe();
        if self.start_fetch() == Fetch::NoRuntime {
            return Err(CredentialsError::Provider(
                "no Tokio runtime to fetch credentials on".into(),
            ));
        }
        // The task ends within the fetch timeout, and then always signals.
        let _ = fetched.changed().await;
        if let Some(cached) = self.valid() {
            return Ok(cached.credentials);
        }
        Err(self.unusable(self.recent_failure().unwrap_or_else(|| {
            CredentialsError::Provider(format!("{} gave no credentials", self.provider.name()))
        })))
    }

    /// `error`, as an expiry when there were credentials before.
    fn unusable(&self, error: CredentialsError) -> CredentialsError {
        if self.cached().is_some() {
            CredentialsError::Expired(Box::new(error))
        } else {
            error
        }
    }

    /// The error of a fetch that failed within the hold, if any.
    fn recent_failure(&self) -> Option<CredentialsError> {
        self.last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(at, _)| at.elapsed() < FAILURE_HOLD)
            .map(|(_, error)| error.clone())
    }

    /// Asks the provider, within the fetch timeout, and keeps what it gives if it is usable.
    async fn fetch(&self) -> Result<(), CredentialsError> {
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, self.provider.provide_credentials())
            .await
            .unwrap_or_else(|_| {
                Err(CredentialsError::Provider(format!(
                    "{} did not answer within {} s",
                    self.provider.name(),
                    FETCH_TIMEOUT.as_secs()
                )))
            });
        let now = SystemTime::now();
        let checked = fetched.and_then(|credentials| {
            let cached = Cached::new(credentials, now);
            if cached.valid_at(now) {
                Ok(cached)
            } else {
                Err(CredentialsError::Provider(format!(
                    "{} gave credentials that expire now or have expired (check the clock)",
                    self.provider.name()
                )))
            }
        });
        match checked {
            Ok(cached) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(cached);
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Ok(())
            }
            Err(error) => {
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Starts one fetch in a task of its own, unless one is under way. The task ends within
    /// the fetch timeout, and then signals `fetched`.
    fn start_fetch(self: &Arc<Self>) -> Fetch {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Fetch::NoRuntime;
        };
        let Ok(guard) = Arc::clone(&self.fetching).try_lock_owned() else {
            return Fetch::Underway;
        };
        let cache = Arc::clone(self);
        handle.spawn(async move {
            let result = cache.fetch().await;
            drop(guard);
            cache.fetched.send_modify(|generation| *generation += 1);
            let Err(error) = result else { return };
            let now = SystemTime::now();
            // Still valid: keep serving them, and try again a little later.
            let mut current = cache.current.write().unwrap_or_else(|e| e.into_inner());
            if let Some(cached) = current.as_mut().filter(|c| c.valid_at(now)) {
                let left = cached
                    .usable_until
                    .and_then(|until| until.duration_since(now).ok())
                    .unwrap_or_default();
                cached.refresh_at = Some(now + RETRY_AFTER.min(left / 4));
                drop(current);
                tracing::warn!(
                    captcha.credentials = cache.provider.name(),
                    %error,
                    "refreshing the captcha client's credentials failed; the current ones are used until they expire"
                );
            }
        });
        Fetch::Started
    }
}

/// What [`CredentialsCache::start_fetch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    Started,
    Underway,
    NoRuntime,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A source that is down: it fails after a while, counting how often it was asked.
    fn dead_source(asked: Arc<AtomicUsize>) -> CredentialsCache {
        CredentialsCache::new(Box::new(move || {
            let asked = Arc::clone(&asked);
            async move {
                asked.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err::<Credentials, _>(CredentialsError::Provider("down".into()))
            }
        }))
    }

    #[tokio::test]
    async fn a_flood_while_the_source_is_down_waits_on_one_fetch() {
        let asked = Arc::new(AtomicUsize::new(0));
        let cache = Arc::new(dead_source(Arc::clone(&asked)));
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move { cache.get().await })
            })
            .collect();
        for caller in callers {
            let error = caller.await.unwrap().unwrap_err();
            assert!(
                matches!(&error, CredentialsError::Provider(why) if why == "down"),
                "{error:?}"
            );
        }
        // Not fifty fetches in turn, each as slow as the source.
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // After the hold, the source is asked again.
        tokio::time::sleep(FAILURE_HOLD).await;
        assert!(cache.get().await.is_err());
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_does_not_cancel_the_fetch() {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&asked);
        let cache = Arc::new(CredentialsCache::new(Box::new(move || {
            let asked = Arc::clone(&counter);
            async move {
                asked.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok::<_, CredentialsError>(
                    Credentials::new("id", "secret")
                        .with_expiration(SystemTime::now() + Duration::from_secs(3600)),
                )
            }
        })));
        let impatient = tokio::time::timeout(Duration::from_millis(20), cache.get()).await;
        assert!(impatient.is_err());
        let patient = cache.get().await.unwrap();
        assert_eq!(patient.access_key_id(), "id");
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_that_arrive_expired_are_an_error_not_a_refetch_per_caller() {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&asked);
        let cache = Arc::new(CredentialsCache::new(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            // A stale answer, or a clock far behind the source's.
            std::future::ready(Ok::<_, CredentialsError>(
                Credentials::new("id", "secret")
                    .with_expiration(SystemTime::now() - Duration::from_secs(5)),
            ))
        })));
        for _ in 0..10 {
            let error = cache.get().await.unwrap_err();
            assert!(error.to_string().contains("expire"), "{error}");
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert!(cache.now().is_none());
    }

    #[test]
    fn credentials_stop_being_used_ahead_of_their_expiry() {
        let now = SystemTime::now();
        let hour = Cached::new(
            Credentials::new("id", "s").with_expiration(now + Duration::from_secs(3600)),
            now,
        );
        assert!(hour.valid_at(now + Duration::from_secs(3539)));
        assert!(!hour.valid_at(now + Duration::from_secs(3541)));
        assert_eq!(hour.refresh_at, Some(now + Duration::from_secs(2700)));
        let forever = Cached::new(Credentials::new("id", "s"), now);
        assert!(forever.valid_at(now + Duration::from_secs(1 << 40)));
    }
}
