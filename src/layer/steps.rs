//! The steps between the response future's states: what follows an extraction, starting a
//! verification under the verifier's deadline, and settling its outcome. The future only moves
//! between states; everything it decides on its way is here.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::Request;

use bytes::Bytes;
use http_body::Body;

use super::alarms::Alarms;
use super::decision::{OnFailure, OnVerdict, on_earlier, on_failure, on_verdict};
use super::observe::{self, OutcomeKind};
use super::rejection::LayerRefusal;
use super::risk::decision::{Need, Raised};
use super::risk::gate::{AssessFuture, Assessed, Watch, assess};
use super::routes::Route;
use super::shared::Shared;
use super::verified::Issued;
use super::{CaptchaVerified, Refusal};
use super::{Reason, Requirement, Respond};
use crate::error::{ErrorClass, TransportError, TransportErrorKind};
use crate::extract::{BodyError, CaptchaBody, ExtractError};
use crate::{CaptchaVerifyParam, Error, SceneId, Verification, Verify, VerifyCode, VerifyRequest};

/// What the layer does next.
pub(crate) enum Next<B> {
    Call(Request<CaptchaBody<B>>, Option<Issued>),
    Verify(Request<CaptchaBody<B>>, CaptchaVerifyParam),
    /// On a `WhenRisky` route: find the request's counters first (and, without a param,
    /// whether it needs the captcha).
    Assess(AssessFuture<B>, Option<CaptchaVerifyParam>),
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
pub(crate) fn refused_early<B>(
    refusal: &Refusal,
    request: &Request<CaptchaBody<B>>,
    alarms: &Alarms,
) {
    tracing::debug!(
        captcha.refusal = refusal.code(),
        path = request.uri().path(),
        "captcha refused: the path reads as routes of two scenes"
    );
    // A crafted path, or a table written with both full and nested paths behind a nest,
    // which refuses every request to that path: said once in a while, so that the second
    // is seen.
    alarms.raise("ambiguous_path", Instant::now(), |unlogged| {
        tracing::warn!(
            path = request.uri().path(),
            captcha.unlogged = unlogged,
            "captcha refused a request whose path reads as routes of two scenes (400): behind \
             Router::nest, write the table with full paths or nested ones, not both"
        )
    });
}

/// The captcha is required of a request whose two readings (behind a nest, or raw and
/// normalised) fall under two `WhenRisky` routes: a table written with both full and nested
/// paths, or a crafted path. Said once in a while, like an ambiguous path.
pub(crate) fn two_risks(path: &str, alarms: &Alarms) {
    alarms.raise("two_risk_routes", Instant::now(), |unlogged| {
        tracing::warn!(
            path,
            captcha.unlogged = unlogged,
            "captcha required of a request whose path reads as two WhenRisky routes, whose \
             counts cannot be weighed: behind Router::nest, write the table with full paths or \
             nested ones, not both"
        )
    });
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
    route: &Route,
    shared: &Shared<V, R>,
) -> Next<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    let scene = &route.scene;
    let risk = match &route.requirement {
        Requirement::WhenRisky(risk) => Some(risk),
        _ => None,
    };
    let assessing = |risk, request, param: Option<CaptchaVerifyParam>| {
        let future = assess(
            risk,
            scene,
            &shared.alarms,
            request,
            shared.limits,
            param.is_some(),
        );
        Next::Assess(future, param)
    };
    let local = |code| Refusal::Rejected { code, local: true };
    let refusal = match param {
        Ok(Some(param)) => {
            let Some(verdict) = earlier.filter(|verdict| verdict.claim(&param, scene)) else {
                return match risk {
                    Some(risk) => assessing(risk, request, Some(param)),
                    None => Next::Verify(request, param),
                };
            };
            // Only a verdict this layer's own rules would have given (a stricter inner layer
            // stays strict); verifying again could only answer that the param was used.
            // A verdict counted in another budget is counted in this one too: a degraded pass
            // charged, a genuine pass learned from (as if this layer had verified it).
            let (budget, now) = (&shared.budget, Instant::now());
            let counted = verdict.counted_in(budget);
            let take_budget = || counted || budget.take(now);
            match on_earlier(&verdict, shared.rules, take_budget) {
                Ok(()) => {
                    if let CaptchaVerified::Passed(passed) = &verdict
                        && !counted
                        && passed.code() != &VerifyCode::T005
                    {
                        budget.genuine_pass(now);
                    }
                    let verdict = verdict.handed_on(budget);
                    let issued = verdict.issued();
                    request.extensions_mut().insert(verdict);
                    return Next::Call(request, issued);
                }
                Err(refusal) => refusal,
            }
        }
        // No param on a `WhenRisky` route: the counts decide.
        Ok(None) => match risk {
            Some(risk) => return assessing(risk, request, None),
            None => local(VerifyCode::F002),
        },
        Err(ExtractError::Invalid(invalid)) => local(invalid.code()),
        Err(ExtractError::Body(error)) => body_refusal(error),
    };
    refused_locally(refusal, request, scene, shared)
}

fn body_refusal(error: BodyError) -> Refusal {
    match error {
        BodyError::TooLarge => Refusal::PayloadTooLarge,
        BodyError::TimedOut => Refusal::BodyTimeout,
        BodyError::Unreadable => Refusal::BadBody,
    }
}

/// Refuses without asking the service, and says so.
fn refused_locally<V, R, B>(
    refusal: Refusal,
    request: Request<CaptchaBody<B>>,
    scene: &SceneId,
    shared: &Shared<V, R>,
) -> Next<B> {
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

/// The next step on a `WhenRisky` route once the request's counters are known: a request
/// with a param is verified; one without goes through while the risk is low, else it needs
/// the captcha (403 `captcha_required`, which the page answers with the widget).
pub(crate) fn assessed<V, R, B>(
    assessed: Assessed<B>,
    param: Option<CaptchaVerifyParam>,
    scene: &SceneId,
    shared: &Shared<V, R>,
) -> (Next<B>, Box<Watch>) {
    let Assessed {
        mut request,
        watch,
        need,
        store_error,
        body_error,
        no_address,
    } = assessed;
    if no_address {
        observe::no_address_alarm(&shared.alarms, scene);
    }
    if let Some(error) = &store_error {
        observe::store_alarm(&shared.alarms, scene, error);
    }
    if let Some(error) = body_error {
        return (
            refused_locally(body_refusal(error), request, scene, shared),
            watch,
        );
    }
    let Some(param) = param else {
        // Only a request with a param goes unassessed; were one missed, it needs the captcha.
        let need = need.unwrap_or(Need::Required(Raised::StoreDown));
        observe::requirement(scene, need.label());
        if need != Need::NotRequired {
            let refusal = Refusal::Rejected {
                code: VerifyCode::F002,
                local: true,
            };
            return (refused_locally(refusal, request, scene, shared), watch);
        }
        let outcome = observe::Outcome {
            scene,
            kind: OutcomeKind::NotRequired,
            code: need.label(),
            latency: None,
            error: None,
        };
        observe::record(shared.hook.as_ref(), &outcome);
        request
            .extensions_mut()
            .insert(CaptchaVerified::not_required(scene.clone()));
        return (Next::Call(request, None), watch);
    };
    (Next::Verify(request, param), watch)
}

/// On a route in monitor mode, a refusal that is the captcha's becomes a pass that says what
/// would have happened. A body that could not be read is still refused: the handler could not
/// have it either.
pub(crate) fn monitored<V, R, B>(next: Next<B>, route: &Route, shared: &Shared<V, R>) -> Next<B> {
    let Next::Refuse(refusal, mut request) = next else {
        return next;
    };
    let captchas = matches!(
        refusal,
        Refusal::Rejected { .. } | Refusal::Unavailable { .. } | Refusal::Overloaded { .. }
    );
    if !matches!(route.requirement, Requirement::Monitor) || !captchas {
        return Next::Refuse(refusal, request);
    }
    observe::would_refuse(shared.hook.as_ref(), &route.scene, &refusal);
    let verdict = CaptchaVerified::monitored(route.scene.clone(), refusal.reason(), refusal.code());
    request.extensions_mut().insert(verdict);
    Next::Call(request, None)
}

/// The layer's answer to a refused request, marked as the layer's: an outer `WhenRisky` layer
/// does not count an inner layer's `captcha_required` as a failed login.
pub(crate) fn refusal<V, R: Respond<T>, B, T>(
    refusal: &Refusal,
    request: Request<CaptchaBody<B>>,
    shared: &Shared<V, R>,
) -> http::Response<T> {
    let (parts, _body) = request.into_parts();
    let mut response = shared.responder.respond(refusal, &parts);
    response
        .extensions_mut()
        .insert(LayerRefusal(refusal.reason()));
    response
}

/// Whether a refusal counts as a failed attempt on a `WhenRisky` route: the service said the
/// captcha failed. A missing param is not one (the requirement was raised already).
pub(crate) fn is_failure(refusal: &Refusal) -> bool {
    matches!(refusal, Refusal::Rejected { local: false, .. })
        && refusal.reason() != Reason::CaptchaRequired
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
                    let verified =
                        CaptchaVerified::passed(verdict, scene.clone(), param, &shared.budget);
                    let issued = verified.issued();
                    request.extensions_mut().insert(verified);
                    Next::Call(request, issued)
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
                    let verified = CaptchaVerified::degraded(
                        class,
                        request_id,
                        scene.clone(),
                        param,
                        &shared.budget,
                    );
                    let issued = verified.issued();
                    request.extensions_mut().insert(verified);
                    Next::Call(request, issued)
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
