//! Alibaba Cloud Captcha 2.0 server-side verification for [tower] services.
//!
//! Put a [`CaptchaLayer`] in front of a login or signup route: it takes the
//! `CaptchaVerifyParam` from the request, verifies it with Alibaba Cloud's
//! `VerifyIntelligentCaptcha` API through a signed [`Client`], and either runs your handler with
//! the verdict in the request's extensions or refuses the request.
//!
//! # Quickstart
//!
//! ```sh
//! cargo add --git https://github.com/tower-aliyun-captcha/tower-aliyun-captcha tower-aliyun-captcha -F axum
//! ```
//!
//! (`cargo add tower-aliyun-captcha -F axum` once the crate is published.)
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # mod app {
//! use axum::{Router, routing::post};
//! use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified, Client, SceneId};
//!
//! async fn login(verified: CaptchaVerified) -> String {
//!     format!("welcome (captcha for scene {})", verified.scene())
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Credentials, region and endpoint from the environment: Alibaba Cloud's, or the
//!     // emulator's (the aliyun-captcha-emulator crate) in development.
//!     let client = Client::from_env()?.build()?;
//!     // The param comes in the `x-captcha-verify-param` header, or a JSON or form field
//!     // `captchaVerifyParam`; without one, 403 and the handler never runs.
//!     let captcha = CaptchaLayer::new(client, SceneId::new("login-scene")?);
//!     let app = Router::new().route("/login", post(login).layer(captcha));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! # Modules
//!
//! - [`layer`]: [`CaptchaLayer`], the middleware for axum, tonic and hyper
//!   services, with its route table, failure policy and refusals.
//! - [`extract`]: where the param comes from (header, query, form, JSON, gRPC metadata, several,
//!   or a closure).
//! - [`Client`]: the pooled verification client, signing each call with ACS3-HMAC-SHA256;
//!   implements [`Verify`].
//! - [`credentials`]: AccessKey pairs and STS tokens, and where they come from (the default
//!   chain of Alibaba's credentials libraries, STS roles, the ECS metadata service).
//! - [`VerifyCode`], [`Verification`], [`Error`]: typed verdicts and failures.
//!
//! The emulator of the service, for tests and offline development, is a crate of its own:
//! `aliyun-captcha-emulator` (a library, and the program of that name).
//!
//! The crate root re-exports the names a protected route needs end to end:
//! [`CaptchaLayer`], [`CaptchaVerified`], [`Client`], [`Credentials`], [`SceneId`],
//! [`CaptchaVerifyParam`], [`VerifyRequest`], [`Verify`], [`Verification`], [`VerifyCode`] and
//! [`Error`]. Everything else is reached through its module (`layer::Route`,
//! `client::Region`, …).
//!
//! A `CaptchaVerifyParam` is single-use: nothing in this crate ever sends one twice.
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `webpki-roots` | yes | trust Mozilla's root set, compiled in |
//! | `native-roots` | no | trust the operating system's certificate store |
//! | `axum` | no | [`CaptchaVerified`], `Option<CaptchaVerified>` and [`CaptchaPassed`](layer::CaptchaPassed) as axum extractors; routes also match axum's `OriginalUri` |
//! | `tonic` | no | `layer::require_verified` for tonic requests; refusals in tonic's body type |
//! | `metrics` | no | metrics through the [`metrics`](https://docs.rs/metrics) facade (see [`layer`]) |
//! | `encryption` | no | `encryption`: the `EncryptedSceneId` of V3 encryption mode (AES-256-CBC) |
//! | `redis` | no | `layer::Risk::redis`: the counts of `WhenRisky` routes shared by several instances |
//!
//! Runnable examples: `examples/axum.rs` (the smallest app, to read first), `examples/login.rs`
//! (the axum demo), `examples/hyper.rs`, `examples/verify.rs` (the client alone), and a tonic
//! service in the repository's `integration/examples/tonic.rs`; the emulator runs as the program
//! `aliyun-captcha-emulator` (`cargo install --path emulator` in a clone of the repository; also
//! `cargo run --example emulator`).
//!
//! [tower]: https://docs.rs/tower
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub,
    unnameable_types
)]
#![forbid(unsafe_code)]

mod encoding;
// The protocol's names and formats, written once: public for the emulator crate
// (aliyun-captcha-emulator), which checks what the client sends; not an API of its own.
#[doc(hidden)]
pub mod protocol;

/// The test vectors' one loader, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/common/vectors.rs"]
#[allow(unreachable_pub)] // `pub` for the integration tests that share the file.
mod test_vectors;

pub mod client;
pub mod credentials;
pub mod error;
pub mod extract;
pub mod layer;
// The request signature: public for the emulator crate (aliyun-captcha-emulator), which
// verifies what the client signs with the same canonical request; not an API of its own.
#[doc(hidden)]
pub mod sign;
pub mod verify;

#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub mod encryption;

/// A type-erased error, as tower and hyper use them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// What to re-export: the names a protected route needs end to end (the layer and its
// verdict, the client and what it is given, the verdict and error types). Everything else is
// reached through its module, so each item has one path besides these.
pub use client::Client;
pub use credentials::Credentials;
pub use error::Error;
pub use layer::{CaptchaLayer, CaptchaVerified};
pub use verify::{CaptchaVerifyParam, SceneId, Verification, Verify, VerifyCode, VerifyRequest};
