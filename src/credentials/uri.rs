//! Credentials from a URL of the deployment's own (`ALIBABA_CLOUD_CREDENTIALS_URI`): a plain
//! `GET` that answers the STS fields.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;

use super::config::ProviderConfig;
use super::http::Route;
use super::{
    Credentials, CredentialsError, ProvideCredentials, ProvideFuture, TemporaryCredentials,
};

pub(crate) const ENV_URI: &str = "ALIBABA_CLOUD_CREDENTIALS_URI";
const TIMEOUT: Duration = Duration::from_secs(10);

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
#[must_use]
pub struct CredentialsUri {
    url: String,
    config: Arc<ProviderConfig>,
}

impl CredentialsUri {
    /// Fetches from `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_config(url, ProviderConfig::from_env())
    }

    pub(crate) fn with_config(url: impl Into<String>, config: Arc<ProviderConfig>) -> Self {
        Self {
            url: url.into(),
            config,
        }
    }

    async fn fetch(&self) -> Result<Credentials, CredentialsError> {
        const WHAT: &str = "credentials URI";
        let fail = |why: String| CredentialsError::Provider(format!("{WHAT}: {why}"));
        let http = self.config.http().map_err(|e| e.within(WHAT))?;
        let request = basic_auth_from_user_part(&self.url).map_err(fail)?;
        let answer = http
            .send(Route::Proxied, request, TIMEOUT)
            .await
            .map_err(|e| e.within(WHAT))?;
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
            return Err(fail(format!("Code {}", super::printable(code))));
        }
        answer.credentials.into_credentials().map_err(fail)
    }
}

/// The `GET` for `url`, with a user part turned into Basic authentication (as Go's and
/// Python's HTTP clients do), so that it is neither sent in the URL nor logged by the pool.
fn basic_auth_from_user_part(url: &str) -> Result<Request<Bytes>, String> {
    use base64::Engine as _;
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let authority = uri.authority().map(|a| a.as_str().to_owned());
    let Some((user, host)) = authority.as_deref().and_then(|a| a.rsplit_once('@')) else {
        return Request::get(uri)
            .body(Bytes::new())
            .map_err(|e| e.to_string());
    };
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
            .map_err(|_| "a user part that is not valid UTF-8".to_owned())
    };
    let credentials = match user.split_once(':') {
        Some((name, password)) => format!("{}:{}", decode(name)?, decode(password)?),
        None => format!("{}:", decode(user)?),
    };
    let mut parts = uri.into_parts();
    parts.authority = Some(host.parse().map_err(|e| format!("not a URL: {e}"))?);
    let uri = http::Uri::from_parts(parts).map_err(|e| format!("not a URL: {e}"))?;
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    );
    let mut value =
        http::HeaderValue::from_str(&value).map_err(|_| "an unusable user part".to_owned())?;
    value.set_sensitive(true);
    Request::get(uri)
        .header(http::header::AUTHORIZATION, value)
        .body(Bytes::new())
        .map_err(|e| e.to_string())
}

impl fmt::Debug for CredentialsUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a secret in its user part or query: show its origin only.
        let origin = self
            .url
            .parse::<http::Uri>()
            .map(|uri| super::http::origin(&uri))
            .unwrap_or_else(|_| "<invalid>".into());
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

#[cfg(test)]
mod tests {
    use super::basic_auth_from_user_part;

    #[test]
    fn a_user_part_becomes_basic_authentication() {
        let request =
            basic_auth_from_user_part("http://us%40er:p%3Ass@creds.internal:81/c?x=1").unwrap();
        assert_eq!(request.uri(), "http://creds.internal:81/c?x=1");
        // "us@er:p:ss" in Base64.
        assert_eq!(
            request.headers()[http::header::AUTHORIZATION],
            "Basic dXNAZXI6cDpzcw=="
        );
        assert!(request.headers()[http::header::AUTHORIZATION].is_sensitive());
        let plain = basic_auth_from_user_part("http://creds.internal/c").unwrap();
        assert!(plain.headers().is_empty());
        assert!(basic_auth_from_user_part("not a url").is_err());
    }
}
