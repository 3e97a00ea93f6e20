//! A gRPC answer on a `WhenRisky` route whose status comes in its trailers (a unary call that
//! succeeded, a stream that failed midway): counted as the trailers go by, before the client
//! sees them.
//!
//! The answer's body is the inner service's own type, so it can be wrapped only where that
//! type can hold another body: tonic's and axum's. With any other body type the attempt stays
//! counted, as it does when the body ends without trailers or the client hangs up first.

use std::any::Any;

use http::Response;

use super::gate::Watch;

/// Wraps the body of `response` so that `watch` is settled by its trailers, where its type can
/// be wrapped; otherwise `watch` is dropped, and the attempt stays counted.
pub(crate) fn count_at_trailers<T: 'static>(response: &mut Response<T>, watch: Box<Watch>) {
    let body = response.body_mut() as &mut dyn Any;
    let unwatched = Some(watch);
    #[cfg(feature = "tonic")]
    let unwatched =
        unwatched.and_then(|watch| watched::rewrap(body, watch, tonic::body::Body::new));
    #[cfg(feature = "axum")]
    let unwatched = unwatched.and_then(|watch| watched::rewrap(body, watch, axum::body::Body::new));
    let _ = (body, unwatched);
}

/// The body that watches, for the body types that can hold it.
#[cfg(any(feature = "tonic", feature = "axum"))]
mod watched {
    use std::any::Any;
    use std::pin::Pin;
    use std::task::{Context, Poll, ready};

    use http_body::{Body, Frame, SizeHint};
    use pin_project::pin_project;

    use super::super::gate::{RecordFuture, Watch};

    /// Puts the body into an [`AtTrailers`] inside a body of its own type, if it is a `B`;
    /// otherwise gives `watch` back.
    pub(super) fn rewrap<B: Body + Default + 'static>(
        body: &mut dyn Any,
        watch: Box<Watch>,
        new: fn(AtTrailers<B>) -> B,
    ) -> Option<Box<Watch>> {
        let Some(body) = body.downcast_mut::<B>() else {
            return Some(watch);
        };
        let inner = std::mem::take(body);
        *body = new(AtTrailers {
            inner,
            counting: Counting::Watching(watch),
        });
        None
    }

    /// A body whose trailers settle a [`Watch`] before they are handed on.
    #[pin_project]
    pub(crate) struct AtTrailers<B: Body> {
        #[pin]
        inner: B,
        counting: Counting<B::Data>,
    }

    enum Counting<D> {
        Watching(Box<Watch>),
        /// The store is told what the trailers said; they go out once it has answered (or its
        /// deadline passed).
        Recording {
            call: RecordFuture,
            trailers: Frame<D>,
        },
        Done,
    }

    impl<B: Body> Body for AtTrailers<B> {
        type Data = B::Data;
        type Error = B::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
            let mut this = self.project();
            loop {
                let watch = match this.counting {
                    Counting::Done => return this.inner.poll_frame(cx),
                    Counting::Recording { call, .. } => {
                        ready!(call.as_mut().poll(cx));
                        let Counting::Recording { trailers, .. } =
                            std::mem::replace(this.counting, Counting::Done)
                        else {
                            unreachable!("the state was Recording a moment ago")
                        };
                        return Poll::Ready(Some(Ok(trailers)));
                    }
                    Counting::Watching(watch) => watch,
                };
                let trailers = match ready!(this.inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => match frame.into_trailers() {
                        Ok(trailers) => trailers,
                        // Data goes by; the trailers are still to come.
                        Err(data) => return Poll::Ready(Some(Ok(data))),
                    },
                    // An error, or an end without trailers: the attempt stays counted.
                    ended => {
                        *this.counting = Counting::Done;
                        return Poll::Ready(ended);
                    }
                };
                match watch.trailers(&trailers) {
                    Some(call) => {
                        *this.counting = Counting::Recording {
                            call,
                            trailers: Frame::trailers(trailers),
                        }
                    }
                    None => {
                        *this.counting = Counting::Done;
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                }
            }
        }

        fn is_end_stream(&self) -> bool {
            !matches!(self.counting, Counting::Recording { .. }) && self.inner.is_end_stream()
        }

        fn size_hint(&self) -> SizeHint {
            self.inner.size_hint()
        }
    }
}
