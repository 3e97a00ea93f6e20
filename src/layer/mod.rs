//! [`CaptchaLayer`]: the tower middleware that verifies a captcha before the inner service
//! runs.
//!
//! ```text
//! request ─► route table ─► extractor ─► local check ─► verifier ─► decision ─► inner service
//!            (unprotected:               (missing, too   (Client)   pass → CaptchaVerified
//!             straight on)                long: 403,                 fail → 403 / gRPC 7
//!                                         no paid call)              no verdict → by class:
//!                                                                    outage → policy + budget
//!                                                                    others → 503 or 403
//! ```
//!
//! **What is protected.** A layer protects a table of [`Routes`]: [`CaptchaLayer::new`] one
//! route that matches every path (for a layer on a single route), or a table built with
//! [`CaptchaLayer::builder`]. A route protects every HTTP method unless it exempts some, and
//! each carries its scene, which is always sent. In axum, route-local layers
//! (`post(handler).layer(captcha)`, `Router::route_layer`) are the structural way: they cannot
//! miss a path. A table is for a whole app, or for tonic, where a layer sees every method
//! of a server.
//!
//! **What passes.** Only a verdict with `VerifyResult` true *and* a pass code (every `T…`, as
//! Alibaba documents; T005 only with [`allow_test_mode`](CaptchaLayerBuilder::allow_test_mode)). When no verdict
//! could be had, the [`ErrorClass`](crate::error::ErrorClass) decides: an outage goes to the
//! [`FailurePolicy`] and its [`DegradedBudget`]; local overload and throttling get 503 with
//! `Retry-After`; configuration errors 503; bad requests 403.
//!
//! # Metrics
//!
//! With the `metrics` feature, the layer records these through the
//! [`metrics`](https://docs.rs/metrics) facade, for whatever recorder the application installs
//! (Prometheus, OpenTelemetry, …). Without it, [`on_outcome`](CaptchaLayerBuilder::on_outcome)
//! hands each [`Outcome`] to a closure of your own.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `captcha_requests_total` | counter | `scene`, `outcome`, `code` | protected requests by what became of them: `outcome` is `pass`, `degraded`, `refused` (the captcha failed, or the service called the request invalid), `unavailable` (503: no verdict and no pass), `local_refusal` (no, or no valid, param or body: refused without asking the service), `overloaded`, `not_required` (a `WhenRisky` route let it through without a captcha) or `monitored` (a monitor route let through what it would have refused); `code` is the `VerifyCode`, the local refusal's code or the error's label |
//! | `captcha_verification_duration_seconds` | histogram | `scene`, `outcome` | how long the service took, for requests that asked it |
//! | `captcha_service_errors_total` | counter | `scene`, `class`, `code` | verifications without a verdict: `class` is the [`ErrorClass`](crate::error::ErrorClass) (`outage`, `configuration`, …), `code` the API error code or the error's kind |
//! | `captcha_verifications_in_flight` | gauge | `scene` | verifications under way |
//! | `captcha_requirement_total` | counter | `scene`, `reason` | [`Requirement::WhenRisky`] routes, requests without a param: `not_required`, or what raised the requirement (`account`, `ip`, `global`, `store_down`) |
//! | `captcha_monitor_would_refuse_total` | counter | `scene`, `reason` | [`Requirement::Monitor`] routes: requests let through that would have been refused, by [`Reason`] |
//!
//! **Handlers demand the verdict.** Take [`CaptchaVerified`] (or [`CaptchaPassed`]) as a
//! handler argument, so that a handler the layer does not cover fails closed.
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Json, Router, routing::post};
//! use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified, SceneId, Verification, VerifyCode, VerifyRequest};
//!
//! # let client = |_r: VerifyRequest| async { Ok(Verification::pass(VerifyCode::T001, "r")) };
//! // `client` is a `tower_aliyun_captcha::Client` in a real app.
//! let login = CaptchaLayer::new(client, SceneId::new("login-scene")?);
//!
//! async fn login_handler(verified: CaptchaVerified, Json(body): Json<serde_json::Value>) -> String {
//!     let degraded = matches!(verified, CaptchaVerified::Degraded(_));
//!     format!("welcome {} (captcha service down: {degraded})", body["user"])
//! }
//!
//! let app: Router = Router::new().route("/login", post(login_handler).layer(login));
//! # Ok(()) }
//! # #[cfg(not(feature = "axum"))] fn main() {}
//! ```

mod alarms;
mod budget;
mod builder;
mod decision;
mod future;
mod observe;
mod policy;
mod rejection;
mod requirement;
mod risk;
mod routes;
mod service;
mod shared;
mod steps;
mod verified;

pub use budget::{DegradedBudget, SharedBudgets};
pub use builder::{BuildError, CaptchaLayer, CaptchaLayerBuilder};
pub use future::ResponseFuture;
pub use observe::{Outcome, OutcomeKind};
pub use policy::FailurePolicy;
#[cfg(feature = "axum")]
pub use rejection::IntoResponder;
pub use rejection::{DefaultResponder, Reason, Refusal, RefusalBody, Respond};
pub use requirement::{FailedAttempt, Requirement, Risk, RiskError};
pub use routes::{Route, RouteError, Routes};
pub use service::CaptchaService;
#[cfg(feature = "tonic")]
pub use verified::require_verified;
pub use verified::{CaptchaPassed, CaptchaVerified, Degraded, Monitored, NotRequired};
