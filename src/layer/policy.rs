//! What happens when the captcha service itself fails.

/// What the layer does when the service had an [outage](crate::error::ErrorClass::Outage):
/// it could not be asked, or did not answer properly.
///
/// - [`Open`](Self::Open), the default and the API document's advice: let the request
///   through, marked [degraded](crate::layer::CaptchaVerified::Degraded), within the
///   [`DegradedBudget`](crate::layer::DegradedBudget) (past it: 503). An outage of Alibaba's
///   service does not lock your users out, and a flood of bots cannot ride in on it.
/// - [`Closed`](Self::Closed): answer 503 (gRPC `UNAVAILABLE`). Nothing unverified gets in,
///   and nobody gets in while the service is down.
///
/// Other failures do not go to the policy: local overload and throttling are answered 503 with
/// `Retry-After`, a misconfigured account 503 (unless
/// [`fail_open_on_configuration_errors`](crate::layer::CaptchaLayerBuilder::fail_open_on_configuration_errors)),
/// and a request the service calls invalid 403. See [`ErrorClass`](crate::error::ErrorClass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Let the request through, marked degraded, within the degraded budget.
    #[default]
    Open,
    /// Refuse the request with 503.
    Closed,
}
