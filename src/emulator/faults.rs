//! Upstream failures the emulator can be told to produce, to test how callers cope.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the emulator's `POST /` does instead of answering normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultMode {
    /// Answer normally.
    #[default]
    None,
    /// HTTP 500 with the gateway's `InternalError` body.
    InternalError,
    /// HTTP 503 with the gateway's `ServiceUnavailable` body.
    Unavailable,
    /// HTTP 200 whose body is not valid JSON.
    MalformedJson,
    /// HTTP 200 that announces a longer body than it sends, then closes the connection.
    TruncatedBody,
    /// HTTP 200 with a valid but 1 MiB body.
    OversizedBody,
    /// Read the whole request, then close the connection without answering.
    CloseConnection,
    /// An error answer with the gateway code in [`Faults::error_code`] and its usual status
    /// (`Forbidden.*` 403, `InvalidAccessKeyId.NotFound` 404, `InternalError` 500,
    /// `ServiceUnavailable` 503, any other 400). With [`Faults::retry_after_ms`], the answer
    /// carries `x-acs-retry-after`.
    ApiError,
    /// HTTP 200 `Success` whose `Result` is [`Faults::result`], whatever it holds: for
    /// verdicts that contradict themselves or lack fields.
    Result,
}

/// The faults in force: a [`FaultMode`] and added latency. Read and written as JSON over
/// `POST /emulator/faults`, e.g. `{"mode": "internal_error", "latency_ms": 200}`; `{}`
/// clears every fault.
///
/// ```
/// use tower_aliyun_captcha::emulator::{FaultMode, Faults};
///
/// let faults: Faults = serde_json::from_str(r#"{"mode": "unavailable"}"#).unwrap();
/// assert_eq!(faults.mode, FaultMode::Unavailable);
/// assert_eq!(faults.latency(), std::time::Duration::ZERO);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
#[must_use]
pub struct Faults {
    /// What to answer instead of the normal response.
    pub mode: FaultMode,
    /// Milliseconds to wait before answering (or before closing).
    pub latency_ms: u64,
    /// The gateway code answered by [`FaultMode::ApiError`] (`InternalError` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The wait, in milliseconds, an [`ApiError`](FaultMode::ApiError) answer asks for in
    /// `x-acs-retry-after`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// The `Result` object a [`Result`](FaultMode::Result) answer carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

impl Faults {
    /// No fault: answer normally, at once.
    pub fn none() -> Self {
        Self::default()
    }

    /// Answers with `mode`.
    pub fn mode(mode: FaultMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// An error answer with the gateway `code` ([`FaultMode::ApiError`]).
    pub fn api_error(code: impl Into<String>) -> Self {
        Self {
            mode: FaultMode::ApiError,
            error_code: Some(code.into()),
            ..Self::default()
        }
    }

    /// A `Success` answer whose `Result` is `result`, as is ([`FaultMode::Result`]).
    ///
    /// ```
    /// use tower_aliyun_captcha::emulator::{FaultMode, Faults};
    ///
    /// // VerifyResult true with a failing code: a contradiction the layer must refuse.
    /// let faults = Faults::result(serde_json::json!({"VerifyResult": true, "VerifyCode": "F015"}));
    /// assert_eq!(faults.mode, FaultMode::Result);
    /// ```
    pub fn result(result: serde_json::Value) -> Self {
        Self {
            mode: FaultMode::Result,
            result: Some(result),
            ..Self::default()
        }
    }

    /// Asks for a wait in `x-acs-retry-after` (milliseconds) on an error answer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_aliyun_captcha::emulator::Faults;
    ///
    /// let faults = Faults::api_error("Throttling.User").with_retry_after(Duration::from_secs(3));
    /// assert_eq!(faults.retry_after_ms, Some(3000));
    /// ```
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Adds latency before the answer.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// The added latency.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
}
