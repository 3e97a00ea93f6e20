//! The client's copy of its credentials: asked of the provider once, refreshed ahead of expiry
//! in the background, served while a refresh fails as long as it is valid.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::{Credentials, CredentialsError, ProvideCredentials};

/// Refresh when this much of the credentials' lifetime is left, at most (Alibaba's libraries
/// use 15 minutes), or half their lifetime when that is shorter.
const REFRESH_AHEAD: Duration = Duration::from_secs(15 * 60);
/// A fetch gives up after this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// After a failed background refresh, the next try waits this long (or a quarter of what is
/// left, when shorter).
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// With no valid credentials, a failed fetch answers every caller for this long, so that a
/// flood while the source is down waits on one fetch, not on one fetch each in turn.
const FAILURE_HOLD: Duration = Duration::from_secs(1);

pub(crate) struct CredentialsCache {
    provider: Box<dyn ProvideCredentials>,
    current: RwLock<Option<Cached>>,
    /// Held by the one fetch under way, foreground or background.
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// The last failed fetch: when, and its error.
    last_failure: Mutex<Option<(Instant, CredentialsError)>>,
}

#[derive(Clone)]
struct Cached {
    credentials: Arc<Credentials>,
    /// When to start refreshing; `None` for credentials that never expire.
    refresh_at: Option<SystemTime>,
}

impl Cached {
    fn new(credentials: Credentials, now: SystemTime) -> Self {
        let refresh_at = credentials.expiration().map(|expiration| {
            let lifetime = expiration.duration_since(now).unwrap_or_default();
            expiration - REFRESH_AHEAD.min(lifetime / 2)
        });
        Self {
            credentials: Arc::new(credentials),
            refresh_at,
        }
    }

    fn valid_at(&self, now: SystemTime) -> bool {
        self.credentials.expiration().is_none_or(|e| now < e)
    }
}

impl CredentialsCache {
    /// A cache over `provider`; static credentials are in it from the start.
    pub(crate) fn new(provider: Box<dyn ProvideCredentials>) -> Self {
        Self {
            provider,
            current: RwLock::new(None),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
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

    /// The current credentials, without waiting: `None` before the first fetch, or once they
    /// have expired.
    pub(crate) fn now(&self) -> Option<Arc<Credentials>> {
        self.cached()
            .filter(|c| c.valid_at(SystemTime::now()))
            .map(|c| c.credentials)
    }

    /// Credentials to sign with. Valid ones are served at once (starting a background refresh
    /// when they near their expiry); otherwise this waits for a fetch.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Arc<Credentials>, CredentialsError> {
        let now = SystemTime::now();
        if let Some(cached) = self.cached().filter(|c| c.valid_at(now)) {
            if cached.refresh_at.is_some_and(|at| now >= at) {
                self.refresh_in_background();
            }
            return Ok(cached.credentials);
        }
        // None yet, or expired: one fetch for every caller waiting.
        let _fetching = self.fetching.lock().await;
        let now = SystemTime::now();
        if let Some(cached) = self.cached().filter(|c| c.valid_at(now)) {
            return Ok(cached.credentials);
        }
        let error = match self.recent_failure() {
            Some(error) => error,
            None => match self.fetch().await {
                Ok(cached) => return Ok(cached.credentials),
                Err(error) => error,
            },
        };
        Err(if self.cached().is_some() {
            CredentialsError::Expired(error.to_string())
        } else {
            error
        })
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

    /// Asks the provider, within the fetch timeout, and keeps what it gives.
    async fn fetch(&self) -> Result<Cached, CredentialsError> {
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, self.provider.provide_credentials())
            .await
            .unwrap_or_else(|_| {
                Err(CredentialsError::Provider(format!(
                    "{} did not answer within {} s",
                    self.provider.name(),
                    FETCH_TIMEOUT.as_secs()
                )))
            });
        match fetched {
            Ok(credentials) => {
                let cached = Cached::new(credentials, SystemTime::now());
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(cached.clone());
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Ok(cached)
            }
            Err(error) => {
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Starts one refresh in a task of its own, unless one is under way. The task ends within
    /// the fetch timeout.
    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(guard) = Arc::clone(&self.fetching).try_lock_owned() else {
            return;
        };
        let cache = Arc::clone(self);
        handle.spawn(async move {
            let _guard = guard;
            if let Err(error) = cache.fetch().await {
                let now = SystemTime::now();
                // Still valid: keep serving them, and try again a little later.
                let mut current = cache.current.write().unwrap_or_else(|e| e.into_inner());
                if let Some(cached) = current.as_mut().filter(|c| c.valid_at(now)) {
                    let left = cached
                        .credentials
                        .expiration()
                        .and_then(|e| e.duration_since(now).ok())
                        .unwrap_or_default();
                    cached.refresh_at = Some(now + RETRY_AFTER.min(left / 4));
                }
                tracing::warn!(
                    captcha.credentials = cache.provider.name(),
                    %error,
                    "refreshing the captcha client's credentials failed; the current ones are used until they expire"
                );
            }
        });
    }
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
            assert_eq!(error, CredentialsError::Provider("down".into()));
        }
        // Not fifty fetches in turn, each as slow as the source.
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // After the hold, the source is asked again.
        tokio::time::sleep(FAILURE_HOLD).await;
        assert!(cache.get().await.is_err());
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }
}
