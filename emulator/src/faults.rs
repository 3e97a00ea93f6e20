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
    /// `ServiceUnavailable` 503, any other 400). With [`Faults::retry_after`], the answer
    /// carries `x-acs-retry-after`.
    ApiError,
    /// HTTP 200 `Success` whose `Result` is [`Faults::result_object`], whatever it holds: for
    /// verdicts that contradict themselves or lack fields.
    Result,
}

/// The faults in force: a [`FaultMode`] and added latency. Read and written as JSON over
/// `POST /emulator/faults`, e.g. `{"mode": "internal_error", "latency_ms": 200}`; `{}`
/// clears every fault.
///
/// ```
/// use std::time::Duration;
/// use aliyun_captcha_emulator::{FaultMode, Faults};
///
/// let faults: Faults = serde_json::from_str(r#"{"mode": "unavailable", "latency_ms": 20}"#).unwrap();
/// assert_eq!(faults.fault_mode(), FaultMode::Unavailable);
/// assert_eq!(faults.latency(), Duration::from_millis(20));
/// assert_eq!(faults, Faults::mode(FaultMode::Unavailable).with_latency(Duration::from_millis(20)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "FaultsWire", into = "FaultsWire")]
#[must_use]
pub struct Faults {
    mode: FaultMode,
    latency: Duration,
    error_code: Option<String>,
    retry_after: Option<Duration>,
    result: Option<serde_json::Value>,
}

/// The JSON form: durations in milliseconds.
#[derive(Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FaultsWire {
    mode: FaultMode,
    latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<serde_json::Value>,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl From<FaultsWire> for Faults {
    fn from(wire: FaultsWire) -> Self {
        Self {
            mode: wire.mode,
            latency: Duration::from_millis(wire.latency_ms),
            error_code: wire.error_code,
            retry_after: wire.retry_after_ms.map(Duration::from_millis),
            result: wire.result,
        }
    }
}

impl From<Faults> for FaultsWire {
    fn from(faults: Faults) -> Self {
        Self {
            mode: faults.mode,
            latency_ms: millis(faults.latency),
            error_code: faults.error_code,
            retry_after_ms: faults.retry_after.map(millis),
            result: faults.result,
        }
    }
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
    ///
    /// ```
    /// use aliyun_captcha_emulator::Faults;
    ///
    /// assert_eq!(Faults::api_error("Throttling.User").error_code(), Some("Throttling.User"));
    /// ```
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
    /// use aliyun_captcha_emulator::{FaultMode, Faults};
    ///
    /// // VerifyResult true with a failing code: a contradiction the layer must refuse.
    /// let faults = Faults::result(serde_json::json!({"VerifyResult": true, "VerifyCode": "F015"}));
    /// assert_eq!(faults.fault_mode(), FaultMode::Result);
    /// ```
    pub fn result(result: serde_json::Value) -> Self {
        Self {
            mode: FaultMode::Result,
            result: Some(result),
            ..Self::default()
        }
    }

    /// Asks for a wait in `x-acs-retry-after` on an error answer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_captcha_emulator::Faults;
    ///
    /// let faults = Faults::api_error("Throttling.User").with_retry_after(Duration::from_secs(3));
    /// assert_eq!(faults.retry_after(), Some(Duration::from_secs(3)));
    /// ```
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Adds latency before the answer (or before closing).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// What to answer instead of the normal response.
    pub fn fault_mode(&self) -> FaultMode {
        self.mode
    }

    /// The added latency.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The gateway code an [`ApiError`](FaultMode::ApiError) answer carries (`InternalError`
    /// when unset).
    pub fn error_code(&self) -> Option<&str> {
        self.error_code.as_deref()
    }

    /// The wait an [`ApiError`](FaultMode::ApiError) answer asks for in `x-acs-retry-after`.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The `Result` object a [`Result`](FaultMode::Result) answer carries.
    pub fn result_object(&self) -> Option<&serde_json::Value> {
        self.result.as_ref()
    }
}
