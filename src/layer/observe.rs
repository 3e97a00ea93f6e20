//! What became of each protected request, for metrics (feature `metrics`; the table is in the
//! [module docs](crate::layer#metrics)) and for a hook of the application's own.

use std::fmt;
use std::time::{Duration, Instant};

use super::alarms::Alarms;
use super::risk::store::StoreError;
use super::{FailurePolicy, Refusal};
use crate::error::ErrorClass;
use crate::{Error, SceneId, Verification, VerifyCode};

/// What became of a protected request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeKind {
    /// A person passed.
    Pass,
    /// No verdict, let through marked degraded.
    Degraded,
    /// The captcha failed, or the service called the request invalid (403).
    Refused,
    /// No verdict, and no pass (503).
    Unavailable,
    /// Refused without asking the service: no param, one that cannot be real, or a body over
    /// the limits.
    LocalRefusal,
    /// Turned away: too many verifications in flight.
    Overloaded,
    /// Let through without a captcha on a `WhenRisky` route: the risk was low.
    NotRequired,
    /// Let through by a route in monitor mode, which would have refused it.
    Monitored,
}

impl OutcomeKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Degraded => "degraded",
            Self::Refused => "refused",
            Self::Unavailable => "unavailable",
            Self::LocalRefusal => "local_refusal",
            Self::Overloaded => "overloaded",
            Self::NotRequired => "not_required",
            Self::Monitored => "monitored",
        }
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One protected request's outcome, given to the hook set with
/// [`on_outcome`](super::CaptchaLayerBuilder::on_outcome).
///
/// ```
/// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
/// use tower_aliyun_captcha::layer::{Outcome, OutcomeKind, Route};
/// # let verifier = tower_aliyun_captcha::verify::doc_verifier();
///
/// let layer = CaptchaLayer::builder(verifier, Route::every_path(SceneId::new("login")?))
///     .on_outcome(|outcome: &Outcome<'_>| {
///         let scene = outcome.scene();
///         if let Some(error) = outcome.error() {
///             // No verdict: what failed, and what to do about it.
///             eprintln!("{scene}: {error}; {}", error.advice());
///         } else if outcome.kind() == OutcomeKind::Refused {
///             let (code, took) = (outcome.code(), outcome.latency());
///             eprintln!("{scene}: refused with {code} after {took:?}");
///         }
///     })
///     .build()?;
/// # let _ = layer;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    pub(crate) scene: &'a SceneId,
    pub(crate) kind: OutcomeKind,
    pub(crate) code: &'a str,
    pub(crate) latency: Option<Duration>,
    pub(crate) error: Option<&'a Error>,
}

impl<'a> Outcome<'a> {
    /// The route's scene.
    pub fn scene(&self) -> &'a SceneId {
        self.scene
    }

    /// What became of the request.
    pub fn kind(&self) -> OutcomeKind {
        self.kind
    }

    /// The `VerifyCode` (`T001`, `F015`, …), the local refusal's code (`F002`,
    /// `payload_too_large`, …), or the error's [label](Error::label) (`timeout`, `api`, …).
    pub fn code(&self) -> &'a str {
        self.code
    }

    /// How long the service took, when it was asked.
    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// The failure, when the service gave no verdict.
    pub fn error(&self) -> Option<&'a Error> {
        self.error
    }
}

/// The hook's type.
pub(crate) type Hook = Box<dyn Fn(&Outcome<'_>) + Send + Sync>;

/// Records `outcome`: metrics, then the hook.
pub(crate) fn record(hook: Option<&Hook>, outcome: &Outcome<'_>) {
    #[cfg(feature = "metrics")]
    metrics_for(outcome);
    if let Some(hook) = hook {
        hook(outcome);
    }
}

#[cfg(feature = "metrics")]
fn metrics_for(outcome: &Outcome<'_>) {
    let scene = outcome.scene.shared();
    metrics::counter!(
        "captcha_requests_total",
        "scene" => scene.clone(),
        "outcome" => outcome.kind.as_str(),
        "code" => outcome.code.to_owned(),
    )
    .increment(1);
    if let Some(latency) = outcome.latency {
        metrics::histogram!(
            "captcha_verification_duration_seconds",
            "scene" => scene.clone(),
            "outcome" => outcome.kind.as_str(),
        )
        .record(latency.as_secs_f64());
    }
    if let Some(error) = outcome.error {
        let code = match error {
            Error::Api(api) => api.code().as_str().to_owned(),
            other => other.label().to_owned(),
        };
        let class: crate::error::ErrorClass = error.class();
        metrics::counter!(
            "captcha_service_errors_total",
            "scene" => scene,
            "class" => class.as_str(),
            "code" => code,
        )
        .increment(1);
    }
}

/// A `WhenRisky` route's decision on a request without a param: `not_required`, or what
/// raised the requirement (`account`, `ip`, `global`, `store_down`).
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn requirement(scene: &SceneId, reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("captcha_requirement_total", "scene" => scene.shared(), "reason" => reason)
        .increment(1);
}

/// A request a route in monitor mode let through, which it would have refused.
pub(crate) fn would_refuse(hook: Option<&Hook>, scene: &SceneId, refusal: &Refusal) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "captcha_monitor_would_refuse_total",
        "scene" => scene.shared(),
        "reason" => refusal.reason().as_str(),
    )
    .increment(1);
    tracing::info!(
        captcha.scene = scene.as_str(),
        captcha.refusal = refusal.code(),
        captcha.reason = refusal.reason().as_str(),
        "captcha monitor: would have refused this request; let through"
    );
    let outcome = Outcome {
        scene,
        kind: OutcomeKind::Monitored,
        code: refusal.code(),
        latency: None,
        error: None,
    };
    record(hook, &outcome);
}

/// The risk store did not answer: the captcha was required (or a count was lost).
pub(crate) fn store_alarm(alarms: &Alarms, scene: &SceneId, error: &StoreError) {
    alarms.raise(error.alarm(), Instant::now(), |unlogged| {
        tracing::warn!(
            captcha.scene = scene.as_str(),
            captcha.unlogged = unlogged,
            "captcha risk store failed ({error}): requiring the captcha from requests without one until it answers"
        )
    });
}

/// A `WhenRisky` route that sees no client address counts only accounts and the route.
pub(crate) fn no_address_alarm(alarms: &Alarms, scene: &SceneId) {
    alarms.raise("risk_no_address", Instant::now(), |unlogged| {
        tracing::warn!(
            captcha.scene = scene.as_str(),
            captcha.unlogged = unlogged,
            "captcha risk: no client address in the request (serve with axum's \
             into_make_service_with_connect_info, or put a SocketAddr in the request's \
             extensions): failures are counted per account and per route only"
        )
    });
}

/// The in-flight gauge moves by `delta` for `scene`.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn in_flight(scene: &SceneId, delta: f64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("captcha_verifications_in_flight", "scene" => scene.shared()).increment(delta);
}

/// Describes the metrics to the recorder, once per layer.
pub(crate) fn describe() {
    #[cfg(feature = "metrics")]
    {
        metrics::describe_counter!(
            "captcha_requests_total",
            "Protected requests by scene, outcome and code."
        );
        metrics::describe_histogram!(
            "captcha_verification_duration_seconds",
            metrics::Unit::Seconds,
            "How long the captcha service took to answer."
        );
        metrics::describe_counter!(
            "captcha_service_errors_total",
            "Verifications without a verdict, by error class and code."
        );
        metrics::describe_gauge!(
            "captcha_verifications_in_flight",
            "Verifications under way."
        );
        metrics::describe_counter!(
            "captcha_requirement_total",
            "WhenRisky routes: requests without a captcha, by whether one was required and why."
        );
        metrics::describe_counter!(
            "captcha_monitor_would_refuse_total",
            "Monitor routes: requests let through that would have been refused, by reason."
        );
    }
}

/// Logs a verdict that says something about the setup rather than the person (another scene,
/// test mode, encryption mode), a pass code or any code this crate does not know, and a
/// contradiction: at warn, with the fix, one line per kind per interval. A person's (or a
/// bot's) ordinary failure stays at debug.
pub(crate) fn verdict_alarm(
    alarms: &Alarms,
    now: Instant,
    verdict: &Verification,
    scene: &SceneId,
    passed: bool,
) {
    let code = verdict.code();
    let action = if passed { "passed" } else { "refused" };
    let (alarm, what) = if let Some((kind, fix)) = code.setup_problem() {
        (kind, fix)
    } else if verdict.passed() != code.is_pass() {
        (
            "contradiction",
            "VerifyResult contradicts VerifyCode, so neither is trusted",
        )
    } else if let VerifyCode::Unknown(_) = code {
        (
            "unknown_code",
            "a verification code this crate does not know (every T code passes, as Alibaba \
             documents); update tower-aliyun-captcha to know its meaning",
        )
    } else {
        return;
    };
    alarms.raise(alarm, now, |unlogged| {
        tracing::warn!(
            captcha.scene = scene.as_str(),
            captcha.code = code.as_str(),
            captcha.verify_result = verdict.passed(),
            captcha.request_id = verdict.request_id(),
            captcha.unlogged = unlogged,
            "captcha {action} with {code} for scene {scene}: {what}",
            scene = scene.as_str(),
        )
    });
}

/// Logs a failed verification: one line per kind per interval, at error for configuration.
/// `refusal` is what the request got, or `None` when it went on degraded.
pub(crate) fn alarm(
    alarms: &Alarms,
    policy: FailurePolicy,
    now: Instant,
    error: &Error,
    refusal: Option<&Refusal>,
    over_budget: bool,
) {
    let class = error.class();
    let action = match refusal {
        None => "let through, degraded".to_owned(),
        Some(refusal) => format!("refused ({})", refusal.status().as_u16()),
    };
    // Errors of one kind but different classes (an API error may be any) are told apart.
    let key = match (error, class) {
        (Error::Api(_), ErrorClass::Outage) => "api_outage",
        (Error::Api(_), ErrorClass::Configuration) => "api_configuration",
        (Error::Api(_), ErrorClass::BadRequest) => "api_bad_request",
        (Error::Api(_), ErrorClass::Throttled) => "api_throttled",
        _ => error.label(),
    };
    alarms.raise(key, now, |unlogged| {
        let request_id = match error {
            Error::Api(api) => Some(api.request_id()),
            _ => None,
        };
        if class == ErrorClass::Configuration {
            tracing::error!(
                captcha.error_class = class.as_str(),
                captcha.error_kind = error.label(),
                captcha.request_id = request_id,
                captcha.advice = error.advice(),
                captcha.unlogged = unlogged,
                "captcha verification failed: {error}; {action}"
            );
        } else {
            tracing::warn!(
                captcha.error_class = class.as_str(),
                captcha.error_kind = error.label(),
                captcha.request_id = request_id,
                captcha.policy = ?policy,
                captcha.unlogged = unlogged,
                "captcha verification failed: {error}; {action}"
            );
        }
    });
    if over_budget {
        alarms.raise("budget_spent", now, |unlogged| {
            tracing::warn!(
                captcha.unlogged = unlogged,
                "captcha outage outlasted the degraded budget: refusing (503) until the service answers"
            )
        });
    }
}
