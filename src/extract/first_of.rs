//! Several extractors, tried in order.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Request;
use pin_project::pin_project;

use super::{BodyLimits, CaptchaBody, ExtractParam, Extracted};

/// Tries `first`, then `second` when `first` found no param. Made by the extractors' `or`
/// (or [`FirstOf::new`], for closures); chain it for more.
///
/// ```
/// use tower_aliyun_captcha::extract::{ExtractParam, FormField, Header, JsonField};
///
/// let anywhere = Header::default()
///     .or(JsonField::default())
///     .or(FormField::default());
/// # fn check<E: ExtractParam<axum::body::Body>>(_: E) {}
/// # check(anywhere);
/// ```
#[derive(Debug, Clone)]
pub struct FirstOf<A, B> {
    first: A,
    second: B,
}

impl<A, B> FirstOf<A, B> {
    /// `first`, then `second`.
    pub fn new(first: A, second: B) -> Self {
        Self { first, second }
    }

    pub(crate) fn into_parts(self) -> (A, B) {
        (self.first, self.second)
    }
}

impl<Body, A, B> ExtractParam<Body> for FirstOf<A, B>
where
    Body: Send + 'static,
    A: ExtractParam<Body>,
    B: ExtractParam<Body>,
{
    type Future = FirstOfFuture<Body, A, B>;

    fn extract(&self, request: Request<CaptchaBody<Body>>, limits: BodyLimits) -> Self::Future {
        FirstOfFuture {
            state: State::First {
                future: self.first.extract(request, limits),
            },
            second: self.second.clone(),
            limits,
        }
    }
}

/// The future of [`FirstOf`].
#[pin_project]
pub struct FirstOfFuture<Body, A: ExtractParam<Body>, B: ExtractParam<Body>> {
    #[pin]
    state: State<A::Future, B::Future>,
    second: B,
    limits: BodyLimits,
}

impl<Body, A: ExtractParam<Body>, B: ExtractParam<Body>> std::fmt::Debug
    for FirstOfFuture<Body, A, B>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstOfFuture").finish_non_exhaustive()
    }
}

#[pin_project(project = StateProjection)]
enum State<FirstFuture, SecondFuture> {
    First {
        #[pin]
        future: FirstFuture,
    },
    Second {
        #[pin]
        future: SecondFuture,
    },
}

impl<Body, A, B> Future for FirstOfFuture<Body, A, B>
where
    Body: Send + 'static,
    A: ExtractParam<Body>,
    B: ExtractParam<Body>,
{
    type Output = Extracted<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProjection::First { future } => {
                    let extracted = ready!(future.poll(cx));
                    if !matches!(extracted.param, Ok(None)) {
                        return Poll::Ready(extracted);
                    }
                    let future = this.second.extract(extracted.request, *this.limits);
                    this.state.set(State::Second { future });
                }
                StateProjection::Second { future } => return future.poll(cx),
            }
        }
    }
}
