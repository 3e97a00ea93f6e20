//! An answer on a `WhenRisky` route, counted before it goes out: a failure recorded, the
//! attempt taken back or the account's count cleared, within the store's deadline (a gRPC
//! answer whose status is still to come, when its trailers go by: `trailers`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project::pin_project;

use super::gate::{RecordFuture, Settle, Watch};
use super::trailers;

/// The inner service's answer (or the layer's refusal), and the store call it leads to.
#[pin_project(project = Projection, project_replace = Owned)]
pub(crate) enum Recorded<F: Future> {
    Calling {
        #[pin]
        inner: F,
        /// On a `WhenRisky` route: what the answer is counted against.
        watch: Option<Box<Watch>>,
    },
    Recording {
        call: RecordFuture,
        answer: F::Output,
    },
    /// The layer's own answer, nothing to count.
    Answered {
        answer: F::Output,
    },
    Done,
}

impl<F: Future> Recorded<F> {
    pub(crate) fn new(inner: F, watch: Option<Box<Watch>>) -> Self {
        Self::Calling { inner, watch }
    }

    /// The layer's own answer, counted first on a `WhenRisky` route (`watch`): as a failure
    /// if `failed`, else the attempt taken back.
    pub(crate) fn refused(answer: F::Output, watch: Option<Box<Watch>>, failed: bool) -> Self {
        match watch.and_then(|watch| watch.refused(failed)) {
            Some(call) => Self::Recording { call, answer },
            None => Self::Answered { answer },
        }
    }
}

impl<F, B, E> Future for Recorded<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                Projection::Calling { inner, watch } => {
                    let mut answer = ready!(inner.poll(cx));
                    let call = match (&mut answer, watch.take()) {
                        (Ok(response), Some(watch)) => match watch.answered(response) {
                            Settle::Now(call) => call,
                            // Counted from the trailers, or, where this body type cannot be
                            // watched, the attempt stays counted.
                            Settle::AtTrailers(watch) => {
                                trailers::count_at_trailers(response, watch);
                                None
                            }
                        },
                        // A service error: the attempt stays counted.
                        _ => None,
                    };
                    let Some(call) = call else {
                        self.set(Self::Done);
                        return Poll::Ready(answer);
                    };
                    self.set(Self::Recording { call, answer });
                }
                Projection::Recording { call, .. } => {
                    ready!(call.as_mut().poll(cx));
                    let Owned::Recording { answer, .. } = self.as_mut().project_replace(Self::Done)
                    else {
                        unreachable!("the state was Recording a moment ago")
                    };
                    return Poll::Ready(answer);
                }
                Projection::Answered { .. } => {
                    let Owned::Answered { answer } = self.as_mut().project_replace(Self::Done)
                    else {
                        unreachable!("the state was Answered a moment ago")
                    };
                    return Poll::Ready(answer);
                }
                Projection::Done => panic!("Recorded polled after completion"),
            }
        }
    }
}
