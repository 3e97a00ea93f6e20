//! The steps between the response future's states: what follows an extraction, starting a
//! verification under the verifier's deadline, and settling its outcome. The future only moves
//! between states; everything it decides on its way is here.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::Request;

use super::builder::Shared;
use super::decision::{OnFailure, OnVerdict, on_earlier, on_failure, on_verdict};
use super::observe::{self, OutcomeKind};
use super::verified::Issued;
use super::{CaptchaVerified, Refusal};
use crate::error::{ErrorClass, TransportError, TransportErrorKind};
use crate::extract::{BodyError, CaptchaBody, ExtractError};
use crate::{CaptchaVerifyParam, Error, SceneId, Verification, Verify, VerifyCode, VerifyRequest};

/// What the layer does next.
pub(crate) enum Next<B> {
    Call(Request<CaptchaBody<B>>, Option<Issued>),
    Verify(Request<CaptchaBody<B>>, CaptchaVerifyParam),
    Refuse(Refusal, Request<CaptchaBody<B>>),
}

/// What a verification under way holds besides its future: its place under the layer's
/// bound and its span.
pub(crate) struct Held {
    slot: Slot,
    span: tracing::Span,
}

impl Held {
    /// Polls the verification inside its span, so that the client's span nests under it. Past
    /// the verifier's deadline it is an outage, like a client timeout.
    pub(crate) fn poll<F: Future<Output = Result<Verification, Error>>>(
        &self,
        future: Pin<&mut tokio::time::Timeout<F>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Verification, Error>> {
        let _entered = self.span.enter();
        future
            .poll(cx)
            .map(|result| result.unwrap_or_else(|_elapsed| Err(layer_deadline())))
    }
}

/// Starts verifying `param` under the verifier's deadline. The verifier bounds how many run
/// at once (the client's `max_connections`): past it, it fails as overloaded, which is 503.
pub(crate) fn start<V: Verify, R>(
    shared: &Shared<V, R>,
    scene: &SceneId,
    param: &CaptchaVerifyParam,
) -> (tokio::time::Timeout<V::Future>, Held) {
    let slot = Slot::new(scene);
    let span = tracing::info_span!(
        "captcha.verify_request",
        captcha.scene = scene.as_str(),
        captcha.code = tracing::field::Empty,
        captcha.request_id = tracing::field::Empty,
        captcha.outcome = tracing::field::Empty,
    );
    let verify = VerifyRequest::new(param.clone()).with_scene(scene.clone());
    let future = span.in_scope(|| {
        tokio::time::timeout(shared.verifier.deadline(), shared.verifier.verify(verify))
    });
    (future, Held { slot, span })
}

/// Logs a request refused before its param was looked for.
pub(crate) fn refused_early<B>(refusal: &Refusal, request: &Request<CaptchaBody<B>>) {
    tracing::debug!(
        captcha.refusal = refusal.code(),
        path = request.uri().path(),
        "captcha refused: the path reads as routes of two scenes"
    );
}

/// A verification under way, counted in the in-flight gauge while held (dropped with the
/// future too, if the client goes away mid-verification).
pub(crate) struct Slot {
    scene: SceneId,
    since: Instant,
}

impl Slot {
    fn new(scene: &SceneId) -> Self {
        observe::in_flight(scene, 1.0);
        Self {
            scene: scene.clone(),
            since: Instant::now(),
        }
    }

    /// Gives the place back; says when it was taken.
    pub(crate) fn release(self) -> Instant {
        self.since
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        observe::in_flight(&self.scene, -1.0);
    }
}

/// The next step once the param is (or is not) in hand.
pub(crate) fn extracted<V, R, B>(
    mut request: Request<CaptchaBody<B>>,
    param: Result<Option<CaptchaVerifyParam>, ExtractError>,
    earlier: Option<CaptchaVerified>,
    scene: &SceneId,
    shared: &Shared<V, R>,
) -> Next<B> {
    let local = |code| Refusal::Rejected { code, local: true };
    let refusal = match param {
        Ok(Some(param)) => {
            let Some(verdict) = earlier.filter(|verdict| verdict.claim(&param, scene)) else {
                return Next::Verify(request, param);
            };
            // Only a verdict this layer's own rules would have given (a stricter inner layer
            // stays strict); verifying again could only answer that the param was used.
            match on_earlier(&verdict, shared.rules) {
                Ok(()) => {
                    request.extensions_mut().insert(verdict);
                    return Next::Call(request, None);
                }
                Err(refusal) => refusal,
            }
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
pub(crate) fn settle<V, R, B>(
    outcome: Result<Verification, Error>,
    mut request: Request<CaptchaBody<B>>,
    param: CaptchaVerifyParam,
    scene: &SceneId,
    shared: &Shared<V, R>,
    held: Held,
) -> Next<B> {
    let Held { slot, span } = held;
    // The place under the bound is free again; the span closes here, with the verdict.
    let started = slot.release();
    let now = Instant::now();
    let latency = Some(now.saturating_duration_since(started));
    let _entered = span.enter();
    match outcome {
        Ok(verdict) => {
            span.record("captcha.code", verdict.code().as_str());
            span.record("captcha.request_id", verdict.request_id());
            let decision = on_verdict(&verdict, shared.rules);
            let kind = match decision {
                OnVerdict::Pass => OutcomeKind::Pass,
                OnVerdict::Refuse(_) => OutcomeKind::Refused,
            };
            let code = verdict.code().as_str();
            let observed = observe::Outcome {
                scene,
                kind,
                code,
                latency,
                error: None,
            };
            observe::record(shared.hook.as_ref(), &observed);
            let passed = decision == OnVerdict::Pass;
            observe::verdict_alarm(&shared.alarms, now, &verdict, scene, passed);
            match decision {
                OnVerdict::Pass => {
                    span.record("captcha.outcome", "pass");
                    // Test mode passes everyone: no measure of how many people come.
                    if verdict.code() != &VerifyCode::T005 {
                        shared.budget.genuine_pass(now);
                    }
                    tracing::info!(captcha.code = verdict.code().as_str(), "captcha passed");
                    let verified = CaptchaVerified::passed(verdict, scene.clone(), param);
                    let issued = verified.issued();
                    request.extensions_mut().insert(verified);
                    Next::Call(request, Some(issued))
                }
                OnVerdict::Refuse(refusal) => {
                    span.record("captcha.outcome", "refused");
                    tracing::debug!(captcha.refusal = refusal.code(), "captcha refused");
                    Next::Refuse(refusal, request)
                }
            }
        }
        Err(error) => {
            if error.class() == ErrorClass::Outage {
                shared.budget.outage(now);
            }
            let decision = on_failure(&error, shared.rules, || shared.budget.take(now));
            let kind = match &decision {
                OnFailure::Degraded(_) => OutcomeKind::Degraded,
                OnFailure::Refuse(Refusal::Rejected { .. }) => OutcomeKind::Refused,
                OnFailure::Refuse(Refusal::Overloaded { .. }) => OutcomeKind::Overloaded,
                OnFailure::Refuse(_) | OnFailure::OverBudget(_) => OutcomeKind::Unavailable,
            };
            let observed = observe::Outcome {
                scene,
                kind,
                code: error.label(),
                // Overloaded: turned away before the service was asked, so nothing to time.
                latency: latency.filter(|_| kind != OutcomeKind::Overloaded),
                error: Some(&error),
            };
            observe::record(shared.hook.as_ref(), &observed);
            let over_budget = matches!(decision, OnFailure::OverBudget(_));
            let answer = decision.answer();
            observe::alarm(
                &shared.alarms,
                shared.rules.policy,
                now,
                &error,
                answer.as_ref().err(),
                over_budget,
            );
            match answer {
                Ok(class) => {
                    span.record("captcha.outcome", "degraded");
                    let request_id = match error {
                        Error::Api(api) => Some(api.request_id().to_owned()),
                        _ => None,
                    };
                    let verified =
                        CaptchaVerified::degraded(class, request_id, scene.clone(), param);
                    let issued = verified.issued();
                    request.extensions_mut().insert(verified);
                    Next::Call(request, Some(issued))
                }
                Err(refusal) => {
                    span.record("captcha.outcome", "refused");
                    tracing::debug!(captcha.refusal = refusal.code(), "captcha refused");
                    Next::Refuse(refusal, request)
                }
            }
        }
    }
}
