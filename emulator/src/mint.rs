//! [`Mint`]: what param the emulator mints, as the widget would after a challenge.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParamFormat;
use tower_aliyun_captcha::{SceneId, VerifyCode};

/// What param to mint, as Alibaba's front-end widget would after a challenge. The JSON body
/// of `POST /emulator/params` has the same fields (`scene`, `verdict`, `format`,
/// `encryptedSceneId`, `userCertifyId`), each optional.
///
/// ```
/// use aliyun_captcha_emulator::{Mint, ParamFormat};
/// use tower_aliyun_captcha::{SceneId, VerifyCode};
///
/// let failing_v2 = Mint::verdict(VerifyCode::F015)
///     .in_scene(SceneId::new("signup").unwrap())
///     .format(ParamFormat::V2);
/// let from_json: Mint =
///     serde_json::from_str(r#"{"scene": "signup", "verdict": "F015", "format": "v2"}"#).unwrap();
/// assert_eq!(failing_v2, from_json);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MintRequest", into = "MintRequest")]
#[must_use]
pub struct Mint {
    scene: Option<SceneId>,
    verdict: VerifyCode,
    format: ParamFormat,
    encrypted_scene_id: Option<String>,
    certify_id: Option<String>,
}

impl Default for Mint {
    fn default() -> Self {
        Self {
            scene: None,
            verdict: VerifyCode::T001,
            format: ParamFormat::default(),
            encrypted_scene_id: None,
            certify_id: None,
        }
    }
}

/// The JSON body of `POST /emulator/params`: every field optional, names as the page sends
/// them.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scene: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verdict: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<ParamFormat>,
    #[serde(
        default,
        rename = "encryptedSceneId",
        skip_serializing_if = "Option::is_none"
    )]
    encrypted_scene_id: Option<String>,
    #[serde(
        default,
        rename = "userCertifyId",
        skip_serializing_if = "Option::is_none"
    )]
    user_certify_id: Option<String>,
}

impl TryFrom<MintRequest> for Mint {
    type Error = String;

    fn try_from(request: MintRequest) -> Result<Self, String> {
        let scene = request
            .scene
            .map(|scene| SceneId::new(&scene).map_err(|e| format!("scene {scene:?}: {e}")))
            .transpose()?;
        Ok(Self {
            scene,
            verdict: request
                .verdict
                .map_or(VerifyCode::T001, |code| VerifyCode::from(code.as_str())),
            format: request.format.unwrap_or_default(),
            encrypted_scene_id: request.encrypted_scene_id,
            certify_id: request.user_certify_id,
        })
    }
}

impl From<Mint> for MintRequest {
    fn from(mint: Mint) -> Self {
        Self {
            scene: mint.scene.map(|scene| scene.as_str().to_owned()),
            verdict: Some(mint.verdict.as_str().to_owned()),
            format: Some(mint.format),
            encrypted_scene_id: mint.encrypted_scene_id,
            user_certify_id: mint.certify_id,
        }
    }
}

impl Mint {
    /// A V3 param that passes (`T001`) in the default scene.
    ///
    /// ```
    /// use aliyun_captcha_emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::{Credentials, VerifyCode};
    /// # async fn check(emulator: &aliyun_captcha_emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// let param = emulator.mint(Mint::pass())?;
    /// assert_eq!(check(&emulator, &credentials, param).await?.code(), &VerifyCode::T001);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn pass() -> Self {
        Self::default()
    }

    /// A V3 param that gets `code` in the default scene.
    ///
    /// ```
    /// use aliyun_captcha_emulator::{Emulator, Mint, MintError};
    /// use tower_aliyun_captcha::{Credentials, VerifyCode};
    /// # async fn check(emulator: &aliyun_captcha_emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// let bot = emulator.mint(Mint::verdict(VerifyCode::F009))?; // a headless browser, say
    /// assert_eq!(check(&emulator, &credentials, bot).await?.code(), &VerifyCode::F009);
    /// assert!(matches!(emulator.mint(Mint::verdict(VerifyCode::from("F999"))), Err(MintError::UnknownVerdict(_))));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn verdict(code: VerifyCode) -> Self {
        Self {
            verdict: code,
            ..Self::default()
        }
    }

    /// For `scene` instead of the default one.
    ///
    /// ```
    /// use aliyun_captcha_emulator::{Emulator, Mint};
    /// use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, SceneId, VerifyRequest};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder()
    ///     .credentials(&credentials)
    ///     .scene("login001")
    ///     .scene("signup01")
    ///     .start("127.0.0.1:0")
    ///     .await?;
    /// let client = Client::builder()
    ///     .credentials(credentials)
    ///     .endpoint(emulator.url())
    ///     .allow_http(true)
    ///     .build()?;
    /// let param = CaptchaVerifyParam::new(emulator.mint(Mint::pass().in_scene(SceneId::new("signup01").unwrap()))?)?;
    /// let request = VerifyRequest::new(param).with_scene(SceneId::new("signup01")?);
    /// assert!(client.verify(request).await?.passed());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn in_scene(mut self, scene: SceneId) -> Self {
        self.scene = Some(scene);
        self
    }

    /// In `format`.
    ///
    /// ```
    /// use aliyun_captcha_emulator::{Emulator, Mint, ParamFormat};
    /// use tower_aliyun_captcha::{Credentials, VerifyCode};
    /// # async fn check(emulator: &aliyun_captcha_emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// // A V2 param is a JSON object; used twice it is F008 (a V3 param: F018).
    /// let param = emulator.mint(Mint::pass().format(ParamFormat::V2))?;
    /// assert!(param.starts_with('{'));
    /// assert!(check(&emulator, &credentials, param.clone()).await?.passed());
    /// assert_eq!(check(&emulator, &credentials, param).await?.code(), &VerifyCode::F008);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn format(mut self, format: ParamFormat) -> Self {
        self.format = format;
        self
    }

    /// With the `EncryptedSceneId` the page got from its server, for a scene in encryption
    /// mode (see [`EmulatorBuilder::encrypted_scene`](super::EmulatorBuilder::encrypted_scene)).
    ///
    /// ```
    /// use aliyun_captcha_emulator::Mint;
    ///
    /// let mint = Mint::pass().encrypted_scene_id("oKGio6Slpqeo…");
    /// assert_eq!(mint.encrypted_scene_id_token(), Some("oKGio6Slpqeo…"));
    /// ```
    pub fn encrypted_scene_id(mut self, token: impl Into<String>) -> Self {
        self.encrypted_scene_id = Some(token.into());
        self
    }

    /// With the `UserCertifyId` the page started the widget with (`PREFIX_` and ten letters or
    /// digits): the verdict reports it as its `CertifyId`, so that a back end can check that
    /// the param belongs to the flow it started. Without one the verdict reports the
    /// challenge's own id.
    ///
    /// ```
    /// use aliyun_captcha_emulator::{Emulator, Mint, MintError};
    /// use tower_aliyun_captcha::Credentials;
    /// # async fn check(emulator: &aliyun_captcha_emulator::Emulator, credentials: &tower_aliyun_captcha::Credentials, param: String) -> Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error> {
    /// #     use tower_aliyun_captcha::{CaptchaVerifyParam, Client, VerifyRequest};
    /// #     let client = Client::builder().credentials(credentials.clone()).endpoint(emulator.url()).allow_http(true).build().unwrap();
    /// #     client.verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())).await
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let credentials = Credentials::new("LTAI5tLocal", "local-secret");
    /// let emulator = Emulator::builder().credentials(&credentials).scene("s").start("127.0.0.1:0").await?;
    /// let param = emulator.mint(Mint::pass().user_certify_id("tx5ytbc_7G47iByes3"))?;
    /// let verdict = check(&emulator, &credentials, param).await?;
    /// assert_eq!(verdict.certify_id(), Some("tx5ytbc_7G47iByes3"));
    /// let malformed = emulator.mint(Mint::pass().user_certify_id("7G47iByes3"));
    /// assert!(matches!(malformed, Err(MintError::InvalidCertifyId(_))));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn user_certify_id(mut self, certify_id: impl Into<String>) -> Self {
        self.certify_id = Some(certify_id.into());
        self
    }

    /// The `UserCertifyId` given, if any.
    pub fn certify_id(&self) -> Option<&str> {
        self.certify_id.as_deref()
    }

    /// The scene, when not the emulator's first.
    pub fn scene(&self) -> Option<&SceneId> {
        self.scene.as_ref()
    }

    /// The `VerifyCode` the param will get.
    pub fn code(&self) -> &VerifyCode {
        &self.verdict
    }

    /// The param's format.
    pub fn param_format(&self) -> ParamFormat {
        self.format
    }

    /// The `EncryptedSceneId` given, if any.
    pub fn encrypted_scene_id_token(&self) -> Option<&str> {
        self.encrypted_scene_id.as_deref()
    }
}

/// A param could not be minted.
///
/// ```
/// use aliyun_captcha_emulator::{Emulator, Mint, MintError};
/// use tower_aliyun_captcha::SceneId;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let no_scenes = Emulator::builder()
///     .access_key("id", "secret")
///     .start("127.0.0.1:0")
///     .await?;
/// assert_eq!(no_scenes.mint(Mint::pass()), Err(MintError::NoScene));
/// assert!(no_scenes.mint(Mint::pass().in_scene(SceneId::new("explicit").unwrap())).is_ok());
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MintError {
    /// No scene was given and the emulator has none configured.
    NoScene,
    /// The verdict is not a known `VerifyCode`.
    UnknownVerdict(String),
    /// The `UserCertifyId` is not in Alibaba's format: the identity prefix, `_`, and ten
    /// letters or digits.
    InvalidCertifyId(String),
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoScene => {
                f.write_str("no scene given, and the emulator has no scene configured")
            }
            Self::UnknownVerdict(code) => write!(f, "{code:?} is not a known VerifyCode"),
            Self::InvalidCertifyId(id) => write!(
                f,
                "UserCertifyId {id:?} is not PREFIX_ and ten letters or digits (IllegalCertifyId)"
            ),
        }
    }
}

impl std::error::Error for MintError {}

/// Whether `id` is a `UserCertifyId` as Alibaba's widget takes it: the account's identity
/// prefix, `_`, and ten letters or digits.
pub(crate) fn is_user_certify_id(id: &str) -> bool {
    id.rsplit_once('_').is_some_and(|(prefix, random)| {
        !prefix.is_empty()
            && prefix.bytes().all(|b| b.is_ascii_alphanumeric())
            && random.len() == 10
            && random.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_certify_ids_follow_alibabas_format() {
        for good in ["tx5ytbc_7G47iByes3", "1q5abc_0000000000"] {
            assert!(is_user_certify_id(good), "{good}");
        }
        for bad in [
            "7G47iByes3",
            "_7G47iByes3",
            "tx5ytbc_7G47iByes",
            "tx5ytbc_7G47iByes3x",
            "tx5_ytbc_7G47iByes3",
            "tx5ytbc_7G47iBye-3",
            "tx5ytbc-7G47iByes3",
        ] {
            assert!(!is_user_certify_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_json_form_carries_the_user_certify_id() {
        let mint: Mint =
            serde_json::from_str(r#"{"userCertifyId": "tx5ytbc_7G47iByes3"}"#).unwrap();
        assert_eq!(mint.certify_id(), Some("tx5ytbc_7G47iByes3"));
        let back = serde_json::to_value(&mint).unwrap();
        assert_eq!(back["userCertifyId"], "tx5ytbc_7G47iByes3");
    }
}
