//! The layer and its configuration.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tower_layer::Layer;

use super::rejection::{DefaultResponder, Respond};
use super::{CaptchaService, FailurePolicy, Routes};
use crate::SceneId;
use crate::extract::{BodyLimits, Header};

/// The default bound on verifications in flight at once, per layer.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// Everything a service of the layer needs besides the verifier and the extractor.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) scene: Option<SceneId>,
    pub(crate) routes: Option<Routes>,
    pub(crate) policy: FailurePolicy,
    pub(crate) responder: Arc<dyn Respond>,
    pub(crate) limits: BodyLimits,
    pub(crate) in_flight: Arc<Semaphore>,
}

/// Verifies a captcha before the inner service runs. See the [module docs](crate::layer).
///
/// Defaults: the [`Header`] extractor, no scene, [`FailurePolicy::Open`], the
/// [`DefaultResponder`], [`BodyLimits::DEFAULT`] and [`DEFAULT_MAX_IN_FLIGHT`]. Services made
/// from one layer (and its clones) share its in-flight bound.
///
/// ```
/// use std::time::Duration;
/// use tower::ServiceBuilder;
/// use tower_aliyun_captcha::extract::{BodyLimits, CaptchaBody, JsonField};
/// use tower_aliyun_captcha::layer::{CaptchaLayer, FailurePolicy};
/// use tower_aliyun_captcha::SceneId;
/// # let verifier = |_r: tower_aliyun_captcha::VerifyRequest| async {
/// #     Err::<tower_aliyun_captcha::Verification, _>(tower_aliyun_captcha::Error::other("x"))
/// # };
///
/// let layer = CaptchaLayer::new(verifier)
///     .scene(SceneId::new("signup-scene").unwrap())
///     .extractor(JsonField::default())
///     .failure_policy(FailurePolicy::Closed)
///     .body_limits(BodyLimits { max_bytes: 16 * 1024, read_timeout: Duration::from_secs(5) })
///     .max_in_flight(256);
/// let service = ServiceBuilder::new().layer(layer).service_fn(
///     |_request: http::Request<CaptchaBody<http_body_util::Full<bytes::Bytes>>>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
///     },
/// );
/// # let _ = service;
/// ```
pub struct CaptchaLayer<V, E = Header> {
    verifier: Arc<V>,
    extractor: E,
    config: Config,
}

impl<V, E: Clone> Clone for CaptchaLayer<V, E> {
    fn clone(&self) -> Self {
        Self {
            verifier: Arc::clone(&self.verifier),
            extractor: self.extractor.clone(),
            config: self.config.clone(),
        }
    }
}

impl<V, E: std::fmt::Debug> std::fmt::Debug for CaptchaLayer<V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptchaLayer")
            .field("extractor", &self.extractor)
            .field("scene", &self.config.scene)
            .field("routes", &self.config.routes)
            .field("policy", &self.config.policy)
            .field("limits", &self.config.limits)
            .finish_non_exhaustive()
    }
}

impl<V> CaptchaLayer<V, Header> {
    /// A layer that verifies with `verifier` (usually a [`Client`](crate::Client)).
    pub fn new(verifier: V) -> Self {
        Self {
            verifier: Arc::new(verifier),
            extractor: Header::default(),
            config: Config {
                scene: None,
                routes: None,
                policy: FailurePolicy::default(),
                responder: Arc::new(DefaultResponder),
                limits: BodyLimits::DEFAULT,
                in_flight: Arc::new(Semaphore::new(DEFAULT_MAX_IN_FLIGHT)),
            },
        }
    }
}

impl<V, E> CaptchaLayer<V, E> {
    /// The scene every param must belong to (sent as `SceneId`; recommended).
    pub fn scene(mut self, scene: SceneId) -> Self {
        self.config.scene = Some(scene);
        self
    }

    /// Protects only the routes in `routes`, each with its scene; every other request passes
    /// through untouched. For one layer on the outer router of a whole app.
    pub fn routes(mut self, routes: Routes) -> Self {
        self.config.routes = Some(routes);
        self
    }

    /// Where the param comes from.
    pub fn extractor<E2>(self, extractor: E2) -> CaptchaLayer<V, E2> {
        CaptchaLayer {
            verifier: self.verifier,
            extractor,
            config: self.config,
        }
    }

    /// What to do when no verdict can be had.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.config.policy = policy;
        self
    }

    /// Builds the answers to refused requests.
    pub fn responder(mut self, responder: impl Respond) -> Self {
        self.config.responder = Arc::new(responder);
        self
    }

    /// How much body, and for how long, the body extractors read.
    pub fn body_limits(mut self, limits: BodyLimits) -> Self {
        self.config.limits = limits;
        self
    }

    /// The most verifications in flight at once; past it, the failure policy applies at
    /// once instead of queueing.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.config.in_flight = Arc::new(Semaphore::new(max));
        self
    }
}

impl<S, V, E: Clone> Layer<S> for CaptchaLayer<V, E> {
    type Service = CaptchaService<S, V, E>;

    fn layer(&self, inner: S) -> Self::Service {
        CaptchaService::new(
            inner,
            Arc::clone(&self.verifier),
            self.extractor.clone(),
            Arc::new(self.config.clone()),
        )
    }
}
