//! Failure counts in Redis, shared by every instance that points at it: failures counted on
//! instance A raise the requirement on instance B.
//!
//! **Keys.** `{namespace}:{signal}:{digest}:{bucket}`, for instance
//! `tac:risk:account:9f86d081884c7d659a2feaa0c55ad015:1953421`: the namespace (`tac:risk` by
//! default), `account`, `ip` or `global`, the counter's 128-bit digest in hex (HMAC of route,
//! window and subject: no user name or address is stored in clear; see `key`), and the
//! bucket's number (see `window`). Instances must share the digest key to share counts.
//!
//! **One round trip per call.** A failure is one `MULTI`/`EXEC` of `INCRBY 1` and `EXPIRE` per
//! counter (atomic: no counter without its expiry, even if the connection drops half-way); the
//! counts of a request one `MGET` of the current and previous bucket of each counter; taking
//! an attempt back one `EVAL` of a short script; clearing an account one `DEL` of its two
//! buckets. A bucket expires two windows after its last
//! failure, plus a second for clock skew, so Redis holds nothing that no longer counts and
//! needs no sweeping, and a bucket taken back to zero (an attempt that was no failure) is
//! deleted. Give the counts a Redis (or a database) of their own with `maxmemory-policy
//! noeviction`: a full Redis then answers writes with an error, and the captcha is required;
//! an evicting policy could drop a victim's count to make room for a spray.
//!
//! **A deadline on every call** (50 ms by default): a slow or unreachable Redis is a
//! [`StoreError`] quickly, and the decision takes it as `StoreDown` (the captcha is
//! required). The connection is redis-rs's `ConnectionManager`: one multiplexed connection,
//! made on first use, re-made in the background with backoff (at most a second between
//! attempts) when it breaks, so the counts come back by themselves when Redis does.
//!
//! **No secrets in errors or `Debug`.** A Redis URL may carry a password: errors never quote
//! it, and `Debug` shows it redacted.
//!
//! Bucket numbers come from each instance's clock; NTP's skew is far below a window.
//! `rediss://` (TLS) is not built in.

use std::fmt;
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, RedisError};

use super::key::{Keys, Tally};
use super::store::{Counts, RiskStore, StoreError, StoreFuture};

/// The default deadline of a call: a Redis on the same network answers in a millisecond or
/// two; past 50 ms it is in trouble, and the request should not wait for it.
pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_millis(50);
/// The default prefix of every key.
pub(crate) const DEFAULT_NAMESPACE: &str = "tac:risk";
/// The longest namespace.
const MAX_NAMESPACE: usize = 64;
/// The longest wait between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Slack on every expiry, for clocks a little apart.
const SKEW: u64 = 1;

/// How a [`RedisStore`] names its keys and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedisOptions {
    pub(crate) namespace: String,
    pub(crate) deadline: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// Failure counts in Redis. See the module's documentation.
#[derive(Clone)]
pub(crate) struct RedisStore {
    connection: ConnectionManager,
    namespace: String,
    deadline: Duration,
    /// The URL with its password and query hidden, for `Debug`.
    shown: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shown)
            .field("namespace", &self.namespace)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[user:password@]host[:port][/db]`). It connects
    /// on first use, so a Redis that is down at start-up makes requests need the captcha
    /// rather than the app fail to start. Call it within a Tokio runtime (the connection is
    /// driven by a task of its own).
    pub(crate) fn new(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let namespace = options.namespace;
        if namespace.is_empty()
            || namespace.len() > MAX_NAMESPACE
            || !namespace.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(StoreError::configuration(format!(
                "a Redis namespace is 1 to {MAX_NAMESPACE} printable ASCII characters without spaces"
            )));
        }
        if options.deadline.is_zero() {
            return Err(StoreError::configuration("a zero deadline for Redis"));
        }
        // Neither error quotes the URL: it may hold a password.
        let client = redis::Client::open(url).map_err(|_| {
            StoreError::configuration(
                "not a valid Redis URL (redis://[user:password@]host[:port][/db])",
            )
        })?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::configuration(
                "the Redis store is made within a Tokio runtime",
            ));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.deadline.max(Duration::from_millis(250))))
            .set_response_timeout(Some(options.deadline))
            .set_max_delay(MAX_RECONNECT_DELAY);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| classify(&e, options.deadline))?;
        Ok(Self {
            connection,
            namespace,
            deadline: options.deadline,
            shown: redact(url),
        })
    }

    fn key(&self, tally: &Tally, bucket: u64) -> String {
        format!(
            "{}:{}:{}:{bucket}",
            self.namespace,
            tally.signal.as_str(),
            tally.hex()
        )
    }

    /// The keys of a counter's current and previous buckets at `now`.
    fn buckets(&self, tally: &Tally, now: SystemTime) -> [String; 2] {
        let bucket = tally.window.bucket(now);
        [
            self.key(tally, bucket),
            self.key(tally, bucket.saturating_sub(1)),
        ]
    }

    /// Runs `call` on a clone of the connection, under the deadline.
    async fn run<T, F>(&self, call: impl FnOnce(ConnectionManager) -> F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        match tokio::time::timeout(self.deadline, call(self.connection.clone())).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(classify(&e, self.deadline)),
            Err(_) => Err(StoreError::timeout(self.deadline)),
        }
    }
}

/// How long a bucket's key lives after a change: two windows (it is read as the previous
/// bucket through the next one), and a little for clock skew between instances.
fn ttl(tally: &Tally) -> i64 {
    let ttl = tally.window.retention().as_secs().saturating_add(SKEW);
    i64::try_from(ttl).unwrap_or(i64::MAX)
}

/// The counts from `values`, each counter's current and previous bucket in turn, less
/// `this` from each current bucket (the attempt being counted). A bucket taken back below zero
/// reads as zero.
fn counts_of(
    keys: &Keys,
    now: SystemTime,
    values: &[Option<i64>],
    this: i64,
) -> Result<Counts, StoreError> {
    let mut values = values.chunks(2);
    let mut next = |tally: Option<&Tally>| -> Result<u64, StoreError> {
        let Some(tally) = tally else { return Ok(0) };
        let read = |value: Option<i64>| u64::try_from(value.unwrap_or(0)).unwrap_or(0);
        match values.next() {
            Some(&[current, previous]) => {
                Ok(tally
                    .window
                    .estimate(now, read(current.map(|c| c - this)), read(previous)))
            }
            _ => Err(StoreError::server("Redis answered too few values")),
        }
    };
    Ok(Counts {
        account: next(keys.account.as_ref())?,
        ip: next(keys.ip.as_ref())?,
        global: next(Some(&keys.global))?,
        // Keys expire by their TTL; Redis's own eviction is its operator's setting.
        evicted: false,
    })
}

impl RiskStore for RedisStore {
    fn record_failure(&self, keys: Keys, now: SystemTime) -> StoreFuture<'_, ()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for tally in keys.tallies() {
            let key = self.key(tally, tally.window.bucket(now));
            pipe.incr(&key, 1)
                .ignore()
                .expire(&key, ttl(tally))
                .ignore();
        }
        Box::pin(self.run(move |mut c| async move { pipe.query_async::<()>(&mut c).await }))
    }

    #[cfg(test)]
    fn counts(&self, keys: Keys, now: SystemTime) -> StoreFuture<'_, Counts> {
        let names: Vec<String> = keys
            .tallies()
            .flat_map(|tally| self.buckets(tally, now))
            .collect();
        Box::pin(async move {
            let values: Vec<Option<i64>> = self
                .run(move |mut c| async move {
                    redis::cmd("MGET").arg(&names).query_async(&mut c).await
                })
                .await?;
            counts_of(&keys, now, &values, 0)
        })
    }

    fn attempt(&self, keys: Keys, now: SystemTime) -> StoreFuture<'_, Counts> {
        // One transaction: each counter's current bucket counted (its new value answered) and
        // its previous bucket read, so concurrent attempts on any instance see each other.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for tally in keys.tallies() {
            let [current, previous] = self.buckets(tally, now);
            pipe.incr(&current, 1)
                .expire(&current, ttl(tally))
                .ignore()
                .get(&previous);
        }
        Box::pin(async move {
            let values: Vec<Option<i64>> = self
                .run(move |mut c| async move { pipe.query_async(&mut c).await })
                .await?;
            counts_of(&keys, now, &values, 1)
        })
    }

    fn undo(&self, keys: Keys, at: SystemTime) -> StoreFuture<'_, ()> {
        // A bucket taken back to zero is deleted, so that requests that were no failures
        // leave no key behind: a spray of them cannot fill Redis and push out (under an
        // evicting `maxmemory` policy) the counts that matter.
        let mut undo = redis::cmd("EVAL");
        let tallies: Vec<&Tally> = keys.tallies().collect();
        undo.arg(UNDO).arg(tallies.len());
        for tally in &tallies {
            undo.arg(self.key(tally, tally.window.bucket(at)));
        }
        for tally in &tallies {
            undo.arg(ttl(tally));
        }
        Box::pin(self.run(move |mut c| async move { undo.query_async::<()>(&mut c).await }))
    }

    fn clear(&self, account: Tally, now: SystemTime) -> StoreFuture<'_, ()> {
        let names = self.buckets(&account, now);
        Box::pin(self.run(move |mut c| async move { c.del::<_, ()>(&names[..]).await }))
    }
}

/// Takes one back from each bucket in `KEYS`, atomically: a bucket at zero (or one that had
/// expired, now below) is deleted, any other keeps its count with its TTL (`ARGV`) renewed.
const UNDO: &str = "for i, key in ipairs(KEYS) do \
    if redis.call('DECR', key) <= 0 then redis.call('DEL', key) \
    else redis.call('EXPIRE', key, ARGV[i]) end \
end";

/// A Redis error as a store error, in fixed words: a server's message may quote what it was
/// sent, so only its error code (`READONLY`, `OOM`, `NOAUTH`, …) is kept.
fn classify(e: &RedisError, deadline: Duration) -> StoreError {
    if e.is_timeout() {
        StoreError::timeout(deadline)
    } else if e.is_connection_refusal() {
        StoreError::unavailable("connection refused")
    } else if e.is_connection_dropped() {
        StoreError::unavailable("connection dropped")
    } else if e.is_io_error() {
        StoreError::unavailable("I/O error")
    } else {
        let code: String = e
            .code()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(32)
            .collect();
        if code.is_empty() {
            StoreError::server(format!("{:?}", e.kind()))
        } else {
            StoreError::server(code)
        }
    }
}

/// A Redis URL fit to show: the password replaced by `***`, the query (where a socket URL may
/// carry one) and fragment dropped.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (rest, dropped) = rest.split_at(end);
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _password)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_owned(),
    };
    let dropped = if dropped.is_empty() { "" } else { "?…" };
    format!("{scheme}://{authority}{path}{dropped}")
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    use super::super::decision::{Limit, Need, Raised, Thresholds, requirement};
    use super::super::key::KeyHasher;
    use super::super::store::StoreErrorKind;
    use super::*;

    #[test]
    fn urls_are_shown_without_their_secrets() {
        let rows = [
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            (
                "redis://app:hunter2@cache.internal:6380/2",
                "redis://app:***@cache.internal:6380/2",
            ),
            ("redis://:hunter2@cache", "redis://:***@cache"),
            ("redis://app@cache", "redis://app@cache"),
            (
                "redis+unix:///run/redis.sock?db=1&pass=hunter2",
                "redis+unix:///run/redis.sock?…",
            ),
            ("redis://a:b@c@host/0#x", "redis://a:***@host/0?…"),
            ("hunter2", "<not a URL>"),
            ("", "<not a URL>"),
        ];
        for (url, shown) in rows {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[tokio::test]
    async fn a_bad_setting_is_refused_without_quoting_the_url() {
        let url = "redis://app:hunter2@[::1";
        let error = RedisStore::new(url, RedisOptions::default()).unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Configuration);
        assert!(!error.to_string().contains("hunter2"), "{error}");
        for namespace in ["", "has space", &"x".repeat(65)] {
            let options = RedisOptions {
                namespace: namespace.to_owned(),
                ..RedisOptions::default()
            };
            let error = RedisStore::new("redis://127.0.0.1:1", options).unwrap_err();
            assert_eq!(error.kind(), StoreErrorKind::Configuration, "{namespace:?}");
        }
        let zero = RedisOptions {
            deadline: Duration::ZERO,
            ..RedisOptions::default()
        };
        assert!(RedisStore::new("redis://127.0.0.1:1", zero).is_err());
        // Lazy: nothing listens on port 1, and the store is made all the same, hiding the
        // password in Debug; its first call fails within the deadline.
        let store =
            RedisStore::new("redis://app:hunter2@127.0.0.1:1", RedisOptions::default()).unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
        let keys = hasher().keys("login", Some("a"), None, Thresholds::default().windows());
        let started = Instant::now();
        let answer = store.counts(keys, SystemTime::now()).await;
        assert!(answer.is_err() && started.elapsed() < Duration::from_secs(1));
        assert!(!answer.unwrap_err().to_string().contains("hunter2"));
    }

    #[test]
    fn outside_a_runtime_the_store_is_refused_not_a_panic() {
        let error = RedisStore::new("redis://127.0.0.1:1", RedisOptions::default()).unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Configuration);
    }

    /// A `redis-server` of the test's own on a free loopback port, without persistence,
    /// killed when dropped.
    struct Server {
        binary: PathBuf,
        port: u16,
        child: Option<Child>,
    }

    impl Server {
        /// `None`, with a line saying so, when `redis-server` is not installed.
        fn start() -> Option<Server> {
            let Some(binary) = find_redis_server() else {
                eprintln!(
                    "SKIPPED: redis-server is not on PATH (Debian: apt-get install redis-server; \
                     or set REDIS_SERVER to the binary)"
                );
                return None;
            };
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            let mut server = Server {
                binary,
                port,
                child: None,
            };
            server.restart();
            Some(server)
        }

        /// Starts it (again) on its port and waits until it answers.
        fn restart(&mut self) {
            let child = Command::new(&self.binary)
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "redis-server did not listen on {}",
                    self.port
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        fn stop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/0", self.port)
        }

        fn store(&self) -> RedisStore {
            RedisStore::new(&self.url(), RedisOptions::default()).expect("a store")
        }

        async fn connection(&self) -> redis::aio::MultiplexedConnection {
            let client = redis::Client::open(self.url()).unwrap();
            client.get_multiplexed_async_connection().await.unwrap()
        }

        /// How many keys the server holds.
        async fn keys(&self) -> usize {
            let mut c = self.connection().await;
            redis::cmd("DBSIZE").query_async(&mut c).await.unwrap()
        }

        /// The names of the keys the server holds.
        async fn names(&self) -> Vec<String> {
            let mut c = self.connection().await;
            redis::cmd("KEYS")
                .arg("*")
                .query_async(&mut c)
                .await
                .unwrap()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop();
        }
    }

    fn find_redis_server() -> Option<PathBuf> {
        if let Some(named) = std::env::var_os("REDIS_SERVER") {
            return Some(PathBuf::from(named));
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join("redis-server"))
            .find(|candidate| candidate.is_file())
    }

    fn hasher() -> KeyHasher {
        KeyHasher::with_key(b"shared by the instances")
    }

    fn client_ip() -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
    }

    #[tokio::test]
    #[ignore = "needs redis-server: cargo test -p tower-aliyun-captcha --all-features --lib risk::redis -- --ignored"]
    async fn two_instances_on_one_redis_see_each_others_failures() {
        let Some(server) = Server::start() else {
            return;
        };
        let thresholds = Thresholds::default();
        let (a, b) = (server.store(), server.store());
        let now = SystemTime::now();
        let alice = hasher().keys("login", Some("alice"), client_ip(), thresholds.windows());
        for _ in 0..3 {
            a.record_failure(alice, now).await.unwrap();
        }
        // Instance B sees instance A's failures, and requires the captcha.
        let seen = b.counts(alice, now).await.unwrap();
        assert_eq!((seen.account, seen.ip, seen.global), (3, 3, 3));
        assert_eq!(
            requirement(Ok(&seen), &thresholds),
            Need::Required(Raised::Account)
        );
        // Another account from elsewhere shares only the route's count.
        let bob = hasher().keys("login", Some("bob"), None, thresholds.windows());
        let other = b.counts(bob, now).await.unwrap();
        assert_eq!((other.account, other.ip, other.global), (0, 0, 3));
        // A success on B clears Alice's account for A; her address keeps its count.
        b.clear(alice.account.unwrap(), now).await.unwrap();
        let after = a.counts(alice, now).await.unwrap();
        assert_eq!((after.account, after.ip, after.global), (0, 3, 3));
        // Left: the address's and the route's buckets; nothing in clear.
        assert_eq!(server.keys().await, 2);
        for name in &server.names().await {
            assert!(name.starts_with("tac:risk:"), "{name}");
            assert!(
                !name.contains("alice") && !name.contains("192.0.2.1"),
                "{name}"
            );
        }

        // One command per call, as Redis counts them: a decision is one MGET; a failure one
        // transaction; a clear one DEL.
        let mut c = server.connection().await;
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut c)
            .await
            .unwrap();
        let started = Instant::now();
        for _ in 0..100 {
            a.counts(alice, now).await.unwrap();
        }
        let per_decision = started.elapsed() / 100;
        a.record_failure(alice, now).await.unwrap();
        a.clear(alice.account.unwrap(), now).await.unwrap();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut c)
            .await
            .unwrap();
        let calls = |command: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
                .and_then(|rest| rest.split(',').next()?.parse::<u32>().ok())
                .unwrap_or(0)
        };
        let counted = ["mget", "multi", "incrby", "expire", "exec", "del"].map(calls);
        assert_eq!(counted, [100, 1, 3, 3, 1, 1], "{info}");
        eprintln!("a decision's counts over loopback: one MGET, {per_decision:?} on average");
    }

    #[tokio::test]
    #[ignore = "needs redis-server: cargo test -p tower-aliyun-captcha --all-features --lib risk::redis -- --ignored"]
    async fn attempts_taken_back_leave_no_key_behind() {
        let Some(server) = Server::start() else {
            return;
        };
        let thresholds = Thresholds::default();
        let store = server.store();
        let now = SystemTime::now();
        // A spray of requests that were no failures: each counted, then taken back.
        for i in 0..50 {
            let name = format!("nobody-{i}");
            let keys = hasher().keys("login", Some(&name), client_ip(), thresholds.windows());
            store.attempt(keys, now).await.unwrap();
            store.undo(keys, now).await.unwrap();
        }
        assert_eq!(server.keys().await, 0, "a taken-back attempt left a key");
        // Two at once, one taken back: the other still counts, with its expiry.
        let alice = hasher().keys("login", Some("alice"), client_ip(), thresholds.windows());
        store.attempt(alice, now).await.unwrap();
        store.attempt(alice, now).await.unwrap();
        store.undo(alice, now).await.unwrap();
        let counts = store.counts(alice, now).await.unwrap();
        assert_eq!((counts.account, counts.ip, counts.global), (1, 1, 1));
        assert_eq!(server.keys().await, 3);
        let mut c = server.connection().await;
        for name in &server.names().await {
            let ttl: i64 = redis::cmd("TTL")
                .arg(name)
                .query_async(&mut c)
                .await
                .unwrap();
            assert!(ttl > 0, "{name} has no expiry ({ttl})");
        }
        // An undo after the bucket expired leaves nothing either.
        store.undo(alice, now).await.unwrap();
        store.undo(alice, now).await.unwrap();
        assert_eq!(server.keys().await, 0);
    }

    #[tokio::test]
    #[ignore = "needs redis-server: cargo test -p tower-aliyun-captcha --all-features --lib risk::redis -- --ignored"]
    async fn counts_leave_with_their_window() {
        let Some(server) = Server::start() else {
            return;
        };
        let second = Limit::new(1, Duration::from_secs(1)).unwrap();
        let thresholds = Thresholds {
            account: second,
            ip: second,
            global: second,
        };
        let store = server.store();
        let keys = hasher().keys("login", Some("alice"), client_ip(), thresholds.windows());
        let now = SystemTime::now();
        store.record_failure(keys, now).await.unwrap();
        assert_eq!(store.counts(keys, now).await.unwrap().account, 1);
        // Two windows on, the count is gone from the estimate...
        let later = now + Duration::from_secs(2);
        assert_eq!(store.counts(keys, later).await.unwrap(), Counts::default());
        // ...and, a second of slack later, from Redis.
        assert_eq!(server.keys().await, 3);
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        assert_eq!(server.keys().await, 0);
    }

    #[tokio::test]
    #[ignore = "needs redis-server: cargo test -p tower-aliyun-captcha --all-features --lib risk::redis -- --ignored"]
    async fn a_redis_stopped_mid_run_fails_safe_within_the_deadline_and_comes_back() {
        let Some(mut server) = Server::start() else {
            return;
        };
        let thresholds = Thresholds::default();
        let store = server.store();
        let keys = hasher().keys("login", Some("alice"), client_ip(), thresholds.windows());
        store.record_failure(keys, SystemTime::now()).await.unwrap();
        assert_eq!(
            requirement(
                store.counts(keys, SystemTime::now()).await.as_ref(),
                &thresholds
            ),
            Need::NotRequired
        );

        server.stop();
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            let started = Instant::now();
            let counts = store.counts(keys, SystemTime::now()).await;
            let recorded = store.record_failure(keys, SystemTime::now()).await;
            slowest = slowest.max(started.elapsed() / 2);
            let error = counts.as_ref().unwrap_err();
            assert!(recorded.is_err());
            assert!(
                matches!(
                    error.kind(),
                    StoreErrorKind::Unavailable | StoreErrorKind::Timeout
                ),
                "{error}"
            );
            // The decision: the captcha is required.
            assert_eq!(
                requirement(counts.as_ref(), &thresholds),
                Need::Required(Raised::StoreDown)
            );
        }
        eprintln!(
            "Redis down: each call failed within {slowest:?} (deadline {DEFAULT_DEADLINE:?})"
        );
        assert!(
            slowest <= DEFAULT_DEADLINE + Duration::from_millis(100),
            "{slowest:?}"
        );

        // Redis back (empty: no persistence): the same store reconnects by itself.
        server.restart();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(counts) = store.counts(keys, SystemTime::now()).await {
                assert_eq!(counts, Counts::default());
                break;
            }
            assert!(Instant::now() < deadline, "the store did not reconnect");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        store.record_failure(keys, SystemTime::now()).await.unwrap();
    }
}
