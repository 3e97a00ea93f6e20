//! The response future: extract → check → verify → call the inner service, or refuse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{Request, Response};
use pin_project::pin_project;
use tokio::sync::OwnedSemaphorePermit;
use tower::Service;

use super::builder::Config;
use super::{CaptchaVerified, FailurePolicy, Refusal, ResponseBody};
use crate::extract::{
    BodyError, BoxExtractFuture, CaptchaBody, ExtractError, ExtractParam, Extracted,
};
use crate::{Error, SceneId, Verification, Verify, VerifyRequest};

/// The future of [`CaptchaService`](super::CaptchaService): a small state machine, not boxed.
#[pin_project]
pub struct ResponseFuture<S, V, E, B>
where
    S: Service<Request<CaptchaBody<B>>>,
    V: Verify,
    E: ExtractParam<B>,
{
    #[pin]
    state: State<Extraction<E::Future, B>, V::Future, S::Future>,
    inner: Option<S>,
    verifier: Option<Arc<V>>,
    config: Option<Arc<Config>>,
    scene: Option<SceneId>,
    /// The request, held while its param is verified.
    request: Option<Request<CaptchaBody<B>>>,
    /// A slot of the in-flight bound, held while verifying.
    permit: Option<OwnedSemaphorePermit>,
    span: tracing::Span,
    started: Option<Instant>,
}

/// The layer's extractor at work, or the one a route named (boxed: chosen at run time).
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

#[pin_project(project = StateProjection)]
enum State<ExtractFuture, VerifyFuture, InnerFuture> {
    Extracting {
        #[pin]
        future: ExtractFuture,
    },
    Verifying {
        #[pin]
        future: VerifyFuture,
    },
    Calling {
        #[pin]
        future: InnerFuture,
    },
    Refused {
        response: Option<Response<http_body_util::Full<bytes::Bytes>>>,
    },
}

impl<S, V, E, B> ResponseFuture<S, V, E, B>
where
    S: Service<Request<CaptchaBody<B>>>,
    V: Verify,
    E: ExtractParam<B>,
{
    pub(crate) fn new(
        extracting: Extraction<E::Future, B>,
        inner: S,
        verifier: Arc<V>,
        config: Arc<Config>,
        scene: Option<SceneId>,
    ) -> Self {
        Self {
            state: State::Extracting { future: extracting },
            inner: Some(inner),
            verifier: Some(verifier),
            config: Some(config),
            scene,
            request: None,
            permit: None,
            span: tracing::Span::none(),
            started: None,
        }
    }

    /// A request no route protects: straight to the inner service.
    pub(crate) fn pass_through(mut inner: S, request: Request<CaptchaBody<B>>) -> Self {
        Self {
            state: State::Calling {
                future: inner.call(request),
            },
            inner: None,
            verifier: None,
            config: None,
            scene: None,
            request: None,
            permit: None,
            span: tracing::Span::none(),
            started: None,
        }
    }
}

/// What to do next, decided from a state's output.
enum Step<B> {
    Verify(Request<CaptchaBody<B>>, VerifyRequest),
    Call(Request<CaptchaBody<B>>),
    Refuse(Refusal, Request<CaptchaBody<B>>),
}

fn body_refusal(error: BodyError) -> Refusal {
    match error {
        BodyError::TooLarge => Refusal::PayloadTooLarge,
        BodyError::TimedOut => Refusal::BodyTimeout,
        BodyError::Unreadable => Refusal::BadBody,
    }
}

impl<S, V, E, B, ResBody> Future for ResponseFuture<S, V, E, B>
where
    S: Service<Request<CaptchaBody<B>>, Response = Response<ResBody>>,
    V: Verify,
    E: ExtractParam<B>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let step = match this.state.as_mut().project() {
                StateProjection::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::Inner)));
                }
                StateProjection::Refused { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::Refusal)));
                }
                StateProjection::Extracting { future } => {
                    let Extracted { request, param } = ready!(future.poll(cx));
                    match param {
                        Ok(Some(param)) => {
                            let mut verify = VerifyRequest::new(param);
                            if let Some(scene) = this.scene.clone() {
                                verify = verify.with_scene(scene);
                            }
                            Step::Verify(request, verify)
                        }
                        // No param, or one that cannot be real: refused without a paid call.
                        Ok(None) => Step::Refuse(
                            Refusal::Rejected {
                                code: crate::VerifyCode::F002,
                                local: true,
                            },
                            request,
                        ),
                        Err(ExtractError::Invalid(invalid)) => Step::Refuse(
                            Refusal::Rejected {
                                code: invalid.code(),
                                local: true,
                            },
                            request,
                        ),
                        Err(ExtractError::Body(error)) => {
                            Step::Refuse(body_refusal(error), request)
                        }
                    }
                }
                StateProjection::Verifying { future } => {
                    let outcome = ready!(future.poll(cx));
                    this.permit.take();
                    let request = this.request.take().expect("request held while verifying");
                    let latency_us = this.started.map_or(0, |s| s.elapsed().as_micros() as u64);
                    this.span.record("latency_us", latency_us);
                    decide(
                        outcome,
                        request,
                        this.config.as_deref(),
                        this.scene,
                        this.span,
                    )
                }
            };
            match step {
                Step::Verify(request, verify) => {
                    let config = this.config.as_deref().expect("config set when protecting");
                    match Arc::clone(&config.in_flight).try_acquire_owned() {
                        Ok(permit) => {
                            *this.permit = Some(permit);
                            *this.span = tracing::info_span!(
                                "captcha",
                                scene = this.scene.as_ref().map(SceneId::as_str),
                                code = tracing::field::Empty,
                                request_id = tracing::field::Empty,
                                latency_us = tracing::field::Empty,
                            );
                            *this.started = Some(Instant::now());
                            let verifier = this.verifier.as_ref().expect("verifier set");
                            let future = this.span.in_scope(|| verifier.verify(verify));
                            *this.request = Some(request);
                            this.state.set(State::Verifying { future });
                        }
                        Err(_) => {
                            let step = overloaded(request, config, this.scene);
                            apply(step, &mut this.state, this.inner, this.config.as_deref());
                        }
                    }
                }
                step => apply(step, &mut this.state, this.inner, this.config.as_deref()),
            }
        }
    }
}

/// Sets the next state for a `Call` or `Refuse` step.
fn apply<S, B, EF, VF>(
    step: Step<B>,
    state: &mut Pin<&mut State<EF, VF, S::Future>>,
    inner: &mut Option<S>,
    config: Option<&Config>,
) where
    S: Service<Request<CaptchaBody<B>>>,
{
    match step {
        Step::Call(request) => {
            let mut inner = inner.take().expect("the inner service is called once");
            state.set(State::Calling {
                future: inner.call(request),
            });
        }
        Step::Refuse(refusal, request) => {
            let config = config.expect("config set when protecting");
            let (parts, _body) = request.into_parts();
            let response = config.responder.respond(&refusal, &parts);
            state.set(State::Refused {
                response: Some(response),
            });
        }
        Step::Verify(..) => unreachable!("verification is started by the caller"),
    }
}

fn decide<B>(
    outcome: Result<Verification, Error>,
    mut request: Request<CaptchaBody<B>>,
    config: Option<&Config>,
    scene: &Option<SceneId>,
    span: &tracing::Span,
) -> Step<B> {
    let config = config.expect("config set when protecting");
    match outcome {
        Ok(verdict) => {
            span.record("code", verdict.code().as_str());
            span.record("request_id", verdict.request_id());
            if verdict.passed() {
                let verified = CaptchaVerified::passed(
                    verdict.code().clone(),
                    verdict.request_id().to_owned(),
                    scene.clone(),
                );
                request.extensions_mut().insert(verified);
                Step::Call(request)
            } else {
                span.in_scope(|| {
                    tracing::info!(code = verdict.code().as_str(), "captcha rejected")
                });
                Step::Refuse(
                    Refusal::Rejected {
                        code: verdict.code().clone(),
                        local: false,
                    },
                    request,
                )
            }
        }
        Err(error) => {
            let request_id = match &error {
                Error::Api(api) => Some(api.request_id().to_owned()),
                _ => None,
            };
            span.in_scope(|| {
                tracing::warn!(
                    kind = error.kind(),
                    reason = %error,
                    request_id = request_id.as_deref(),
                    policy = ?config.policy,
                    "captcha verification failed",
                )
            });
            fail(request, config, scene, request_id)
        }
    }
}

fn overloaded<B>(
    request: Request<CaptchaBody<B>>,
    config: &Config,
    scene: &Option<SceneId>,
) -> Step<B> {
    tracing::warn!(
        kind = "overloaded",
        policy = ?config.policy,
        "too many captcha verifications in flight",
    );
    fail(request, config, scene, None)
}

fn fail<B>(
    mut request: Request<CaptchaBody<B>>,
    config: &Config,
    scene: &Option<SceneId>,
    request_id: Option<String>,
) -> Step<B> {
    match config.policy {
        FailurePolicy::Open => {
            request
                .extensions_mut()
                .insert(CaptchaVerified::degraded(request_id, scene.clone()));
            Step::Call(request)
        }
        FailurePolicy::Closed => Step::Refuse(Refusal::Unavailable, request),
    }
}
