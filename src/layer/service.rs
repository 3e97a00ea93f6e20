//! The middleware service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::Service;

use super::routes::{Protection, RouteId};
use super::shared::Shared;
use super::{CaptchaVerified, Refusal, Respond, ResponseFuture};
use crate::Verify;
use crate::extract::{CaptchaBody, ExtractFuture};

/// The service made by [`CaptchaLayer`](super::CaptchaLayer). The inner service receives
/// `Request<CaptchaBody<B>>`: the original body, or the same bytes when an extractor read it.
pub struct CaptchaService<S, V, R> {
    inner: S,
    shared: Arc<Shared<V, R>>,
}

impl<S, V, R> CaptchaService<S, V, R> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<V, R>>) -> Self {
        Self { inner, shared }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unprotected.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, V, R> Clone for CaptchaService<S, V, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, V, R> fmt::Debug for CaptchaService<S, V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptchaService")
            .field("inner", &self.inner)
            .field("extractor", &self.shared.extractor)
            .finish_non_exhaustive()
    }
}

impl<S, V, R, B, ResBody> Service<Request<B>> for CaptchaService<S, V, R>
where
    S: Service<Request<CaptchaBody<B>>, Response = Response<ResBody>> + Clone,
    V: Verify,
    R: Respond<ResBody>,
    ResBody: 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, V, R, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The instance polled ready goes into the future; a fresh clone stays for next time.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        let has_body = !http_body::Body::is_end_stream(request.body());
        let route = match shared.table.protecting(&request, has_body) {
            Protection::Route(route) => {
                if route.required_by_two_risks() {
                    super::steps::two_risks(request.uri().path(), &shared.alarms);
                }
                route
            }
            Protection::Unprotected => {
                let start = Start::PassThrough(request.map(CaptchaBody::new));
                return ResponseFuture::new(inner, shared, start);
            }
            Protection::Ambiguous => {
                let request = request.map(CaptchaBody::new);
                super::steps::refused_early(&Refusal::AmbiguousPath, &request, &shared.alarms);
                let (parts, _body) = request.into_parts();
                let response = shared.responder.respond(&Refusal::AmbiguousPath, &parts);
                return ResponseFuture::new(inner, shared, Start::Refused(response));
            }
        };
        // A verdict already here is trusted only if an outer layer of this crate gave it to
        // this very request, for the same scene and param: checked once the param is known.
        let earlier = request.extensions_mut().remove::<CaptchaVerified>();
        let request = request.map(CaptchaBody::new);
        let limits = shared.limits;
        let source = shared.table.route(route).extractor.as_ref();
        let extraction = source.unwrap_or(&shared.extractor).extract(request, limits);
        ResponseFuture::new(inner, shared, Start::Extract(extraction, route, earlier))
    }
}

/// How a request enters the layer's future.
pub(crate) enum Start<B, T> {
    /// Protected by the route at this index: its param is looked for, and a verdict an
    /// outer layer gave it is held until it is.
    Extract(ExtractFuture<B>, RouteId, Option<CaptchaVerified>),
    /// Refused before its param is looked for: the layer's answer.
    Refused(T),
    /// No route protects it: straight to the inner service.
    PassThrough(Request<CaptchaBody<B>>),
}
