//! Answers that could not be used: `ResponseErrorKind` and `ResponseError`.

use std::fmt;

/// How an answer was not a valid response.
///
/// ```
/// use tower_aliyun_captcha::Error;
/// use tower_aliyun_captcha::error::{ResponseError, ResponseErrorKind};
///
/// let error: Error = ResponseError::new(ResponseErrorKind::TooLarge, 200, "over 64 KiB").into();
/// assert_eq!(error.label(), "oversized_response");
/// ```
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
///
/// ```
/// use tower_aliyun_captcha::error::{ResponseError, ResponseErrorKind};
///
/// let error = ResponseError::new(ResponseErrorKind::UnexpectedStatus, 502, "HTML error page");
/// assert_eq!(
///     error.to_string(),
///     "unexpected response from the captcha service (HTTP 502): HTML error page"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseError {
    pub(super) kind: ResponseErrorKind,
    status: u16,
    detail: String,
}

impl ResponseError {
    /// An unusable answer with HTTP `status`; `detail` says what was wrong with it.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ResponseError, ResponseErrorKind};
    ///
    /// let error = ResponseError::new(ResponseErrorKind::Malformed, 200, "missing Result");
    /// assert!(error.to_string().ends_with("missing Result"));
    /// ```
    pub fn new(kind: ResponseErrorKind, status: u16, detail: impl Into<String>) -> Self {
        Self {
            kind,
            status,
            detail: detail.into(),
        }
    }

    /// How it was unusable.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ResponseError, ResponseErrorKind};
    ///
    /// let error = ResponseError::new(ResponseErrorKind::Malformed, 200, "truncated");
    /// assert_eq!(error.kind(), ResponseErrorKind::Malformed);
    /// ```
    pub fn kind(&self) -> ResponseErrorKind {
        self.kind
    }

    /// The HTTP status of the answer.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ResponseError, ResponseErrorKind};
    ///
    /// assert_eq!(
    ///     ResponseError::new(ResponseErrorKind::UnexpectedStatus, 503, "").status(),
    ///     503
    /// );
    /// ```
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
