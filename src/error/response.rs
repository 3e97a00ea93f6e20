//! Answers that could not be used: `ResponseErrorKind` and `ResponseError`.

use std::fmt;

/// How an answer was not a valid response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseErrorKind {
    /// The body is not the JSON the API documents.
    Malformed,
    /// The body is larger than the client's cap.
    TooLarge,
    /// An error status without an error body the gateway would send.
    UnexpectedStatus,
}

impl ResponseErrorKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed_response",
            Self::TooLarge => "oversized_response",
            Self::UnexpectedStatus => "unexpected_status",
        }
    }
}

/// The service's answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseError {
    pub(super) kind: ResponseErrorKind,
    status: u16,
    detail: String,
}

impl ResponseError {
    /// An unusable answer with HTTP `status`; `detail` says what was wrong with it.
    pub fn new(kind: ResponseErrorKind, status: u16, detail: impl Into<String>) -> Self {
        Self {
            kind,
            status,
            detail: detail.into(),
        }
    }

    /// How it was unusable.
    pub fn kind(&self) -> ResponseErrorKind {
        self.kind
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        self.status
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ResponseErrorKind::Malformed => "malformed response",
            ResponseErrorKind::TooLarge => "oversized response",
            ResponseErrorKind::UnexpectedStatus => "unexpected response",
        };
        write!(
            f,
            "{what} from the captcha service (HTTP {}): {}",
            self.status, self.detail
        )
    }
}

impl std::error::Error for ResponseError {}
