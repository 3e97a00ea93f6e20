//! One verification asked ([`VerifyRequest`]) and answered ([`Verification`]).

use super::{CaptchaVerifyParam, SceneId, VerifyCode};

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
#[must_use]
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
