//! [`EmulatorBuilder`]: keys, scenes and credential services, then a running [`Emulator`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::{TcpListener, ToSocketAddrs};

use super::access::{AllowedHost, Origin};
use super::auth::{KnownKey, MAX_NONCES};
use super::server;
use super::state::StsConfig;
use super::state::{Config, SceneKind, State};
use super::{Clock, Emulator, TestMode};
use tower_aliyun_captcha::encryption::SceneKey;
use tower_aliyun_captcha::{Credentials, SceneId};

/// Configures and starts an [`Emulator`].
///
/// ```
/// use aliyun_captcha_emulator::{Emulator, TestMode};
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
    scenes: Vec<(String, SceneKind)>,
    scene_keys: HashMap<String, SceneKey>,
    sts: StsConfig,
    clock: Option<Clock>,
    origins: Vec<String>,
    hosts: Vec<String>,
    /// In tests, a smaller nonce store than `MAX_NONCES`, to reach its cap.
    nonce_capacity: Option<usize>,
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("access_key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("scenes", &self.scenes)
            .field("allowed_origins", &self.origins)
            .field("allowed_hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl EmulatorBuilder {
    /// Accepts requests signed with this AccessKey pair.
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
    /// use aliyun_captcha_emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::Credentials;
    /// # async fn check(emulator: &aliyun_captcha_emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
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
    /// use aliyun_captcha_emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::Credentials;
    /// # async fn check(emulator: &aliyun_captcha_emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
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
    /// use aliyun_captcha_emulator::{Emulator, Mint};
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
        self.scenes.push((id.into(), SceneKind::Live));
        self
    }

    /// Adds a scene in test mode, which answers every param the same way.
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
    ///     .test_mode_scene("staging", TestMode::Pass)
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// let param = emulator.mint(Mint::verdict(VerifyCode::F015))?;
    /// assert_eq!(check(&emulator, &credentials, param).await?.code(), &VerifyCode::T005);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn test_mode_scene(mut self, id: impl Into<String>, mode: TestMode) -> Self {
        self.scenes.push((id.into(), SceneKind::Test(mode)));
        self
    }

    /// Adds a scene in V3 encryption mode: a V3 param is minted for it only with a valid,
    /// unexpired `EncryptedSceneId` made with `key`, and fails with F022 otherwise. Encryption
    /// mode is the V3 architecture's: V2 params need no `EncryptedSceneId`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_captcha_emulator::{Emulator, Mint, ParamFormat};
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
    /// let v2 = emulator.mint(Mint::pass().format(ParamFormat::V2))?; // a V2 page needs none
    /// assert_eq!(verify(v2).await?.code(), &VerifyCode::T001);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn encrypted_scene(mut self, id: impl Into<String>, key: SceneKey) -> Self {
        let id = id.into();
        self.scenes.push((id.clone(), SceneKind::Live));
        self.scene_keys.insert(id, key);
        self
    }

    /// Emulates STS too: `AssumeRole` (signed with a key the emulator knows) and
    /// `AssumeRoleWithOIDC` may assume `role_arn`, on the emulator's URL (point an STS
    /// endpoint at it), and a credentials URI answers at `/emulator/credentials`. The
    /// credentials issued are accepted for verifications until they expire.
    ///
    /// ```
    /// use aliyun_captcha_emulator::{Emulator, Mint};
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
    /// use aliyun_captcha_emulator::Emulator;
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
    /// use aliyun_captcha_emulator::Emulator;
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
    /// use aliyun_captcha_emulator::Emulator;
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
    /// use aliyun_captcha_emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::{Credentials, VerifyCode};
    /// # async fn check(emulator: &aliyun_captcha_emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
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

    /// Lets pages from `origin` (`http://HOST[:PORT]` or `https://…`, as the address bar shows
    /// it) call the emulator's own API (`/emulator/params`, `/emulator/faults`,
    /// `/emulator/stats`, `/emulator/credentials`) from the browser, as the stand-in widget
    /// does to mint params; repeatable. Requests from any other page are refused (403), so
    /// that a page the developer happens to visit cannot mint passing params or switch faults
    /// on. Requests without an `Origin` (curl, tests, back ends) need only be addressed to the
    /// emulator itself (its address, or `localhost`, in `Host`). The widget script
    /// (`/emulator/captcha.js`) is served to every page. An origin that is not one fails
    /// [`start`](Self::start).
    ///
    /// ```
    /// use aliyun_captcha_emulator::Emulator;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let emulator = Emulator::builder()
    ///     .access_key("id", "secret")
    ///     .scene("s")
    ///     .allow_origin("http://localhost:3000") // the app whose page shows the widget
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// # drop(emulator);
    /// let refused = Emulator::builder().allow_origin("localhost:3000").start("127.0.0.1:0").await;
    /// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Answers its own API for requests addressed to `host` too (`HOST` on any port, or
    /// `HOST:PORT`): the name another container or a proxy reaches it by. By default only its
    /// own address and `localhost` on its port are, so that a hostile name resolved to it (DNS
    /// rebinding) cannot reach the API. A host that is not one fails [`start`](Self::start).
    ///
    /// ```
    /// use aliyun_captcha_emulator::Emulator;
    ///
    /// let builder = Emulator::builder().allow_host("captcha-emulator"); // a compose service
    /// # let _ = builder;
    /// ```
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.hosts.push(host.into());
        self
    }

    /// Remembers at most `capacity` nonces instead of `MAX_NONCES`, to reach the cap in tests.
    #[cfg(test)]
    pub(crate) fn nonce_capacity(mut self, capacity: usize) -> Self {
        self.nonce_capacity = Some(capacity);
        self
    }

    /// Binds `addr` (use port 0 for any free port) and starts serving.
    ///
    /// ```
    /// use aliyun_captcha_emulator::Emulator;
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
    /// use aliyun_captcha_emulator::Emulator;
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
        let scene_id = |id: String| {
            SceneId::new(&id).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("scene {id:?}: {e}"),
                )
            })
        };
        let scenes = self
            .scenes
            .into_iter()
            .map(|(id, kind)| Ok((scene_id(id)?, kind)))
            .collect::<std::io::Result<_>>()?;
        let scene_keys = self
            .scene_keys
            .into_iter()
            .map(|(id, key)| Ok((scene_id(id)?, key)))
            .collect::<std::io::Result<_>>()?;
        let invalid =
            |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
        let origins = self
            .origins
            .iter()
            .map(|origin| Origin::parse(origin).map_err(|e| invalid(format!("allow_origin: {e}"))))
            .collect::<std::io::Result<_>>()?;
        let hosts = self
            .hosts
            .iter()
            .map(|host| AllowedHost::parse(host).map_err(|e| invalid(format!("allow_host: {e}"))))
            .collect::<std::io::Result<_>>()?;
        let state = Arc::new(State::new(Config {
            keys: self.keys,
            scenes,
            scene_keys,
            sts: self.sts,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemTime::now)),
            listen: addr,
            hosts,
            origins,
            nonce_capacity: self.nonce_capacity.unwrap_or(MAX_NONCES),
        }));
        let server = server::spawn(listener, Arc::clone(&state));
        Ok(Emulator {
            state,
            addr,
            server,
        })
    }
}
