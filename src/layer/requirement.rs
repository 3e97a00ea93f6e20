//! When a route asks for a captcha: always, only when the request looks risky, or never
//! (monitoring).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http::request::Parts;

use super::risk::decision::{Limit, ThresholdError, Thresholds};
use super::risk::key::KeyHasher;
use super::risk::memory::{DEFAULT_CAPACITY, MemoryStore};
use super::risk::store::{RiskStore, StoreError};

/// When a [`Route`](super::Route) asks for a captcha.
///
/// ```
/// use std::time::Duration;
/// use tower_aliyun_captcha::SceneId;
/// use tower_aliyun_captcha::layer::{Requirement, Risk, Route};
///
/// // Logins need a captcha once an account, an address or the route sees failures.
/// let risk = Risk::new()
///     .account_field("username")
///     .per_account(5, Duration::from_secs(600))?;
/// let login = Route::exact("/login", SceneId::new("login-scene")?)
///     .requirement(Requirement::WhenRisky(risk));
/// # let _ = login;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Requirement {
    /// Every request needs a captcha that passed (the default).
    #[default]
    Always,
    /// A request without a param goes through while the [`Risk`] for it is low, carrying
    /// [`CaptchaVerified::NotRequired`](super::CaptchaVerified::NotRequired); once the risk is
    /// raised it gets 403 `captcha_required`, which a page answers by showing the widget. A
    /// request with a param is always verified, and a failed verdict counts as a failure.
    WhenRisky(Risk),
    /// For rolling out: a param is verified when there is one, and nothing is refused. What
    /// the layer would have done is logged, counted (`captcha_monitor_would_refuse_total`) and
    /// put in the verdict ([`CaptchaVerified::Monitored`](super::CaptchaVerified::Monitored)).
    /// Announced at WARN when the layer is built. A body the layer cannot read is still
    /// refused: over the layer's body limits (413, 408; see
    /// [`body_limits`](super::CaptchaLayerBuilder::body_limits)) or broken (400).
    Monitor,
}

impl Requirement {
    /// How much it asks of a request: `Always` most, `Monitor` least.
    pub(crate) fn strictness(&self) -> u8 {
        match self {
            Self::Always => 2,
            Self::WhenRisky(_) => 1,
            Self::Monitor => 0,
        }
    }
}

/// What makes a request risky on a [`Requirement::WhenRisky`] route, and where failures are
/// counted.
///
/// Three signals, each a sliding count of failures: per **account** (a field of the body, or
/// your closure, so that rotating addresses does not help), per **client address** (the
/// socket's peer; a forwarded header only when you say how many proxies you trust), and
/// **across the route** (credential stuffing over many addresses and accounts). Defaults: 3
/// per account and 10 per address in 15 minutes, 30 a minute across the route.
///
/// A failure is what the inner service answers: 401 or 403 by default
/// ([`failure_statuses`](Self::failure_statuses)), a gRPC answer whose `grpc-status` is 7 or
/// 16 (`PERMISSION_DENIED`, `UNAUTHENTICATED`), in its headers or, with tonic's and axum's
/// body types, its trailers (with another body type, a gRPC answer whose status is not in its
/// headers stays counted, as does a gRPC-web answer, whose status is in its body: put
/// tonic-web's `GrpcWebLayer` outside this layer), or any response carrying [`FailedAttempt`]
/// in its extensions. The
/// account is read from a JSON or form body, or the query string; a body it cannot be read in
/// (another type, JSON that does not parse, an object or array where the name should be) or a
/// name given twice needs the captcha. Each request without a param is counted as an attempt before it is
/// answered (so a burst of concurrent guesses is held to the limits like a sequence) and taken
/// back unless it failed. Counts live in memory,
/// bounded ([`memory_capacity`](Self::memory_capacity)), or in Redis (feature `redis`) for
/// several instances. A store that is slow (over 50 ms) or down makes the captcha required,
/// never skipped.
#[derive(Clone)]
pub struct Risk(Arc<Settings>);

/// A [`Risk`]'s settings, shared by the requests of its route.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) account: Option<Account>,
    pub(crate) forwarded_hops: Option<usize>,
    pub(crate) thresholds: Thresholds,
    pub(crate) store: Arc<dyn RiskStore>,
    pub(crate) hasher: KeyHasher,
    pub(crate) failure_statuses: Arc<[StatusCode]>,
    pub(crate) clear_on_success: bool,
    pub(crate) deadline: Duration,
    store_name: &'static str,
}

type AccountFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;

/// Where a request's account name is.
#[derive(Clone)]
pub(crate) enum Account {
    /// A JSON field (a dotted path) or a urlencoded form field, by the body's type.
    Field(Arc<str>),
    Closure(Arc<AccountFn>),
}

/// How long a layer waits for the store before it counts it as down.
const STORE_DEADLINE: Duration = Duration::from_millis(50);

impl Default for Risk {
    fn default() -> Self {
        Self::new()
    }
}

impl Risk {
    /// The defaults: no account signal until you name one, the socket's peer address, counts
    /// in memory.
    pub fn new() -> Self {
        Self(Arc::new(Settings {
            account: None,
            forwarded_hops: None,
            thresholds: Thresholds::default(),
            store: Arc::new(MemoryStore::new(DEFAULT_CAPACITY)),
            hasher: KeyHasher::random(),
            failure_statuses: Arc::new([StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN]),
            clear_on_success: false,
            deadline: STORE_DEADLINE,
            store_name: "memory",
        }))
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.0
    }

    fn with(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(Arc::make_mut(&mut self.0));
        self
    }

    /// The account is the field `name` of the body: a JSON field (`a.b` for nested objects)
    /// or a urlencoded form field, by the body's content type. A name given twice is counted
    /// as risky: parsers differ on which copy counts.
    pub fn account_field(self, name: impl Into<String>) -> Self {
        let name: Arc<str> = name.into().into();
        self.with(|s| s.account = Some(Account::Field(name)))
    }

    /// The account is what `closure` reads from the request's head (a header, a path segment,
    /// gRPC metadata). It must be the name your handler checks: the layer counts what the
    /// closure says. A gRPC call's name is in its message, which the layer cannot read, so have
    /// the client send it in metadata too, and refuse in the handler a call whose metadata
    /// names another account; a gRPC call whose metadata names none needs the captcha.
    pub fn account_from_fn(
        self,
        closure: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.with(|s| s.account = Some(Account::Closure(Arc::new(closure))))
    }

    /// The client address is the one `trusted_proxies` hops back in `X-Forwarded-For`, for an
    /// app behind that many proxies that each append the address they saw. Without it the
    /// address is the socket's peer (axum's `ConnectInfo`, tonic's `TcpConnectInfo`, or a
    /// `SocketAddr` in the request's extensions), and the header is never read: anyone can
    /// write one. Zero proxies is the socket's peer too.
    pub fn forwarded_for(self, trusted_proxies: usize) -> Self {
        self.with(|s| s.forwarded_hops = Some(trusted_proxies))
    }

    /// The account's limit: `failures` in `window` (default 3 in 15 minutes).
    pub fn per_account(self, failures: u32, window: Duration) -> Result<Self, RiskError> {
        let limit = limit(failures, window)?;
        Ok(self.with(|s| s.thresholds.account = limit))
    }

    /// The client address's limit (default 10 in 15 minutes).
    pub fn per_ip(self, failures: u32, window: Duration) -> Result<Self, RiskError> {
        let limit = limit(failures, window)?;
        Ok(self.with(|s| s.thresholds.ip = limit))
    }

    /// The route's limit, over every account and address (default 30 a minute).
    pub fn per_route(self, failures: u32, window: Duration) -> Result<Self, RiskError> {
        let limit = limit(failures, window)?;
        Ok(self.with(|s| s.thresholds.global = limit))
    }

    /// The statuses of the inner service's answer that count as a failure (default 401 and
    /// 403). A response with [`FailedAttempt`] in its extensions counts whatever its status.
    pub fn failure_statuses(self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        let statuses: Arc<[StatusCode]> = statuses.into_iter().collect();
        self.with(|s| s.failure_statuses = statuses)
    }

    /// Whether a success (2xx) clears the account's failures (default false). Accounts are
    /// counted without case or surrounding spaces, so that spellings of one name share a
    /// count; in an app whose names are case-sensitive, clearing would let an attacker's own
    /// `ANN` wash `ann`'s failures away. Turn it on where names are case-insensitive. The
    /// address's and the route's counts are never cleared.
    pub fn clear_on_success(self, clear: bool) -> Self {
        self.with(|s| s.clear_on_success = clear)
    }

    /// Counts in memory, at most `counters` of them (default 100,000, about 13 MB): a spray
    /// of names or addresses evicts its own one-failure counters first, and any eviction of a
    /// live count makes the route risky for a window.
    pub fn memory_capacity(self, counters: usize) -> Result<Self, RiskError> {
        if counters == 0 {
            return Err(RiskError(Problem::Store(StoreError::configuration(
                "a memory store of zero counters",
            ))));
        }
        Ok(self.with(|s| {
            s.store = Arc::new(MemoryStore::new(counters));
            s.hasher = KeyHasher::random();
            s.store_name = "memory";
        }))
    }

    /// Counts in the Redis at `url` (`redis://[user:password@]host[:port][/db]`), shared by
    /// every instance given the same `url` and `key`: failures counted on one raise the
    /// requirement on the others. `key` keys the digests that name the counters (no account
    /// name or address is stored); give every instance the same secret, 32 random bytes say.
    /// Connects on first use; call it within a Tokio runtime. Use a Redis (or database) of the
    /// counts' own with `maxmemory-policy noeviction`: an evicting policy could drop a
    /// victim's count to make room for a spray.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(self, url: &str, key: impl AsRef<[u8]>) -> Result<Self, RiskError> {
        use super::risk::redis::{RedisOptions, RedisStore};
        if key.as_ref().len() < 16 {
            return Err(RiskError(Problem::Store(StoreError::configuration(
                "a Redis store's key is at least 16 bytes, the same on every instance",
            ))));
        }
        let store = RedisStore::new(url, RedisOptions::default())
            .map_err(|e| RiskError(Problem::Store(e)))?;
        let hasher = KeyHasher::with_key(key.as_ref());
        Ok(self.with(|s| {
            s.store = Arc::new(store);
            s.hasher = hasher;
            s.store_name = "redis";
        }))
    }
}

fn limit(failures: u32, window: Duration) -> Result<Limit, RiskError> {
    Limit::new(failures, window).map_err(|e| RiskError(Problem::Limit(e)))
}

impl fmt::Debug for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        let account = match &s.account {
            None => "none",
            Some(Account::Field(_)) => "field",
            Some(Account::Closure(_)) => "closure",
        };
        f.debug_struct("Risk")
            .field("account", &account)
            .field("forwarded_hops", &s.forwarded_hops)
            .field("thresholds", &s.thresholds)
            .field("store", &s.store_name)
            .finish_non_exhaustive()
    }
}

/// Put it in a response's extensions, and a [`Requirement::WhenRisky`] route counts the
/// request as a failed attempt whatever the status (a login page that answers 200 with an
/// error, say).
///
/// ```
/// use tower_aliyun_captcha::layer::FailedAttempt;
///
/// let mut response = http::Response::new("wrong password, try again");
/// response.extensions_mut().insert(FailedAttempt);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailedAttempt;

/// A [`Risk`] setting that cannot be: a limit of no failures or a window outside one second to
/// a day, a memory store of no counters, a Redis URL that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskError(Problem);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Limit(ThresholdError),
    Store(StoreError),
}

impl fmt::Display for RiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Problem::Limit(error) => error.fmt(f),
            Problem::Store(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for RiskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Problem::Limit(error) => Some(error),
            Problem::Store(error) => Some(error),
        }
    }
}
