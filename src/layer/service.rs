//! The middleware service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::Service;

use super::builder::Config;
use super::future::Extraction;
use super::{CaptchaVerified, ResponseBody, ResponseFuture};
use crate::Verify;
use crate::extract::{CaptchaBody, ExtractParam};

/// The service made by [`CaptchaLayer`](super::CaptchaLayer). The inner service receives
/// `Request<CaptchaBody<B>>`: the original body, or the same bytes when an extractor read it.
pub struct CaptchaService<S, V, E> {
    inner: S,
    verifier: Arc<V>,
    extractor: E,
    config: Arc<Config>,
}

impl<S, V, E> CaptchaService<S, V, E> {
    pub(crate) fn new(inner: S, verifier: Arc<V>, extractor: E, config: Arc<Config>) -> Self {
        Self {
            inner,
            verifier,
            extractor,
            config,
        }
    }
}

impl<S: Clone, V, E: Clone> Clone for CaptchaService<S, V, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            verifier: Arc::clone(&self.verifier),
            extractor: self.extractor.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: std::fmt::Debug, V, E: std::fmt::Debug> std::fmt::Debug for CaptchaService<S, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptchaService")
            .field("inner", &self.inner)
            .field("extractor", &self.extractor)
            .finish_non_exhaustive()
    }
}

impl<S, V, E, B, ResBody> Service<Request<B>> for CaptchaService<S, V, E>
where
    S: Service<Request<CaptchaBody<B>>, Response = Response<ResBody>> + Clone,
    V: Verify,
    E: ExtractParam<B>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, V, E, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The instance polled ready goes into the future; a fresh clone stays for next time.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        // Only this layer may vouch for a request.
        request.extensions_mut().remove::<CaptchaVerified>();
        let request = request.map(CaptchaBody::new);

        let (scene, route_source) = match &self.config.routes {
            Some(routes) => match routes.protection(request.method(), request.uri().path()) {
                Some(protection) => (Some(protection.scene.clone()), protection.source),
                None => return ResponseFuture::pass_through(inner, request),
            },
            None => (self.config.scene.clone(), None),
        };
        let limits = self.config.limits;
        let extracting = match route_source {
            Some(source) => Extraction::Route(source.extract(request, limits)),
            None => Extraction::Layer(self.extractor.extract(request, limits)),
        };
        ResponseFuture::new(
            extracting,
            inner,
            Arc::clone(&self.verifier),
            Arc::clone(&self.config),
            scene,
        )
    }
}
