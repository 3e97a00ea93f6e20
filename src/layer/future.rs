//! The response future: extract → verify → decide → call the inner service, or refuse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{Request, Response};
use pin_project::pin_project;
use tokio::sync::OwnedSemaphorePermit;
use tower::Service;

use super::builder::Shared;
use super::decision::{Decision, Outcome, decide, overloaded};
use super::observe::{self, OutcomeKind};
use super::verified::Issued;
use super::{CaptchaVerified, FailurePolicy, Refusal, Respond};
use crate::error::{ErrorClass, TransportError, TransportErrorKind};
use crate::extract::{
    BodyError, BoxExtractFuture, CaptchaBody, ExtractError, ExtractParam, Extracted,
};
use crate::{CaptchaVerifyParam, Error, SceneId, Verification, Verify, VerifyCode, VerifyRequest};

/// The future of [`CaptchaService`](super::CaptchaService): a small state machine, not boxed.
#[pin_project]
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture<S, V, E, R, B>
where
    S: Service<Request<CaptchaBody<B>>>,
    V: Verify,
    E: ExtractParam<B>,
{
    #[pin]
    state: State<Extraction<E::Future, B>, V::Future, S::Future, B>,
    /// The inner service, ready; called once.
    inner: S,
    shared: Arc<Shared<V, E, R>>,
    /// The protecting route's index in the table.
    route: usize,
    /// A verdict the request carried when it reached the layer.
    earlier: Option<CaptchaVerified>,
}

impl<S, V, E, R, B> std::fmt::Debug for ResponseFuture<S, V, E, R, B>
where
    S: Service<Request<CaptchaBody<B>>>,
    V: Verify,
    E: ExtractParam<B>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

/// The layer's extractor at work, or the one the route named (boxed: chosen at run time).
#[pin_project(project = ExtractionProjection)]
pub(crate) enum Extraction<F, B> {
    Layer(#[pin] F),
    Route(BoxExtractFuture<B>),
}

impl<F, B> Future for Extraction<F, B>
where
    F: Future<Output = Extracted<B>>,
{
    type Output = Extracted<B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ExtractionProjection::Layer(future) => future.poll(cx),
            ExtractionProjection::Route(future) => future.as_mut().poll(cx),
        }
    }
}

// The verifying state holds the request while it waits; boxing it would cost an allocation
// per request to save stack in a future that is pinned once.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProjection, project_replace = StateOwned)]
enum State<ExtractFuture, VerifyFuture, InnerFuture, B> {
    Extracting {
        #[pin]
        future: ExtractFuture,
    },
    Verifying {
        #[pin]
        future: tokio::time::Timeout<VerifyFuture>,
        request: Request<CaptchaBody<B>>,
        param: CaptchaVerifyParam,
        /// A place under the layer's in-flight bound, held until the verdict is in.
        slot: Slot,
        span: tracing::Span,
        started: Instant,
    },
    Calling {
        #[pin]
        future: InnerFuture,
        /// Spends the verdict this layer gave, once the inner service has answered.
        issued: Option<Issued>,
    },
    /// Refused before anything else: the route could not be told.
    Refusing {
        refusal: Refusal,
        request: Request<CaptchaBody<B>>,
    },
    Done,
}

impl<S, V, E, R, B> ResponseFuture<S, V, E, R, B>
where
    S: Service<Request<CaptchaBody<B>>>,
    V: Verify,
    E: ExtractParam<B>,
{
    pub(crate) fn new(
        extraction: Extraction<E::Future, B>,
        inner: S,
        shared: Arc<Shared<V, E, R>>,
        route: usize,
        earlier: Option<CaptchaVerified>,
    ) -> Self {
        Self {
            state: State::Extracting { future: extraction },
            inner,
            shared,
            route,
            earlier,
        }
    }

    /// A request refused before extraction (its path reads as two scenes' routes).
    pub(crate) fn refuse(
        inner: S,
        shared: Arc<Shared<V, E, R>>,
        refusal: Refusal,
        request: Request<CaptchaBody<B>>,
    ) -> Self {
        Self {
            state: State::Refusing { refusal, request },
            inner,
            shared,
            route: 0,
            earlier: None,
        }
    }

    /// A request no route protects: straight to the inner service.
    pub(crate) fn pass_through(
        mut inner: S,
        shared: Arc<Shared<V, E, R>>,
        request: Request<CaptchaBody<B>>,
    ) -> Self {
        Self {
            state: State::Calling {
                future: inner.call(request),
                issued: None,
            },
            inner,
            shared,
            route: 0,
            earlier: None,
        }
    }
}

/// What the layer does next.
enum Next<B> {
    Call(Request<CaptchaBody<B>>, Option<Issued>),
    Verify(Request<CaptchaBody<B>>, CaptchaVerifyParam),
    Refuse(Refusal, Request<CaptchaBody<B>>),
}

impl<S, V, E, R, B, ResBody> Future for ResponseFuture<S, V, E, R, B>
where
    S: Service<Request<CaptchaBody<B>>, Response = Response<ResBody>>,
    V: Verify,
    E: ExtractParam<B>,
    R: Respond<ResBody>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let shared = &**this.shared;
            let scene = &shared.table.entry(*this.route).scene;
            let next = match this.state.as_mut().project() {
                StateProjection::Calling { future, .. } => {
                    let response = ready!(future.poll(cx))?;
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProjection::Done => panic!("ResponseFuture polled after completion"),
                StateProjection::Refusing { .. } => {
                    let StateOwned::Refusing { refusal, request } =
                        this.state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("the state was Refusing a moment ago")
                    };
                    tracing::debug!(
                        captcha.refusal = refusal.code(),
                        path = request.uri().path(),
                        "captcha refused: the path reads as routes of two scenes"
                    );
                    Next::Refuse(refusal, request)
                }
                StateProjection::Extracting { future } => {
                    let Extracted { request, param } = ready!(future.poll(cx));
                    extracted(request, param, this.earlier.take(), scene, shared)
                }
                StateProjection::Verifying { future, span, .. } => {
                    // Entered while polling, so the client's span nests under it.
                    let result = {
                        let _entered = span.enter();
                        ready!(future.poll(cx))
                    };
                    let StateOwned::Verifying {
                        request,
                        param,
                        slot,
                        span,
                        started,
                        ..
                    } = this.state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("the state was Verifying a moment ago")
                    };
                    drop(slot);
                    let outcome = result.unwrap_or_else(|_elapsed| Err(layer_deadline()));
                    // The span closes here, with the verdict, not when the handler ends.
                    settle(outcome, request, param, scene, shared, &span, started)
                }
            };
            match next {
                Next::Call(request, issued) => {
                    let future = this.inner.call(request);
                    this.state.set(State::Calling { future, issued });
                }
                Next::Refuse(refusal, request) => {
                    this.state.set(State::Done);
                    let (parts, _body) = request.into_parts();
                    let response = shared.responder.respond(&refusal, &parts);
                    return Poll::Ready(Ok(response));
                }
                Next::Verify(request, param) => {
                    match Arc::clone(&shared.in_flight).try_acquire_owned() {
                        Ok(permit) => {
                            let slot = Slot::new(permit, scene);
                            let span = tracing::info_span!(
                                "captcha.verify_request",
                                captcha.scene = scene.as_str(),
                                captcha.code = tracing::field::Empty,
                                captcha.request_id = tracing::field::Empty,
                                captcha.outcome = tracing::field::Empty,
                            );
                            let verify =
                                VerifyRequest::new(param.clone()).with_scene(scene.clone());
                            let future = span.in_scope(|| {
                                tokio::time::timeout(
                                    shared.verify_timeout,
                                    shared.verifier.verify(verify),
                                )
                            });
                            this.state.set(State::Verifying {
                                future,
                                request,
                                param,
                                slot,
                                span,
                                started: Instant::now(),
                            });
                        }
                        Err(_) => {
                            let outcome = observe::Outcome {
                                scene,
                                kind: OutcomeKind::Overloaded,
                                code: "overloaded",
                                latency: None,
                                error: None,
                            };
                            observe::record(shared.hook.as_ref(), &outcome);
                            shared.alarms.raise("layer_overloaded", Instant::now(), |unlogged| {
                                tracing::warn!(
                                    captcha.scene = scene.as_str(),
                                    captcha.unlogged = unlogged,
                                    "captcha verifications over the layer's in-flight bound: turned away (503)"
                                )
                            });
                            this.state.set(State::Done);
                            let (parts, _body) = request.into_parts();
                            let response = shared.responder.respond(&overloaded(), &parts);
                            return Poll::Ready(Ok(response));
                        }
                    }
                }
            }
        }
    }
}

/// A place under the layer's in-flight bound, counted in the in-flight gauge while held
/// (dropped with the future too, if the client goes away mid-verification).
struct Slot {
    _permit: OwnedSemaphorePermit,
    scene: SceneId,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, scene: &SceneId) -> Self {
        observe::in_flight(scene, 1.0);
        Self {
            _permit: permit,
            scene: scene.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        observe::in_flight(&self.scene, -1.0);
    }
}

/// The next step once the param is (or is not) in hand.
fn extracted<V, E, R, B>(
    mut request: Request<CaptchaBody<B>>,
    param: Result<Option<CaptchaVerifyParam>, ExtractError>,
    earlier: Option<CaptchaVerified>,
    scene: &SceneId,
    shared: &Shared<V, E, R>,
) -> Next<B> {
    let local = |code| Refusal::Rejected { code, local: true };
    let refusal = match param {
        Ok(Some(param)) => {
            return match earlier.filter(|verdict| verdict.claim(&param, scene)) {
                Some(verdict) => {
                    request.extensions_mut().insert(verdict);
                    Next::Call(request, None)
                }
                None => Next::Verify(request, param),
            };
        }
        // No param, or one that cannot be real: refused without a paid call.
        Ok(None) => local(VerifyCode::F002),
        Err(ExtractError::Invalid(invalid)) => local(invalid.code()),
        Err(ExtractError::Body(BodyError::TooLarge)) => Refusal::PayloadTooLarge,
        Err(ExtractError::Body(BodyError::TimedOut)) => Refusal::BodyTimeout,
        Err(ExtractError::Body(BodyError::Unreadable)) => Refusal::BadBody,
    };
    tracing::debug!(
        captcha.scene = scene.as_str(),
        captcha.refusal = refusal.code(),
        "captcha refused before verification"
    );
    let outcome = observe::Outcome {
        scene,
        kind: OutcomeKind::LocalRefusal,
        code: refusal.code(),
        latency: None,
        error: None,
    };
    observe::record(shared.hook.as_ref(), &outcome);
    Next::Refuse(refusal, request)
}

/// The verification ran out the layer's own deadline: an outage, like a client timeout.
fn layer_deadline() -> Error {
    TransportError::possibly_sent(TransportErrorKind::Timeout).into()
}

/// Decides on a verification's outcome, and logs what deserves it.
fn settle<V, E, R, B>(
    outcome: Result<Verification, Error>,
    mut request: Request<CaptchaBody<B>>,
    param: CaptchaVerifyParam,
    scene: &SceneId,
    shared: &Shared<V, E, R>,
    span: &tracing::Span,
    started: Instant,
) -> Next<B> {
    let now = Instant::now();
    let decision = match &outcome {
        Ok(verdict) => {
            span.record("captcha.code", verdict.code().as_str());
            span.record("captcha.request_id", verdict.request_id());
            decide(Outcome::Verdict(verdict), shared.rules, || false)
        }
        Err(error) => {
            if error.class() == ErrorClass::Outage {
                shared.budget.outage(now);
            }
            decide(Outcome::Failed(error), shared.rules, || {
                shared.budget.take(now)
            })
        }
    };
    let kind = match &decision {
        Decision::Pass => OutcomeKind::Pass,
        Decision::Degraded(_) => OutcomeKind::Degraded,
        Decision::Refuse(Refusal::Rejected { .. }) => OutcomeKind::Refused,
        Decision::Refuse(Refusal::Overloaded { .. }) => OutcomeKind::Overloaded,
        Decision::Refuse(_) => OutcomeKind::Unavailable,
    };
    let observed = observe::Outcome {
        scene,
        kind,
        code: match &outcome {
            Ok(verdict) => verdict.code().as_str(),
            Err(error) => error.kind(),
        },
        latency: Some(now.saturating_duration_since(started)),
        error: outcome.as_ref().err(),
    };
    observe::record(shared.hook.as_ref(), &observed);
    let _entered = span.enter();
    match (decision, outcome) {
        (Decision::Pass, Ok(verdict)) => {
            span.record("captcha.outcome", "pass");
            // Test mode passes everyone: no measure of how many people come.
            if verdict.code() != &VerifyCode::T005 {
                shared.budget.genuine_pass(now);
            }
            tracing::info!(captcha.code = verdict.code().as_str(), "captcha passed");
            verdict_alarm(shared, now, &verdict, scene, true);
            let verified = CaptchaVerified::passed(verdict, scene.clone(), param);
            let issued = verified.issued();
            request.extensions_mut().insert(verified);
            Next::Call(request, Some(issued))
        }
        (Decision::Degraded(class), outcome) => {
            span.record("captcha.outcome", "degraded");
            let request_id = outcome.err().and_then(|error| {
                alarm(shared, now, &error, None);
                match error {
                    Error::Api(api) => Some(api.request_id().to_owned()),
                    _ => None,
                }
            });
            let verified = CaptchaVerified::degraded(class, request_id, scene.clone(), param);
            let issued = verified.issued();
            request.extensions_mut().insert(verified);
            Next::Call(request, Some(issued))
        }
        (Decision::Refuse(refusal), outcome) => {
            span.record("captcha.outcome", "refused");
            match outcome {
                Ok(verdict) => verdict_alarm(shared, now, &verdict, scene, false),
                Err(error) => alarm(shared, now, &error, Some(&refusal)),
            }
            tracing::debug!(captcha.refusal = refusal.code(), "captcha refused");
            Next::Refuse(refusal, request)
        }
        // A pass always comes from a verdict.
        (Decision::Pass, Err(error)) => {
            let refusal = Refusal::Unavailable {
                class: error.class(),
                retry_after: None,
            };
            alarm(shared, now, &error, Some(&refusal));
            Next::Refuse(refusal, request)
        }
    }
}

/// Logs a verdict that says something about the setup rather than the person (another scene,
/// test mode, encryption mode), a pass code or any code this crate does not know, and a
/// contradiction: at warn, with the fix, one line per kind per interval. A person's (or a
/// bot's) ordinary failure stays at debug.
fn verdict_alarm<V, E, R>(
    shared: &Shared<V, E, R>,
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
    shared.alarms.raise(alarm, now, |unlogged| {
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
fn alarm<V, E, R>(
    shared: &Shared<V, E, R>,
    now: Instant,
    error: &Error,
    refusal: Option<&Refusal>,
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
        _ => error.kind(),
    };
    shared.alarms.raise(key, now, |unlogged| {
        let request_id = match error {
            Error::Api(api) => Some(api.request_id()),
            _ => None,
        };
        if class == ErrorClass::Configuration {
            tracing::error!(
                captcha.error_class = class.as_str(),
                captcha.error_kind = error.kind(),
                captcha.request_id = request_id,
                captcha.advice = error.advice(),
                captcha.unlogged = unlogged,
                "captcha verification failed: {error}; {action}"
            );
        } else {
            tracing::warn!(
                captcha.error_class = class.as_str(),
                captcha.error_kind = error.kind(),
                captcha.request_id = request_id,
                captcha.policy = ?shared.rules.policy,
                captcha.unlogged = unlogged,
                "captcha verification failed: {error}; {action}"
            );
        }
    });
    let budget_spent = shared.rules.policy == FailurePolicy::Open
        && matches!(
            refusal,
            Some(Refusal::Unavailable {
                class: ErrorClass::Outage | ErrorClass::Configuration,
                retry_after: Some(_)
            })
        );
    if budget_spent {
        shared.alarms.raise("budget_spent", now, |unlogged| {
            tracing::warn!(
                captcha.unlogged = unlogged,
                "captcha outage outlasted the degraded budget: refusing (503) until the service answers"
            )
        });
    }
}
