//! Alibaba Cloud Captcha 2.0 server-side verification for any [tower] service.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod encoding;

pub mod client;
pub mod credentials;
pub mod error;
pub mod sign;
pub mod verify;

#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;

pub use client::Client;
pub use credentials::Credentials;
pub use error::Error;
pub use verify::{CaptchaVerifyParam, SceneId, Verification, Verify, VerifyCode, VerifyRequest};
