//! Alibaba Cloud Captcha 2.0 server-side verification for [tower] services.
//!
//! - [`layer`]: [`CaptchaLayer`](layer::CaptchaLayer), the middleware for axum, tonic and hyper
//!   services, with its route table, failure policy and refusals.
//! - [`extract`]: where the param comes from (header, query, form, JSON, gRPC metadata, several,
//!   or a closure).
//! - [`sign`]: the ACS3-HMAC-SHA256 request signature, pure and I/O-free.
//! - [`Client`]: the signed, pooled verification client; implements [`Verify`].
//! - [`Credentials`]: AccessKey pairs and STS tokens, from values or the environment.
//! - [`VerifyCode`], [`Verification`], [`Error`]: typed verdicts and failures.
//! - `emulator` (feature `emulator`): a local emulator of the service for tests and offline
//!   development.
//!
//! A `CaptchaVerifyParam` is single-use: nothing in this crate ever sends one twice.
//!
//! Runnable examples: `examples/login.rs` (axum), `examples/tonic.rs`, `examples/hyper.rs`,
//! `examples/verify.rs` (the client alone) and `examples/emulator.rs`.
//!
//! [tower]: https://docs.rs/tower
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod encoding;

pub mod client;
pub mod credentials;
pub mod error;
pub mod extract;
pub mod layer;
pub mod sign;
pub mod verify;

#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;

/// A type-erased error, as tower and hyper use them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub use client::Client;
pub use credentials::Credentials;
pub use error::Error;
pub use verify::{CaptchaVerifyParam, SceneId, Verification, Verify, VerifyCode, VerifyRequest};

/// The README's code blocks, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
