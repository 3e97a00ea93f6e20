//! The verdict the layer puts in a request's extensions, and the ways handlers demand it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Reason;
use super::budget::Budget;
use crate::error::ErrorClass;
use crate::{CaptchaVerifyParam, SceneId, Verification, VerifyCode};

/// The verdict, in the extensions of every request the layer lets through: a person passed
/// the captcha, or the service could not be asked and the failure policy let the request in.
///
/// Only the layer makes one: a value already in a request's extensions when it reaches the
/// layer is not trusted (unless an outer layer of this crate made it for this very request and
/// scene, see [`CaptchaLayer`](super::CaptchaLayer)), so nothing a client sends can mark a
/// request as verified.
///
/// **Handlers demand the verdict**: a handler behind the layer takes `CaptchaVerified` (or
/// [`CaptchaPassed`], which refuses degraded verdicts) as an argument, so that a routing
/// mistake that skips the layer fails closed instead of running the handler unprotected.
/// With the `axum` feature both are extractors, and so is `Option<CaptchaVerified>`; with the
/// `tonic` feature, [`require_verified`](super::require_verified) does the same for a tonic
/// request.
///
/// ```
/// use tower_aliyun_captcha::CaptchaVerified;
///
/// fn greeting(verified: &CaptchaVerified) -> String {
///     match verified {
///         CaptchaVerified::Passed(passed) => format!("welcome ({})", passed.code()),
///         CaptchaVerified::Degraded(degraded) => {
///             format!("welcome (the captcha service was {})", degraded.class())
///         }
///         _ => "welcome".to_owned(),
///     }
/// }
/// # let _ = greeting;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptchaVerified {
    /// Alibaba's verdict: `VerifyResult` true with a pass code.
    Passed(CaptchaPassed),
    /// No verdict could be had (an outage), and the
    /// [`FailurePolicy`](super::FailurePolicy) let the request in within its budget.
    Degraded(Degraded),
    /// No captcha was asked for: the route's [`Requirement`](super::Requirement) is
    /// `WhenRisky`, and the risk was low.
    NotRequired(NotRequired),
    /// The route is in [`Requirement::Monitor`](super::Requirement::Monitor), and the layer
    /// would have refused the request.
    Monitored(Monitored),
}

/// A person passed the captcha: the verdict of Alibaba's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptchaPassed {
    verdict: Verification,
    scene: SceneId,
    binding: Binding,
    counted: CountedIn,
}

/// Let in without a verdict: the service could not be asked, and the failure policy let the
/// request through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded {
    class: ErrorClass,
    request_id: Option<String>,
    scene: SceneId,
    binding: Binding,
    counted: CountedIn,
}

/// The degraded budgets that counted a verdict: learned from its pass, or let it in degraded.
/// An inner layer with another budget counts it in its own when it takes the verdict, and
/// adds it here as it hands the verdict on.
/// (The first apart, so that a verdict of one layer allocates nothing for it.)
#[derive(Clone)]
struct CountedIn {
    first: Arc<Budget>,
    more: Vec<Arc<Budget>>,
}

impl CountedIn {
    fn new(budget: &Arc<Budget>) -> Self {
        Self {
            first: Arc::clone(budget),
            more: Vec::new(),
        }
    }

    fn contains(&self, budget: &Arc<Budget>) -> bool {
        std::iter::once(&self.first)
            .chain(&self.more)
            .any(|counted| Arc::ptr_eq(counted, budget))
    }
}

/// Which budget counted a verdict is not part of what the verdict is.
impl PartialEq for CountedIn {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for CountedIn {}

impl std::fmt::Debug for CountedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CountedIn(..)")
    }
}

/// Let in without a captcha: the route asks for one only when the request looks risky, and
/// this one did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRequired {
    scene: SceneId,
}

impl NotRequired {
    /// The scene of the route.
    pub fn scene(&self) -> &SceneId {
        &self.scene
    }
}

/// Let in by a route in monitor mode, which the layer would otherwise have refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitored {
    scene: SceneId,
    would_refuse: Reason,
    code: String,
}

impl Monitored {
    /// The scene of the route.
    pub fn scene(&self) -> &SceneId {
        &self.scene
    }

    /// Why the layer would have refused the request.
    pub fn would_refuse(&self) -> Reason {
        self.would_refuse
    }

    /// The verification code, or the error's label, behind it (`F015`, `F002`, `timeout`, …).
    pub fn code(&self) -> &str {
        &self.code
    }
}

/// What ties a verdict to the request it was given for.
#[derive(Debug, Clone)]
struct Binding {
    /// The param this verdict is for: an inner layer that finds the same param under the same
    /// scene trusts the verdict instead of spending the param a second time.
    param: CaptchaVerifyParam,
    /// Set by the first inner layer that trusts this verdict (which hands on a copy with a
    /// hold of its own), and by the layer that gave it once its request is answered. Copies
    /// share it, so a verdict copied onto another request (even with the same param) is not
    /// trusted.
    spent: Arc<AtomicBool>,
}

impl PartialEq for Binding {
    fn eq(&self, other: &Self) -> bool {
        self.param == other.param
    }
}

impl Eq for Binding {}

impl Binding {
    fn new(param: CaptchaVerifyParam) -> Self {
        Self {
            param,
            spent: Arc::default(),
        }
    }
}

impl CaptchaVerified {
    /// A pass, counted in `budget` (which learns from genuine passes).
    pub(crate) fn passed(
        verdict: Verification,
        scene: SceneId,
        param: CaptchaVerifyParam,
        budget: &Arc<Budget>,
    ) -> Self {
        Self::Passed(CaptchaPassed {
            verdict,
            scene,
            binding: Binding::new(param),
            counted: CountedIn::new(budget),
        })
    }

    /// Whether `budget` already counted this verdict (a layer that gave it or took it before
    /// shares it).
    pub(crate) fn counted_in(&self, budget: &Arc<Budget>) -> bool {
        match self {
            Self::Passed(CaptchaPassed { counted, .. })
            | Self::Degraded(Degraded { counted, .. }) => counted.contains(budget),
            Self::NotRequired(_) | Self::Monitored(_) => false,
        }
    }

    /// Let in degraded, charged to `budget`.
    pub(crate) fn degraded(
        class: ErrorClass,
        request_id: Option<String>,
        scene: SceneId,
        param: CaptchaVerifyParam,
        budget: &Arc<Budget>,
    ) -> Self {
        Self::Degraded(Degraded {
            class,
            request_id,
            scene,
            binding: Binding::new(param),
            counted: CountedIn::new(budget),
        })
    }

    pub(crate) fn not_required(scene: SceneId) -> Self {
        Self::NotRequired(NotRequired { scene })
    }

    pub(crate) fn monitored(scene: SceneId, would_refuse: Reason, code: &str) -> Self {
        Self::Monitored(Monitored {
            scene,
            would_refuse,
            code: code.to_owned(),
        })
    }

    /// The scene the verdict was given for.
    pub fn scene(&self) -> &SceneId {
        match self {
            Self::Passed(passed) => &passed.scene,
            Self::Degraded(degraded) => &degraded.scene,
            Self::NotRequired(not_required) => &not_required.scene,
            Self::Monitored(monitored) => &monitored.scene,
        }
    }

    /// The param a verdict was given for: none when no captcha was verified.
    fn binding(&self) -> Option<&Binding> {
        match self {
            Self::Passed(passed) => Some(&passed.binding),
            Self::Degraded(degraded) => Some(&degraded.binding),
            Self::NotRequired(_) | Self::Monitored(_) => None,
        }
    }

    /// Whether an inner layer may take this verdict for `param` under `scene`: a verdict on
    /// the same param and scene, not taken before. Taking it spends it.
    pub(crate) fn claim(&self, param: &CaptchaVerifyParam, scene: &SceneId) -> bool {
        self.binding().is_some_and(|binding| {
            self.scene() == scene
                && binding.param == *param
                && !binding.spent.swap(true, Ordering::AcqRel)
        })
    }

    /// The verdict a layer that took it, counting it in `budget`, hands on to its own inner
    /// service: the same verdict with a hold of its own, so that a layer further in may take
    /// it once in turn, and counted in `budget` too.
    pub(crate) fn handed_on(mut self, budget: &Arc<Budget>) -> Self {
        let counted_here = self.counted_in(budget);
        match &mut self {
            Self::Passed(CaptchaPassed {
                binding, counted, ..
            })
            | Self::Degraded(Degraded {
                binding, counted, ..
            }) => {
                *binding = Binding::new(binding.param.clone());
                if !counted_here {
                    counted.more.push(Arc::clone(budget));
                }
            }
            Self::NotRequired(_) | Self::Monitored(_) => {}
        }
        self
    }

    /// The layer's hold on a verdict on a param: dropped once the inner service has answered,
    /// it spends the verdict, so a copy kept for later is never trusted.
    pub(crate) fn issued(&self) -> Option<Issued> {
        self.binding()
            .map(|binding| Issued(Arc::clone(&binding.spent)))
    }
}

impl CaptchaPassed {
    /// The pass code (`T001`, …).
    pub fn code(&self) -> &VerifyCode {
        self.verdict.code()
    }

    /// The service's request id, for Alibaba's support and your logs.
    pub fn request_id(&self) -> &str {
        self.verdict.request_id()
    }

    /// The id your page gave the widget as `UserCertifyId`, if any, to tie the verdict to
    /// your own records.
    pub fn certify_id(&self) -> Option<&str> {
        self.verdict.certify_id()
    }

    /// The scene the verdict was given for.
    pub fn scene(&self) -> &SceneId {
        &self.scene
    }
}

impl Degraded {
    /// Why no verdict could be had: an outage, or with
    /// [`fail_open_on_configuration_errors`](super::CaptchaLayerBuilder::fail_open_on_configuration_errors),
    /// a configuration error.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// The request id of the failed call to the service, when it answered at all.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The scene the request was for.
    pub fn scene(&self) -> &SceneId {
        &self.scene
    }
}

/// Spends a verdict when dropped: held by the layer's future until the inner service answers.
#[derive(Debug)]
pub(crate) struct Issued(Arc<AtomicBool>);

impl Drop for Issued {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
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
    /// Refuses a degraded verdict with 503, one without a captcha (`NotRequired`, `Monitored`)
    /// with 403 `captcha required`, and a missing one with 500.
    impl<S: Send + Sync> FromRequestParts<S> for CaptchaPassed {
        type Rejection = (StatusCode, &'static str);

        async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
            match <CaptchaVerified as FromRequestParts<S>>::from_request_parts(parts, state).await?
            {
                CaptchaVerified::Passed(passed) => Ok(passed),
                CaptchaVerified::Degraded(_) => Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    "captcha verification is unavailable, try again later",
                )),
                // No captcha was asked for (a `WhenRisky` or monitor route): this handler wants
                // one, so the page shows the widget and sends it.
                _ => Err((StatusCode::FORBIDDEN, "captcha required")),
            }
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
