//! What happens when the captcha service itself fails.

/// What the layer does when no verdict could be had: the service failed (timeout, network,
/// 5xx, malformed answer, account or permission error) or too many verifications are in
/// flight.
///
/// - [`Open`](Self::Open), the default and the API document's advice: let the request
///   through, marked [`degraded`](crate::layer::CaptchaVerified::is_degraded), and log a
///   warning. An outage of Alibaba's service does not lock your users out, but during one a
///   bot gets through too; handlers that guard something valuable can check the flag.
/// - [`Closed`](Self::Closed): answer 503 (gRPC `UNAVAILABLE`). Nothing unverified gets in,
///   and nobody gets in while the service is down.
///
/// ```
/// use tower_aliyun_captcha::layer::FailurePolicy;
///
/// assert_eq!(FailurePolicy::default(), FailurePolicy::Open);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Let the request through, marked degraded.
    #[default]
    Open,
    /// Refuse the request with 503.
    Closed,
}
