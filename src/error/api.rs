//! The service's (and its gateway's) error answers: `ApiErrorCode` and `ApiError`.

use std::fmt;
use std::time::Duration;

use super::ErrorClass;

macro_rules! api_error_codes {
    ($($variant:ident = $code:literal => $advice:literal,)*) => {
        /// The `Code` of an error answer from the service or its API gateway, from its text
        /// with `From<&str>`; a code this version does not know is kept as
        /// [`Unknown`](Self::Unknown). [`advice`](Self::advice) says what to do about it.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ApiErrorCode {
            $(#[doc = concat!("`", $code, "`: ", $advice)] $variant,)*
            /// A code this version of the crate does not know.
            Unknown(String),
        }

        impl ApiErrorCode {
            /// The code as the service writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $code,)*
                    Self::Unknown(code) => code,
                }
            }

            /// What to do about it.
            pub fn advice(&self) -> &'static str {
                match self {
                    $(Self::$variant => $advice,)*
                    Self::Unknown(_) => "See the message, and Alibaba Cloud's error center for the code.",
                }
            }
        }

        impl From<&str> for ApiErrorCode {
            fn from(code: &str) -> Self {
                match code {
                    $($code => Self::$variant,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }
    };
}

api_error_codes! {
    MissingParameter = "MissingParameter" =>
        "A required header or parameter was not sent; this is a bug in the caller.",
    InvalidParameter = "InvalidParameter" =>
        "A header or parameter has an invalid value (action, version or format).",
    ForbiddenAccountAccessDenied = "Forbidden.AccountAccessDenied" =>
        "Activate Captcha 2.0 for the account and settle any overdue payment.",
    ForbiddenRamUserAccessDenied = "Forbidden.RAMUserAccessDenied" =>
        "Grant the RAM user the AliyunYundunAFSFullAccess permission.",
    InternalError = "InternalError" =>
        "The service failed; retry later, and open a ticket if it persists.",
    ServiceUnavailable = "ServiceUnavailable" =>
        "The service is unavailable for now; retry later.",
    SignatureDoesNotMatch = "SignatureDoesNotMatch" =>
        "Check the AccessKey secret: the signature computed with it does not match.",
    InvalidTimeStampExpired = "InvalidTimeStamp.Expired" =>
        "Check the clock: the request time is more than 15 minutes off the service's (use NTP).",
    SignatureNonceUsed = "SignatureNonceUsed" =>
        "A signature nonce was reused; every request needs a fresh random nonce.",
    InvalidAccessKeyIdNotFound = "InvalidAccessKeyId.NotFound" =>
        "Check the AccessKey id (an expired STS token gives this too).",
    InvalidSecurityTokenExpired = "InvalidSecurityToken.Expired" =>
        "The STS token has expired; refresh the temporary credentials.",
    InvalidSecurityTokenMismatch = "InvalidSecurityToken.MismatchWithAccessKey" =>
        "The STS token does not belong to this AccessKey id; send the pair together.",
    Throttling = "Throttling" =>
        "Too many requests; slow down or raise the quota.",
    ThrottlingUser = "Throttling.User" =>
        "Too many requests from this account; slow down or raise the quota.",
    ThrottlingApi = "Throttling.Api" =>
        "Too many requests to this API; slow down and retry later.",
    IncompleteSignature = "IncompleteSignature" =>
        "The Authorization header is incomplete or signs too few headers; this is a bug in the caller.",
    InvalidActionNotFound = "InvalidAction.NotFound" =>
        "The endpoint does not serve VerifyIntelligentCaptcha; check that it is a Captcha 2.0 endpoint.",
    InvalidVersion = "InvalidVersion" =>
        "The endpoint does not serve API version 2023-03-05; check that it is a Captcha 2.0 endpoint.",
}

impl fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: HTTP status, `Code`, `Message` and `RequestId`.
///
/// ```
/// use tower_aliyun_captcha::Error;
/// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
///
/// // What to log: the status, the code, and the request id Alibaba's support asks for.
/// fn report(error: &Error) -> String {
///     match error {
///         Error::Api(api) => format!("{} {} ({})", api.status(), api.code(), api.request_id()),
///         other => other.label().to_owned(),
///     }
/// }
/// // A stand-in verifier can answer the way the service does.
/// let error = ApiError::new(400, ApiErrorCode::from("InvalidTimeStamp.Expired"), "expired", "R-1");
/// assert_eq!(error.code(), &ApiErrorCode::InvalidTimeStampExpired);
/// assert_eq!(report(&error.into()), "400 InvalidTimeStamp.Expired (R-1)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: u16,
    code: ApiErrorCode,
    message: String,
    request_id: String,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error answer as the service sent it.
    pub fn new(
        status: u16,
        code: ApiErrorCode,
        message: impl Into<String>,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            request_id: request_id.into(),
            retry_after: None,
        }
    }

    /// The same error, with the wait the service asked for (`x-acs-retry-after`).
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The wait the service asked for, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The error's [`ErrorClass`]: a throttling code or a requested wait is
    /// [`Throttled`](ErrorClass::Throttled); a 5xx or `InternalError`/`ServiceUnavailable` an
    /// [`Outage`](ErrorClass::Outage); `InvalidParameter`/`MissingParameter`
    /// [`BadRequest`](ErrorClass::BadRequest); every other code, known or not,
    /// [`Configuration`](ErrorClass::Configuration).
    pub fn class(&self) -> ErrorClass {
        let code = self.code.as_str();
        if self.retry_after.is_some() || code == "Throttling" || code.starts_with("Throttling.") {
            return ErrorClass::Throttled;
        }
        match &self.code {
            ApiErrorCode::InternalError | ApiErrorCode::ServiceUnavailable => ErrorClass::Outage,
            ApiErrorCode::InvalidParameter | ApiErrorCode::MissingParameter => {
                ErrorClass::BadRequest
            }
            _ if (500..600).contains(&self.status) => ErrorClass::Outage,
            _ => ErrorClass::Configuration,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The error code.
    pub fn code(&self) -> &ApiErrorCode {
        &self.code
    }

    /// The service's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The service's request id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "captcha service answered {} {} ({}), request id {}: {}",
            self.status,
            self.code,
            self.message,
            self.request_id,
            self.code.advice()
        )
    }
}

impl std::error::Error for ApiError {}
