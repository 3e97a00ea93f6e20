//! The response future: extract → (assess) → verify → decide → call the inner service, or
//! refuse.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project::pin_project;
use tower::Service;

use super::risk::{gate::AssessFuture, gate::Watch, record::Recorded};
use super::service::Start;
use super::shared::Shared;
use super::verified::Issued;
use super::{CaptchaVerified, Respond, routes::RouteId, steps};
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
    /// The protecting route.
    route: RouteId,
    /// On a `WhenRisky` route: what the answer is counted against.
    watch: Option<Box<Watch>>,
}

impl<S: Service<Request<CaptchaBody<B>>>, V: Verify, R, B> fmt::Debug
    for ResponseFuture<S, V, R, B>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

// The verifying state holds the request while it waits; boxing it would cost an allocation
// per request to save stack in a future that is pinned once.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProjection, project_replace = StateOwned)]
enum State<Extraction, VerifyFuture, InnerFuture: Future, B> {
    Extracting {
        #[pin]
        future: Extraction,
        /// A verdict the request carried when it reached the layer.
        earlier: Option<CaptchaVerified>,
    },
    /// On a `WhenRisky` route: its counters, and whether it needs the captcha.
    Assessing {
        future: AssessFuture<B>,
        param: Option<CaptchaVerifyParam>,
    },
    Verifying {
        #[pin]
        future: tokio::time::Timeout<VerifyFuture>,
        /// Its place in the in-flight gauge and its span, until the verdict is in.
        held: steps::Held,
        request: Request<CaptchaBody<B>>,
        param: CaptchaVerifyParam,
    },
    /// The inner service's answer, or the layer's refusal; counted on a `WhenRisky` route.
    Answering {
        #[pin]
        future: Recorded<InnerFuture>,
        /// Spends the verdict this layer gave, once the inner service has answered.
        issued: Option<Issued>,
    },
    Done,
}

impl<S: Service<Request<CaptchaBody<B>>>, V: Verify, R, B> ResponseFuture<S, V, R, B> {
    pub(crate) fn new(
        mut inner: S,
        shared: Arc<Shared<V, R>>,
        start: Start<B, S::Response>,
    ) -> Self {
        let answer = |future| State::Answering {
            future,
            issued: None,
        };
        let none = RouteId::default(); // answering from the start: never looked at
        let (state, route) = match start {
            Start::Extract(future, route, earlier) => {
                (State::Extracting { future, earlier }, route)
            }
            Start::Refused(response) => {
                (answer(Recorded::refused(Ok(response), None, false)), none)
            }
            Start::PassThrough(request) => (answer(Recorded::new(inner.call(request), None)), none),
        };
        Self {
            state,
            inner,
            shared,
            route,
            watch: None,
        }
    }
}

/// Moves the fields out of the state just polled, leaving `Done`.
macro_rules! take {
    ($state:expr, $variant:ident { $($field:ident),* }) => {
        let StateOwned::$variant { $($field,)* .. } = $state.as_mut().project_replace(State::Done)
        else {
            unreachable!(concat!("the state was ", stringify!($variant), " a moment ago"))
        };
    };
}

impl<S, V, R, B, ResBody> Future for ResponseFuture<S, V, R, B>
where
    S: Service<Request<CaptchaBody<B>>, Response = Response<ResBody>>,
    V: Verify,
    R: Respond<ResBody>,
    ResBody: 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let shared = &**this.shared;
            let route = shared.table.route(*this.route);
            let next = match this.state.as_mut().project() {
                StateProjection::Answering { future, .. } => {
                    let answer = ready!(future.poll(cx));
                    this.state.set(State::Done);
                    return Poll::Ready(answer);
                }
                StateProjection::Done => panic!("ResponseFuture polled after completion"),
                StateProjection::Extracting { future, earlier } => {
                    let Extracted { request, param } = ready!(future.poll(cx));
                    steps::extracted(request, param, earlier.take(), route, shared)
                }
                StateProjection::Assessing { future, .. } => {
                    let assessed = ready!(future.as_mut().poll(cx));
                    take!(this.state, Assessing { param });
                    let (next, watch) = steps::assessed(assessed, param, &route.scene, shared);
                    *this.watch = Some(watch);
                    next
                }
                StateProjection::Verifying { future, held, .. } => {
                    let outcome = ready!(held.poll(future, cx));
                    take!(
                        this.state,
                        Verifying {
                            held,
                            request,
                            param
                        }
                    );
                    steps::settle(outcome, request, param, &route.scene, shared, held)
                }
            };
            let state = match steps::monitored(next, route, shared) {
                steps::Next::Call(request, issued) => {
                    let future = Recorded::new(this.inner.call(request), this.watch.take());
                    State::Answering { future, issued }
                }
                steps::Next::Refuse(refusal, request) => {
                    let response = steps::refusal(&refusal, request, shared);
                    let failed = steps::is_failure(&refusal);
                    let future = Recorded::refused(Ok(response), this.watch.take(), failed);
                    State::Answering {
                        future,
                        issued: None,
                    }
                }
                steps::Next::Assess(future, param) => State::Assessing { future, param },
                steps::Next::Verify(request, param) => {
                    let (future, held) = steps::start(shared, &route.scene, &param);
                    State::Verifying {
                        future,
                        held,
                        request,
                        param,
                    }
                }
            };
            this.state.set(state);
        }
    }
}
