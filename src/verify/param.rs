//! The validated inputs: the param the widget produced, and the scene it must belong to.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::VerifyCode;

/// The longest `CaptchaVerifyParam` accepted, in bytes.
///
/// Real params are a few KiB at most (a V3 param is a few hundred bytes of base64; a V2 param a
/// JSON object with a device token). Anything longer is not from Alibaba's widget, and is
/// refused locally as [`VerifyCode::F003`] instead of being sent (and billed).
pub(crate) const MAX_PARAM_LEN: usize = 16 * 1024;

/// The longest scene id accepted, in bytes. Alibaba's are 8 characters.
pub(crate) const MAX_SCENE_ID_LEN: usize = 128;

/// A `CaptchaVerifyParam` as the front-end widget produced it: non-empty, at most
/// 16 KiB, passed on unchanged.
///
/// Its `Debug` output shows only its length and first characters: the full param is a
/// single-use token and is never logged.
///
/// ```
/// use tower_aliyun_captcha::{CaptchaVerifyParam, VerifyCode};
///
/// let param = CaptchaVerifyParam::new("eyJjZXJ0aWZ5SWQiOiJhYmMifQ==")?;
/// assert_eq!(param.as_str(), "eyJjZXJ0aWZ5SWQiOiJhYmMifQ==");
///
/// let empty = CaptchaVerifyParam::new("").unwrap_err();
/// assert_eq!(empty.code(), VerifyCode::F002);
/// let long = CaptchaVerifyParam::new("x".repeat(20_000)).unwrap_err();
/// assert_eq!(long.code(), VerifyCode::F003);
/// # Ok::<_, tower_aliyun_captcha::verify::InvalidParam>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CaptchaVerifyParam(Arc<str>);

impl CaptchaVerifyParam {
    /// Checks and wraps a param.
    pub fn new(param: impl Into<String>) -> Result<Self, InvalidParam> {
        Self::check(&param.into()).map(|p| Self(Arc::from(p)))
    }

    /// Checks a param given as bytes (a header or body field), which must be UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidParam> {
        let text = std::str::from_utf8(bytes).map_err(|_| InvalidParam::NotUtf8)?;
        Self::check(text).map(|p| Self(Arc::from(p)))
    }

    /// A param that no widget made, for [`Client::check`](crate::Client::check): the service
    /// answers it with a verdict (a failing one) when everything else works.
    pub(crate) fn startup_check() -> Self {
        Self(Arc::from("tower-aliyun-captcha-startup-check"))
    }

    fn check(param: &str) -> Result<&str, InvalidParam> {
        if param.trim().is_empty() {
            Err(InvalidParam::Empty)
        } else if param.len() > MAX_PARAM_LEN {
            Err(InvalidParam::TooLong(param.len()))
        } else {
            Ok(param)
        }
    }

    /// The param, exactly as received: nothing is trimmed or decoded.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CaptchaVerifyParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: String = self.0.chars().take(6).collect();
        write!(f, "CaptchaVerifyParam({prefix}… {} bytes)", self.0.len())
    }
}

impl FromStr for CaptchaVerifyParam {
    type Err = InvalidParam;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Why a param was refused before any call to Alibaba.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidParam {
    /// No param, or only white space.
    Empty,
    /// Longer than 16 KiB; holds the length.
    TooLong(usize),
    /// Not UTF-8 text.
    NotUtf8,
    /// Given more than once in one place: two headers, form fields or query parameters of its
    /// name, or two JSON keys. Servers, proxies and firewalls differ on which copy counts, so
    /// neither is trusted.
    Ambiguous,
}

impl InvalidParam {
    /// The code Alibaba would have answered: F002 for an empty param, F003 otherwise.
    pub fn code(self) -> VerifyCode {
        match self {
            Self::Empty => VerifyCode::F002,
            Self::TooLong(_) | Self::NotUtf8 | Self::Ambiguous => VerifyCode::F003,
        }
    }
}

impl fmt::Display for InvalidParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the captcha param is missing or empty"),
            Self::TooLong(len) => write!(
                f,
                "the captcha param is {len} bytes, over the limit of {MAX_PARAM_LEN}"
            ),
            Self::NotUtf8 => f.write_str("the captcha param is not UTF-8 text"),
            Self::Ambiguous => f.write_str("the captcha param is given more than once"),
        }
    }
}

impl std::error::Error for InvalidParam {}

/// A captcha scene id (`SceneId`), as created in the Captcha 2.0 console.
///
/// ```
/// use tower_aliyun_captcha::SceneId;
///
/// let scene = SceneId::new("1ezx8pyn")?;
/// assert_eq!(scene.as_str(), "1ezx8pyn");
/// assert!(SceneId::new("").is_err());
/// assert!(SceneId::new("a\nb").is_err());
/// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SceneId(Arc<str>);

impl SceneId {
    /// Checks and wraps a scene id: 1 to 128 bytes, no control characters.
    pub fn new(scene: impl AsRef<str>) -> Result<Self, InvalidSceneId> {
        let scene = scene.as_ref();
        if scene.is_empty() || scene.len() > MAX_SCENE_ID_LEN || scene.chars().any(char::is_control)
        {
            return Err(InvalidSceneId);
        }
        Ok(Self(Arc::from(scene)))
    }

    /// The scene id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id, shared (for metric labels, without a copy).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl fmt::Display for SceneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SceneId {
    type Err = InvalidSceneId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A scene id that is empty, too long, or holds control characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSceneId;

impl fmt::Display for InvalidSceneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a scene id is 1 to {MAX_SCENE_ID_LEN} bytes without control characters"
        )
    }
}

impl std::error::Error for InvalidSceneId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_debug_hides_the_token() {
        let param = CaptchaVerifyParam::new("abcdefghijklmnopqrstuvwxyz").unwrap();
        let printed = format!("{param:?}");
        assert!(!printed.contains("ghij"), "{printed}");
        assert!(printed.contains("26 bytes"));
    }

    #[test]
    fn whitespace_only_param_is_empty() {
        assert_eq!(
            CaptchaVerifyParam::new("  ").unwrap_err(),
            InvalidParam::Empty
        );
        assert_eq!(
            CaptchaVerifyParam::from_bytes(&[0xff]).unwrap_err(),
            InvalidParam::NotUtf8
        );
    }
}
