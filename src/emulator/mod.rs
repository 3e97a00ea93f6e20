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

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, ToSocketAddrs};

pub use faults::{FaultMode, Faults};
pub use params::ParamFormat;
pub use stats::Stats;

use crate::{Credentials, VerifyCode};
use auth::{KnownKey, NonceWindow};
use params::ParamStore;
use stats::Counters;

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
        },
    )]);
    let mut nonces = NonceWindow::default();
    let _ = auth::authenticate(&parts, body, &keys, SystemTime::now(), &mut nonces);
    let _ = params::decode(&String::from_utf8_lossy(body));
}

/// How a scene in test mode answers every param.
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
#[derive(Clone, Default)]
pub struct EmulatorBuilder {
    keys: HashMap<String, KnownKey>,
    scenes: Vec<(String, Option<TestMode>)>,
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
    pub fn access_key(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.keys.insert(
            id.into(),
            KnownKey {
                secret: secret.into(),
                security_token: None,
            },
        );
        self
    }

    /// Accepts requests signed with this temporary (STS) AccessKey, which must come with
    /// `security_token`.
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
            },
        );
        self
    }

    /// Accepts requests signed with `credentials` (an STS key when they hold a token).
    pub fn credentials(self, credentials: &Credentials) -> Self {
        let id = credentials.access_key_id();
        let secret = credentials.access_key_secret().expose();
        match credentials.security_token() {
            Some(token) => self.sts_key(id, secret, token.expose()),
            None => self.access_key(id, secret),
        }
    }

    /// Adds a scene. The first scene added is the default for minting.
    pub fn scene(mut self, id: impl Into<String>) -> Self {
        self.scenes.push((id.into(), None));
        self
    }

    /// Adds a scene in test mode, which answers every param the same way.
    pub fn test_mode_scene(mut self, id: impl Into<String>, mode: TestMode) -> Self {
        self.scenes.push((id.into(), Some(mode)));
        self
    }

    /// Reads time from `clock` instead of the system clock (for tests of expiry and skew).
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Binds `addr` (use port 0 for any free port) and starts serving.
    pub async fn start(self, addr: impl ToSocketAddrs) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener)
    }

    /// Starts serving on a listener that is already bound.
    pub fn serve(self, listener: TcpListener) -> std::io::Result<Emulator> {
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            keys: self.keys,
            scenes: self.scenes,
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
        let verdict = VerifyCode::from(mint.verdict.as_deref().unwrap_or("T001"));
        if let VerifyCode::Unknown(code) = verdict {
            return Err(MintError::UnknownVerdict(code));
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
/// let failing_v2 = Mint::verdict("F015").in_scene("signup").format(ParamFormat::V2);
/// let from_json: Mint =
///     serde_json::from_str(r#"{"scene": "signup", "verdict": "F015", "format": "v2"}"#).unwrap();
/// assert_eq!(failing_v2, from_json);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
}

impl Mint {
    /// A V3 param that passes (`T001`) in the default scene.
    pub fn pass() -> Self {
        Self::default()
    }

    /// A V3 param that gets `code` in the default scene.
    pub fn verdict(code: impl Into<String>) -> Self {
        Self {
            verdict: Some(code.into()),
            ..Self::default()
        }
    }

    /// For `scene` instead of the default one.
    pub fn in_scene(mut self, scene: impl Into<String>) -> Self {
        self.scene = Some(scene.into());
        self
    }

    /// In `format`.
    pub fn format(mut self, format: ParamFormat) -> Self {
        self.format = Some(format);
        self
    }
}

/// A param could not be minted.
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
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://HOST:PORT`, to use as the client's endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Mints a param, as the front-end widget would after a challenge.
    pub fn mint(&self, mint: Mint) -> Result<String, MintError> {
        self.state.mint(mint)
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// Switches faults on (or off, with [`Faults::none`]).
    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.state.counters.snapshot()
    }

    /// Stops accepting, closes every connection, and waits until the server has stopped.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
