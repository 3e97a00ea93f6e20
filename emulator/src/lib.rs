//! A local emulator of Alibaba Cloud's `VerifyIntelligentCaptcha` service.
//!
//! It is a real HTTP server (HTTP/1.1, and HTTP/2 with prior knowledge) that checks requests the
//! way Alibaba's API gateway does — required headers, action and version, a 15-minute clock
//! window, single-use nonces, the body hash, `SignedHeaders` coverage, the AccessKey (and STS
//! token), and the ACS3-HMAC-SHA256 signature — and then gives verdicts like the service:
//! params are single-use, expire, must match the scene, and carry the verdict they were minted
//! for. Faults can be switched on at run time. Tests, examples and benchmarks talk to it over
//! real sockets; so can you, for offline development.
//!
//! HTTP interface:
//!
//! | method and path          | what it does |
//! |--------------------------|--------------|
//! | `POST /`                 | the service: `VerifyIntelligentCaptcha`, version 2023-03-05 |
//! | `POST /emulator/params`  | mints a param ([`Mint`] as JSON) → `{"captchaVerifyParam"}` |
//! | `GET/POST /emulator/faults` | reads or sets the [`Faults`] in force (JSON) |
//! | `GET /emulator/stats`    | the [`Stats`] counters (JSON) |
//! | `GET /emulator/captcha.js` | a stand-in for Alibaba's front-end script (`initAliyunCaptcha`) |
//! | `POST /` (`AssumeRole`, `AssumeRoleWithOIDC`) | STS, for [`EmulatorBuilder::role`] |
//! | `/latest/…`              | an ECS metadata service, for [`EmulatorBuilder::instance_role`] |
//! | `GET /emulator/credentials` | a credentials URI |
//!
//! The emulator's own API (every `/emulator/…` path but the widget script) answers only
//! requests addressed to the emulator (its address, or `localhost` on its port, in `Host`;
//! 421 otherwise), and from a browser only pages of the origins it was told about
//! ([`EmulatorBuilder::allow_origin`], [`Emulator::allow_origin`]; 403 otherwise), so that a
//! web page cannot mint passing params or switch faults on.
//!
//! The same server runs as a program: `aliyun-captcha-emulator` (installed with
//! `cargo install aliyun-captcha-emulator`, or `cargo install --path emulator` from a clone of
//! the repository). It signs nothing of its own: the canonical request, the protocol's names
//! and encryption mode come from `tower-aliyun-captcha`, the crate whose client it checks.
//!
//! ```
//! use aliyun_captcha_emulator::{Emulator, Mint};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let emulator = Emulator::builder()
//!     .access_key("test-id", "test-secret")
//!     .scene("login-scene")
//!     .start("127.0.0.1:0")
//!     .await?;
//! let param = emulator.mint(Mint::pass())?;
//! assert!(!param.is_empty());
//! assert!(emulator.url().starts_with("http://127.0.0.1:"));
//! emulator.shutdown().await;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub,
    unnameable_types
)]
#![forbid(unsafe_code)]

mod access;
mod answer;
mod auth;
mod builder;
#[doc(hidden)]
pub mod cli;
mod faults;
mod gateway;
mod mint;
mod params;
mod server;
mod state;
mod stats;
mod sts;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

pub use access::InvalidOrigin;
pub use builder::EmulatorBuilder;
pub use faults::{FaultMode, Faults};
pub use mint::{Mint, MintError};
pub use params::ParamFormat;
pub use stats::Stats;

use state::State;

/// The request checks on raw input, for the fuzz targets in `fuzz/` (built with
/// `--cfg fuzzing`, which cargo-fuzz sets); not part of the API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub fn fuzz_authenticate(method: &[u8], path: &[u8], headers: &[(&[u8], &[u8])], body: &[u8]) {
    let mut request = http::Request::builder();
    if let Ok(method) = http::Method::from_bytes(method) {
        request = request.method(method);
    }
    if let Ok(path) = std::str::from_utf8(path) {
        request = request.uri(path);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let Ok(request) = request.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let keys = std::collections::HashMap::from([(
        "fuzz-id".to_owned(),
        auth::KnownKey {
            secret: "fuzz-secret".to_owned(),
            security_token: None,
            expires: None,
        },
    )]);
    let mut nonces = auth::NonceWindow::default();
    let _ = auth::authenticate(&parts, body, &keys, true, SystemTime::now(), &mut nonces);
    let _ = params::decode(&String::from_utf8_lossy(body));
}

/// How a scene in test mode answers every param.
///
/// ```
/// use aliyun_captcha_emulator::{Emulator, Mint, TestMode};
/// use tower_aliyun_captcha::{Credentials, VerifyCode};
/// # async fn check(emulator: &aliyun_captcha_emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
/// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
/// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
/// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
/// let emulator = Emulator::builder()
///     .credentials(&credentials)
///     .test_mode_scene("always-fails", TestMode::Fail)
///     .start("127.0.0.1:0")
///     .await?;
/// // Whatever verdict the param was minted with, a failing test-mode scene answers F004.
/// let param = emulator.mint(Mint::pass())?;
/// assert_eq!(check(&emulator, &credentials, param).await?.code(), &VerifyCode::F004);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestMode {
    /// Every param passes with `T005`.
    Pass,
    /// Every param fails with `F004`.
    Fail,
}

/// A clock the emulator reads for `x-acs-date` checks and param ages.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A running emulator. Dropping it stops the server; [`shutdown`](Self::shutdown) also waits
/// for that.
///
/// ```
/// use aliyun_captcha_emulator::{Emulator, Mint};
/// use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, VerifyRequest};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
/// let emulator = Emulator::builder()
///     .credentials(&credentials)
///     .scene("s")
///     .start("127.0.0.1:0")
///     .await?;
/// let client = Client::builder()
///     .credentials(credentials)
///     .endpoint(emulator.url())
///     .allow_http(true)
///     .build()?;
/// let param = CaptchaVerifyParam::new(emulator.mint(Mint::pass())?)?;
/// assert!(
///     client
///         .verify(VerifyRequest::new(param.clone()))
///         .await?
///         .passed()
/// );
/// assert_eq!(emulator.stats().requests, 1);
///
/// emulator.shutdown().await;
/// // Stopped, with its connections closed: the call fails at once, without a verdict.
/// assert!(client.verify(VerifyRequest::new(param)).await.is_err());
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Emulator {
    state: Arc<State>,
    addr: SocketAddr,
    server: server::ServerHandle,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts configuring an emulator.
    ///
    /// ```
    /// use aliyun_captcha_emulator::Emulator;
    ///
    /// let builder = Emulator::builder()
    ///     .access_key("id", "secret")
    ///     .scene("login001");
    /// // The builder's Debug output names key ids and scenes, never secrets.
    /// assert!(!format!("{builder:?}").contains("secret\""));
    /// ```
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// The address it listens on.
    ///
    /// ```
    /// use aliyun_captcha_emulator::Emulator;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder()
    ///     .access_key("id", "secret")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// let stream = tokio::net::TcpStream::connect(emulator.addr()).await?; // it is listening
    /// # drop(stream);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://HOST:PORT`, to use as the client's endpoint.
    ///
    /// ```
    /// use aliyun_captcha_emulator::Emulator;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder()
    ///     .access_key("id", "secret")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// assert_eq!(emulator.url(), format!("http://{}", emulator.addr()));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Lets pages from `origin` call its own API from now on, as
    /// [`EmulatorBuilder::allow_origin`] does before it starts: for an app that learns its
    /// address only after the emulator runs.
    ///
    /// ```
    /// use aliyun_captcha_emulator::Emulator;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder().access_key("id", "secret").start("127.0.0.1:0").await?;
    /// let app = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// emulator.allow_origin(&format!("http://{}", app.local_addr()?))?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn allow_origin(&self, origin: &str) -> Result<(), InvalidOrigin> {
        self.state.allow_origin(access::Origin::parse(origin)?);
        Ok(())
    }

    /// Mints a param, as the front-end widget would after a challenge.
    ///
    /// ```
    /// use aliyun_captcha_emulator::{Emulator, Mint};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder()
    ///     .access_key("id", "secret")
    ///     .scene("s")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// let first = emulator.mint(Mint::pass())?;
    /// let second = emulator.mint(Mint::pass())?;
    /// assert_ne!(first, second); // every param is new
    /// assert_eq!(emulator.stats().params_minted, 2);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn mint(&self, mint: Mint) -> Result<String, MintError> {
        self.state.mint(mint)
    }

    /// The faults in force.
    ///
    /// ```
    /// use aliyun_captcha_emulator::{Emulator, FaultMode, Faults};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder()
    ///     .access_key("id", "secret")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// assert_eq!(emulator.faults(), Faults::none());
    /// emulator.set_faults(Faults::mode(FaultMode::Unavailable));
    /// assert_eq!(emulator.faults().fault_mode(), FaultMode::Unavailable);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// Switches faults on (or off, with [`Faults::none`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_captcha_emulator::{Emulator, FaultMode, Faults, Mint};
    /// use tower_aliyun_captcha::Credentials;
    /// # async fn check(emulator: &aliyun_captcha_emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// emulator.set_faults(Faults::mode(FaultMode::InternalError).with_latency(Duration::from_millis(20)));
    /// let failed = check(&emulator, &credentials, emulator.mint(Mint::pass())?).await.unwrap_err();
    /// assert_eq!(failed.label(), "api"); // 500 InternalError: a failure policy decides
    ///
    /// emulator.set_faults(Faults::none());
    /// assert!(check(&emulator, &credentials, emulator.mint(Mint::pass())?).await?.passed());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// The counters so far.
    ///
    /// ```
    /// use aliyun_captcha_emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::Credentials;
    /// # async fn check(emulator: &aliyun_captcha_emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// let param = emulator.mint(Mint::pass())?;
    /// check(&emulator, &credentials, param.clone()).await?;
    /// check(&emulator, &credentials, param).await?;
    /// let stats = emulator.stats();
    /// assert_eq!(stats.requests, 2);
    /// assert_eq!(stats.verdicts["T001"], 1);
    /// assert_eq!(stats.verdicts["F018"], 1);
    /// assert_eq!(stats.repeated_params, 1);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn stats(&self) -> Stats {
        self.state.counters.snapshot()
    }

    /// Stops accepting, closes every connection, and waits until the server has stopped.
    ///
    /// ```
    /// use aliyun_captcha_emulator::Emulator;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder()
    ///     .access_key("id", "secret")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// let addr = emulator.addr();
    /// emulator.shutdown().await;
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
