//! What a verification takes and gives: the validated param, the scene, the verdict and its
//! code, and the [`Verify`] trait that the client implements and the layer is generic over.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use crate::Error;

/// The longest `CaptchaVerifyParam` accepted, in bytes.
///
/// Real params are a few KiB at most (a V3 param is a few hundred bytes of base64; a V2 param a
/// JSON object with a device token). Anything longer is not from Alibaba's widget, and is
/// refused locally as [`VerifyCode::F003`] instead of being sent (and billed).
pub const MAX_PARAM_LEN: usize = 16 * 1024;

/// The longest scene id accepted, in bytes. Alibaba's are 8 characters.
pub const MAX_SCENE_ID_LEN: usize = 128;

/// A `CaptchaVerifyParam` as the front-end widget produced it: non-empty, at most
/// [`MAX_PARAM_LEN`] bytes, passed on unchanged.
///
/// Its `Debug` output shows only its length and first characters: the full param is a
/// single-use token and is never logged.
///
/// ```
/// use tower_aliyun_captcha::{CaptchaVerifyParam, VerifyCode};
///
/// let param = CaptchaVerifyParam::new("eyJjZXJ0aWZ5SWQiOiJhYmMifQ==")?;
/// assert_eq!(param.as_str(), "eyJjZXJ0aWZ5SWQiOiJhYmMifQ==");
///
/// let empty = CaptchaVerifyParam::new("").unwrap_err();
/// assert_eq!(empty.code(), VerifyCode::F002);
/// let long = CaptchaVerifyParam::new("x".repeat(20_000)).unwrap_err();
/// assert_eq!(long.code(), VerifyCode::F003);
/// # Ok::<_, tower_aliyun_captcha::verify::InvalidParam>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CaptchaVerifyParam(Arc<str>);

impl CaptchaVerifyParam {
    /// Checks and wraps a param.
    ///
    /// ```
    /// use tower_aliyun_captcha::CaptchaVerifyParam;
    ///
    /// let param = CaptchaVerifyParam::new(String::from("eyJ4IjoxfQ=="))?;
    /// assert_eq!(param.as_str(), "eyJ4IjoxfQ==");
    /// assert!(CaptchaVerifyParam::new("   ").is_err());
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidParam>(())
    /// ```
    pub fn new(param: impl Into<String>) -> Result<Self, InvalidParam> {
        Self::check(&param.into()).map(|p| Self(Arc::from(p)))
    }

    /// Checks a param given as bytes (a header or body field), which must be UTF-8.
    ///
    /// ```
    /// use tower_aliyun_captcha::CaptchaVerifyParam;
    /// use tower_aliyun_captcha::verify::InvalidParam;
    ///
    /// assert_eq!(
    ///     CaptchaVerifyParam::from_bytes(b"eyJ4IjoxfQ==")?.as_str(),
    ///     "eyJ4IjoxfQ=="
    /// );
    /// assert_eq!(
    ///     CaptchaVerifyParam::from_bytes(b"\xff\xfe").unwrap_err(),
    ///     InvalidParam::NotUtf8
    /// );
    /// # Ok::<_, InvalidParam>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidParam> {
        let text = std::str::from_utf8(bytes).map_err(|_| InvalidParam::NotUtf8)?;
        Self::check(text).map(|p| Self(Arc::from(p)))
    }

    /// A param that no widget made, for [`Client::check`](crate::Client::check): the service
    /// answers it with a verdict (a failing one) when everything else works.
    pub(crate) fn startup_check() -> Self {
        Self(Arc::from("tower-aliyun-captcha-startup-check"))
    }

    fn check(param: &str) -> Result<&str, InvalidParam> {
        if param.trim().is_empty() {
            Err(InvalidParam::Empty)
        } else if param.len() > MAX_PARAM_LEN {
            Err(InvalidParam::TooLong(param.len()))
        } else {
            Ok(param)
        }
    }

    /// The param, exactly as received.
    ///
    /// ```
    /// use tower_aliyun_captcha::CaptchaVerifyParam;
    ///
    /// // Nothing is trimmed or decoded: the service gets what the widget produced.
    /// let param: CaptchaVerifyParam = " a+b/c= ".parse()?;
    /// assert_eq!(param.as_str(), " a+b/c= ");
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidParam>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CaptchaVerifyParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: String = self.0.chars().take(6).collect();
        write!(f, "CaptchaVerifyParam({prefix}… {} bytes)", self.0.len())
    }
}

impl FromStr for CaptchaVerifyParam {
    type Err = InvalidParam;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Why a param was refused before any call to Alibaba.
///
/// ```
/// use tower_aliyun_captcha::CaptchaVerifyParam;
/// use tower_aliyun_captcha::verify::{InvalidParam, MAX_PARAM_LEN};
///
/// let refused = CaptchaVerifyParam::new("x".repeat(MAX_PARAM_LEN + 1)).unwrap_err();
/// assert_eq!(refused, InvalidParam::TooLong(MAX_PARAM_LEN + 1));
/// assert!(refused.to_string().contains("over the limit"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidParam {
    /// No param, or only white space.
    Empty,
    /// Longer than [`MAX_PARAM_LEN`]; holds the length.
    TooLong(usize),
    /// Not UTF-8 text.
    NotUtf8,
}

impl InvalidParam {
    /// The code Alibaba would have answered: F002 for an empty param, F003 otherwise.
    ///
    /// ```
    /// use tower_aliyun_captcha::VerifyCode;
    /// use tower_aliyun_captcha::verify::InvalidParam;
    ///
    /// assert_eq!(InvalidParam::Empty.code(), VerifyCode::F002);
    /// assert_eq!(InvalidParam::NotUtf8.code(), VerifyCode::F003);
    /// ```
    pub fn code(self) -> VerifyCode {
        match self {
            Self::Empty => VerifyCode::F002,
            Self::TooLong(_) | Self::NotUtf8 => VerifyCode::F003,
        }
    }
}

impl fmt::Display for InvalidParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the captcha param is missing or empty"),
            Self::TooLong(len) => write!(
                f,
                "the captcha param is {len} bytes, over the limit of {MAX_PARAM_LEN}"
            ),
            Self::NotUtf8 => f.write_str("the captcha param is not UTF-8 text"),
        }
    }
}

impl std::error::Error for InvalidParam {}

/// A captcha scene id (`SceneId`), as created in the Captcha 2.0 console.
///
/// ```
/// use tower_aliyun_captcha::SceneId;
///
/// let scene = SceneId::new("1ezx8pyn")?;
/// assert_eq!(scene.as_str(), "1ezx8pyn");
/// assert!(SceneId::new("").is_err());
/// assert!(SceneId::new("a\nb").is_err());
/// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SceneId(Arc<str>);

impl SceneId {
    /// Checks and wraps a scene id: 1 to [`MAX_SCENE_ID_LEN`] bytes, no control characters.
    ///
    /// ```
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::verify::MAX_SCENE_ID_LEN;
    ///
    /// assert!(SceneId::new("1ezx8pyn").is_ok());
    /// assert!(SceneId::new("s".repeat(MAX_SCENE_ID_LEN + 1)).is_err());
    /// ```
    pub fn new(scene: impl AsRef<str>) -> Result<Self, InvalidSceneId> {
        let scene = scene.as_ref();
        if scene.is_empty() || scene.len() > MAX_SCENE_ID_LEN || scene.chars().any(char::is_control)
        {
            return Err(InvalidSceneId);
        }
        Ok(Self(Arc::from(scene)))
    }

    /// The scene id.
    ///
    /// ```
    /// use tower_aliyun_captcha::SceneId;
    ///
    /// let scene: SceneId = "1ezx8pyn".parse()?;
    /// assert_eq!(scene.as_str(), "1ezx8pyn");
    /// assert_eq!(scene.to_string(), "1ezx8pyn");
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id, shared (for metric labels, without a copy).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl fmt::Display for SceneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SceneId {
    type Err = InvalidSceneId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A scene id that is empty, too long, or holds control characters.
///
/// ```
/// use tower_aliyun_captcha::SceneId;
/// use tower_aliyun_captcha::verify::InvalidSceneId;
///
/// assert_eq!(SceneId::new("tab\there"), Err(InvalidSceneId));
/// assert!(
///     InvalidSceneId
///         .to_string()
///         .contains("without control characters")
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSceneId;

impl fmt::Display for InvalidSceneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a scene id is 1 to {MAX_SCENE_ID_LEN} bytes without control characters"
        )
    }
}

impl std::error::Error for InvalidSceneId {}

macro_rules! verify_codes {
    ($($code:ident => $meaning:literal,)*) => {
        /// `Result.VerifyCode`: why a param passed (`T…`) or failed (`F…`).
        ///
        /// ```
        /// use tower_aliyun_captcha::VerifyCode;
        ///
        /// let code: VerifyCode = "F018".parse().unwrap();
        /// assert_eq!(code, VerifyCode::F018);
        /// assert!(!code.is_pass());
        /// assert_eq!(code.as_str(), "F018");
        /// assert_eq!(VerifyCode::from("X999"), VerifyCode::Unknown("X999".into()));
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum VerifyCode {
            $(#[doc = $meaning] $code,)*
            /// A code this version of the crate does not know.
            Unknown(String),
        }

        impl VerifyCode {
            /// Every code this version of the crate knows, in the API document's order.
            ///
            /// ```
            /// use tower_aliyun_captcha::VerifyCode;
            ///
            /// assert_eq!(VerifyCode::KNOWN.first(), Some(&VerifyCode::T001));
            /// assert!(VerifyCode::KNOWN.iter().all(|code| !code.meaning().is_empty()));
            /// ```
            pub const KNOWN: &'static [VerifyCode] = &[$(Self::$code,)*];

            /// The code as Alibaba writes it, e.g. `"T001"`.
            ///
            /// ```
            /// use tower_aliyun_captcha::VerifyCode;
            ///
            /// assert_eq!(VerifyCode::F015.as_str(), "F015");
            /// assert_eq!(VerifyCode::Unknown("F099".into()).as_str(), "F099");
            /// ```
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$code => stringify!($code),)*
                    Self::Unknown(code) => code,
                }
            }

            /// What the code means, for developers and logs.
            ///
            /// ```
            /// use tower_aliyun_captcha::VerifyCode;
            ///
            /// assert!(VerifyCode::F018.meaning().contains("already used"));
            /// ```
            pub fn meaning(&self) -> &'static str {
                match self {
                    $(Self::$code => $meaning,)*
                    Self::Unknown(_) => "A verification code not known to this crate.",
                }
            }
        }

        impl From<&str> for VerifyCode {
            fn from(code: &str) -> Self {
                match code {
                    $(stringify!($code) => Self::$code,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }
    };
}

verify_codes! {
    T001 => "Passed server-side verification.",
    T005 => "Passed: the scene is in test mode, which passes every param.",
    T006 => "Passed: a whitelist policy in the console let it through.",
    F001 => "Blocked by the risk policy as a likely attack.",
    F002 => "The param is empty.",
    F003 => "The param is not in a valid format.",
    F004 => "Failed: the scene is in test mode, which fails every param.",
    F005 => "The scene id inside the param is not valid.",
    F006 => "The scene id inside the param does not belong to this account.",
    F008 => "The param was already verified once; each param is single-use.",
    F009 => "A virtual machine, emulator or simulated browser was detected.",
    F010 => "Too many requests from this IP address.",
    F011 => "Too many requests from this device.",
    F012 => "The server's SceneId does not match the scene the front end used.",
    F013 => "The param lacks required fields.",
    F014 => "No initialization record: it expired after 20 minutes, or never existed.",
    F015 => "The person did not complete the challenge (e.g. the slider was misplaced).",
    F016 => "Failed the URL check of a custom policy.",
    F017 => "Abnormal protocol or parameters; likely an attack.",
    F018 => "The V3 param was already used.",
    F019 => "The V3 param is over 90 seconds old, or no challenge preceded it.",
    F020 => "The V3 param does not match the scene or the user.",
    F022 => "The V3 encryption-mode check failed: EncryptedSceneId is missing, not valid or expired.",
    F024 => "Automation simulating clicks or slides was detected.",
}

impl VerifyCode {
    /// Whether the code is a pass (`T…`).
    ///
    /// ```
    /// use tower_aliyun_captcha::VerifyCode;
    ///
    /// assert!(VerifyCode::T005.is_pass());
    /// assert!(!VerifyCode::F001.is_pass());
    /// assert!(!VerifyCode::from("X1").is_pass());
    /// ```
    pub fn is_pass(&self) -> bool {
        self.as_str().starts_with('T')
    }
}

impl FromStr for VerifyCode {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(s))
    }
}

impl fmt::Display for VerifyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One verification: the param and, recommended, the scene it must belong to.
///
/// ```
/// use tower_aliyun_captcha::{CaptchaVerifyParam, SceneId, VerifyRequest};
///
/// let request = VerifyRequest::new(CaptchaVerifyParam::new("eyJ4IjoxfQ==").unwrap())
///     .with_scene(SceneId::new("1ezx8pyn").unwrap());
/// assert_eq!(request.scene().unwrap().as_str(), "1ezx8pyn");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    param: CaptchaVerifyParam,
    scene: Option<SceneId>,
}

impl VerifyRequest {
    /// Verifies `param` without a scene check (Alibaba recommends giving one).
    ///
    /// ```
    /// use tower_aliyun_captcha::{CaptchaVerifyParam, VerifyRequest};
    ///
    /// let request = VerifyRequest::new(CaptchaVerifyParam::new("eyJ4IjoxfQ==").unwrap());
    /// assert!(request.scene().is_none());
    /// ```
    pub fn new(param: CaptchaVerifyParam) -> Self {
        Self { param, scene: None }
    }

    /// Adds the scene id the param must have been made for (sent as `SceneId`).
    ///
    /// ```
    /// use tower_aliyun_captcha::{CaptchaVerifyParam, SceneId, VerifyRequest};
    ///
    /// let param = CaptchaVerifyParam::new("eyJ4IjoxfQ==").unwrap();
    /// let request = VerifyRequest::new(param).with_scene(SceneId::new("signup01").unwrap());
    /// assert_eq!(request.scene().map(SceneId::as_str), Some("signup01"));
    /// ```
    pub fn with_scene(mut self, scene: SceneId) -> Self {
        self.scene = Some(scene);
        self
    }

    /// The param.
    ///
    /// ```
    /// use tower_aliyun_captcha::{CaptchaVerifyParam, VerifyRequest};
    ///
    /// let request = VerifyRequest::new(CaptchaVerifyParam::new("eyJ4IjoxfQ==").unwrap());
    /// assert_eq!(request.param().as_str(), "eyJ4IjoxfQ==");
    /// ```
    pub fn param(&self) -> &CaptchaVerifyParam {
        &self.param
    }

    /// The scene, if any.
    ///
    /// ```
    /// use tower_aliyun_captcha::{CaptchaVerifyParam, SceneId, VerifyRequest};
    ///
    /// let param = CaptchaVerifyParam::new("eyJ4IjoxfQ==").unwrap();
    /// let plain = VerifyRequest::new(param.clone());
    /// let scoped = VerifyRequest::new(param).with_scene(SceneId::new("login001").unwrap());
    /// assert_eq!(plain.scene(), None);
    /// assert_eq!(scoped.scene().unwrap().as_str(), "login001");
    /// ```
    pub fn scene(&self) -> Option<&SceneId> {
        self.scene.as_ref()
    }
}

/// The verdict of a verification that the service answered.
///
/// ```
/// use tower_aliyun_captcha::{Verification, VerifyCode};
///
/// let verdict = Verification::pass(VerifyCode::T001, "3F29-…");
/// assert!(verdict.passed());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    passed: bool,
    code: VerifyCode,
    request_id: String,
    certify_id: Option<String>,
}

impl Verification {
    /// A passing verdict (`Result.VerifyResult` true), with its code and the request id.
    ///
    /// ```
    /// use tower_aliyun_captcha::{Verification, VerifyCode};
    ///
    /// // What a stand-in verifier in a test would answer for a person who passed.
    /// let verdict = Verification::pass(VerifyCode::T001, "test-request");
    /// assert!(verdict.passed());
    /// ```
    pub fn pass(code: VerifyCode, request_id: impl Into<String>) -> Self {
        Self::from_result(true, code, request_id)
    }

    /// A failing verdict (`Result.VerifyResult` false), with its code and the request id.
    ///
    /// ```
    /// use tower_aliyun_captcha::{Verification, VerifyCode};
    ///
    /// // What a stand-in verifier in a test would answer for a failed slider.
    /// let verdict = Verification::fail(VerifyCode::F015, "test-request");
    /// assert!(!verdict.passed());
    /// ```
    pub fn fail(code: VerifyCode, request_id: impl Into<String>) -> Self {
        Self::from_result(false, code, request_id)
    }

    /// A verdict as the service's `Result` carries it.
    pub(crate) fn from_result(
        verify_result: bool,
        code: VerifyCode,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            passed: verify_result,
            code,
            request_id: request_id.into(),
            certify_id: None,
        }
    }

    /// The same verdict, with the `Result.CertifyId` the service answered.
    ///
    /// ```
    /// use tower_aliyun_captcha::{Verification, VerifyCode};
    ///
    /// let verdict = Verification::pass(VerifyCode::T001, "R").with_certify_id("c-1");
    /// assert_eq!(verdict.certify_id(), Some("c-1"));
    /// ```
    pub fn with_certify_id(mut self, certify_id: impl Into<String>) -> Self {
        self.certify_id = Some(certify_id.into());
        self
    }

    /// `Result.CertifyId`: the id of the verification the param came from, when the service
    /// answered one (it does since late 2025). Useful to match a verdict with the widget's
    /// logs.
    ///
    /// ```
    /// use tower_aliyun_captcha::{Verification, VerifyCode};
    ///
    /// assert_eq!(Verification::fail(VerifyCode::F015, "R").certify_id(), None);
    /// ```
    pub fn certify_id(&self) -> Option<&str> {
        self.certify_id.as_deref()
    }

    /// The code, request id and certify id, by value.
    pub(crate) fn into_parts(self) -> (VerifyCode, String, Option<String>) {
        (self.code, self.request_id, self.certify_id)
    }

    /// `Result.VerifyResult`: whether the person passed.
    ///
    /// ```
    /// use tower_aliyun_captcha::{Verification, VerifyCode};
    ///
    /// assert!(Verification::pass(VerifyCode::T005, "id").passed());
    /// assert!(!Verification::fail(VerifyCode::F004, "id").passed());
    /// ```
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// `Result.VerifyCode`.
    ///
    /// ```
    /// use tower_aliyun_captcha::{Verification, VerifyCode};
    ///
    /// let verdict = Verification::fail(VerifyCode::F018, "id");
    /// assert_eq!(verdict.code(), &VerifyCode::F018);
    /// ```
    pub fn code(&self) -> &VerifyCode {
        &self.code
    }

    /// The service's `RequestId`, for support tickets.
    ///
    /// ```
    /// use tower_aliyun_captcha::{Verification, VerifyCode};
    ///
    /// let verdict = Verification::pass(VerifyCode::T001, "C9D1E5A2-0000-4000-8000-000000000001");
    /// assert_eq!(verdict.request_id(), "C9D1E5A2-0000-4000-8000-000000000001");
    /// ```
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

/// Something that can verify a param: the [`Client`](crate::Client), or a stand-in in tests.
///
/// The future is `'static` and `Send` so that the layer can hold it without boxing it and run
/// it on any executor. Any `Fn(VerifyRequest) -> impl Future<…>` closure is a verifier:
///
/// ```
/// use tower_aliyun_captcha::{
///     CaptchaVerifyParam, Verification, Verify, VerifyCode, VerifyRequest,
/// };
///
/// let always_pass = |_request: VerifyRequest| async {
///     Ok::<_, tower_aliyun_captcha::Error>(Verification::pass(VerifyCode::T001, "local"))
/// };
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let param = CaptchaVerifyParam::new("anything").unwrap();
/// let verdict = always_pass.verify(VerifyRequest::new(param)).await.unwrap();
/// assert!(verdict.passed());
/// # });
/// ```
pub trait Verify: Send + Sync + 'static {
    /// The future that yields the verdict.
    type Future: Future<Output = Result<Verification, Error>> + Send + 'static;

    /// Verifies one param. The param is single-use: an implementation must not send it twice.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_aliyun_captcha::{
    ///     CaptchaVerifyParam, Verification, Verify, VerifyCode, VerifyRequest,
    /// };
    ///
    /// // A verifier shared behind an `Arc` is a verifier too.
    /// let verifier = Arc::new(|request: VerifyRequest| async move {
    ///     Ok::<_, tower_aliyun_captcha::Error>(if request.param().as_str() == "good" {
    ///         Verification::pass(VerifyCode::T001, "local")
    ///     } else {
    ///         Verification::fail(VerifyCode::F015, "local")
    ///     })
    /// });
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let bad = VerifyRequest::new(CaptchaVerifyParam::new("bad").unwrap());
    /// assert_eq!(
    ///     verifier.verify(bad).await.unwrap().code(),
    ///     &VerifyCode::F015
    /// );
    /// # });
    /// ```
    fn verify(&self, request: VerifyRequest) -> Self::Future;
}

impl<F, Fut> Verify for F
where
    F: Fn(VerifyRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Verification, Error>> + Send + 'static,
{
    type Future = Fut;

    fn verify(&self, request: VerifyRequest) -> Self::Future {
        self(request)
    }
}

impl<V: Verify + ?Sized> Verify for Arc<V> {
    type Future = V::Future;

    fn verify(&self, request: VerifyRequest) -> Self::Future {
        (**self).verify(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in [
            "T001", "T005", "T006", "F001", "F002", "F003", "F004", "F005", "F006", "F008", "F009",
            "F010", "F011", "F012", "F013", "F014", "F015", "F016", "F017", "F018", "F019", "F020",
            "F022", "F024",
        ] {
            let parsed = VerifyCode::from(code);
            assert!(
                !matches!(parsed, VerifyCode::Unknown(_)),
                "{code} is unknown"
            );
            assert_eq!(parsed.as_str(), code);
            assert_eq!(parsed.is_pass(), code.starts_with('T'));
            assert!(!parsed.meaning().is_empty());
        }
        assert_eq!(VerifyCode::from("F007"), VerifyCode::Unknown("F007".into()));
    }

    #[test]
    fn param_debug_hides_the_token() {
        let param = CaptchaVerifyParam::new("abcdefghijklmnopqrstuvwxyz").unwrap();
        let printed = format!("{param:?}");
        assert!(!printed.contains("ghij"), "{printed}");
        assert!(printed.contains("26 bytes"));
    }

    #[test]
    fn whitespace_only_param_is_empty() {
        assert_eq!(
            CaptchaVerifyParam::new("  ").unwrap_err(),
            InvalidParam::Empty
        );
        assert_eq!(
            CaptchaVerifyParam::from_bytes(&[0xff]).unwrap_err(),
            InvalidParam::NotUtf8
        );
    }
}
