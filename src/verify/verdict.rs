//! One verification asked ([`VerifyRequest`]) and answered ([`Verification`]).

use super::{CaptchaVerifyParam, SceneId, VerifyCode};

/// One verification: the param and, recommended, the scene it must belong to:
/// `VerifyRequest::new(param).with_scene(scene)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct VerifyRequest {
    param: CaptchaVerifyParam,
    scene: Option<SceneId>,
}

impl VerifyRequest {
    /// Verifies `param` without a scene check (Alibaba recommends giving one).
    pub fn new(param: CaptchaVerifyParam) -> Self {
        Self { param, scene: None }
    }

    /// Adds the scene id the param must have been made for (sent as `SceneId`).
    pub fn with_scene(mut self, scene: SceneId) -> Self {
        self.scene = Some(scene);
        self
    }

    /// The param.
    pub fn param(&self) -> &CaptchaVerifyParam {
        &self.param
    }

    /// The scene, if any.
    pub fn scene(&self) -> Option<&SceneId> {
        self.scene.as_ref()
    }
}

/// The verdict of a verification that the service answered.
///
/// ```
/// use tower_aliyun_captcha::{Verification, VerifyCode};
///
/// // What a stand-in verifier answers for a misplaced slider; the client parses the service's.
/// let verdict = Verification::fail(VerifyCode::F015, "3F29-…");
/// if !verdict.passed() {
///     // Log the code and the request id (for support); tell the person only that it failed.
///     let (code, request) = (verdict.code(), verdict.request_id());
///     eprintln!("captcha failed: {code} ({}), request {request}", code.meaning());
/// }
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
    pub fn pass(code: VerifyCode, request_id: impl Into<String>) -> Self {
        Self::from_result(true, code, request_id)
    }

    /// A failing verdict (`Result.VerifyResult` false), with its code and the request id.
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
    pub fn with_certify_id(mut self, certify_id: impl Into<String>) -> Self {
        self.certify_id = Some(certify_id.into());
        self
    }

    /// `Result.CertifyId`: the id of the verification the param came from, when the service
    /// answered one (it does since late 2025). Useful to match a verdict with the widget's
    /// logs.
    pub fn certify_id(&self) -> Option<&str> {
        self.certify_id.as_deref()
    }

    /// `Result.VerifyResult`: whether the person passed.
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// `Result.VerifyCode`.
    pub fn code(&self) -> &VerifyCode {
        &self.code
    }

    /// The service's `RequestId`, for support tickets.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}
