//! [`CaptchaLayer`]: the tower middleware that verifies a captcha before the inner service
//! runs.
//!
//! ```text
//! request ─► extractor ─► local check ─► verifier ─► decision ─► inner service
//!                         (missing, too   (Client)    pass  → CaptchaVerified in extensions
//!                          long: 403,                 fail  → 403 / gRPC PERMISSION_DENIED
//!                          no paid call)              error → FailurePolicy: open or closed
//! ```
//!
//! ```
//! use axum::{Json, Router, routing::post};
//! use tower_aliyun_captcha::extract::{ExtractParam, Header, JsonField};
//! use tower_aliyun_captcha::layer::{CaptchaLayer, CaptchaVerified};
//! use tower_aliyun_captcha::{SceneId, Verification, VerifyCode, VerifyRequest};
//!
//! # let client = |_r: VerifyRequest| async { Ok(Verification::new(true, VerifyCode::T001, "r")) };
//! // `client` is a `tower_aliyun_captcha::Client` in a real app.
//! let login = CaptchaLayer::new(client)
//!     .scene(SceneId::new("login-scene").unwrap())
//!     .extractor(Header::default().or(JsonField::default()));
//!
//! async fn login_handler(verified: CaptchaVerified, Json(body): Json<serde_json::Value>) -> String {
//!     format!("welcome (captcha {:?}, degraded: {})", verified.code(), verified.is_degraded())
//! }
//!
//! let app: Router = Router::new().route("/login", post(login_handler).layer(login));
//! ```

mod builder;
mod future;
mod policy;
mod rejection;
mod routes;
mod service;

pub use builder::{CaptchaLayer, DEFAULT_MAX_IN_FLIGHT};
pub use future::ResponseFuture;
pub use policy::FailurePolicy;
pub use rejection::{DefaultResponder, Refusal, Respond, ResponseBody};
pub use routes::Routes;
pub use service::CaptchaService;

use crate::{SceneId, VerifyCode};

/// The verdict, in the extensions of every request the layer lets through.
///
/// Only the layer can make one: a value some earlier code put in the extensions is removed
/// before the check, so nothing a client sends can mark a request as verified.
///
/// Read it from the extensions (or, with the `axum` feature, as an extractor):
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_aliyun_captcha::layer::{CaptchaLayer, CaptchaVerified};
/// use tower_aliyun_captcha::extract::CaptchaBody;
/// use tower_aliyun_captcha::{Verification, VerifyCode, VerifyRequest};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let pass = |_r: VerifyRequest| async { Ok(Verification::new(true, VerifyCode::T001, "req-1")) };
/// let service = ServiceBuilder::new().layer(CaptchaLayer::new(pass)).service_fn(
///     |request: http::Request<CaptchaBody<String>>| async move {
///         let verified = request.extensions().get::<CaptchaVerified>().cloned().unwrap();
///         Ok::<_, std::convert::Infallible>(http::Response::new(format!(
///             "{} {:?} {}",
///             verified.code().unwrap(),
///             verified.request_id(),
///             verified.is_degraded()
///         )))
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptchaVerified {
    code: Option<VerifyCode>,
    request_id: Option<String>,
    scene: Option<SceneId>,
    degraded: bool,
}

impl CaptchaVerified {
    pub(crate) fn passed(code: VerifyCode, request_id: String, scene: Option<SceneId>) -> Self {
        Self {
            code: Some(code),
            request_id: Some(request_id),
            scene,
            degraded: false,
        }
    }

    pub(crate) fn degraded(request_id: Option<String>, scene: Option<SceneId>) -> Self {
        Self {
            code: None,
            request_id,
            scene,
            degraded: true,
        }
    }

    /// The passing code (`T001`, or `T005` in test mode); `None` when degraded.
    ///
    /// ```
    /// use tower_aliyun_captcha::layer::CaptchaLayer;
    /// use tower_aliyun_captcha::{Verification, VerifyCode, VerifyRequest};
    /// # async fn seen_by_handler<V: tower_aliyun_captcha::Verify>(layer: CaptchaLayer<V>) -> tower_aliyun_captcha::layer::CaptchaVerified {
    /// #     use std::sync::{Arc, Mutex};
    /// #     use tower::{ServiceBuilder, ServiceExt};
    /// #     use tower_aliyun_captcha::{extract::CaptchaBody, layer::CaptchaVerified};
    /// #     let seen = Arc::new(Mutex::new(None));
    /// #     let slot = Arc::clone(&seen);
    /// #     let service = ServiceBuilder::new().layer(layer).service_fn(move |request: http::Request<CaptchaBody<String>>| {
    /// #         *slot.lock().unwrap() = request.extensions().get::<CaptchaVerified>().cloned();
    /// #         async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
    /// #     });
    /// #     let request = http::Request::post("/login").header("x-captcha-verify-param", "eyJ4IjoxfQ==").body(String::new()).unwrap();
    /// #     service.oneshot(request).await.unwrap();
    /// #     seen.lock().unwrap().take().expect("the handler ran")
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    ///
    /// // A scene in test mode passes every param with T005.
    /// let test_mode = |_: VerifyRequest| async {
    ///     Ok::<_, tower_aliyun_captcha::Error>(Verification::new(true, VerifyCode::T005, "req-7"))
    /// };
    /// let verified = seen_by_handler(CaptchaLayer::new(test_mode)).await;
    /// assert_eq!(verified.code(), Some(&VerifyCode::T005));
    /// # });
    /// ```
    pub fn code(&self) -> Option<&VerifyCode> {
        self.code.as_ref()
    }

    /// The service's request id, when it answered.
    ///
    /// ```
    /// use tower_aliyun_captcha::layer::CaptchaLayer;
    /// use tower_aliyun_captcha::{Error, Verification, VerifyCode, VerifyRequest};
    /// # async fn seen_by_handler<V: tower_aliyun_captcha::Verify>(layer: CaptchaLayer<V>) -> tower_aliyun_captcha::layer::CaptchaVerified {
    /// #     use std::sync::{Arc, Mutex};
    /// #     use tower::{ServiceBuilder, ServiceExt};
    /// #     use tower_aliyun_captcha::{extract::CaptchaBody, layer::CaptchaVerified};
    /// #     let seen = Arc::new(Mutex::new(None));
    /// #     let slot = Arc::clone(&seen);
    /// #     let service = ServiceBuilder::new().layer(layer).service_fn(move |request: http::Request<CaptchaBody<String>>| {
    /// #         *slot.lock().unwrap() = request.extensions().get::<CaptchaVerified>().cloned();
    /// #         async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
    /// #     });
    /// #     let request = http::Request::post("/login").header("x-captcha-verify-param", "eyJ4IjoxfQ==").body(String::new()).unwrap();
    /// #     service.oneshot(request).await.unwrap();
    /// #     seen.lock().unwrap().take().expect("the handler ran")
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    ///
    /// let pass = |_: VerifyRequest| async { Ok::<_, Error>(Verification::new(true, VerifyCode::T001, "6F1A-…")) };
    /// let verified = seen_by_handler(CaptchaLayer::new(pass)).await;
    /// assert_eq!(verified.request_id(), Some("6F1A-…")); // quote it in a support ticket
    /// # });
    /// ```
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The scene the param was verified against.
    ///
    /// ```
    /// use tower_aliyun_captcha::layer::CaptchaLayer;
    /// use tower_aliyun_captcha::{Error, SceneId, Verification, VerifyCode, VerifyRequest};
    /// # async fn seen_by_handler<V: tower_aliyun_captcha::Verify>(layer: CaptchaLayer<V>) -> tower_aliyun_captcha::layer::CaptchaVerified {
    /// #     use std::sync::{Arc, Mutex};
    /// #     use tower::{ServiceBuilder, ServiceExt};
    /// #     use tower_aliyun_captcha::{extract::CaptchaBody, layer::CaptchaVerified};
    /// #     let seen = Arc::new(Mutex::new(None));
    /// #     let slot = Arc::clone(&seen);
    /// #     let service = ServiceBuilder::new().layer(layer).service_fn(move |request: http::Request<CaptchaBody<String>>| {
    /// #         *slot.lock().unwrap() = request.extensions().get::<CaptchaVerified>().cloned();
    /// #         async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
    /// #     });
    /// #     let request = http::Request::post("/login").header("x-captcha-verify-param", "eyJ4IjoxfQ==").body(String::new()).unwrap();
    /// #     service.oneshot(request).await.unwrap();
    /// #     seen.lock().unwrap().take().expect("the handler ran")
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    ///
    /// let pass = |_: VerifyRequest| async { Ok::<_, Error>(Verification::new(true, VerifyCode::T001, "id")) };
    /// let layer = CaptchaLayer::new(pass).scene(SceneId::new("signup01").unwrap());
    /// let verified = seen_by_handler(layer).await;
    /// assert_eq!(verified.scene().map(SceneId::as_str), Some("signup01"));
    /// # });
    /// ```
    pub fn scene(&self) -> Option<&SceneId> {
        self.scene.as_ref()
    }

    /// True when the request was let through without a verdict, because the service failed
    /// and the policy is [`FailurePolicy::Open`].
    ///
    /// ```
    /// use tower_aliyun_captcha::layer::{CaptchaLayer, FailurePolicy};
    /// use tower_aliyun_captcha::{Error, Verification, VerifyRequest};
    /// # async fn seen_by_handler<V: tower_aliyun_captcha::Verify>(layer: CaptchaLayer<V>) -> tower_aliyun_captcha::layer::CaptchaVerified {
    /// #     use std::sync::{Arc, Mutex};
    /// #     use tower::{ServiceBuilder, ServiceExt};
    /// #     use tower_aliyun_captcha::{extract::CaptchaBody, layer::CaptchaVerified};
    /// #     let seen = Arc::new(Mutex::new(None));
    /// #     let slot = Arc::clone(&seen);
    /// #     let service = ServiceBuilder::new().layer(layer).service_fn(move |request: http::Request<CaptchaBody<String>>| {
    /// #         *slot.lock().unwrap() = request.extensions().get::<CaptchaVerified>().cloned();
    /// #         async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
    /// #     });
    /// #     let request = http::Request::post("/login").header("x-captcha-verify-param", "eyJ4IjoxfQ==").body(String::new()).unwrap();
    /// #     service.oneshot(request).await.unwrap();
    /// #     seen.lock().unwrap().take().expect("the handler ran")
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    ///
    /// // The service is down and the policy is open (the default): the request goes on, marked.
    /// let down = |_: VerifyRequest| async { Err::<Verification, _>(Error::other("upstream down")) };
    /// let verified = seen_by_handler(CaptchaLayer::new(down).failure_policy(FailurePolicy::Open)).await;
    /// assert!(verified.is_degraded());
    /// assert_eq!(verified.code(), None); // e.g. ask for a second factor instead
    /// # });
    /// ```
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for CaptchaVerified {
    type Rejection = (http::StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or((
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "CaptchaVerified is only available behind a CaptchaLayer",
        ))
    }
}
