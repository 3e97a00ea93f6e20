//! The verdict the layer puts in a request's extensions, and the ways handlers demand it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::ErrorClass;
use crate::{CaptchaVerifyParam, SceneId, Verification, VerifyCode};

/// The verdict, in the extensions of every request the layer lets through.
///
/// Only the layer makes one: a value already in a request's extensions when it reaches the
/// layer is not trusted (unless an outer layer of this crate made it for this very request and
/// scene, see [`CaptchaLayer`](super::CaptchaLayer)), so nothing a client sends can mark a
/// request as verified.
///
/// **Handlers demand the verdict**: a handler behind the layer takes `CaptchaVerified` (or
/// [`CaptchaPassed`], which also refuses degraded verdicts) as an argument, so that a routing
/// mistake that skips the layer fails closed instead of running the handler unprotected.
/// With the `axum` feature both are extractors, and so is `Option<CaptchaVerified>`; with the
/// `tonic` feature, [`require_verified`](super::require_verified) does the same for a tonic
/// request.
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified, SceneId, Verification, VerifyCode, VerifyRequest};
/// use tower_aliyun_captcha::extract::CaptchaBody;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let pass = |_r: VerifyRequest| async { Ok(Verification::pass(VerifyCode::T001, "req-1")) };
/// let layer = CaptchaLayer::new(pass, SceneId::new("login01").unwrap());
/// let service = ServiceBuilder::new().layer(layer).service_fn(
///     |request: http::Request<CaptchaBody<String>>| async move {
///         let verified = request.extensions().get::<CaptchaVerified>().cloned().unwrap();
///         let text = format!(
///             "{} {} {:?} {}",
///             verified.code().unwrap(),
///             verified.scene(),
///             verified.request_id(),
///             verified.is_degraded()
///         );
///         Ok::<_, std::convert::Infallible>(http::Response::new(text))
///     },
/// );
/// let request = http::Request::post("/login")
///     .header("x-captcha-verify-param", "eyJ4IjoxfQ==")
///     .body(String::new())
///     .unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct CaptchaVerified {
    code: Option<VerifyCode>,
    request_id: Option<String>,
    certify_id: Option<String>,
    scene: SceneId,
    degraded: Option<ErrorClass>,
    /// The param this verdict is for: an inner layer that finds the same param under the same
    /// scene trusts the verdict instead of spending the param a second time.
    param: CaptchaVerifyParam,
    /// Set by the first inner layer that trusts this verdict, and by the layer that gave it
    /// once its request is answered. Copies share it, so a verdict copied onto another request
    /// (even with the same param) is not trusted.
    spent: Arc<AtomicBool>,
}

impl PartialEq for CaptchaVerified {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.request_id == other.request_id
            && self.certify_id == other.certify_id
            && self.scene == other.scene
            && self.degraded == other.degraded
            && self.param == other.param
    }
}

impl Eq for CaptchaVerified {}

impl CaptchaVerified {
    pub(crate) fn passed(verdict: Verification, scene: SceneId, param: CaptchaVerifyParam) -> Self {
        let (code, request_id, certify_id) = verdict.into_parts();
        Self {
            code: Some(code),
            request_id: Some(request_id),
            certify_id,
            scene,
            degraded: None,
            param,
            spent: Arc::default(),
        }
    }

    pub(crate) fn degraded(
        class: ErrorClass,
        request_id: Option<String>,
        scene: SceneId,
        param: CaptchaVerifyParam,
    ) -> Self {
        Self {
            code: None,
            request_id,
            certify_id: None,
            scene,
            degraded: Some(class),
            param,
            spent: Arc::default(),
        }
    }

    /// Whether an inner layer may trust this verdict for `param` under `scene`: it was given
    /// for them, its request is still being answered, and no other layer trusted it (or a copy
    /// of it) before.
    pub(crate) fn claim(&self, param: &CaptchaVerifyParam, scene: &SceneId) -> bool {
        self.scene == *scene && self.param == *param && !self.spent.swap(true, Ordering::AcqRel)
    }

    /// What spends the verdict when the request it was given to is answered.
    pub(crate) fn issued(&self) -> Issued {
        Issued(Arc::clone(&self.spent))
    }

    /// The passing code (`T001`, `T006`, or `T005` where test mode is allowed); `None` when
    /// degraded.
    ///
    /// ```
    /// # fn check(verified: tower_aliyun_captcha::layer::CaptchaVerified) {
    /// if let Some(code) = verified.code() {
    ///     println!("passed with {code}: {}", code.meaning());
    /// }
    /// # }
    /// ```
    pub fn code(&self) -> Option<&VerifyCode> {
        self.code.as_ref()
    }

    /// The service's request id, when it answered: quote it in a support ticket.
    ///
    /// ```
    /// # fn check(verified: tower_aliyun_captcha::layer::CaptchaVerified) {
    /// tracing::info!(captcha.request_id = verified.request_id(), "signed in");
    /// # }
    /// ```
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The service's `CertifyId` for the verification, when it answered one.
    ///
    /// ```
    /// # fn check(verified: tower_aliyun_captcha::layer::CaptchaVerified) {
    /// tracing::info!(captcha.certify_id = verified.certify_id(), "signed in");
    /// # }
    /// ```
    pub fn certify_id(&self) -> Option<&str> {
        self.certify_id.as_deref()
    }

    /// The scene the param was verified against.
    ///
    /// ```
    /// # fn check(verified: tower_aliyun_captcha::layer::CaptchaVerified) {
    /// assert!(!verified.scene().as_str().is_empty());
    /// # }
    /// ```
    pub fn scene(&self) -> &SceneId {
        &self.scene
    }

    /// True when the request was let through without a verdict: the service had an outage,
    /// the policy is [`FailurePolicy::Open`](super::FailurePolicy::Open), and the degraded
    /// budget allowed it. Handlers that guard something valuable can ask for a second factor
    /// instead, or take [`CaptchaPassed`].
    ///
    /// ```
    /// # fn check(verified: tower_aliyun_captcha::layer::CaptchaVerified) {
    /// if verified.is_degraded() {
    ///     // e.g. send a one-time code by email before going on
    /// }
    /// # }
    /// ```
    pub fn is_degraded(&self) -> bool {
        self.degraded.is_some()
    }

    /// Why the request was let through without a verdict: the class of the failure
    /// ([`Outage`](ErrorClass::Outage), or
    /// [`Configuration`](ErrorClass::Configuration) where the layer was told to fail open on
    /// those too). `None` for a real pass.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::ErrorClass;
    /// # fn check(verified: tower_aliyun_captcha::layer::CaptchaVerified) {
    /// match verified.degraded_by() {
    ///     None => {}                       // a person passed
    ///     Some(ErrorClass::Outage) => {}   // Alibaba's service was down
    ///     Some(_) => {}                    // the account or its keys need attention
    /// }
    /// # }
    /// ```
    pub fn degraded_by(&self) -> Option<ErrorClass> {
        self.degraded
    }
}

/// Held by the layer while the request it gave a verdict to is answered; spends the verdict
/// when dropped.
#[derive(Debug)]
pub(crate) struct Issued(Arc<AtomicBool>);

impl Drop for Issued {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A verdict that is a real pass, never a degraded one: for handlers that guard something
/// valuable and would rather refuse (503) than let anyone in unverified during an outage.
/// With the `axum` feature it is an extractor.
///
/// ```
/// use tower_aliyun_captcha::CaptchaVerified;
/// use tower_aliyun_captcha::layer::CaptchaPassed;
///
/// fn strict(verified: &CaptchaVerified) -> Option<CaptchaPassed> {
///     CaptchaPassed::try_from(verified.clone()).ok()
/// }
/// # let _ = strict;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptchaPassed(CaptchaVerified);

impl CaptchaPassed {
    /// The verdict.
    ///
    /// ```
    /// # fn check(passed: tower_aliyun_captcha::layer::CaptchaPassed) {
    /// let code = passed.verdict().code().expect("a real pass has its code");
    /// # let _ = code;
    /// # }
    /// ```
    pub fn verdict(&self) -> &CaptchaVerified {
        &self.0
    }
}

impl TryFrom<CaptchaVerified> for CaptchaPassed {
    type Error = CaptchaVerified;

    /// Fails, giving the verdict back, when it is degraded.
    fn try_from(verified: CaptchaVerified) -> Result<Self, CaptchaVerified> {
        if verified.is_degraded() {
            Err(verified)
        } else {
            Ok(Self(verified))
        }
    }
}

#[cfg(feature = "axum")]
mod axum_extractors {
    use axum::extract::{FromRequestParts, OptionalFromRequestParts};
    use http::StatusCode;
    use http::request::Parts;

    use super::{CaptchaPassed, CaptchaVerified};

    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    /// Refuses with 500 when no layer verified the request: the handler is not behind a
    /// `CaptchaLayer`, which is a bug to fix, never a reason to run it.
    impl<S: Send + Sync> FromRequestParts<S> for CaptchaVerified {
        type Rejection = (StatusCode, &'static str);

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            parts.extensions.get::<Self>().cloned().ok_or((
                StatusCode::INTERNAL_SERVER_ERROR,
                "CaptchaVerified is only available behind a CaptchaLayer",
            ))
        }
    }

    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    /// `None` when no layer verified the request (a route the layer exempts).
    impl<S: Send + Sync> OptionalFromRequestParts<S> for CaptchaVerified {
        type Rejection = std::convert::Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts.extensions.get::<Self>().cloned())
        }
    }

    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    /// Refuses a degraded verdict with 503, and a missing one with 500.
    impl<S: Send + Sync> FromRequestParts<S> for CaptchaPassed {
        type Rejection = (StatusCode, &'static str);

        async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
            let verified =
                <CaptchaVerified as FromRequestParts<S>>::from_request_parts(parts, state).await?;
            Self::try_from(verified).map_err(|_| {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "captcha verification is unavailable, try again later",
                )
            })
        }
    }
}

/// The verdict of a tonic request, or `PERMISSION_DENIED` when it has none: for a gRPC method
/// that must never run unverified, whatever the routing.
///
/// ```
/// use tower_aliyun_captcha::layer::require_verified;
///
/// fn signup(request: &tonic::Request<()>) -> Result<(), tonic::Status> {
///     let verified = require_verified(request)?;
///     let _ = verified.scene();
///     Ok(())
/// }
/// let unprotected = tonic::Request::new(());
/// assert_eq!(signup(&unprotected).unwrap_err().code(), tonic::Code::PermissionDenied);
/// ```
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub fn require_verified<T>(request: &tonic::Request<T>) -> Result<&CaptchaVerified, tonic::Status> {
    request
        .extensions()
        .get::<CaptchaVerified>()
        .ok_or_else(|| tonic::Status::permission_denied("captcha required"))
}
