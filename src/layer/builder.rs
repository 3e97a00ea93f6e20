//! The layer, its builder, and the configuration its services share.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use tower_layer::Layer;

use super::budget::{Budget, DegradedBudget};
use super::decision::Rules;
use super::observe::{self, Hook, Outcome};
use super::rejection::DefaultResponder;
use super::routes::{RouteError, Routes, Table};
use super::shared::Shared;
use super::{CaptchaService, FailurePolicy};
use crate::SceneId;
use crate::Verify;
use crate::extract::{BodyLimits, ParamSource};

/// Verifies a captcha before the inner service runs. See the [module docs](crate::layer).
///
/// [`new`](Self::new) protects every request of the service it wraps under one scene, with
/// the defaults: the [`HeaderOrBody`](crate::extract::HeaderOrBody) extractor (the header, else a JSON or form field),
/// [`FailurePolicy::Open`] within the
/// [`DegradedBudget::adaptive`] budget, the [`DefaultResponder`] and [`BodyLimits::DEFAULT`].
/// [`builder`](Self::builder) changes any of them, or protects a table of [`Routes`]. How many
/// verifications may run at once, and for how long, is the verifier's to say: the
/// [`Client`](crate::Client)'s `max_connections` and `timeout` (see [`Verify`]).
///
/// Two layers of this crate on one route (a table on the router and a layer on the route)
/// verify a param once: the inner layer trusts the verdict the outer one gave this very
/// request, for the same scene and param.
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_aliyun_captcha::extract::{CaptchaBody, JsonField};
/// use tower_aliyun_captcha::layer::Route;
/// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
/// # let verifier = tower_aliyun_captcha::verify::doc_verifier();
///
/// let layer = CaptchaLayer::builder(verifier, Route::every_path(SceneId::new("signup-scene")?))
///     .extractor(JsonField::default())
///     .build()?;
/// let service = ServiceBuilder::new().layer(layer).service_fn(
///     |_request: http::Request<CaptchaBody<http_body_util::Full<bytes::Bytes>>>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
///     },
/// );
/// # let _ = service;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct CaptchaLayer<V, R = DefaultResponder> {
    shared: Arc<Shared<V, R>>,
}

impl<V, R> Clone for CaptchaLayer<V, R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<V, R> fmt::Debug for CaptchaLayer<V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptchaLayer")
            .field("extractor", &self.shared.extractor)
            .field("routes", &self.shared.table)
            .field("rules", &self.shared.rules)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl<V> CaptchaLayer<V> {
    /// A layer that verifies every request of the service it wraps against `scene`, with
    /// `verifier` (usually a [`Client`](crate::Client)) and the defaults.
    ///
    /// ```
    /// # #[cfg(feature = "axum")]
    /// # fn main() -> Result<(), tower_aliyun_captcha::verify::InvalidSceneId> {
    /// use axum::{Router, routing::post};
    /// use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified, SceneId};
    /// # let client = tower_aliyun_captcha::verify::doc_verifier();
    ///
    /// async fn login(_verified: CaptchaVerified) -> &'static str { "welcome" }
    ///
    /// let app: Router = Router::new().route(
    ///     "/login",
    ///     post(login).layer(CaptchaLayer::new(client, SceneId::new("login-scene")?)),
    /// );
    /// # Ok(()) }
    /// # #[cfg(not(feature = "axum"))] fn main() {}
    /// ```
    pub fn new(verifier: V, scene: SceneId) -> Self
    where
        V: Verify,
    {
        let builder = Self::builder(verifier, Routes::new());
        let table = Table::every_path(scene);
        builder.finish(table)
    }

    /// Configures a layer that protects `routes`: one [`Route`](super::Route)
    /// (`Route::every_path(scene)` for every request under one scene), or a table of them.
    ///
    /// ```
    /// use http::Method;
    /// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
    /// use tower_aliyun_captcha::extract::GrpcMetadata;
    /// use tower_aliyun_captcha::layer::{FailurePolicy, Route, Routes};
    /// # let client = tower_aliyun_captcha::verify::doc_verifier();
    ///
    /// let routes = Routes::new()
    ///     .route(Route::exact("/demo.Accounts/Signup", SceneId::new("signup")?))
    ///     .route(Route::exact("/demo.Accounts/Login", SceneId::new("login")?));
    /// let layer = CaptchaLayer::builder(client, routes)
    ///     .extractor(GrpcMetadata::default())
    ///     .failure_policy(FailurePolicy::Closed)
    ///     .build()?;
    /// # let _ = layer;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(verifier: V, routes: impl Into<Routes>) -> CaptchaLayerBuilder<V> {
        CaptchaLayerBuilder {
            verifier,
            extractor: ParamSource::default(),
            routes: routes.into(),
            rules: Rules {
                policy: FailurePolicy::default(),
                allow_test_mode: false,
                open_on_configuration_errors: false,
            },
            responder: DefaultResponder::default(),
            limits: BodyLimits::DEFAULT,
            budget: DegradedBudget::default(),
            hook: None,
        }
    }
}

impl<S, V, R> Layer<S> for CaptchaLayer<V, R> {
    type Service = CaptchaService<S, V, R>;

    fn layer(&self, inner: S) -> Self::Service {
        CaptchaService::new(inner, Arc::clone(&self.shared))
    }
}

/// Configures a [`CaptchaLayer`]; made by [`CaptchaLayer::builder`].
///
/// ```
/// use std::time::Duration;
/// use tower_aliyun_captcha::extract::{BodyLimits, FormField};
/// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
/// use tower_aliyun_captcha::layer::{DegradedBudget, FailurePolicy, Route};
/// # let verifier = tower_aliyun_captcha::verify::doc_verifier();
///
/// let layer = CaptchaLayer::builder(verifier, Route::every_path(SceneId::new("login")?))
///     .extractor(FormField::default())
///     .failure_policy(FailurePolicy::Open)
///     .degraded_budget(DegradedBudget::per_second(2, 10))
///     .body_limits(BodyLimits { max_bytes: 16 * 1024, read_timeout: Duration::from_secs(5) })
///     .build()?;
/// # let _ = layer;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct CaptchaLayerBuilder<V, R = DefaultResponder> {
    verifier: V,
    extractor: ParamSource,
    routes: Routes,
    rules: Rules,
    responder: R,
    limits: BodyLimits,
    budget: DegradedBudget,
    hook: Option<Hook>,
}

impl<V, R> fmt::Debug for CaptchaLayerBuilder<V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptchaLayerBuilder")
            .field("extractor", &self.extractor)
            .field("routes", &self.routes)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl<V, R> CaptchaLayerBuilder<V, R> {
    /// Where the param comes from, on routes that do not name their own extractor. Default
    /// [`HeaderOrBody`](crate::extract::HeaderOrBody): the header, else a JSON or form field.
    /// Compose with `or`: `Header::default().or(JsonField::default())`; a closure of your own
    /// with [`ParamSource::from_fn`]. A route's own extractor takes the same.
    pub fn extractor(mut self, extractor: impl Into<ParamSource>) -> Self {
        self.extractor = extractor.into();
        self
    }

    /// What to do when the service has an outage. Default [`FailurePolicy::Open`].
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.rules.policy = policy;
        self
    }

    /// How many requests may pass degraded during an outage under [`FailurePolicy::Open`].
    /// Default [`DegradedBudget::adaptive`].
    pub fn degraded_budget(mut self, budget: DegradedBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Lets test mode's T005 pass. Off by default: a scene left in test mode in the console
    /// passes every param, so in production T005 is refused (and logged at warn).
    pub fn allow_test_mode(mut self, allow: bool) -> Self {
        self.rules.allow_test_mode = allow;
        self
    }

    /// Treats [configuration errors](crate::error::ErrorClass::Configuration) (wrong keys,
    /// missing permissions, an expired token, a skewed clock, unknown error codes) like an
    /// outage, under the failure policy and its budget. Off by default: they are answered 503
    /// and logged at error, because a misconfigured account would otherwise switch the
    /// captcha off for everyone, silently.
    pub fn fail_open_on_configuration_errors(mut self, open: bool) -> Self {
        self.rules.open_on_configuration_errors = open;
        self
    }

    /// Builds the answers to refused requests, in the protected service's body type (see
    /// [`Respond`](super::Respond)). Default [`DefaultResponder`].
    pub fn responder<R2>(self, responder: R2) -> CaptchaLayerBuilder<V, R2> {
        CaptchaLayerBuilder {
            verifier: self.verifier,
            extractor: self.extractor,
            routes: self.routes,
            rules: self.rules,
            responder,
            limits: self.limits,
            budget: self.budget,
            hook: self.hook,
        }
    }

    /// How much body, and for how long, the body extractors read. Default
    /// [`BodyLimits::DEFAULT`]; zero is refused.
    pub fn body_limits(mut self, limits: BodyLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Calls `hook` with what became of each protected request (see [`Outcome`]): for
    /// counters of your own, alongside or instead of the `metrics` feature.
    pub fn on_outcome(mut self, hook: impl Fn(&Outcome<'_>) + Send + Sync + 'static) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// ```
    /// use tower_aliyun_captcha::extract::BodyLimits;
    /// use tower_aliyun_captcha::layer::{BuildError, Route};
    /// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
    /// # let verifier = tower_aliyun_captcha::verify::doc_verifier();
    ///
    /// // A body limit of zero would refuse everyone; it is refused instead.
    /// let refused = CaptchaLayer::builder(verifier, Route::every_path(SceneId::new("login")?))
    ///     .body_limits(BodyLimits { max_bytes: 0, ..BodyLimits::DEFAULT })
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(refused, BuildError::Zero("body_limits.max_bytes")));
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn build(mut self) -> Result<CaptchaLayer<V, R>, BuildError>
    where
        V: Verify,
    {
        for (zero, setting) in [
            (self.limits.max_bytes == 0, "body_limits.max_bytes"),
            (
                self.limits.read_timeout.is_zero(),
                "body_limits.read_timeout",
            ),
            (!self.budget.is_valid(), "degraded_budget"),
        ] {
            if zero {
                return Err(BuildError::Zero(setting));
            }
        }
        let routes = std::mem::take(&mut self.routes);
        let table = Table::new(routes).map_err(BuildError::Route)?;
        Ok(self.finish(table))
    }

    fn finish(self, table: Table) -> CaptchaLayer<V, R>
    where
        V: Verify,
    {
        let now = Instant::now();
        observe::describe();
        for route in table.routes() {
            if matches!(route.requirement, super::Requirement::Monitor) {
                tracing::warn!(
                    captcha.scene = route.scene.as_str(),
                    route = ?route,
                    "captcha route in monitor mode: params are verified, nothing is refused"
                );
            }
        }
        // One budget per verifier and setting, so that many routes let no more in than one.
        let budget = match self.verifier.shared_budgets() {
            Some(shared) => shared.get(self.budget, now),
            None => Arc::new(Budget::new(self.budget, now)),
        };
        CaptchaLayer {
            shared: Arc::new(Shared {
                verifier: self.verifier,
                extractor: self.extractor,
                table,
                rules: self.rules,
                responder: self.responder,
                limits: self.limits,
                budget,
                alarms: Arc::default(),
                hook: self.hook,
            }),
        }
    }
}

/// A layer configuration the builder refused.
///
/// ```
/// use tower_aliyun_captcha::CaptchaLayer;
/// use tower_aliyun_captcha::layer::{BuildError, RouteError, Routes};
/// # let verifier = tower_aliyun_captcha::verify::doc_verifier();
///
/// let empty = CaptchaLayer::builder(verifier, Routes::new()).build().unwrap_err();
/// assert_eq!(empty, BuildError::Route(RouteError::Empty));
/// assert!(empty.to_string().contains("protect nothing"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The route table is not valid.
    Route(RouteError),
    /// A bound, deadline or budget is zero, which would refuse every request.
    Zero(&'static str),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Route(error) => error.fmt(f),
            Self::Zero(setting) => write!(
                f,
                "{setting} is zero, which would refuse every request; leave it unset for the default"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Route(error) => Some(error),
            Self::Zero(_) => None,
        }
    }
}
