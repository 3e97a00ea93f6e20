//! The names and formats of the `VerifyIntelligentCaptcha` protocol, written once for the
//! client and the emulator. Tests keep their own literals, as an independent check.

/// The header in which the gateway asks for a wait before the next request, in milliseconds.
pub(crate) const RETRY_AFTER_HEADER: &str = "x-acs-retry-after";

/// The header that carries the request id, as the body's `RequestId` does.
pub(crate) const REQUEST_ID_HEADER: &str = "x-acs-request-id";

/// What the client asks the gateway to answer in, as the official SDKs do.
pub(crate) const ACCEPT: &str = "application/json";
