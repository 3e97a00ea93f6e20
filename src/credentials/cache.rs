//! The client's copy of its credentials: asked of the provider once, refreshed ahead of expiry
//! in the background, served while a refresh fails as long as it is valid.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use super::{Credentials, CredentialsError, ProvideCredentials};

/// Refresh when this much of the credentials' lifetime is left, at most (Alibaba's libraries
/// use 15 minutes), or half their lifetime when that is shorter.
const REFRESH_AHEAD: Duration = Duration::from_secs(15 * 60);
/// A fetch gives up after this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// After a failed background refresh, the next try waits this long (or a quarter of what is
/// left, when shorter).
const RETRY_AFTER: Duration = Duration::from_secs(10);

pub(crate) struct CredentialsCache {
    provider: Box<dyn ProvideCredentials>,
    current: RwLock<Option<Cached>>,
    /// Held by the one fetch under way, foreground or background.
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// Why the last refresh failed, for the error when the credentials then expire.
    last_failure: Mutex<Option<String>>,
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
        match self.fetch().await {
            Ok(cached) => Ok(cached.credentials),
            Err(error) => {
                let had_some = self.cached().is_some();
                Err(if had_some {
                    CredentialsError::Expired(error.to_string())
                } else {
                    error
                })
            }
        }
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
                    Some(error.to_string());
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
