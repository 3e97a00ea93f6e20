//! Credentials from a URL of the deployment's own (`ALIBABA_CLOUD_CREDENTIALS_URI`): a plain
//! `GET` that answers the STS fields.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::Request;

use super::http::Http;
use super::{
    Credentials, CredentialsError, ProvideCredentials, ProvideFuture, TemporaryCredentials,
};
use crate::client::Proxy;

pub(crate) const ENV_URI: &str = "ALIBABA_CLOUD_CREDENTIALS_URI";
const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Credentials from a URL that answers `{"AccessKeyId", "AccessKeySecret", "SecurityToken",
/// "Expiration"}` (and, if it says, `"Code": "Success"`), as `ALIBABA_CLOUD_CREDENTIALS_URI`
/// names in the default chain.
///
/// ```
/// use tower_aliyun_captcha::Client;
/// use tower_aliyun_captcha::credentials::CredentialsUri;
///
/// let client = Client::builder()
///     .credentials_provider(CredentialsUri::new("http://127.0.0.1:9000/credentials"))
///     .build()?;
/// # let _ = client;
/// # Ok::<_, tower_aliyun_captcha::client::BuildError>(())
/// ```
pub struct CredentialsUri {
    url: String,
    proxy: Proxy,
}

impl CredentialsUri {
    /// Fetches from `url`.
    ///
    /// ```
    /// use tower_aliyun_captcha::credentials::CredentialsUri;
    ///
    /// let source = CredentialsUri::new("http://credentials.internal/captcha");
    /// # let _ = source;
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            proxy: Proxy::from_env(),
        }
    }

    pub(crate) fn with_proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = proxy;
        self
    }

    async fn fetch(&self) -> Result<Credentials, CredentialsError> {
        let fail = |why: String| CredentialsError::Provider(format!("credentials URI: {why}"));
        let http = Http::new(&self.proxy, CONNECT_TIMEOUT).map_err(fail)?;
        let request = Request::get(&self.url)
            .body(Bytes::new())
            .map_err(|e| fail(e.to_string()))?;
        let answer = http.send(request, TIMEOUT).await.map_err(fail)?;
        if answer.status != 200 {
            return Err(fail(format!("HTTP {}", answer.status)));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "Code")]
            code: Option<String>,
            #[serde(flatten)]
            credentials: TemporaryCredentials,
        }
        let answer: Answer = serde_json::from_slice(&answer.body)
            .map_err(|_| fail("an answer that is not the expected JSON".into()))?;
        // Some servers answer a Code; when one is there, it must say so.
        if let Some(code) = answer.code.as_deref().filter(|c| *c != "Success") {
            return Err(fail(format!("Code {code}")));
        }
        answer.credentials.into_credentials().map_err(fail)
    }
}

impl fmt::Debug for CredentialsUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a secret in its query: show its origin only.
        let origin = self
            .url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| Some(format!("{}://{}", u.scheme_str()?, u.authority()?)))
            .unwrap_or_else(|| "<invalid>".into());
        f.debug_struct("CredentialsUri")
            .field("origin", &origin)
            .finish()
    }
}

impl ProvideCredentials for CredentialsUri {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        Box::pin(self.fetch())
    }

    fn name(&self) -> &'static str {
        "credentials_uri"
    }
}
