//! A local emulator of Alibaba Cloud's `VerifyIntelligentCaptcha` service (feature `emulator`).
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
//! | `POST /emulator/params`  | mints a param: `{"scene", "verdict", "format"}` → `{"captchaVerifyParam"}` |
//! | `GET/POST /emulator/faults` | reads or sets the [`Faults`] in force (JSON) |
//! | `GET /emulator/stats`    | the [`Stats`] counters (JSON) |
//!
//! ```
//! use tower_aliyun_captcha::emulator::{Emulator, Mint};
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

mod auth;
mod faults;
mod params;
mod server;
mod stats;
mod sts;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, ToSocketAddrs};

pub use faults::{FaultMode, Faults};
pub use params::ParamFormat;
pub use stats::Stats;

use crate::encryption::SceneKey;
use crate::{Credentials, VerifyCode};
use auth::{KnownKey, NonceWindow};
use params::ParamStore;
use stats::Counters;
use sts::StsConfig;

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
    let keys = HashMap::from([(
        "fuzz-id".to_owned(),
        KnownKey {
            secret: "fuzz-secret".to_owned(),
            security_token: None,
            expires: None,
        },
    )]);
    let mut nonces = NonceWindow::default();
    let _ = auth::authenticate(&parts, body, &keys, true, SystemTime::now(), &mut nonces);
    let _ = params::decode(&String::from_utf8_lossy(body));
}

/// How a scene in test mode answers every param.
///
/// ```
/// use tower_aliyun_captcha::emulator::{Emulator, Mint, TestMode};
/// use tower_aliyun_captcha::{Credentials, VerifyCode};
/// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
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

/// Configures and starts an [`Emulator`].
///
/// ```
/// use tower_aliyun_captcha::emulator::{Emulator, TestMode};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let emulator = Emulator::builder()
///     .access_key("LTAI5tLocal", "local-secret")
///     .sts_key("STS.Local", "temporary-secret", "security-token")
///     .scene("login001")
///     .test_mode_scene("always-passes", TestMode::Pass)
///     .start("127.0.0.1:0")
///     .await?;
/// println!("emulator on {}", emulator.url());
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct EmulatorBuilder {
    keys: HashMap<String, KnownKey>,
    scenes: Vec<(String, Option<TestMode>)>,
    scene_keys: HashMap<String, SceneKey>,
    sts: StsConfig,
    clock: Option<Clock>,
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("access_key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("scenes", &self.scenes)
            .finish_non_exhaustive()
    }
}

impl EmulatorBuilder {
    /// Accepts requests signed with this AccessKey pair.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::Credentials;
    /// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder().access_key("LTAI5tLocal", "local-secret").scene("s").start("127.0.0.1:0").await?;
    /// let right = Credentials::new("LTAI5tLocal", "local-secret");
    /// let wrong = Credentials::new("LTAI5tLocal", "not-the-secret");
    /// assert!(check(&emulator, &right, emulator.mint(Mint::pass())?).await?.passed());
    /// let refused = check(&emulator, &wrong, emulator.mint(Mint::pass())?).await.unwrap_err();
    /// assert!(refused.to_string().contains("SignatureDoesNotMatch"));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn access_key(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.keys.insert(
            id.into(),
            KnownKey {
                secret: secret.into(),
                security_token: None,
                expires: None,
            },
        );
        self
    }

    /// Accepts requests signed with this temporary (STS) AccessKey, which must come with
    /// `security_token`.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::Credentials;
    /// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder().sts_key("STS.Local", "temp-secret", "token-1").scene("s").start("127.0.0.1:0").await?;
    /// let with_token = Credentials::new("STS.Local", "temp-secret").with_security_token("token-1");
    /// let without = Credentials::new("STS.Local", "temp-secret");
    /// assert!(check(&emulator, &with_token, emulator.mint(Mint::pass())?).await?.passed());
    /// assert!(check(&emulator, &without, emulator.mint(Mint::pass())?).await.is_err());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn sts_key(
        mut self,
        id: impl Into<String>,
        secret: impl Into<String>,
        security_token: impl Into<String>,
    ) -> Self {
        self.keys.insert(
            id.into(),
            KnownKey {
                secret: secret.into(),
                security_token: Some(security_token.into()),
                expires: None,
            },
        );
        self
    }

    /// Accepts requests signed with `credentials` (an STS key when they hold a token).
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::Credentials;
    /// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// // The same value configures both sides.
    /// let credentials = Credentials::new("STS.Local", "temp-secret").with_security_token("token");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// assert!(check(&emulator, &credentials, emulator.mint(Mint::pass())?).await?.passed());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn credentials(self, credentials: &Credentials) -> Self {
        let id = credentials.access_key_id();
        let secret = credentials.access_key_secret().expose();
        match credentials.security_token() {
            Some(token) => self.sts_key(id, secret, token.expose()),
            None => self.access_key(id, secret),
        }
    }

    /// Adds a scene. The first scene added is the default for minting.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::{
    ///     CaptchaVerifyParam, Client, Credentials, SceneId, VerifyCode, VerifyRequest,
    /// };
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder()
    ///     .credentials(&credentials)
    ///     .scene("login001")
    ///     .scene("signup01")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// let client = Client::builder()
    ///     .credentials(credentials)
    ///     .endpoint(emulator.url())
    ///     .allow_http(true)
    ///     .build()?;
    /// // Minted for the default scene (login001), checked against signup01: F012.
    /// let param = CaptchaVerifyParam::new(emulator.mint(Mint::pass())?)?;
    /// let request = VerifyRequest::new(param).with_scene(SceneId::new("signup01")?);
    /// assert_eq!(client.verify(request).await?.code(), &VerifyCode::F012);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn scene(mut self, id: impl Into<String>) -> Self {
        self.scenes.push((id.into(), None));
        self
    }

    /// Adds a scene in test mode, which answers every param the same way.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint, TestMode};
    /// use tower_aliyun_captcha::{Credentials, VerifyCode};
    /// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder()
    ///     .credentials(&credentials)
    ///     .test_mode_scene("staging", TestMode::Pass)
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// let param = emulator.mint(Mint::verdict("F015"))?;
    /// assert_eq!(check(&emulator, &credentials, param).await?.code(), &VerifyCode::T005);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn test_mode_scene(mut self, id: impl Into<String>, mode: TestMode) -> Self {
        self.scenes.push((id.into(), Some(mode)));
        self
    }

    /// Adds a scene in V3 encryption mode: a param is minted for it only with a valid,
    /// unexpired `EncryptedSceneId` made with `key`, and fails with F022 otherwise.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::encryption::SceneKey;
    /// use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, SceneId, VerifyCode, VerifyRequest};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let key = SceneKey::from_base64(&SceneKey::generate()?)?;
    /// let emulator = Emulator::builder()
    ///     .credentials(&credentials)
    ///     .encrypted_scene("secure01", key.clone())
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// let client = Client::builder().credentials(credentials).endpoint(emulator.url()).allow_http(true).build()?;
    /// let scene = SceneId::new("secure01")?;
    /// let verify = |param: String| {
    ///     let request = VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap()).with_scene(scene.clone());
    ///     client.verify(request)
    /// };
    /// let granted = key.encrypted_scene_id(&scene, Duration::from_secs(60))?;
    /// let param = emulator.mint(Mint::pass().encrypted_scene_id(granted))?;
    /// assert_eq!(verify(param).await?.code(), &VerifyCode::T001);
    /// let param = emulator.mint(Mint::pass())?; // the page did not pass one
    /// assert_eq!(verify(param).await?.code(), &VerifyCode::F022);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn encrypted_scene(mut self, id: impl Into<String>, key: SceneKey) -> Self {
        let id = id.into();
        self.scenes.push((id.clone(), None));
        self.scene_keys.insert(id, key);
        self
    }

    /// Emulates STS too: `AssumeRole` (signed with a key the emulator knows) and
    /// `AssumeRoleWithOIDC` may assume `role_arn`, on the emulator's URL (point an STS
    /// endpoint at it), and a credentials URI answers at `/emulator/credentials`. The
    /// credentials issued are accepted for verifications until they expire.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::credentials::RamRoleArn;
    /// use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, VerifyRequest};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let long_lived = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder()
    ///     .credentials(&long_lived)
    ///     .scene("login001")
    ///     .role("acs:ram::1:role/captcha")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// let role = RamRoleArn::new(long_lived, "acs:ram::1:role/captcha").sts_endpoint(emulator.url());
    /// let client = Client::builder()
    ///     .credentials_provider(role)
    ///     .endpoint(emulator.url())
    ///     .allow_http(true)
    ///     .build()?;
    /// let param = CaptchaVerifyParam::new(emulator.mint(Mint::pass())?)?;
    /// assert!(client.verify(VerifyRequest::new(param)).await?.passed());
    /// assert_eq!(emulator.stats().credentials_issued, 1);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn role(mut self, role_arn: impl Into<String>) -> Self {
        self.sts.roles.push(role_arn.into());
        self
    }

    /// Accepts `token` from the OIDC provider `provider_arn` in `AssumeRoleWithOIDC` (with a
    /// [`role`](Self::role)).
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::Emulator;
    ///
    /// let builder = Emulator::builder()
    ///     .role("acs:ram::1:role/captcha")
    ///     .oidc_provider("acs:ram::1:oidc-provider/ack", "eyJhbGciOi…");
    /// # let _ = builder;
    /// ```
    pub fn oidc_provider(
        mut self,
        provider_arn: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        self.sts.oidc.insert(provider_arn.into(), token.into());
        self
    }

    /// Emulates an ECS instance's metadata service with `role` attached: a session token
    /// (`PUT /latest/api/token`, required) and the role's credentials under
    /// `/latest/meta-data/ram/security-credentials/`.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::Emulator;
    ///
    /// let builder = Emulator::builder().instance_role("captcha-verifier");
    /// # let _ = builder;
    /// ```
    pub fn instance_role(mut self, role: impl Into<String>) -> Self {
        self.sts.instance_role = Some(role.into());
        self
    }

    /// Issues temporary credentials that last at most `lifetime`, whatever was asked: to test
    /// refreshes across several expiries in seconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_aliyun_captcha::emulator::Emulator;
    ///
    /// let builder = Emulator::builder().credentials_lifetime(Duration::from_secs(3));
    /// # let _ = builder;
    /// ```
    pub fn credentials_lifetime(mut self, lifetime: Duration) -> Self {
        self.sts.max_lifetime = Some(lifetime);
        self
    }

    /// Reads time from `clock` instead of the system clock (for tests of expiry and skew).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::time::{Duration, SystemTime};
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::{Credentials, VerifyCode};
    /// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let skew = Arc::new(AtomicU64::new(0));
    /// let clock = {
    ///     let skew = Arc::clone(&skew);
    ///     move || SystemTime::now() + Duration::from_secs(skew.load(Ordering::Relaxed))
    /// };
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").clock(clock).start("127.0.0.1:0").await?;
    /// let param = emulator.mint(Mint::pass())?;
    /// skew.store(91, Ordering::Relaxed); // 91 s later: a V3 param lives 90 s
    /// assert_eq!(check(&emulator, &credentials, param).await?.code(), &VerifyCode::F019);
    /// skew.store(16 * 60, Ordering::Relaxed); // and our request's date is now 16 minutes off
    /// let expired = check(&emulator, &credentials, emulator.mint(Mint::pass())?).await.unwrap_err();
    /// assert!(expired.to_string().contains("InvalidTimeStamp.Expired"));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Binds `addr` (use port 0 for any free port) and starts serving.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::Emulator;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder()
    ///     .access_key("id", "secret")
    ///     .scene("s")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// assert_ne!(emulator.addr().port(), 0);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn start(self, addr: impl ToSocketAddrs) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener)
    }

    /// Starts serving on a listener that is already bound.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::Emulator;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// // E.g. a listener handed over by a test harness, bound before the emulator is configured.
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let addr = listener.local_addr()?;
    /// let emulator = Emulator::builder()
    ///     .access_key("id", "secret")
    ///     .scene("s")
    ///     .serve(listener)?;
    /// assert_eq!(emulator.addr(), addr);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn serve(self, listener: TcpListener) -> std::io::Result<Emulator> {
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            keys: self.keys,
            scenes: self.scenes,
            scene_keys: self.scene_keys,
            sts: self.sts,
            issued: Mutex::default(),
            imds_tokens: Mutex::default(),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemTime::now)),
            nonces: Mutex::default(),
            params: Mutex::default(),
            faults: Mutex::default(),
            counters: Counters::default(),
        });
        let server = server::spawn(listener, Arc::clone(&state));
        Ok(Emulator {
            state,
            addr,
            server,
        })
    }
}

/// What the service knows and remembers.
pub(crate) struct State {
    keys: HashMap<String, KnownKey>,
    scenes: Vec<(String, Option<TestMode>)>,
    /// The encrypt keys of scenes in V3 encryption mode.
    scene_keys: HashMap<String, SceneKey>,
    /// The emulated credential services.
    sts: StsConfig,
    /// Temporary credentials they issued, accepted until they expire.
    issued: Mutex<HashMap<String, KnownKey>>,
    /// Session tokens the metadata service gave.
    imds_tokens: Mutex<Vec<String>>,
    clock: Clock,
    nonces: Mutex<NonceWindow>,
    params: Mutex<ParamStore>,
    faults: Mutex<Faults>,
    counters: Counters,
}

impl State {
    fn now(&self) -> SystemTime {
        (self.clock)()
    }

    fn scene(&self, id: &str) -> Option<Option<TestMode>> {
        self.scenes
            .iter()
            .find(|(scene, _)| scene == id)
            .map(|(_, mode)| *mode)
    }

    fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn mint(&self, mint: Mint) -> Result<String, MintError> {
        let scene = match mint.scene {
            Some(scene) => scene,
            None => self
                .scenes
                .first()
                .map(|(id, _)| id.clone())
                .ok_or(MintError::NoScene)?,
        };
        let mut verdict = VerifyCode::from(mint.verdict.as_deref().unwrap_or("T001"));
        if let VerifyCode::Unknown(code) = verdict {
            return Err(MintError::UnknownVerdict(code));
        }
        // A scene in encryption mode: the widget was started without a valid grant, so its
        // param fails whatever the person did.
        if let Some(key) = self.scene_keys.get(&scene) {
            let now = self
                .now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let granted = mint
                .encrypted_scene_id
                .as_deref()
                .and_then(|token| key.decrypt(token))
                .is_some_and(|grant| grant.grants(&scene, now));
            if !granted {
                verdict = VerifyCode::F022;
            }
        }
        let certify_id = uuid::Uuid::new_v4().simple().to_string();
        let param = params::encode(mint.format.unwrap_or_default(), &scene, &certify_id);
        self.params
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(certify_id, verdict, self.now());
        stats::bump(&self.counters.params_minted);
        Ok(param)
    }
}

/// What param to mint, as Alibaba's front-end widget would after a challenge. The JSON body
/// of `POST /emulator/params` has the same fields.
///
/// ```
/// use tower_aliyun_captcha::emulator::{Mint, ParamFormat};
///
/// let failing_v2 = Mint::verdict("F015")
///     .in_scene("signup")
///     .format(ParamFormat::V2);
/// let from_json: Mint =
///     serde_json::from_str(r#"{"scene": "signup", "verdict": "F015", "format": "v2"}"#).unwrap();
/// assert_eq!(failing_v2, from_json);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[must_use]
pub struct Mint {
    /// The scene; the emulator's first scene when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<String>,
    /// The `VerifyCode` the param will get (`T001` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// The param's format (V3 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ParamFormat>,
    /// The `EncryptedSceneId` the page started the widget with, for a scene in encryption
    /// mode (JSON `encryptedSceneId`).
    #[serde(
        default,
        rename = "encryptedSceneId",
        skip_serializing_if = "Option::is_none"
    )]
    pub encrypted_scene_id: Option<String>,
}

impl Mint {
    /// A V3 param that passes (`T001`) in the default scene.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::{Credentials, VerifyCode};
    /// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// let param = emulator.mint(Mint::pass())?;
    /// assert_eq!(check(&emulator, &credentials, param).await?.code(), &VerifyCode::T001);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn pass() -> Self {
        Self::default()
    }

    /// A V3 param that gets `code` in the default scene.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint, MintError};
    /// use tower_aliyun_captcha::{Credentials, VerifyCode};
    /// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// let bot = emulator.mint(Mint::verdict("F009"))?; // a headless browser, say
    /// assert_eq!(check(&emulator, &credentials, bot).await?.code(), &VerifyCode::F009);
    /// assert!(matches!(emulator.mint(Mint::verdict("F999")), Err(MintError::UnknownVerdict(_))));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn verdict(code: impl Into<String>) -> Self {
        Self {
            verdict: Some(code.into()),
            ..Self::default()
        }
    }

    /// For `scene` instead of the default one.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, SceneId, VerifyRequest};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder()
    ///     .credentials(&credentials)
    ///     .scene("login001")
    ///     .scene("signup01")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// let client = Client::builder()
    ///     .credentials(credentials)
    ///     .endpoint(emulator.url())
    ///     .allow_http(true)
    ///     .build()?;
    /// let param = CaptchaVerifyParam::new(emulator.mint(Mint::pass().in_scene("signup01"))?)?;
    /// let request = VerifyRequest::new(param).with_scene(SceneId::new("signup01")?);
    /// assert!(client.verify(request).await?.passed());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn in_scene(mut self, scene: impl Into<String>) -> Self {
        self.scene = Some(scene.into());
        self
    }

    /// In `format`.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint, ParamFormat};
    /// use tower_aliyun_captcha::{Credentials, VerifyCode};
    /// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// // A V2 param is a JSON object; used twice it is F008 (a V3 param: F018).
    /// let param = emulator.mint(Mint::pass().format(ParamFormat::V2))?;
    /// assert!(param.starts_with('{'));
    /// assert!(check(&emulator, &credentials, param.clone()).await?.passed());
    /// assert_eq!(check(&emulator, &credentials, param).await?.code(), &VerifyCode::F008);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn format(mut self, format: ParamFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// With the `EncryptedSceneId` the page got from its server, for a scene in encryption
    /// mode (see [`EmulatorBuilder::encrypted_scene`]).
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::Mint;
    ///
    /// let mint = Mint::pass().encrypted_scene_id("oKGio6Slpqeo…");
    /// assert!(mint.encrypted_scene_id.is_some());
    /// ```
    pub fn encrypted_scene_id(mut self, token: impl Into<String>) -> Self {
        self.encrypted_scene_id = Some(token.into());
        self
    }
}

/// A param could not be minted.
///
/// ```
/// use tower_aliyun_captcha::emulator::{Emulator, Mint, MintError};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let no_scenes = Emulator::builder()
///     .access_key("id", "secret")
///     .start("127.0.0.1:0")
///     .await?;
/// assert_eq!(no_scenes.mint(Mint::pass()), Err(MintError::NoScene));
/// assert!(no_scenes.mint(Mint::pass().in_scene("explicit")).is_ok());
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MintError {
    /// No scene was given and the emulator has none configured.
    NoScene,
    /// The verdict is not a known `VerifyCode`.
    UnknownVerdict(String),
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoScene => {
                f.write_str("no scene given, and the emulator has no scene configured")
            }
            Self::UnknownVerdict(code) => write!(f, "{code:?} is not a known VerifyCode"),
        }
    }
}

impl std::error::Error for MintError {}

/// A running emulator. Dropping it stops the server; [`shutdown`](Self::shutdown) also waits
/// for that.
///
/// ```
/// use tower_aliyun_captcha::emulator::{Emulator, Mint};
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
    /// use tower_aliyun_captcha::emulator::Emulator;
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
    /// use tower_aliyun_captcha::emulator::Emulator;
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
    /// use tower_aliyun_captcha::emulator::Emulator;
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

    /// Mints a param, as the front-end widget would after a challenge.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
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
    /// use tower_aliyun_captcha::emulator::{Emulator, FaultMode, Faults};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder()
    ///     .access_key("id", "secret")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// assert_eq!(emulator.faults(), Faults::none());
    /// emulator.set_faults(Faults::mode(FaultMode::Unavailable));
    /// assert_eq!(emulator.faults().mode, FaultMode::Unavailable);
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
    /// use tower_aliyun_captcha::emulator::{Emulator, FaultMode, Faults, Mint};
    /// use tower_aliyun_captcha::Credentials;
    /// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// emulator.set_faults(Faults::mode(FaultMode::InternalError).with_latency(Duration::from_millis(20)));
    /// let failed = check(&emulator, &credentials, emulator.mint(Mint::pass())?).await.unwrap_err();
    /// assert_eq!(failed.kind(), "api"); // 500 InternalError: a failure policy decides
    ///
    /// emulator.set_faults(Faults::none());
    /// assert!(check(&emulator, &credentials, emulator.mint(Mint::pass())?).await?.passed());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// The counters so far.
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::Credentials;
    /// # async fn check(emulator: &tower_aliyun_captcha::emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
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
    /// use tower_aliyun_captcha::emulator::Emulator;
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
