//! The names and formats of the `VerifyIntelligentCaptcha` protocol, written once for the
//! client and the emulator. Tests keep their own literals, as an independent check.

/// The header in which the gateway asks for a wait before the next request, in milliseconds.
pub(crate) const RETRY_AFTER_HEADER: &str = "x-acs-retry-after";
