//! The response future: extract → verify → decide → call the inner service, or refuse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project::pin_project;
use tower::Service;

use super::builder::Shared;
use super::service::Start;
use super::steps;
use super::verified::Issued;
use super::{CaptchaVerified, Refusal, Respond};
use crate::extract::{CaptchaBody, ExtractFuture, Extracted};
use crate::{CaptchaVerifyParam, Verify};

/// The future of [`CaptchaService`](super::CaptchaService): a small state machine, not boxed.
#[pin_project]
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture<S, V, R, B>
where
    S: Service<Request<CaptchaBody<B>>>,
    V: Verify,
{
    #[pin]
    state: State<ExtractFuture<B>, V::Future, S::Future, B>,
    /// The inner service, ready; called once.
    inner: S,
    shared: Arc<Shared<V, R>>,
    /// The protecting route's index in the table.
    route: usize,
    /// A verdict the request carried when it reached the layer.
    earlier: Option<CaptchaVerified>,
}

impl<S, V, R, B> std::fmt::Debug for ResponseFuture<S, V, R, B>
where
    S: Service<Request<CaptchaBody<B>>>,
    V: Verify,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

// The verifying state holds the request while it waits; boxing it would cost an allocation
// per request to save stack in a future that is pinned once.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProjection, project_replace = StateOwned)]
enum State<Extraction, VerifyFuture, InnerFuture, B> {
    Extracting {
        #[pin]
        future: Extraction,
    },
    Verifying {
        #[pin]
        future: tokio::time::Timeout<VerifyFuture>,
        /// Its place in the in-flight gauge and its span, until the verdict is in.
        held: steps::Held,
        request: Request<CaptchaBody<B>>,
        param: CaptchaVerifyParam,
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

impl<S, V, R, B> ResponseFuture<S, V, R, B>
where
    S: Service<Request<CaptchaBody<B>>>,
    V: Verify,
{
    pub(crate) fn new(mut inner: S, shared: Arc<Shared<V, R>>, start: Start<B>) -> Self {
        let (state, route, earlier) = match start {
            Start::Extract {
                extraction,
                route,
                earlier,
            } => (State::Extracting { future: extraction }, route, earlier),
            Start::Refuse(refusal, request) => (State::Refusing { refusal, request }, 0, None),
            Start::PassThrough(request) => {
                let future = inner.call(request);
                (
                    State::Calling {
                        future,
                        issued: None,
                    },
                    0,
                    None,
                )
            }
        };
        Self {
            state,
            inner,
            shared,
            route,
            earlier,
        }
    }
}

impl<S, V, R, B, ResBody> Future for ResponseFuture<S, V, R, B>
where
    S: Service<Request<CaptchaBody<B>>, Response = Response<ResBody>>,
    V: Verify,
    R: Respond<ResBody>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let shared = &**this.shared;
            let scene = &shared.table.route(*this.route).scene;
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
                    steps::Next::Refuse(refusal, request)
                }
                StateProjection::Extracting { future } => {
                    let Extracted { request, param } = ready!(future.poll(cx));
                    steps::extracted(request, param, this.earlier.take(), scene, shared)
                }
                StateProjection::Verifying { future, held, .. } => {
                    let outcome = ready!(held.poll(future, cx));
                    let StateOwned::Verifying {
                        held,
                        request,
                        param,
                        ..
                    } = this.state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("the state was Verifying a moment ago")
                    };
                    steps::settle(outcome, request, param, scene, shared, held)
                }
            };
            match next {
                steps::Next::Call(request, issued) => {
                    let future = this.inner.call(request);
                    this.state.set(State::Calling { future, issued });
                }
                steps::Next::Refuse(refusal, request) => {
                    this.state.set(State::Done);
                    let (parts, _body) = request.into_parts();
                    let response = shared.responder.respond(&refusal, &parts);
                    return Poll::Ready(Ok(response));
                }
                steps::Next::Verify(request, param) => {
                    let (future, held) = steps::start(shared, scene, &param);
                    this.state.set(State::Verifying {
                        future,
                        held,
                        request,
                        param,
                    });
                }
            }
        }
    }
}
