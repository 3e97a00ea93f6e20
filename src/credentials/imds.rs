//! An ECS instance's RAM role, through the instance metadata service: a session token first
//! (IMDSv2, as the official libraries do), then the role's temporary credentials. A request is
//! asked again without the token (IMDSv1) when getting the token fails or a request that
//! carries it fails, unless IMDSv1 is turned off, as the newer Java and Python libraries do.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};

use super::config::ProviderConfig;
use super::http::{Http, Route};
use super::{
    Credentials, CredentialsError, ProvideCredentials, ProvideFuture, TemporaryCredentials,
};
const TOKEN_PATH: &str = "/latest/api/token";
const ROLES_PATH: &str = "/latest/meta-data/ram/security-credentials/";
const TOKEN_TTL_HEADER: &str = "X-aliyun-ecs-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "X-aliyun-ecs-metadata-token";
/// The session token's lifetime the official libraries ask for: six hours.
const TOKEN_TTL: &str = "21600";
/// The metadata service is on the instance's own link: it answers at once or not at all.
const TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) const ENV_ROLE_NAME: &str = "ALIBABA_CLOUD_ECS_METADATA";
pub(crate) const ENV_DISABLED: &str = "ALIBABA_CLOUD_ECS_METADATA_DISABLED";
const ENV_IMDSV1_DISABLED: &str = "ALIBABA_CLOUD_IMDSV1_DISABLED";

/// The RAM role of the ECS instance the service runs on, from its metadata service. The role
/// is the one attached to the instance (or `ALIBABA_CLOUD_ECS_METADATA`); its credentials are
/// refreshed before they expire.
///
/// ```
/// use tower_aliyun_captcha::Client;
/// use tower_aliyun_captcha::credentials::EcsRamRole;
///
/// // The role attached to the instance; `.role_name("…")` names one instead.
/// let role = EcsRamRole::new().require_session_token();
/// let client = Client::builder().credentials_provider(role).build()?;
/// # let _ = client;
/// # Ok::<_, tower_aliyun_captcha::client::BuildError>(())
/// ```
#[must_use]
pub struct EcsRamRole {
    role_name: Option<String>,
    /// Set by a test; else the configuration's.
    endpoint: Option<String>,
    imds_v1_allowed: bool,
    config: Arc<ProviderConfig>,
}

impl EcsRamRole {
    /// The instance's role, from `http://100.100.100.200`; without a session token when the
    /// service gives none or refuses a request that carries it, unless
    /// `ALIBABA_CLOUD_IMDSV1_DISABLED=true`.
    pub fn new() -> Self {
        Self::with_config(ProviderConfig::from_env())
    }

    pub(crate) fn with_config(config: Arc<ProviderConfig>) -> Self {
        Self {
            role_name: config.lookup(ENV_ROLE_NAME),
            endpoint: None,
            // Some official libraries spell it without the final D: either turns v1 off.
            imds_v1_allowed: ![ENV_IMDSV1_DISABLED, "ALIBABA_CLOUD_IMDSV1_DISABLE"]
                .into_iter()
                .any(|name| config.flag(name)),
            config,
        }
    }

    fn endpoint(&self) -> &str {
        self.endpoint
            .as_deref()
            .unwrap_or_else(|| self.config.metadata_endpoint())
            .trim_end_matches('/')
    }

    /// The role, instead of the one the metadata service names.
    pub fn role_name(mut self, name: impl Into<String>) -> Self {
        self.role_name = Some(name.into());
        self
    }

    /// The metadata service's base URL, instead of `http://100.100.100.200`: for tests, not
    /// part of the API.
    #[doc(hidden)]
    pub fn metadata_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Refuses to ask without a session token (IMDSv1), even when the service gives none or
    /// refuses a request that carries one.
    pub fn require_session_token(mut self) -> Self {
        self.imds_v1_allowed = false;
        self
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> Result<Request<Bytes>, CredentialsError> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.endpoint()));
        if method == Method::PUT {
            request = request.header(TOKEN_TTL_HEADER, TOKEN_TTL);
        }
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token);
        }
        request
            .body(Bytes::new())
            .map_err(|e| CredentialsError::failed("the metadata service's URL", e))
    }

    /// GETs `path`, with the session token when there is one. When that fails (no answer, or
    /// not 200), asks once more without it (IMDSv1) unless that is off: some instances, in
    /// private clouds for one, give a token that their other paths do not take.
    async fn get(
        &self,
        http: &Http,
        path: &str,
        token: Option<&str>,
    ) -> Result<Bytes, CredentialsError> {
        let with_token = match token {
            None => return self.get_once(http, path, None).await,
            Some(token) => self.get_once(http, path, Some(token)).await,
        };
        match with_token {
            Ok(body) => Ok(body),
            Err(why) if !self.imds_v1_allowed => Err(why),
            Err(with_token) => self.get_once(http, path, None).await.map_err(|without| {
                CredentialsError::Provider(format!(
                    "{} with a session token, and {} without one",
                    unprefixed(&with_token),
                    unprefixed(&without)
                ))
            }),
        }
    }

    async fn get_once(
        &self,
        http: &Http,
        path: &str,
        token: Option<&str>,
    ) -> Result<Bytes, CredentialsError> {
        let answer = http
            .send(
                Route::Direct,
                self.request(Method::GET, path, token)?,
                TIMEOUT,
            )
            .await?;
        if answer.status != 200 {
            return Err(CredentialsError::Provider(format!(
                "{}{path}: HTTP {}",
                self.endpoint(),
                answer.status
            )));
        }
        Ok(answer.body)
    }

    async fn fetch(&self) -> Result<Credentials, CredentialsError> {
        const WHAT: &str = "ECS metadata service";
        let fail = |why: String| CredentialsError::Provider(format!("{WHAT}: {why}"));
        let within = |error: CredentialsError| error.within(WHAT);
        let http = self.config.http().map_err(within)?;
        let token = match http
            .send(
                Route::Direct,
                self.request(Method::PUT, TOKEN_PATH, None)
                    .map_err(within)?,
                TIMEOUT,
            )
            .await
        {
            Ok(answer) if answer.status == 200 => {
                Some(String::from_utf8_lossy(&answer.body).trim().to_owned())
            }
            Ok(answer) if !self.imds_v1_allowed => {
                return Err(fail(format!("no session token (HTTP {})", answer.status)));
            }
            Err(why) if !self.imds_v1_allowed => {
                return Err(fail(format!("no session token ({})", unprefixed(&why))));
            }
            // IMDSv1: ask without a token.
            _ => None,
        };
        let role = match &self.role_name {
            Some(role) => role.clone(),
            None => {
                let roles = self
                    .get(&http, ROLES_PATH, token.as_deref())
                    .await
                    .map_err(within)?;
                let role = String::from_utf8_lossy(&roles).trim().to_owned();
                if role.is_empty() {
                    return Err(fail("the instance has no RAM role attached".into()));
                }
                // A role name is a short plain name; anything else is not one to put in a path.
                if role.len() > 64
                    || !role
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                {
                    return Err(fail(format!(
                        "the metadata service named an unusable role {:?}",
                        super::printable(&role)
                    )));
                }
                role
            }
        };
        let body = self
            .get(&http, &format!("{ROLES_PATH}{role}"), token.as_deref())
            .await
            .map_err(within)?;
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "Code")]
            code: Option<String>,
            #[serde(flatten)]
            credentials: TemporaryCredentials,
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            fail(format!(
                "role {role}: an answer that is not the service's JSON"
            ))
        })?;
        if answer.code.as_deref() != Some("Success") {
            return Err(fail(format!(
                "role {role}: Code {}",
                answer
                    .code
                    .as_deref()
                    .map_or("missing".into(), super::printable)
            )));
        }
        answer.credentials.into_credentials().map_err(fail)
    }
}

/// What `error` says, without the "credentials provider failed" in front.
fn unprefixed(error: &CredentialsError) -> String {
    match error {
        CredentialsError::Provider(why) => why.clone(),
        CredentialsError::Failed { context, cause } => format!("{context}: {cause}"),
        other => other.to_string(),
    }
}

impl Default for EcsRamRole {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EcsRamRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcsRamRole")
            .field("role_name", &self.role_name)
            .field("endpoint", &self.endpoint())
            .field("imds_v1_allowed", &self.imds_v1_allowed)
            .finish()
    }
}

impl ProvideCredentials for EcsRamRole {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        Box::pin(self.fetch())
    }

    fn name(&self) -> &'static str {
        "ecs_ram_role"
    }
}
